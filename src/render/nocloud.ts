// The two small NoCloud files every node gets beside its user-data. Both are plain data
// serialised deterministically; their shapes follow cloud-init's NoCloud datasource, which
// Talos (platform nocloud) and Kairos read too.

import { emitYaml } from '../util/yaml-emit.js';
import type { NodePlan, SitePlan } from '../catalogue/plan.js';
import { sha256Hex } from '../util/fsx.js';

/**
 * `iid-<site>.<node>.<hash>`: names whose seed this is (site ids and node names are DNS labels,
 * so the dots separate them unambiguously) and changes exactly when the node's rendered config
 * changes. `verify` uses it to prove identity: a seed copied to another site or node fails.
 */
export function instanceId(siteId: string, nodeName: string, userData: string | Uint8Array): string {
  return `iid-${siteId}.${nodeName}.${sha256Hex(userData).slice(0, 32)}`;
}

export function renderMetaData(site: SitePlan, node: NodePlan, userData: string | Uint8Array): string {
  return emitYaml({ 'instance-id': instanceId(site.id, node.name, userData), 'local-hostname': node.hostname }, { indent: 2 });
}

/**
 * Network config version 2 (netplan dialect): static address, default route, resolvers.
 *
 * The NIC is matched by MAC, or else by the interface name the hardware class gives. Talos'
 * NoCloud parser knows only `match.name` and `match.macaddress` (and takes the link name from
 * the `ethernets` key unless the MAC matches); cloud-init with a driver-only match puts the same
 * address on every port of that driver. A class that selects its NIC by selector therefore needs
 * the node's MAC, which `resolve` enforces (see test/conformance/talos-network.test.ts).
 */
export function renderNetworkConfig(site: SitePlan, node: NodePlan): string {
  let match: Record<string, string>;
  if (node.mac) match = { macaddress: node.mac };
  else if (node.hardware.nic.name) match = { name: node.hardware.nic.name };
  else throw new Error(`internal error: node ${site.id}/${node.name} has neither a MAC nor a NIC name; resolve should have refused it`);
  const nameservers: Record<string, string[]> = {};
  if (site.network.dns.length > 0) nameservers.addresses = site.network.dns;
  if (site.network.searchDomains.length > 0) nameservers.search = site.network.searchDomains;
  const eth: Record<string, unknown> = {
    match,
    dhcp4: false,
    addresses: [`${node.ip}/${node.prefix}`],
    routes: [{ to: '0.0.0.0/0', via: site.network.gateway }],
    ...(Object.keys(nameservers).length > 0 ? { nameservers } : {}),
  };
  return emitYaml({ version: 2, ethernets: { [primaryLinkId(node)]: eth } }, { indent: 2 });
}

/**
 * The `ethernets` key. Talos uses it as the link name when no MAC matches, so with a MAC it is
 * a name no kernel gives ("primary"): a wrong MAC then configures nothing rather than some
 * other port. Without a MAC it is the class's interface name.
 */
export function primaryLinkId(node: NodePlan): string {
  return node.mac ? 'primary' : node.hardware.nic.name!;
}
