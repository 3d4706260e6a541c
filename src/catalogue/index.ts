import { CatalogueError, type Diagnostic } from '../util/diagnostics.js';
import { loadCatalogue } from './load.js';
import type { OverlayCache } from './overlays.js';
import type { SitePlan } from './plan.js';
import { resolveCatalogue } from './resolve.js';
import type { Catalogue } from './types.js';

export interface FleetPlan {
  catalogue: Catalogue;
  plans: SitePlan[];
  overlays: OverlayCache;
}

/** Load, resolve and check the whole catalogue; throws CatalogueError listing every problem. */
export async function planFleet(catalogueDir: string): Promise<FleetPlan> {
  const { catalogue, diagnostics } = await loadCatalogue(catalogueDir);
  const resolved = resolveCatalogue(catalogue);
  const all: Diagnostic[] = [...diagnostics, ...resolved.diagnostics];
  if (all.length > 0) throw new CatalogueError(all);
  return { catalogue, plans: resolved.plans, overlays: resolved.overlays };
}
