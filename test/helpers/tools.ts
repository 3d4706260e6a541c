// Host-tool gate for tests that shell out to independent readers (isoinfo, xorriso,
// bsdtar, blkid, mtools, fsck.fat, ...).
//
//   const hasXorriso = requireTool('xorriso');
//   it.skipIf(!hasXorriso)('...', ...)
//
// Missing tool + CI set  -> throws (the test file fails: CI must have its tools).
// Missing tool, no CI    -> loud console.warn naming the tool, returns false (skip).

import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

// sbin directories hold blkid, fsck.fat, mkfs.vfat but are not on every user's PATH.
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];
const found = new Map<string, string | undefined>();
const warned = new Set<string>();

/** Absolute path of an executable on PATH (or an sbin directory), if any. */
export function toolPath(name: string): string | undefined {
  if (found.has(name)) return found.get(name);
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  let hit: string | undefined;
  for (const dir of dirs) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) {
        hit = p;
        break;
      }
    } catch {
      // not here
    }
  }
  found.set(name, hit);
  return hit;
}

/** True when `name` is available. See the header for the CI / local behaviour. */
export function requireTool(name: string): boolean {
  if (toolPath(name) !== undefined) return true;
  if (process.env['CI']) {
    throw new Error(`required host tool '${name}' is not installed (CI is set, so this is a failure, not a skip)`);
  }
  if (!warned.has(name)) {
    warned.add(name);
    console.warn(`\n!!! host tool '${name}' not found: SKIPPING the tests that need it (set CI=1 to make this fail) !!!\n`);
  }
  return false;
}

/** requireTool for several tools at once; true only when all are present (warns for each missing one). */
export function requireTools(...names: string[]): boolean {
  let ok = true;
  for (const n of names) ok = requireTool(n) && ok;
  return ok;
}
