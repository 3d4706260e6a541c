import { planFleet } from '../catalogue/index.js';
import { CatalogueError } from '../util/diagnostics.js';
import { EXIT, parse, type Io } from './main.js';

export async function runValidate(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { catalogue: { type: 'string', default: 'catalogue' } });
  try {
    const { plans } = await planFleet(values.catalogue!);
    const nodes = plans.reduce((n, p) => n + p.nodes.length, 0);
    if (values.json) io.out(`${JSON.stringify({ valid: true, sites: plans.length, nodes, errors: [] })}\n`);
    io.err(`edgeimg: catalogue ${values.catalogue} is valid: ${plans.length} sites, ${nodes} nodes\n`);
    return EXIT.ok;
  } catch (err) {
    if (values.json && err instanceof CatalogueError) {
      io.out(`${JSON.stringify({ valid: false, errors: err.diagnostics })}\n`);
    }
    throw err;
  }
}
