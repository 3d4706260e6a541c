// What a build may touch in OUT. A build replaces OUT/<site> only when that directory is
// edgeimg output for that very site (its manifest says so); anything else in the way is an
// error that names the path and changes nothing. OUT may not overlap the secrets or the
// catalogue, and one build at a time holds OUT (a lock file), so concurrent builds of the same
// output queue instead of racing their swaps.

import { lstatSync, readFileSync, realpathSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { EnvironmentError, UsageError } from '../util/diagnostics.js';

/** Something in OUT that edgeimg did not write is in the way: exit 1, nothing changed. */
export class OutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputError';
  }
}

export const LOCK_NAME = '.edgeimg.lock';
const MANIFEST = 'manifest.json';

/** A path with symlinks resolved as far as it exists (the rest appended as written). */
function realish(p: string): string {
  const abs = resolve(p);
  let head = abs;
  const tail: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...tail.reverse());
    } catch {
      const parent = dirname(head);
      if (parent === head) return abs;
      tail.push(head.slice(parent.length).replace(/^[\\/]/, ''));
      head = parent;
    }
  }
}

function within(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** --out must not equal, contain or sit inside --secrets or --catalogue. */
export function checkOutPlacement(outDir: string, others: Array<{ flag: string; dir: string }>): void {
  const out = realish(outDir);
  for (const { flag, dir } of others) {
    const o = realish(dir);
    if (out === o) throw new UsageError(`--out ${outDir} is the same directory as ${flag} ${dir}; builds replace what is in --out`);
    if (within(o, out)) throw new UsageError(`--out ${outDir} contains ${flag} ${dir}; builds replace what is in --out, so keep them apart`);
    if (within(out, o)) throw new UsageError(`--out ${outDir} is inside ${flag} ${dir}; keep build output apart from it`);
  }
}

/**
 * Every OUT/<site> a build would replace must be absent or edgeimg output for that site.
 * Returns the problems (empty: all clear); never touches anything.
 */
export function foreignOutput(outDir: string, siteIds: string[]): string[] {
  const out = resolve(outDir);
  const problems: string[] = [];
  for (const id of siteIds) {
    const dir = join(out, id);
    if (dirname(dir) !== out || id.includes(sep) || id === '.' || id === '..') {
      problems.push(`site id "${id}" does not name a directory directly inside ${outDir}`);
      continue;
    }
    let st;
    try {
      st = lstatSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (st.isSymbolicLink()) {
      problems.push(`${dir} is a symbolic link, not edgeimg output; remove or move it to build site ${id} there`);
      continue;
    }
    if (!st.isDirectory()) {
      problems.push(`${dir} is not a directory written by edgeimg; remove or move it to build site ${id} there`);
      continue;
    }
    let m: { generator?: { name?: unknown }; site?: unknown } | undefined;
    try {
      const mst = lstatSync(join(dir, MANIFEST));
      if (mst.isFile() && mst.size <= 64 * 1024 * 1024) m = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as typeof m;
    } catch {
      m = undefined;
    }
    if (m?.generator?.name !== 'edgeimg') {
      problems.push(`${dir} exists and is not edgeimg output (no edgeimg ${MANIFEST}); edgeimg never replaces what it did not write: remove or move it, or choose another --out`);
    } else if (m.site !== id) {
      problems.push(`${dir} holds edgeimg output for site ${JSON.stringify(m.site)}, not ${id}; remove or move it`);
    }
  }
  return problems;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface OutLock {
  release(): void;
}

/**
 * Take OUT/.edgeimg.lock (exclusive create, holding "pid host"). A lock whose process is gone
 * (same host) is stale and taken over; a live one is waited for, up to `waitMs`.
 */
export async function lockOut(outDir: string, log: (line: string) => void, waitMs = 10 * 60_000): Promise<OutLock> {
  await mkdir(outDir, { recursive: true });
  const file = join(outDir, LOCK_NAME);
  const mine = `${process.pid} ${hostname()}\n`;
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    try {
      writeFileSync(file, mine, { flag: 'wx', mode: 0o644 });
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        process.off('exit', release);
        try {
          if (readFileSync(file, 'utf8') === mine) unlinkSync(file);
        } catch {
          // already gone
        }
      };
      process.on('exit', release);
      return { release };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = '';
    try {
      holder = readFileSync(file, 'utf8');
    } catch {
      continue; // released between our attempt and the read
    }
    const [pidText, host] = holder.trim().split(' ');
    const pid = Number(pidText);
    if (host === hostname() && Number.isInteger(pid) && pid > 0 && !alive(pid)) {
      try {
        if (readFileSync(file, 'utf8') === holder) unlinkSync(file); // stale: its build is gone
      } catch {
        // someone else took it over first
      }
      continue;
    }
    if (Date.now() >= deadline) {
      throw new EnvironmentError(`another build (${holder.trim() || 'unknown'}) still holds ${file} after ${Math.round(waitMs / 1000)} s; if no build is running, remove that file`);
    }
    if (!told) {
      log(`another build (pid ${pidText}${host && host !== hostname() ? ` on ${host}` : ''}) holds ${outDir}; waiting`);
      told = true;
    }
    await sleep(100);
  }
}

/**
 * Replace `final` (OUT/<site>) with the staged directory: the old tree is renamed aside, the new
 * one renamed in, the old removed. `beforeSwap(old)` runs between the two renames (build moves
 * the previous verify logs into the new tree there). If the second rename fails, the old tree
 * is put back. A crash in between leaves `<site>.edgeimg-old-*`, which the next build restores.
 */
export async function swapDir(staged: string, final: string, beforeSwap?: (old: string) => Promise<void>): Promise<void> {
  const old = `${final}.edgeimg-old-${randomBytes(4).toString('hex')}`;
  let hadOld = true;
  try {
    await rename(final, old);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    hadOld = false;
  }
  try {
    if (hadOld && beforeSwap) await beforeSwap(old);
    await rename(staged, final);
  } catch (err) {
    if (hadOld) await rename(old, final).catch(() => {});
    throw err;
  }
  if (hadOld) await rm(old, { recursive: true, force: true });
}
