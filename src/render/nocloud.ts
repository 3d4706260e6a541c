// The two small NoCloud files every node gets beside its user-data. Both are plain data
// serialised deterministically; their shapes follow cloud-init's NoCloud datasource, which
// Talos (platform nocloud) and Kairos read too.

import { emitYaml } from '../util/yaml-emit.js';
import type { NodePlan, SitePlan } from '../catalogue/plan.js';
import { sha256Hex } from '../util/fsx.js';

/** instance-id changes exactly when the node's rendered config changes. */
export function instanceId(userData: string | Uint8Array): string {
  return `iid-${sha256Hex(userData).slice(0, 32)}`;
}

export function renderMetaData(node: NodePlan, userData: string | Uint8Array): string {
  return emitYaml({ 'instance-id': instanceId(userData), 'local-hostname': node.hostname }, { indent: 2 });
}

/** Network config version 2 (netplan dialect): static address, default route, resolvers. */
export function renderNetworkConfig(site: SitePlan, node: NodePlan): string {
  const match: Record<string, string> = {};
  if (node.mac) match.macaddress = node.mac;
  else if (node.hardware.nic.name) match.name = node.hardware.nic.name;
  else if (node.hardware.nic.selector?.hardwareAddr) match.macaddress = node.hardware.nic.selector.hardwareAddr.toLowerCase();
  else if (node.hardware.nic.selector?.driver) match.driver = node.hardware.nic.selector.driver;
  const nameservers: Record<string, string[]> = {};
  if (site.network.dns.length > 0) nameservers.addresses = site.network.dns;
  if (site.network.searchDomains.length > 0) nameservers.search = site.network.searchDomains;
  const eth: Record<string, unknown> = {
    ...(Object.keys(match).length > 0 ? { match } : {}),
    ...(node.mac && node.hardware.nic.name ? { 'set-name': node.hardware.nic.name } : {}),
    dhcp4: false,
    addresses: [`${node.ip}/${node.prefix}`],
    routes: [{ to: '0.0.0.0/0', via: site.network.gateway }],
    ...(Object.keys(nameservers).length > 0 ? { nameservers } : {}),
  };
  return emitYaml({ version: 2, ethernets: { [primaryLinkId(node)]: eth } }, { indent: 2 });
}

/** Stable id for the primary link in network-config: the NIC name when known. */
export function primaryLinkId(node: NodePlan): string {
  return node.hardware.nic.name ?? 'primary';
}
