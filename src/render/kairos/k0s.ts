// k0s through provider-kairos without p2p: `k0s` (controller) or `k0s-worker` blocks with
// `enabled: true`; provider-kairos runs `k0s controller|worker <args joined by spaces>` once
// (internal/provider/bootstrap.go). Args use `--flag=value` and contain no spaces.
//
// Joins work offline: the controller starts from a cluster CA we pre-seed into its PKI dir
// (k0s reuses ca.crt/ca.key it finds there, docs "Install using custom CA certificate") and
// applies a bootstrap-token Secret from its manifest dir; workers get a join token built from
// the same CA and token (k0s-token.ts). Only single-controller sites are supported: joining more
// controllers needs a controller join token the site secrets do not carry.

import type { SitePlan } from '../../catalogue/plan.js';
import { controlPlanes, nodeLabels, unsupported, type RenderContext } from './common.js';
import { bootstrapTokenSecret, splitBootstrapToken, workerJoinToken } from './k0s-token.js';
import { containerdHostsToml } from './registries.js';
import { tomlString, yamlText } from './text.js';
import { MODE_SECRET, rootFile, type ProviderParts, type YipFile } from './types.js';

export const K0S_CONFIG = '/etc/k0s/k0s.yaml';
export const K0S_TOKEN_FILE = '/etc/k0s/token';
export const K0S_PKI_DIR = '/var/lib/k0s/pki';
/** k0s applies every stack (subdirectory) of /var/lib/k0s/manifests; its own bootstraprbac lives beside ours. */
export const K0S_BOOTSTRAP_MANIFEST_DIR = '/var/lib/k0s/manifests/edgeimg-bootstrap-token';
/** k0s merges *.toml drop-ins from here into its containerd config (docs "Runtime", since 1.27.1). */
export const K0S_CONTAINERD_DROPIN = '/etc/k0s/containerd.d/edgeimg-registries.toml';
export const K0S_CERTS_DIR = '/etc/k0s/containerd.d/certs.d';

export function renderK0s(ctx: RenderContext): ProviderParts {
  const { site, node, secrets } = ctx;
  if (ctx.traits.network === 'connman') {
    throw unsupported(
      site,
      `k0s on Alpine (flavor "${site.kairos!.flavor}") is not supported: on OpenRC provider-kairos cannot start k0s ("no k3s binary found", kairos-sdk machine/openrc unit.go OverrideCmd) and the k0scontroller init script ignores the env file; use an ubuntu, debian or opensuse flavor`,
    );
  }
  const controllers = controlPlanes(site);
  if (controllers.length !== 1) {
    throw unsupported(site, `k0s sites need exactly one controller, found ${controllers.length}: joining further controllers needs a controller join token that Kairos site secrets do not carry`);
  }
  if (site.network.vip !== undefined) {
    throw unsupported(site, 'k0s sites cannot use a VIP: provider-kairos deploys no kube-vip for k0s; address the single controller directly');
  }

  const runsPods = node.role === 'worker' || site.cluster.allowSchedulingOnControlPlanes;
  const files: YipFile[] = runsPods ? registryFiles(ctx) : [];
  const labels = nodeLabels(site, node);
  const workerArgs = [...(labels.length > 0 ? [`--labels=${labels.join(',')}`] : []), `--kubelet-extra-args=--node-ip=${node.ip}`];

  if (node.role === 'worker') {
    files.push(rootFile(K0S_TOKEN_FILE, workerJoinToken(site.cluster.endpoint, secrets.ca.crt, secrets.token), MODE_SECRET));
    return { blocks: { 'k0s-worker': { enabled: true, args: [`--token-file=${K0S_TOKEN_FILE}`, ...workerArgs] } }, files };
  }

  const { id } = splitBootstrapToken(secrets.token);
  files.unshift(
    rootFile(K0S_CONFIG, k0sClusterConfig(site, node.ip)),
    rootFile(`${K0S_PKI_DIR}/ca.crt`, secrets.ca.crt),
    rootFile(`${K0S_PKI_DIR}/ca.key`, secrets.ca.key, MODE_SECRET),
    rootFile(`${K0S_BOOTSTRAP_MANIFEST_DIR}/bootstrap-token-${id}.yaml`, bootstrapTokenSecret(secrets.token), MODE_SECRET),
  );
  const args = [`--config=${K0S_CONFIG}`];
  // A schedulable control plane runs the kubelet too and keeps no control-plane taint.
  if (site.cluster.allowSchedulingOnControlPlanes) args.push('--enable-worker', '--no-taints', ...workerArgs);
  return { blocks: { k0s: { enabled: true, args } }, files };
}

/** Partial k0s ClusterConfig; k0s fills in every default we leave out. */
function k0sClusterConfig(site: SitePlan, address: string): string {
  const pod = splitFamilies(site.cluster.podCidrs);
  const svc = splitFamilies(site.cluster.serviceCidrs);
  const network: Record<string, unknown> = { podCIDR: pod.v4 ?? pod.v6, serviceCIDR: svc.v4 ?? svc.v6 };
  if (pod.v4 !== undefined && pod.v6 !== undefined && svc.v6 !== undefined) {
    network.dualStack = { enabled: true, IPv6podCIDR: pod.v6, IPv6serviceCIDR: svc.v6 };
  }
  return yamlText({
    apiVersion: 'k0s.k0sproject.io/v1beta1',
    kind: 'ClusterConfig',
    metadata: { name: 'k0s' },
    spec: { api: { address, sans: [address] }, network },
  });
}

function splitFamilies(cidrs: string[]): { v4?: string; v6?: string } {
  return { v4: cidrs.find((c) => !c.includes(':')), v6: cidrs.find((c) => c.includes(':')) };
}

/** k0s release that first bundles containerd 2 (config version 3, renamed CRI plugins). */
const K0S_CONTAINERD2_MINOR = 36;

function k0sMinor(site: SitePlan): number {
  const m = /^v?1\.(\d+)\./.exec(site.kairos!.providerVersion);
  if (m === null) throw unsupported(site, `cannot read the k0s minor version from "${site.kairos!.providerVersion}"`);
  return Number(m[1]);
}

/**
 * Points k0s's containerd at a hosts.toml directory. containerd 1.7 (config version 2) reads
 * `plugins."io.containerd.grpc.v1.cri".registry.config_path`; containerd 2 (version 3) moved it
 * to `plugins."io.containerd.cri.v1.images".registry.config_path`.
 */
function containerdDropIn(site: SitePlan): string {
  const v3 = k0sMinor(site) >= K0S_CONTAINERD2_MINOR;
  const plugin = v3 ? 'io.containerd.cri.v1.images' : 'io.containerd.grpc.v1.cri';
  return [`version = ${v3 ? 3 : 2}`, '', `[plugins.${tomlString(plugin)}.registry]`, `  config_path = ${tomlString(K0S_CERTS_DIR)}`, ''].join('\n');
}

function registryFiles(ctx: RenderContext): YipFile[] {
  const { registries } = ctx.site;
  if (registries.mirrors.length === 0) return [];
  return [
    rootFile(K0S_CONTAINERD_DROPIN, containerdDropIn(ctx.site)),
    ...registries.mirrors.map((m) =>
      rootFile(`${K0S_CERTS_DIR}/${m.registry}/hosts.toml`, containerdHostsToml(m, registries.tlsHosts, ctx.mirrorCa)),
    ),
  ];
}
