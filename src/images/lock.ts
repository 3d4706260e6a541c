// images.lock: the sha256 (and size) of every boot image asset the fleet has accepted, kept in
// the catalogue directory and committed with it. Image Factory publishes no checksums outside
// its Enterprise edition (siderolabs/image-factory docs/api.md, "Checksums": `.sha256` answers
// 402 Payment Required), so the digest we pin on first download or import is the only record of
// which bytes the fleet trusts.
//
// Format (JSON, written deterministically: keys sorted by code point, two-space indent, final
// newline, so a pin change is a one-line diff):
//
//   {
//     "$comment": "...",
//     "lockVersion": 1,
//     "assets": {
//       "talos/v1.13.9/<schematic id>/nocloud-amd64.iso": { "sha256": "<64 hex>", "size": 123 },
//       ...
//     }
//   }
//
// Asset keys are the asset's path inside the image cache (see ./assets.ts), so a pin names the
// upstream file unambiguously and two hardware classes sharing a schematic share one pin.

import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CatalogueError, EnvironmentError, excerpt } from '../util/diagnostics.js';
import { readRegularFileSync } from '../util/safe-read.js';

export const LOCK_FILE = 'images.lock';
export const LOCK_VERSION = 1;
const MAX_LOCK_BYTES = 4 * 1024 * 1024;
const COMMENT = 'sha256 pins of boot image assets, keyed by their path in the image cache; written by `edgeimg images import` and `edgeimg images pull`; see docs/images.md';

export interface Pin {
  sha256: string; // lower-case hex
  size: number; // bytes
}

export interface ImagesLock {
  /** Absolute path of images.lock (it may not exist yet). */
  path: string;
  pins: Map<string, Pin>;
}

const HEX64 = /^[0-9a-f]{64}$/;
// One path segment of an asset path: what versions, schematic IDs and upstream file names use.
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/** Why `p` cannot be an asset path (relative, '/'-separated, no '.' or '..' segments), or undefined. */
export function assetPathProblem(p: string): string | undefined {
  if (p.length === 0 || p.length > 512) return 'must be 1 to 512 characters';
  const segments = p.split('/');
  if (segments.length < 2) return 'must have a directory (talos/… or kairos/…)';
  if (segments[0] !== 'talos' && segments[0] !== 'kairos') return 'must start with talos/ or kairos/';
  for (const s of segments) {
    if (!SEGMENT.test(s) || s === '.' || s === '..') return `has an invalid segment ${excerpt(s)} (letters, digits, . _ + - only, not starting with . _ + -)`;
  }
  return undefined;
}

export function lockPath(catalogueDir: string): string {
  return join(resolve(catalogueDir), LOCK_FILE);
}

/** Line and column of a character offset, 1-based. */
function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, col: offset - lineStart + 1 };
}

/** Where `"key"` appears in the text, for a diagnostic; line 1 when not found. */
function keyPos(text: string, key: string): { line: number; col: number } {
  const at = text.indexOf(JSON.stringify(key));
  return at < 0 ? { line: 1, col: 1 } : lineCol(text, at);
}

