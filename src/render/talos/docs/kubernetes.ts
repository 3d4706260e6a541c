// Kubernetes documents (types/k8s), Talos 1.14+. They take over machine.kubelet,
// machine.nodeLabels, machine.features.kubePrism and almost all of cluster.*, which the 1.14
// schema no longer accepts in the v1alpha1 document. Unlike v1alpha1, these documents hold
// certificates and keys as PEM text, not base64.
//
// Split as `talosctl gen config` splits them: documents every node gets, then the ones only a
// control plane gets (issuing CAs, service-account key, encryption secret, control-plane pods).

import { sortedRecord, type RenderContext } from '../context.js';
import {
  DNS_DOMAIN,
  FLANNEL_BACKEND,
  FLANNEL_BACKEND_PORT,
  KUBE_APISERVER_IMAGE,
  KUBE_CONTROLLER_MANAGER_IMAGE,
  KUBE_PROXY_IMAGE,
  KUBE_SCHEDULER_IMAGE,
  KUBELET_IMAGE,
  KUBEPRISM_PORT,
  LABEL_CONTROL_PLANE,
  LABEL_EXCLUDE_FROM_EXTERNAL_LB,
  TAINT_NO_SCHEDULE,
  defaultAuditPolicy,
  defaultAuthenticationConfiguration,
  kubeImage,
  podSecurityConfiguration,
} from '../defaults.js';
import { typedDocument, type TalosDocument } from '../document.js';

const one = (kind: string, fields: Record<string, unknown>): TalosDocument[] => [typedDocument(kind, fields)];
const controlPlaneOnly =
  (build: (ctx: RenderContext) => TalosDocument[]) =>
  (ctx: RenderContext): TalosDocument[] =>
    ctx.controlPlane ? build(ctx) : [];

// ---- every node ----

export function kubeNetworkConfig(ctx: RenderContext): TalosDocument[] {
  return one('KubeNetworkConfig', {
    dnsDomain: DNS_DOMAIN,
    podSubnets: ctx.site.cluster.podCidrs,
    serviceSubnets: ctx.site.cluster.serviceCidrs,
  });
}

/** The cluster CA: control planes issue with it, workers only trust it. */
export function kubeApiServerCaConfig(ctx: RenderContext): TalosDocument[] {
  const ca = ctx.secrets.certs.k8s;
  return one(
    'KubeAPIServerCAConfig',
    ctx.controlPlane ? { issuingCA: { cert: ca.crt, key: ca.key } } : { acceptedCAs: [ca.crt] },
  );
}

export function kubeClusterConfig(ctx: RenderContext): TalosDocument[] {
  return one('KubeClusterConfig', { clusterName: ctx.site.clusterName, endpoint: ctx.endpoint });
}

export function kubeletConfig(ctx: RenderContext): TalosDocument[] {
  return one('KubeletConfig', {
    image: kubeImage(KUBELET_IMAGE, ctx.kubernetesTag),
    defaultRuntimeSeccompProfileEnabled: true,
  });
}

/** Node registration: addresses from the site subnet, labels, and the control-plane role and taint. */
export function kubeNodeConfig(ctx: RenderContext): TalosDocument[] {
  const labels: Record<string, string> = { ...ctx.node.labels };
  const taints: Record<string, string> = {};
  if (ctx.controlPlane) {
    labels[LABEL_CONTROL_PLANE] = '';
    labels[LABEL_EXCLUDE_FROM_EXTERNAL_LB] = '';
    if (!ctx.site.cluster.allowSchedulingOnControlPlanes) taints[LABEL_CONTROL_PLANE] = TAINT_NO_SCHEDULE;
  }
  const fields: Record<string, unknown> = { nodeIP: { validSubnets: [ctx.site.network.subnet] } };
  if (Object.keys(labels).length > 0) fields.labels = sortedRecord(labels);
  if (Object.keys(taints).length > 0) fields.taints = sortedRecord(taints);
  return one('KubeNodeConfig', fields);
}

