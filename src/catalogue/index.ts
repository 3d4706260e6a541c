import { CatalogueError, sortDiagnostics, strictErrors, type Diagnostic } from '../util/diagnostics.js';
import { loadCatalogue } from './load.js';
import type { OverlayCache } from './overlays.js';
import type { ParseCache } from './parse-cache.js';
import type { SitePlan } from './plan.js';
import { resolveCatalogue } from './resolve.js';
import type { Catalogue } from './types.js';

export interface FleetPlan {
  catalogue: Catalogue;
  plans: SitePlan[];
  overlays: OverlayCache;
  /** Problems that do not stop a build unless `strict` is set (sorted). */
  warnings: Diagnostic[];
}

export interface PlanOptions {
  /** Warnings are errors. */
  strict?: boolean;
  /** Parsed documents of files seen before (incremental builds). */
  parseCache?: ParseCache;
}

/** Load, resolve and check the whole catalogue; throws CatalogueError listing every problem. */
export async function planFleet(catalogueDir: string, opts: PlanOptions = {}): Promise<FleetPlan> {
  const { catalogue, diagnostics } = await loadCatalogue(catalogueDir, opts.parseCache ? { parseCache: opts.parseCache } : {});
  const resolved = resolveCatalogue(catalogue);
  const all: Diagnostic[] = [...diagnostics, ...resolved.diagnostics];
  if (opts.strict) all.push(...strictErrors(resolved.warnings));
  if (all.length > 0) throw new CatalogueError(all);
  return { catalogue, plans: resolved.plans, overlays: resolved.overlays, warnings: opts.strict ? [] : sortDiagnostics(resolved.warnings) };
}
