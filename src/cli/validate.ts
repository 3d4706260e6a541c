import { planFleet } from '../catalogue/index.js';
import { renderNode } from '../render/node.js';
import { placeholderSecrets } from '../secrets/placeholder.js';
import { CatalogueError, formatDiagnostic, plural, type Diagnostic } from '../util/diagnostics.js';
import { EXIT, parse, type Io } from './main.js';

export async function runValidate(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { catalogue: { type: 'string', default: 'catalogue' }, strict: { type: 'boolean' } });
  try {
    const { plans, overlays, warnings } = await planFleet(values.catalogue!, { strict: values.strict });
    for (const w of warnings) io.err(`${formatDiagnostic(w)}\n`);
    // Render every node with stand-in secrets: overlays that do not apply, or that break the
    // Talos schema, and combinations a renderer cannot express fail here, not at build time.
    const diagnostics: Diagnostic[] = [];
    for (const plan of plans) {
      const secrets = placeholderSecrets(plan.os);
      for (const node of plan.nodes) {
        const r = renderNode(plan, node, secrets, overlays);
        if (!r.ok) diagnostics.push(...r.diagnostics);
      }
    }
    if (diagnostics.length > 0) throw new CatalogueError(diagnostics);
    const nodes = plans.reduce((n, p) => n + p.nodes.length, 0);
    if (values.json) io.out(`${JSON.stringify({ valid: true, sites: plans.length, nodes, errors: [], warnings })}\n`);
    io.err(`edgeimg: catalogue ${values.catalogue} is valid: ${plural(plans.length, 'site')}, ${plural(nodes, 'node')} rendered and checked\n`);
    return EXIT.ok;
  } catch (err) {
    if (values.json && err instanceof CatalogueError) {
      io.out(`${JSON.stringify({ valid: false, errors: err.diagnostics })}\n`);
    }
    throw err;
  }
}
