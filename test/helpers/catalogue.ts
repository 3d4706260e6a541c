// Broken-copy helpers: copy the example catalogue (and overlays) to a temp dir, edit a file,
// and point the loader at it.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planFleet } from '../../src/catalogue/index.js';
import { CatalogueError, type Diagnostic } from '../../src/util/diagnostics.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface CatalogueCopy {
  root: string; // temp dir holding catalogue/ and overlays/
  catalogue: string;
  path(rel: string): string;
  edit(rel: string, fn: (text: string) => string): void;
  write(rel: string, text: string): void;
  cleanup(): void;
}

export function copyCatalogue(): CatalogueCopy {
  const root = mkdtempSync(join(tmpdir(), 'edgeimg-cat-'));
  cpSync(join(repoRoot, 'catalogue'), join(root, 'catalogue'), { recursive: true });
  cpSync(join(repoRoot, 'overlays'), join(root, 'overlays'), { recursive: true });
  const path = (rel: string): string => join(root, rel);
  return {
    root,
    catalogue: join(root, 'catalogue'),
    path,
    edit(rel, fn) {
      const p = path(rel);
      const before = readFileSync(p, 'utf8');
      const after = fn(before);
      if (after === before) throw new Error(`edit of ${rel} changed nothing`);
      writeFileSync(p, after);
    },
    write(rel, text) {
      writeFileSync(path(rel), text);
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The diagnostics planFleet rejects a catalogue copy with (fails the test if it is accepted). */
export async function errorsOf(c: CatalogueCopy): Promise<Diagnostic[]> {
  try {
    await planFleet(c.catalogue);
  } catch (err) {
    if (err instanceof CatalogueError) return err.diagnostics;
    throw err;
  }
  throw new Error('expected the catalogue to be rejected');
}
