// Overlay files (kind: Overlay) are referenced by path from fleet, hardware classes, sites
// and nodes. They are read once, validated against the catalogue schema, and cached.

import { dirname, resolve } from 'node:path';
import type { Diagnostic, SourcePos } from '../util/diagnostics.js';
import { sha256Hex } from '../util/fsx.js';
import { canonicalJson } from '../util/canonical-json.js';
import { excerpt } from './excerpt.js';
import { readCatalogueFile, referenceMessage, type Confinement } from './files.js';
import { displayPath } from './load.js';
import { validateDocument } from './schema.js';
import { parseYaml, type YamlDoc } from './yaml.js';

export interface OverlayPatch {
  document?: string;
  merge?: Record<string, unknown>;
  op?: 'add' | 'replace' | 'remove';
  path?: string;
  value?: unknown;
}

export interface OverlayFile {
  path: string; // absolute
  display: string;
  name: string;
  os?: 'talos' | 'kairos';
  roles?: Array<'controlplane' | 'worker'>;
  talosMinors?: Array<'1.13' | '1.14'>;
  patches: OverlayPatch[];
  doc: YamlDoc;
  sha256: string;
  /**
   * sha256 of what the overlay does (name, filters, patches as parsed), not of its text: a
   * comment or layout edit leaves it unchanged (the build's input digest uses this).
   */
  contentSha256: string;
}

export class OverlayCache {
  private readonly cache = new Map<string, { overlay?: OverlayFile; diagnostics: Diagnostic[]; unreadable?: { problem: string; code?: string } }>();

  /**
   * With `confinement`, overlay paths must lie inside the catalogue (resolve does this). Without
   * it (a build worker re-reading overlays the main thread already checked), only the
   * regular-file and size checks apply.
   */
  constructor(private readonly confinement?: Confinement) {}

  get(abs: string): OverlayFile | undefined {
    return this.cache.get(abs)?.overlay;
  }

  /** Whether an overlay's os/roles/talosMinors filters select a node (or, without a role, a site). */
  appliesTo(abs: string, os: 'talos' | 'kairos', role?: 'controlplane' | 'worker', talosMinor?: string): boolean {
    const o = this.get(abs);
    if (!o) return false;
    if (o.os && o.os !== os) return false;
    if (o.talosMinors && (os !== 'talos' || !talosMinor || !o.talosMinors.includes(talosMinor as '1.13'))) return false;
    return !role || !o.roles || o.roles.includes(role);
  }

  /** Resolve `ref` relative to the file that references it and load it. */
  load(ref: string, referencedFrom: SourcePos & { abs: string }): { overlay?: OverlayFile; diagnostics: Diagnostic[] } {
    const abs = resolve(dirname(referencedFrom.abs), ref);
    const hit = this.cache.get(abs);
    if (hit) {
      // a missing or unreadable file is reported at each reference, so every broken reference
      // is visible; an invalid file's own errors were reported at its first reference
      if (hit.unreadable) return { diagnostics: [{ ...referencedFrom, message: referenceMessage('overlay file', ref, hit.unreadable) }] };
      return { overlay: hit.overlay, diagnostics: [] };
    }
    // inside the catalogue, no symlinks, a regular file (a FIFO or device fails at once), capped
    const read = readCatalogueFile(abs, this.confinement);
    if ('problem' in read) {
      this.cache.set(abs, { diagnostics: [], unreadable: read });
      return { diagnostics: [{ ...referencedFrom, message: referenceMessage('overlay file', ref, read) }] };
    }
    const text = read.data;
    const display = displayPath(abs);
    let parsed = parseYaml(display, text.toString('utf8'));
    // A Kairos overlay's values end up in a cloud-config that yip decodes as YAML 1.1
    // (gopkg.in/yaml.v2): `permissions: 0644` there is octal, so read it the way yip will.
    if ((parsed.docs[0]?.value as { os?: unknown } | undefined)?.os === 'kairos') parsed = parseYaml(display, text.toString('utf8'), { version: '1.1' });
    const diagnostics = [...parsed.diagnostics];
    let overlay: OverlayFile | undefined;
    if (parsed.docs.length !== 1 && diagnostics.length === 0) {
      diagnostics.push({ file: display, line: 1, col: 1, message: 'an overlay file must hold exactly one document' });
    } else if (parsed.docs[0]) {
      const doc = parsed.docs[0];
      const kind = (doc.value as { kind?: unknown } | null)?.kind;
      if (kind !== 'Overlay') {
        diagnostics.push({ ...doc.pos.value('/kind'), message: `expected kind "Overlay" in an overlay file, got ${kind === undefined ? 'none' : excerpt(kind)}` });
      } else {
        diagnostics.push(...validateDocument(doc));
        diagnostics.push(...checkPatches(doc));
      }
      if (diagnostics.length === 0) {
        const v = doc.value as Pick<OverlayFile, 'os' | 'roles' | 'talosMinors' | 'patches'> & { metadata: { name: string } };
        const content = { name: v.metadata.name, os: v.os, roles: v.roles, talosMinors: v.talosMinors, patches: v.patches };
        overlay = { path: abs, display, ...content, doc, sha256: sha256Hex(text), contentSha256: sha256Hex(canonicalJson(content)) };
      }
    }
    const result = { overlay, diagnostics };
    this.cache.set(abs, result);
    return result;
  }
}

/** A patch is either a merge or one JSON-patch operation, never both. */
function checkPatches(doc: YamlDoc): Diagnostic[] {
  const out: Diagnostic[] = [];
  const patches = (doc.value as { patches?: unknown }).patches;
  if (!Array.isArray(patches)) return out; // the schema check reports it
  (patches as OverlayPatch[]).forEach((p, i) => {
    if (p === null || typeof p !== 'object') return; // the schema check reports it
    const at = doc.pos.value(`/patches/${i}`);
    const isMerge = p.merge !== undefined;
    const isOp = p.op !== undefined;
    if (isMerge === isOp) {
      out.push({ ...at, message: 'a patch needs either "merge" or "op" (with "path"), not both or neither' });
    } else if (isOp) {
      if (p.path === undefined) out.push({ ...at, message: `a ${excerpt(p.op)} patch needs "path"` });
      if (p.op !== 'remove' && !('value' in p)) out.push({ ...at, message: `a ${excerpt(p.op)} patch needs "value"` });
    }
  });
  return out;
}
