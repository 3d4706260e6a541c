// The input digest names everything that determines a site's artifacts: the site's resolved
// plan (everything the catalogue says about it, after profiles and defaults), the content of
// the overlays its nodes take, the templates, the class boot image pins, the site secrets, the
// fleet signing key and the generator version.
//
// It is a digest of meaning, not of file bytes: `resolve` turns the catalogue into a fully
// explicit SitePlan ("if a value matters for the output, it is in these types",
// src/catalogue/plan.ts), so hashing the plan covers every catalogue value that can change an
// artifact, and a comment or layout edit, which cannot, changes nothing. Source positions and
// absolute paths (diagnostics only) are left out, so the digest does not depend on where the
// repository is checked out. `edgeimg affected` compares the same lines, minus secrets and
// signer, between two git revisions (src/fleet/affected.ts).

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { OverlayRef, SitePlan } from '../catalogue/plan.js';
import type { Catalogue } from '../catalogue/types.js';
import { sha256Hex } from '../util/fsx.js';
import { exactJsonReplacer as exact } from '../util/canonical-json.js';
import { packagePath } from '../util/paths.js';
import { generator } from '../version.js';

let templatesDigest: string | undefined;

export function digestTemplates(): string {
  if (templatesDigest === undefined) {
    const root = packagePath('templates');
    const lines: string[] = [];
    const walk = (dir: string): void => {
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) lines.push(`${relative(root, p)} ${sha256Hex(readFileSync(p))}`);
      }
    };
    walk(root);
    templatesDigest = sha256Hex(lines.join('\n'));
  }
  return templatesDigest;
}

/**
 * What the digest needs besides the plan: the catalogue root (to make overlay paths relative)
 * and each overlay's content digest by absolute path (OverlayFile.contentSha256). Plain data:
 * it crosses to build worker threads.
 */
export interface DigestInputs {
  root: string;
  overlayDigests: Record<string, string>;
}

/** The plan as JSON without what only diagnostics use: source positions, the input file list, overlay display paths. */
function planJson(plan: SitePlan, root: string): string {
  return JSON.stringify(plan, (key, v: unknown) => {
    if (key === 'source' || key === 'inputFiles') return undefined;
    // overlay references: level and path inside the catalogue (their content is hashed apart)
    if (key === 'overlays' && Array.isArray(v)) return (v as OverlayRef[]).map((o) => ({ level: o.level, path: relative(root, o.path) }));
    return exact(key, v);
  });
}

/**
 * The catalogue's part of a site's input: the plan, its overlays' content and `extra` lines
 * (the pins of the class boot sticks its nodes take). Independent of secrets, so `affected`
 * can compare it between revisions without them.
 */
export function catalogueLines(inputs: DigestInputs, plan: SitePlan, extra: readonly string[] = []): string[] {
  const lines = [`site ${plan.id}`, ...extra, `plan ${sha256Hex(planJson(plan, inputs.root))}`];
  const overlays = [...new Set(plan.nodes.flatMap((n) => n.overlays.map((o) => o.path)).concat(plan.overlays.map((o) => o.path)))].sort();
  for (const path of overlays) {
    const digest = inputs.overlayDigests[path];
    if (digest === undefined) throw new Error(`internal error: no content digest for overlay ${path}`);
    lines.push(`overlay ${relative(inputs.root, path)} ${digest}`);
  }
  return lines;
}

export interface SiteSecretsInput {
  /** sha256 of the secrets as loaded (their meaning, whatever the stored form). */
  secretsSha256: string;
  /** The fleet signing key's public key fingerprint (SHA256:…), when manifests are signed. */
  signer?: string;
}

/** `extra`: further input lines (the pins of the class boot sticks the site's nodes take). */
export function inputDigest(inputs: DigestInputs, plan: SitePlan, secrets: SiteSecretsInput, extra: readonly string[] = []): string {
  const gen = generator();
  const lines = [
    `generator ${gen.name} ${gen.version}`,
    `templates ${digestTemplates()}`,
    `secrets ${secrets.secretsSha256}`,
    ...(secrets.signer ? [`signer ${secrets.signer}`] : []),
    ...catalogueLines(inputs, plan, extra),
  ];
  return `sha256:${sha256Hex(lines.join('\n'))}`;
}

/** The overlay content digests a set of plans needs, from the fleet's overlay cache. */
export function overlayDigestsOf(plans: readonly SitePlan[], get: (abs: string) => { contentSha256: string } | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const plan of plans) {
    for (const o of plan.overlays.concat(plan.nodes.flatMap((n) => n.overlays))) {
      if (out[o.path] !== undefined) continue;
      const f = get(o.path);
      if (f) out[o.path] = f.contentSha256;
    }
  }
  return out;
}

export type { Catalogue };
