// Shared setup for conformance tests: the example catalogue's plans, rendered with stand-in
// secrets (what `edgeimg validate` renders), so each rule is checked against what we ship.

import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { planFleet, type FleetPlan } from '../../src/catalogue/index.js';
import type { NodePlan, SitePlan } from '../../src/catalogue/plan.js';
import { renderNode, type RenderedNode } from '../../src/render/node.js';
import { placeholderSecrets } from '../../src/secrets/placeholder.js';

let fleet: Promise<FleetPlan> | undefined;

export function exampleFleet(): Promise<FleetPlan> {
  fleet ??= planFleet('catalogue');
  return fleet;
}

export interface ExampleNode {
  site: SitePlan;
  node: NodePlan;
  rendered: RenderedNode;
}

export async function exampleNodes(filter: (site: SitePlan) => boolean = () => true): Promise<ExampleNode[]> {
  const { plans, overlays } = await exampleFleet();
  const out: ExampleNode[] = [];
  for (const site of plans.filter(filter)) {
    const secrets = placeholderSecrets(site.os);
    for (const node of site.nodes) {
      const r = renderNode(site, node, secrets, overlays);
      if (!r.ok) throw new Error(`example ${site.id}/${node.name} does not render: ${r.diagnostics.map((d) => d.message).join('; ')}`);
      out.push({ site, node, rendered: r.rendered });
    }
  }
  return out;
}

export async function exampleNode(siteId: string, nodeName: string): Promise<ExampleNode> {
  const found = (await exampleNodes((s) => s.id === siteId)).find((n) => n.node.name === nodeName);
  if (!found) throw new Error(`no example node ${siteId}/${nodeName}`);
  return found;
}

/** The Talos machine config documents of a rendered node. */
export function talosDocs(userData: string): Array<Record<string, any>> {
  return parseAllDocuments(userData).map((d) => d.toJS() as Record<string, any>);
}

/** A Kairos node's cloud-config, without the `#cloud-config` header. */
export function cloudConfig(userData: string): Record<string, any> {
  return parseYaml(userData) as Record<string, any>;
}
