// Renders one node: the OS-specific user-data, overlays on top, schema validation, then the
// NoCloud meta-data and network-config beside it. Pure: no file I/O.

import type { NodePlan, SitePlan } from '../catalogue/plan.js';
import type { OverlayCache } from '../catalogue/overlays.js';
import { CatalogueError, type Diagnostic } from '../util/diagnostics.js';
import type { KairosSecrets, SiteSecrets, TalosSecrets } from '../secrets/types.js';
import { renderTalosDocuments, serializeTalosConfig, validateTalosDocuments, type TalosDocument } from './talos/index.js';
import { renderKairosCloudConfig, serializeCloudConfig } from './kairos/index.js';
import { applyOverlayPatch, applyOverlays, type Doc, type DocumentSet } from './overlays.js';
import { validateKairosConfig, type KairosConfigError } from './kairos/strict.js';
import type { OverlayFile, OverlayPatch } from '../catalogue/overlays.js';
import type { SourcePos } from '../util/diagnostics.js';
import { renderMetaData, renderNetworkConfig } from './nocloud.js';

export interface RenderedNode {
  node: NodePlan;
  userData: string;
  metaData: string;
  networkConfig: string;
}

export type RenderOutcome = { ok: true; rendered: RenderedNode } | { ok: false; diagnostics: Diagnostic[] };

export function renderNode(site: SitePlan, node: NodePlan, secrets: SiteSecrets, overlays: OverlayCache): RenderOutcome {
  let userData: string | Diagnostic[];
  try {
    userData =
      site.os === 'talos'
        ? renderTalosUserData(site, node, secrets as TalosSecrets, overlays)
        : renderKairosUserData(site, node, secrets as KairosSecrets, overlays);
  } catch (err) {
    // renderers report catalogue combinations they cannot express (e.g. k0s with a VIP) this way
    if (err instanceof CatalogueError) return { ok: false, diagnostics: err.diagnostics };
    throw err;
  }
  if (typeof userData !== 'string') return { ok: false, diagnostics: userData };
  return {
    ok: true,
    rendered: { node, userData, metaData: renderMetaData(site, node, userData), networkConfig: renderNetworkConfig(site, node) },
  };
}

/** The v1alpha1 machine config has no `kind`; other Talos documents are addressed by kind. */
function talosDocumentSet(docs: TalosDocument[]): DocumentSet {
  return {
    docs,
    select: (all, sel) => all.find((d) => (sel === undefined || sel === 'v1alpha1' ? d.version === 'v1alpha1' && !('kind' in d) : d.kind === sel)),
    create: (kind) => ({ apiVersion: 'v1alpha1', kind }),
  };
}

function renderTalosUserData(site: SitePlan, node: NodePlan, secrets: TalosSecrets, overlays: OverlayCache): string | Diagnostic[] {
  const minor = site.talos!.minor;
  const render = (): TalosDocument[] => renderTalosDocuments(site, node, secrets);
  const docs = render();
  const patchDiags = applyOverlays(talosDocumentSet(docs), node.overlays, overlays);
  if (patchDiags.length > 0) return patchDiags;
  if (validateTalosDocuments(docs, minor).length === 0) return serializeTalosConfig(docs);

  // Invalid after overlays: replay them one at a time to name the overlay that broke the schema.
  const replay = render();
  const base = validateTalosDocuments(replay, minor);
  if (base.length > 0) {
    // Our own renderer produced an invalid document: a bug, not a user error.
    throw new Error(`internal error: rendered Talos config for ${site.id}/${node.name} fails the ${minor} schema: ${base[0]!.kind} ${base[0]!.path}: ${base[0]!.message}`);
  }
  for (const ref of node.overlays) {
    applyOverlays(talosDocumentSet(replay), [ref], overlays);
    const errs = validateTalosDocuments(replay, minor);
    if (errs.length > 0) {
      const overlay = overlays.get(ref.path)!;
      return errs.map((e) => ({
        ...overlay.doc.pos.value('/patches'),
        message: `overlay ${ref.display} makes the Talos ${minor} ${e.kind} document invalid for node ${site.id}/${node.name}: ${e.path || '/'} ${e.message}`,
      }));
    }
  }
  throw new Error('internal error: Talos validation failed but no single overlay was at fault');
}

function kairosSet(config: Doc): DocumentSet {
  return { docs: [config], select: (all, sel) => (sel === undefined ? all[0] : undefined) };
}

/**
 * Overlays are applied, then the result must pass our strict Kairos schema. When it does not,
 * the patches are replayed one at a time on a fresh rendering to name the patch (file and line)
 * that introduced each error.
 */
function renderKairosUserData(site: SitePlan, node: NodePlan, secrets: KairosSecrets, overlays: OverlayCache): string | Diagnostic[] {
  const config = renderKairosCloudConfig(site, node, secrets) as Doc;
  const patchDiags = applyOverlays(kairosSet(config), node.overlays, overlays);
  if (patchDiags.length > 0) return patchDiags;
  if (validateKairosConfig(config, site, node).length === 0) return serializeCloudConfig(config);

  const replay = renderKairosCloudConfig(site, node, secrets) as Doc;
  const base = validateKairosConfig(replay, site, node);
  if (base.length > 0) {
    throw new Error(`internal error: rendered Kairos config for ${site.id}/${node.name} fails the strict schema: ${base[0]!.path}: ${base[0]!.message}`);
  }
  const seen = new Set<string>();
  const diags: Diagnostic[] = [];
  for (const ref of node.overlays) {
    const overlay = overlays.get(ref.path);
    if (!overlay) continue;
    overlay.patches.forEach((patch, i) => {
      applyOverlayPatch(kairosSet(replay), patch);
      for (const e of validateKairosConfig(replay, site, node)) {
        const key = `${e.path}|${e.message}`;
        if (seen.has(key)) continue;
        seen.add(key);
        diags.push({ ...locatePatchError(overlay, i, patch, e), message: `overlay ${ref.display} breaks the Kairos cloud-config of node ${site.id}/${node.name}: ${e.message}` });
      }
    });
  }
  if (diags.length === 0) throw new Error('internal error: Kairos validation failed but no overlay patch was at fault');
  return diags;
}

/**
 * Where in the overlay file an error in the patched config comes from: the same key under the
 * patch's `merge` (or under `value` below its `path`), matching array positions loosely since
 * merged lists are appended; else the patch itself.
 */
function locatePatchError(overlay: OverlayFile, i: number, patch: OverlayPatch, e: KairosConfigError): SourcePos {
  const pos = overlay.doc.pos;
  const root = patch.merge !== undefined ? `/patches/${i}/merge` : `/patches/${i}/value`;
  const rel = patch.merge !== undefined ? e.path : patch.path !== undefined && e.path.startsWith(patch.path) ? e.path.slice(patch.path.length) : undefined;
  if (rel !== undefined) {
    const loose = (p: string): string => p.replace(/\/\d+(?=\/|$)/g, '/#');
    const want = loose(rel);
    // the deepest key of the patch whose loose path is a prefix of the error's
    let best: string | undefined;
    for (const k of pos.keyPaths()) {
      if (!k.startsWith(`${root}/`)) continue;
      const lk = loose(k.slice(root.length));
      if ((want === lk || want.startsWith(`${lk}/`)) && (best === undefined || k.length > best.length)) best = k;
    }
    if (best !== undefined) return pos.key(best);
  }
  return pos.value(`/patches/${i}`);
}