export function kubePrismConfig(_ctx: RenderContext): TalosDocument[] {
  return one('KubePrismConfig', { port: KUBEPRISM_PORT });
}

// ---- control planes only ----

export const kubeAggregatorCaConfig = controlPlaneOnly((ctx) => {
  const ca = ctx.secrets.certs.k8sAggregator;
  return one('KubeAggregatorCAConfig', { issuingCA: { cert: ca.crt, key: ca.key } });
});

export const kubeAdmissionControlConfig = controlPlaneOnly(() =>
  one('KubeAdmissionControlConfig', { name: 'PodSecurity', configuration: podSecurityConfiguration() }),
);

export const kubeAuditPolicyConfig = controlPlaneOnly(() => one('KubeAuditPolicyConfig', { configuration: defaultAuditPolicy() }));

export const kubeAuthenticationConfig = controlPlaneOnly(() =>
  one('KubeAuthenticationConfig', { configuration: defaultAuthenticationConfiguration() }),
);

/** The default authorizer chain, one document per authorizer: Node, then RBAC. */
export const kubeAuthorizerConfigs = controlPlaneOnly(() => [
  typedDocument('KubeAuthorizerConfig', { name: 'node', type: 'Node' }),
  typedDocument('KubeAuthorizerConfig', { name: 'rbac', type: 'RBAC' }),
]);

/**
 * Talos names the secretbox key `key2` when it writes the encryption configuration from
 * v1alpha1 `cluster.secretboxEncryptionSecret` (1.13, k8stemplates apiserver encryption
 * config); a 1.14 document that named it differently could not decrypt Secrets that a 1.13
 * control plane wrote. See test/conformance/talos-etcd-encryption.test.ts.
 */
export const SECRETBOX_KEY_NAME = 'key2';

export const kubeEtcdEncryptionConfig = controlPlaneOnly((ctx) =>
  one('KubeEtcdEncryptionConfig', {
    config: {
      resources: [
        {
          providers: [{ secretbox: { keys: [{ name: SECRETBOX_KEY_NAME, secret: ctx.secrets.secretboxEncryptionSecret }] } }],
          resources: ['secrets'],
        },
      ],
    },
  }),
);

export const kubeServiceAccountConfig = controlPlaneOnly((ctx) =>
  one('KubeServiceAccountConfig', {
    issuer: { privateKey: ctx.secrets.certs.k8sServiceAccount.key, issuerURL: ctx.endpoint },
  }),
);

export const kubeApiServerConfig = controlPlaneOnly((ctx) =>
  one('KubeAPIServerConfig', {
    image: kubeImage(KUBE_APISERVER_IMAGE, ctx.kubernetesTag),
    certExtraSANs: [ctx.endpointHost],
  }),
);

export const kubeControllerManagerConfig = controlPlaneOnly((ctx) =>
  one('KubeControllerManagerConfig', { image: kubeImage(KUBE_CONTROLLER_MANAGER_IMAGE, ctx.kubernetesTag) }),
);

export const kubeSchedulerConfig = controlPlaneOnly((ctx) =>
  one('KubeSchedulerConfig', { image: kubeImage(KUBE_SCHEDULER_IMAGE, ctx.kubernetesTag) }),
);

/** kube-proxy runs as a DaemonSet from the bootstrap manifests, which control planes apply. */
export const kubeProxyConfig = controlPlaneOnly((ctx) =>
  one('KubeProxyConfig', { image: kubeImage(KUBE_PROXY_IMAGE, ctx.kubernetesTag) }),
);

export const kubeFlannelCniConfig = controlPlaneOnly(() =>
  one('KubeFlannelCNIConfig', { backendType: FLANNEL_BACKEND, backendPort: FLANNEL_BACKEND_PORT }),
);

export const kubeCoreDnsConfig = controlPlaneOnly(() => one('KubeCoreDNSConfig', { enabled: true }));