/** Parse images.lock text; every problem is a diagnostic at FILE:LINE:COL. */
export function parseLock(text: string, file: string): Map<string, Pin> {
  const fail = (message: string, pos = { line: 1, col: 1 }): never => {
    throw new CatalogueError([{ file, ...pos, message }]);
  };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    // V8: "Unexpected token } in JSON at position 42" or "... (line 3 column 5)"
    const m = /position (\d+)/.exec((err as Error).message);
    fail(`${file.endsWith(LOCK_FILE) ? LOCK_FILE : 'lock file'} is not valid JSON`, m ? lineCol(text, Number(m[1])) : undefined);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return fail('images.lock must be a JSON object');
  const obj = doc as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!['$comment', 'lockVersion', 'assets'].includes(k)) fail(`unknown key ${excerpt(k)} (known: $comment, lockVersion, assets)`, keyPos(text, k));
  }
  if (obj.lockVersion !== LOCK_VERSION) fail(`lockVersion must be ${LOCK_VERSION}, got ${excerpt(obj.lockVersion)}`, keyPos(text, 'lockVersion'));
  const assets = obj.assets ?? {};
  if (typeof assets !== 'object' || assets === null || Array.isArray(assets)) return fail('assets must be an object', keyPos(text, 'assets'));
  const pins = new Map<string, Pin>();
  for (const [key, value] of Object.entries(assets as Record<string, unknown>)) {
    const bad = assetPathProblem(key);
    if (bad) fail(`asset path ${excerpt(key)} ${bad}`, keyPos(text, key));
    const v = value as Record<string, unknown> | null;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`asset ${excerpt(key)} must be an object with sha256 and size`, keyPos(text, key));
    for (const k of Object.keys(v!)) {
      if (k !== 'sha256' && k !== 'size') fail(`asset ${excerpt(key)} has an unknown key ${excerpt(k)} (known: sha256, size)`, keyPos(text, key));
    }
    if (typeof v!.sha256 !== 'string' || !HEX64.test(v!.sha256)) fail(`asset ${excerpt(key)}: sha256 must be 64 lower-case hex digits`, keyPos(text, key));
    if (typeof v!.size !== 'number' || !Number.isSafeInteger(v!.size) || v!.size < 0) fail(`asset ${excerpt(key)}: size must be a whole number of bytes`, keyPos(text, key));
    pins.set(key, { sha256: v!.sha256 as string, size: v!.size as number });
  }
  return pins;
}

/** images.lock of a catalogue; an absent file is an empty lock. */
export function readLock(catalogueDir: string): ImagesLock {
  return readLockAt(lockPath(catalogueDir));
}

/** A lock file at `path` (images.lock, or the image cache's standin.lock); absent: empty. */
export function readLockAt(path: string): ImagesLock {
  const r = readRegularFileSync(path, MAX_LOCK_BYTES, basename(path));
  if ('problem' in r) {
    if (r.code === 'ENOENT') return { path, pins: new Map() };
    throw new EnvironmentError(`${path} ${r.problem}`);
  }
  return { path, pins: parseLock(r.data.toString('utf8'), path) };
}

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The lock's text: the same pins always give the same bytes. */
export function serializeLock(pins: ReadonlyMap<string, Pin>, comment = COMMENT): string {
  const assets: Record<string, Pin> = {};
  for (const key of [...pins.keys()].sort(byCodePoint)) {
    const p = pins.get(key)!;
    assets[key] = { sha256: p.sha256, size: p.size };
  }
  return `${JSON.stringify({ $comment: comment, lockVersion: LOCK_VERSION, assets }, null, 2)}\n`;
}

/**
 * Add or replace pins in the catalogue's images.lock. The file is re-read just before writing
 * (another import may have pinned something meanwhile) and replaced atomically (temp + rename).
 */
export function writePins(catalogueDir: string, changes: ReadonlyMap<string, Pin>): ImagesLock {
  return writePinsAt(lockPath(catalogueDir), changes);
}

/** writePins() for a lock file at `path`, with its own `$comment`. */
export function writePinsAt(path: string, changes: ReadonlyMap<string, Pin>, comment = COMMENT): ImagesLock {
  const current = readLockAt(path);
  for (const [key, pin] of changes) {
    const bad = assetPathProblem(key);
    if (bad) throw new Error(`asset path ${key} ${bad}`);
    current.pins.set(key, pin);
  }
  const tmp = join(dirname(current.path), `.edgeimg-tmp-${randomBytes(6).toString('hex')}-${basename(current.path)}`);
  try {
    mkdirSync(dirname(current.path), { recursive: true });
    writeFileSync(tmp, serializeLock(current.pins, comment), { flag: 'wx', mode: 0o644 });
    renameSync(tmp, current.path);
  } catch (err) {
    rmSync(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new EnvironmentError(`cannot write ${current.path} (${code}): the pins were not recorded`);
  }
  return current;
}
