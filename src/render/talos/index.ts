// Talos renderer: a node's machine config as a list of documents in the target version's
// document model, its serialisation, and its validation against the upstream schema.

import { emitYaml } from '../../util/yaml-emit.js';

import type { NodePlan, SitePlan } from '../../catalogue/plan.js';
import type { TalosSecrets } from '../../secrets/types.js';
import { renderContext } from './context.js';
import type { TalosDocument } from './document.js';
import { talosContract, talosMinorOf } from './versions.js';

export type { TalosDocument } from './document.js';
export { documentKind } from './document.js';
export { installerImage } from './installer.js';
export { schematicId, schematicYaml, type SchematicInput } from './schematic.js';
export { validateTalosDocuments, talosSchemaPath, type TalosValidationError } from './schema.js';
export { talosContract, talosMinorOf, TALOS_MINORS, DEFAULT_TALOS_MINOR, type TalosContract, type TalosMinor } from './versions.js';

/** The node's machine config documents: the v1alpha1 Config first, then the rest in the version contract's fixed order. */
export function renderTalosDocuments(site: SitePlan, node: NodePlan, secrets: TalosSecrets): TalosDocument[] {
  if (!site.talos) throw new Error(`site ${site.id}: not a Talos site`);
  if (site.talos.minor !== talosMinorOf(site.talos.version)) {
    throw new Error(`site ${site.id}: Talos version ${site.talos.version} does not match minor ${site.talos.minor}`);
  }
  const contract = talosContract(site.talos.minor);
  const ctx = renderContext(site, node, secrets, contract);
  // A deep copy: builders hand out plan arrays (CIDRs, DNS servers) by reference, and callers
  // patch these documents in place (overlays) — that must never reach back into the SitePlan.
  return structuredClone(contract.documents.flatMap((builder) => builder.build(ctx)));
}

/**
 * Multi-document YAML, `---` between documents. Deterministic: key order is the order builders
 * set, nothing is folded (lineWidth 0), and multi-line strings (PEM) become literal blocks.
 * Scalars are quoted by YAML 1.1 rules (no directive is written): Talos reads the config with
 * Go's yaml.v3, which still turns plain `2024-01-01` into a timestamp, so a string value like
 * that (or `yes`, `1_000`, `1:20`) must be quoted to stay a string.
 */
export function serializeTalosConfig(docs: TalosDocument[]): string {
  // talosctl's own layout: 4-space indent, documents separated by ---
  return docs.map((doc) => emitYaml(doc, { indent: 4 })).join('---\n');
}
