// Everything a document builder needs, derived once per node from the plan and the secrets.

import type { NodePlan, SitePlan, TalosTarget } from '../../catalogue/plan.js';
import type { TalosSecrets } from '../../secrets/types.js';
import { installerImage } from './installer.js';
import type { TalosContract } from './versions.js';

export interface RenderContext {
  site: SitePlan;
  node: NodePlan;
  secrets: TalosSecrets;
  talos: TalosTarget;
  contract: TalosContract;
  controlPlane: boolean;
  /** Name the primary link is configured under: the NIC name, or the alias a selector creates. */
  linkName: string;
  /** Kubernetes version with a leading `v`, as image tags want it. */
  kubernetesTag: string;
  /** https://<VIP or first control plane>:6443 */
  endpoint: string;
  endpointHost: string;
  installerImage: string;
}

/** The alias name a NIC selector is given (LinkAliasConfig). Not a kernel name, so it cannot clash. */
export const PRIMARY_LINK_ALIAS = 'uplink0';

export function renderContext(site: SitePlan, node: NodePlan, secrets: TalosSecrets, contract: TalosContract): RenderContext {
  const talos = site.talos;
  if (!talos) throw new Error(`site ${site.id}: not a Talos site`);
  const nic = node.hardware.nic;
  if (!nic.name && !nic.selector) throw new Error(`hardware class ${node.hardware.name}: primary NIC has neither a name nor a selector`);
  const endpoint = new URL(site.cluster.endpoint);
  return {
    site,
    node,
    secrets,
    talos,
    contract,
    controlPlane: node.role === 'controlplane',
    linkName: nic.name ?? PRIMARY_LINK_ALIAS,
    kubernetesTag: `v${talos.kubernetesVersion.replace(/^v/, '')}`,
    endpoint: site.cluster.endpoint,
    endpointHost: endpoint.hostname.replace(/^\[(.*)\]$/, '$1'),
    installerImage: installerImage(site, node.hardware),
  };
}

/** certSANs for the node's Talos API certificate: its own address, and on control planes the VIP they share. */
export function machineCertSANs(ctx: RenderContext): string[] {
  const sans = [ctx.node.ip];
  if (ctx.controlPlane && ctx.site.network.vip) sans.push(ctx.site.network.vip);
  return [...new Set(sans)];
}

/** Sorted copy of a string map, as Go's YAML encoder writes maps. */
export function sortedRecord(rec: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(rec).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
