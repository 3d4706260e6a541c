// k3s through provider-kairos without p2p: `k3s` (server) or `k3s-agent` blocks with
// `enabled: true`. provider-kairos then writes `env` to the service's environment file and
// runs `k3s server|agent <args joined by spaces>` (internal/provider/bootstrap.go,
// oneTimeBootstrap), once; the sentinel /usr/local/.kairos/deployed keeps it from re-running.
// Args therefore use the `--flag=value` form and never contain spaces.

import { controlPlanes, nodeLabels, unsupported, type RenderContext } from './common.js';
import { KUBE_VIP_MANIFEST, kubeVipManifest } from './kube-vip.js';
import { k3sRegistriesYaml } from './registries.js';
import { rootFile, type ProviderParts, type YipFile } from './types.js';
import type { KairosSecrets } from '../../secrets/types.js';

export const K3S_REGISTRIES = '/etc/rancher/k3s/registries.yaml';

/**
 * The k3s server token, from the site join token. k3s reads a token shaped like a kubeadm
 * bootstrap token (`abcdef.0123456789abcdef`) as a bootstrap token, which cannot start or join
 * servers (k3s-io/k3s#7313, docs.k3s.io/cli/token); without the dot it is a plain server
 * token with the same secret characters.
 */
export function k3sServerToken(secrets: KairosSecrets): string {
  return secrets.token.replace('.', '');
}

export function renderK3s(ctx: RenderContext): ProviderParts {
  const { site, node, secrets } = ctx;
  const first = controlPlanes(site)[0];
  if (first === undefined) throw unsupported(site, 'a k3s site needs at least one control-plane (server) node');
  const vip = site.network.vip;

  const files: YipFile[] = [];
  if (site.registries.mirrors.length > 0) files.push(rootFile(K3S_REGISTRIES, k3sRegistriesYaml(site.registries, ctx.mirrorCa)));

  const identity = [`--node-name=${node.hostname}`, `--node-ip=${node.ip}`, ...nodeLabels(site, node).map((l) => `--node-label=${l}`)];
  const token = k3sServerToken(secrets);

  if (node.role === 'worker') {
    return {
      blocks: { 'k3s-agent': { enabled: true, args: identity, env: { K3S_TOKEN: token, K3S_URL: site.cluster.endpoint } } },
      files,
    };
  }

  // The first server starts the embedded etcd cluster; the others join it through the
  // endpoint, which is the VIP when the site has one.
  const args = [node.name === first.name ? '--cluster-init' : `--server=${site.cluster.endpoint}`, ...identity];
  if (vip !== undefined) args.push(`--tls-san=${vip}`);
  args.push(`--cluster-cidr=${site.cluster.podCidrs.join(',')}`, `--service-cidr=${site.cluster.serviceCidrs.join(',')}`);
  if (!site.cluster.allowSchedulingOnControlPlanes) args.push('--node-taint=node-role.kubernetes.io/control-plane:NoSchedule');
  if (vip !== undefined) files.push(rootFile(KUBE_VIP_MANIFEST, kubeVipManifest(site, vip)));
  return { blocks: { k3s: { enabled: true, args, env: { K3S_TOKEN: token } } }, files };
}
