// The version contract: the one place that says, for each supported Talos minor, which
// documents a node's machine config consists of (and in which order), and which legacy
// v1alpha1 fields those documents replace. Builders read the flags; they never compare
// version strings themselves. Modelled on pkg/machinery/config/contract.go in Talos.
//
// Adding Talos 1.15 means adding one entry here (plus builders for any new document kinds),
// and its schema file under schemas/talos/.

import type { RenderContext } from './context.js';
import type { TalosDocument } from './document.js';
import { discoveryIdentityConfig, discoveryServiceConfig } from './docs/cluster.js';
import { registryMirrorConfigs, registryTlsConfigs } from './docs/cri.js';
import * as k8s from './docs/kubernetes.js';
import {
  hostnameConfig,
  layer2VipConfig,
  linkAliasConfig,
  linkConfig,
  resolverConfig,
  timeSyncConfig,
} from './docs/network.js';
import { filesystemTrimConfig, securityProfileConfig, unattendedInstallConfig } from './docs/runtime.js';
import { v1alpha1Config } from './docs/v1alpha1.js';

export type TalosMinor = '1.13' | '1.14';
export const TALOS_MINORS: readonly TalosMinor[] = ['1.13', '1.14'];
export const DEFAULT_TALOS_MINOR: TalosMinor = '1.13';

/** One builder per document kind. A builder may return no document (e.g. a VIP on a worker) or several (one per registry). */
export interface DocumentBuilder {
  kind: string;
  build: (ctx: RenderContext) => TalosDocument[];
}

export interface TalosContract {
  minor: TalosMinor;
  /** Kube*Config documents replace machine.kubelet, machine.nodeLabels, features.kubePrism and cluster.* (1.14). */
  multidocKubernetes: boolean;
  /** UnattendedInstallConfig replaces machine.install (1.14). */
  unattendedInstall: boolean;
  /** DiscoveryServiceConfig / DiscoveryIdentityConfig replace cluster.discovery, cluster.id, cluster.secret (1.14). */
  discoveryMultidoc: boolean;
  /** ResolverConfig.hostDNS replaces machine.features.hostDNS (1.14). */
  hostDnsInResolverConfig: boolean;
  /** The documents, in output order. The v1alpha1 Config always comes first. */
  documents: readonly DocumentBuilder[];
}

const b = (kind: string, build: DocumentBuilder['build']): DocumentBuilder => ({ kind, build });

const V1ALPHA1 = b('v1alpha1', v1alpha1Config);

/** Network and registry documents; both versions use them (1.13 no longer accepts machine.network / machine.registries). */
const NETWORK_AND_REGISTRY: readonly DocumentBuilder[] = [
  b('HostnameConfig', hostnameConfig),
  b('LinkAliasConfig', linkAliasConfig),
  b('LinkConfig', linkConfig),
  b('Layer2VIPConfig', layer2VipConfig),
  b('ResolverConfig', resolverConfig),
  b('TimeSyncConfig', timeSyncConfig),
  b('RegistryMirrorConfig', registryMirrorConfigs),
  b('RegistryTLSConfig', registryTlsConfigs),
];

const KUBERNETES: readonly DocumentBuilder[] = [
  b('KubeNetworkConfig', k8s.kubeNetworkConfig),
  b('KubeAPIServerCAConfig', k8s.kubeApiServerCaConfig),
  b('KubeClusterConfig', k8s.kubeClusterConfig),
  b('KubeletConfig', k8s.kubeletConfig),
  b('KubeNodeConfig', k8s.kubeNodeConfig),
  b('KubePrismConfig', k8s.kubePrismConfig),
  b('KubeAggregatorCAConfig', k8s.kubeAggregatorCaConfig),
  b('KubeAdmissionControlConfig', k8s.kubeAdmissionControlConfig),
  b('KubeAuditPolicyConfig', k8s.kubeAuditPolicyConfig),
  b('KubeAuthenticationConfig', k8s.kubeAuthenticationConfig),
  b('KubeAuthorizerConfig', k8s.kubeAuthorizerConfigs),
  b('KubeEtcdEncryptionConfig', k8s.kubeEtcdEncryptionConfig),
  b('KubeServiceAccountConfig', k8s.kubeServiceAccountConfig),
  b('KubeAPIServerConfig', k8s.kubeApiServerConfig),
  b('KubeControllerManagerConfig', k8s.kubeControllerManagerConfig),
  b('KubeSchedulerConfig', k8s.kubeSchedulerConfig),
  b('KubeProxyConfig', k8s.kubeProxyConfig),
  b('KubeFlannelCNIConfig', k8s.kubeFlannelCniConfig),
  b('KubeCoreDNSConfig', k8s.kubeCoreDnsConfig),
];

const CONTRACTS: Record<TalosMinor, TalosContract> = {
  '1.13': {
    minor: '1.13',
    multidocKubernetes: false,
    unattendedInstall: false,
    discoveryMultidoc: false,
    hostDnsInResolverConfig: false,
    documents: [V1ALPHA1, ...NETWORK_AND_REGISTRY],
  },
  '1.14': {
    minor: '1.14',
    multidocKubernetes: true,
    unattendedInstall: true,
    discoveryMultidoc: true,
    hostDnsInResolverConfig: true,
    documents: [
      V1ALPHA1,
      b('DiscoveryServiceConfig', discoveryServiceConfig),
      b('DiscoveryIdentityConfig', discoveryIdentityConfig),
      b('UnattendedInstallConfig', unattendedInstallConfig),
      b('SecurityProfileConfig', securityProfileConfig),
      b('FilesystemTrimConfig', filesystemTrimConfig),
      ...NETWORK_AND_REGISTRY,
      ...KUBERNETES,
    ],
  },
};

export function isTalosMinor(s: string): s is TalosMinor {
  return (TALOS_MINORS as readonly string[]).includes(s);
}

export function talosContract(minor: string): TalosContract {
  if (!isTalosMinor(minor)) throw new Error(`Talos ${minor} is not supported (supported: ${TALOS_MINORS.join(', ')})`);
  return CONTRACTS[minor];
}

/** The minor of a full version string (v1.13.4 -> 1.13). */
export function talosMinorOf(version: string): TalosMinor {
  const m = /^v?(\d+)\.(\d+)(?:\.|$)/.exec(version);
  const minor = m ? `${m[1]}.${m[2]}` : version;
  if (!isTalosMinor(minor)) throw new Error(`Talos ${version} is not supported (supported: ${TALOS_MINORS.join(', ')})`);
  return minor;
}
