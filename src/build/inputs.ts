// The input digest names everything that determines a site's artifacts: the catalogue files
// that fed it, its overlays, the templates, the site secrets and the generator version.
// Paths are made relative to the catalogue so that the digest does not depend on where the
// repository is checked out.

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { SitePlan } from '../catalogue/plan.js';
import type { Catalogue } from '../catalogue/types.js';
import { sha256Hex } from '../util/fsx.js';
import { packagePath } from '../util/paths.js';
import { generator } from '../version.js';

let templatesDigest: string | undefined;

function digestTemplates(): string {
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

/** What the digest needs from the catalogue: its root and the digests of files already read. */
export type DigestInputs = Pick<Catalogue, 'root' | 'fileDigests'>;

/** `extra`: further input lines (the pins of the class boot sticks the site's nodes take). */
export function inputDigest(cat: DigestInputs, plan: SitePlan, secretsSha256: string, extra: readonly string[] = []): string {
  const gen = generator();
  const lines = [`generator ${gen.name} ${gen.version}`, `site ${plan.id}`, `templates ${digestTemplates()}`, `secrets ${secretsSha256}`, ...extra];
  for (const file of plan.inputFiles) {
    let digest = cat.fileDigests.get(file);
    if (digest === undefined) {
      digest = sha256Hex(readFileSync(file)); // overlays outside the catalogue: read once, then cached
      cat.fileDigests.set(file, digest);
    }
    lines.push(`file ${relative(cat.root, file)} ${digest}`);
  }
  return `sha256:${sha256Hex(lines.join('\n'))}`;
}
