// Registry mirrors in the two formats our providers read. Both keep the plan's endpoint order
// (the order containerd tries them) and point TLS for the plan's tlsHosts at the mirror CA file
// that the boot stage installs (see trust.ts).

import type { RegistryPlan } from '../../catalogue/plan.js';
import { tomlString, tomlStringArray, yamlText } from './text.js';

/** host[:port] of an endpoint URL, the form k3s `configs` keys and `tlsHosts` use. */
function endpointHost(endpoint: string): string {
  return new URL(endpoint).host;
}

/**
 * /etc/rancher/k3s/registries.yaml (docs.k3s.io, "Private Registry Configuration"):
 * `mirrors.<registry>.endpoint` lists the endpoints in order; `configs.<host>.tls.ca_file`
 * trusts the mirror CA for each TLS host.
 */
export function k3sRegistriesYaml(registries: RegistryPlan, caFile: string | undefined): string {
  const mirrors: Record<string, { endpoint: string[] }> = {};
  for (const m of registries.mirrors) mirrors[m.registry] = { endpoint: [...m.endpoints] };
  const doc: Record<string, unknown> = { mirrors };
  if (caFile !== undefined && registries.tlsHosts.length > 0) {
    const configs: Record<string, { tls: { ca_file: string } }> = {};
    for (const host of registries.tlsHosts) configs[host] = { tls: { ca_file: caFile } };
    doc.configs = configs;
  }
  return yamlText(doc);
}

/** Docker Hub's registry API lives on registry-1.docker.io, not on docker.io itself. */
function upstreamServer(registry: string): string {
  return registry === 'docker.io' ? 'https://registry-1.docker.io' : `https://${registry}`;
}

/**
 * containerd `certs.d/<registry>/hosts.toml` (containerd docs/hosts.md): `server` is the
 * upstream, `[host."<url>"]` tables are tried in file order before it.
 */
export function containerdHostsToml(
  mirror: RegistryPlan['mirrors'][number],
  tlsHosts: string[],
  caFile: string | undefined,
): string {
  const lines = [`server = ${tomlString(upstreamServer(mirror.registry))}`];
  for (const endpoint of mirror.endpoints) {
    lines.push('', `[host.${tomlString(endpoint)}]`, `  capabilities = ${tomlStringArray(['pull', 'resolve'])}`);
    if (caFile !== undefined && tlsHosts.includes(endpointHost(endpoint))) lines.push(`  ca = ${tomlString(caFile)}`);
  }
  return lines.join('\n') + '\n';
}
