// Applies overlay patches to rendered documents, in order: fleet, hardware class, site, node.
// A patch failure is a user error reported at the patch's own line in the overlay file.

import { excerpt, type Diagnostic } from '../util/diagnostics.js';
import type { OverlayCache, OverlayPatch } from '../catalogue/overlays.js';
import type { OverlayRef } from '../catalogue/plan.js';

export type Doc = Record<string, unknown>;

/** How a renderer's documents are addressed by a patch's `document` field. */
export interface DocumentSet {
  docs: Doc[];
  /** Find the document a patch targets; `undefined` selector means the default document. */
  select(docs: Doc[], selector: string | undefined): Doc | undefined;
  /** Create a document for a merge patch whose target does not exist yet, or explain why not. */
  create?(selector: string): Doc | undefined;
}

/** Apply each overlay's patches in order; returns patch failures positioned in the overlay file. */
export function applyOverlays(set: DocumentSet, refs: OverlayRef[], cache: OverlayCache): Diagnostic[] {
  const diags: Diagnostic[] = [];
  for (const ref of refs) {
    const overlay = cache.get(ref.path);
    if (!overlay) continue;
    overlay.patches.forEach((patch, i) => {
      const err = applyPatch(set, patch);
      if (err) diags.push({ ...overlay.doc.pos.value(`/patches/${i}`), message: `overlay ${overlay.name}: ${err}` });
    });
  }
  return diags;
}

/** Apply one patch of an overlay (for finding which patch broke a document); returns its failure. */
export function applyOverlayPatch(set: DocumentSet, patch: OverlayPatch): string | undefined {
  return applyPatch(set, patch);
}

function applyPatch(set: DocumentSet, patch: OverlayPatch): string | undefined {
  let target = set.select(set.docs, patch.document);
  if (!target) {
    if (patch.merge && patch.document && set.create) {
      target = set.create(patch.document);
      if (target) set.docs.push(target);
    }
    if (!target) return `no document ${patch.document ? excerpt(patch.document) : ''} to patch`.replace('  ', ' ');
  }
  if (patch.merge) {
    deepMerge(target, structuredClone(patch.merge));
    return undefined;
  }
  return jsonPatch(target, patch.op!, patch.path!, structuredClone(patch.value));
}

/** Maps merge recursively, lists append, scalars replace, null deletes the key. */
export function deepMerge(target: Doc, patch: Doc): void {
  for (const [k, v] of Object.entries(patch)) {
    const cur = target[k];
    if (v === null) delete target[k];
    else if (isObject(v) && isObject(cur)) deepMerge(cur, v);
    else if (Array.isArray(v) && Array.isArray(cur)) cur.push(...v);
    else target[k] = v;
  }
}

function isObject(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unescape(seg: string): string {
  return seg.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** RFC 6902 add/replace/remove on one document; `add` creates missing parent maps. */
export function jsonPatch(doc: Doc, op: 'add' | 'replace' | 'remove', path: string, value: unknown): string | undefined {
  if (path === '') return 'patch path must not be empty';
  const segs = path.split('/').slice(1).map(unescape);
  const last = segs.pop()!;
  let cur: unknown = doc;
  for (const [i, seg] of segs.entries()) {
    let next: unknown = Array.isArray(cur) ? cur[Number(seg)] : isObject(cur) ? cur[seg] : undefined;
    if (next === undefined && op === 'add' && isObject(cur)) {
      next = {};
      cur[seg] = next;
    }
    if (next === undefined || next === null || typeof next !== 'object') {
      return `path ${excerpt(`/${segs.slice(0, i + 1).join('/')}`)} not found`;
    }
    cur = next;
  }
  if (Array.isArray(cur)) {
    const idx = last === '-' ? cur.length : Number(last);
    if (!Number.isInteger(idx) || idx < 0 || idx > cur.length || (op !== 'add' && idx >= cur.length)) {
      return `array index ${excerpt(last)} out of range at ${excerpt(path)}`;
    }
    if (op === 'add') cur.splice(idx, 0, value);
    else if (op === 'replace') cur[idx] = value;
    else cur.splice(idx, 1);
    return undefined;
  }
  if (!isObject(cur)) return `path ${excerpt(path)} not found`;
  if (op !== 'add' && !(last in cur)) return `path ${excerpt(path)} not found`;
  if (op === 'remove') delete cur[last];
  else cur[last] = value;
  return undefined;
}
