// Which files the catalogue may read, and how. Every catalogue file, overlay and CA bundle is a
// regular file of at most MAX_CATALOGUE_FILE_BYTES inside the catalogue: the catalogue directory
// itself, or the `overlays/` directory beside it (the documented layout). Symbolic links are
// refused, never followed (docs/decisions.md, "Bounded, confined input").

import { realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { bare } from './excerpt.js';
import { readRegularFileSync, type SafeRead } from '../util/safe-read.js';

/** Largest catalogue file, overlay or CA bundle read (the example files are under 2 KiB). */
export const MAX_CATALOGUE_FILE_BYTES = 4 * 1024 * 1024;

/** The directories a catalogue may read files from: lexical (as resolved) and real path. */
export interface Confinement {
  roots: Array<{ lexical: string; real: string; display: string }>;
}

/**
 * The catalogue directory and, when it exists, the `overlays/` directory beside it. The roots
 * themselves may be reached through symlinks (a checkout under a symlinked home); below them,
 * nothing is.
 */
export function confinementFor(catalogueRoot: string, display: (abs: string) => string): Confinement {
  const roots: Confinement['roots'] = [];
  for (const lexical of [catalogueRoot, join(dirname(catalogueRoot), 'overlays')]) {
    try {
      if (!statSync(lexical).isDirectory()) continue;
      roots.push({ lexical, real: realpathSync.native(lexical), display: display(lexical) });
    } catch {
      // no overlays/ directory: only the catalogue itself
    }
  }
  return { roots };
}

function inside(root: string, abs: string): string | undefined {
  const rel = relative(root, abs);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return undefined;
  return rel;
}

/** Why `abs` (an absolute, normalised path) may not be read, or undefined when it may. */
export function confinementProblem(abs: string, conf: Confinement): { problem: string; code?: string } | undefined {
  for (const root of conf.roots) {
    const rel = inside(root.lexical, abs);
    if (rel === undefined) continue;
    let real: string;
    try {
      real = realpathSync.native(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return code === 'ENOENT' || code === 'ENOTDIR' ? { problem: 'not found', code: 'ENOENT' } : { problem: `cannot be resolved (${code})`, code };
    }
    if (real !== join(root.real, rel)) {
      return { problem: 'is, or lies under, a symbolic link; symlinks in the catalogue are not followed', code: 'ELOOP' };
    }
    return undefined;
  }
  const where = conf.roots.map((r) => `${r.display}/`).join(' or ');
  return { problem: `is outside the catalogue: referenced files must be inside ${where || 'the catalogue directory'}`, code: 'EOUTSIDE' };
}

/**
 * Read a file the catalogue references by path (an overlay, a CA bundle): confined to the
 * catalogue when `conf` is given, always a regular file within the size limit.
 */
export function readCatalogueFile(abs: string, conf?: Confinement): SafeRead {
  if (conf) {
    const bad = confinementProblem(abs, conf);
    if (bad) return bad;
  }
  return readRegularFileSync(abs, MAX_CATALOGUE_FILE_BYTES, 'catalogue files');
}

/** `readCatalogueFile`'s problem as a sentence about the reference: `overlay file X is a FIFO…`. */
export function referenceMessage(what: string, ref: string, r: { problem: string; code?: string }): string {
  // "not found" keeps its established wording: `overlay file not found: ../x.yaml`
  if (r.code === 'ENOENT') return `${what} not found: ${bare(ref)}`;
  return `${what} ${bare(ref)} ${r.problem}`;
}

