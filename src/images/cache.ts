// The boot image cache: one directory shared by every site, holding each asset once at the path
// its upstream URL has (talos/<version>/<schematic>/<name>, kairos/<version>/<name>; see
// ./assets.ts). A file enters only through storeAsset(): written to a temporary name beside its
// destination while its sha256 is computed, checked against images.lock, then renamed into
// place, so a reader never sees a partial or refused file. Whoever uses a cached file later goes
// through assetState()/requireVerifiedAsset(), which hash it again and refuse a mismatch.

import { createHash, randomBytes } from 'node:crypto';
import { constants, mkdirSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { EnvironmentError, VerifyError } from '../util/diagnostics.js';
import { fileTypeOf } from '../util/safe-read.js';
import type { ImagesLock, Pin } from './lock.js';

/** Relative to the working directory, like --catalogue and --out. */
export const DEFAULT_CACHE_DIR = join('images', 'cache', 'boot');
export const CACHE_ENV = 'EDGEIMG_IMAGE_CACHE';
const TMP_PREFIX = '.edgeimg-tmp-';

/** --cache, else $EDGEIMG_IMAGE_CACHE, else ./images/cache/boot; absolute. */
export function resolveCacheDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag || env[CACHE_ENV] || DEFAULT_CACHE_DIR);
}

export interface Digest {
  sha256: string;
  size: number;
}

export type AssetStatus = 'ok' | 'mismatch' | 'cached-unpinned' | 'missing' | 'not-pinned';

export interface AssetState {
  status: AssetStatus;
  /** Absolute path of the asset in the cache. */
  file: string;
  pin?: Pin;
  /** What the cached file hashes to (when it is a readable regular file). */
  actual?: Digest;
  /** Why a cached entry is refused although no digest could be compared (a symlink, a directory). */
  problem?: string;
}

const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/**
 * sha256 and size of a regular file, streamed. A symlink (never followed), a directory or a
 * device is a problem, not a digest; ENOENT is reported as `missing`.
 */
export async function hashFile(path: string): Promise<Digest | { problem: string; code?: string }> {
  let fh;
  try {
    fh = await open(path, READ_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { problem: 'not found', code };
    if (code === 'ELOOP' || code === 'EMLINK') return { problem: 'is a symbolic link; symlinks in the image cache are not followed', code };
    if (code === 'EISDIR') return { problem: 'is a directory, not a file', code };
    return { problem: `cannot be opened (${code ?? (err as Error).message})`, code };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { problem: `is ${fileTypeOf(st)}, not a regular file` };
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { sha256: hash.digest('hex'), size };
  } catch (err) {
    return { problem: `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  } finally {
    await fh.close();
  }
}

export function cachedFile(cacheDir: string, assetPath: string): string {
  return join(cacheDir, ...assetPath.split('/'));
}

/** How `d` differs from `pin`, as a sentence part, or undefined when it matches. */
export function pinMismatch(pin: Pin, d: Digest): string | undefined {
  if (pin.sha256 === d.sha256 && pin.size === d.size) return undefined;
  return `expected sha256 ${pin.sha256} (${pin.size} bytes), got ${d.sha256} (${d.size} bytes)`;
}

/** Whether the asset is cached and whether it matches its pin (hashes the cached file). */
export async function assetState(cacheDir: string, assetPath: string, pin: Pin | undefined): Promise<AssetState> {
  const file = cachedFile(cacheDir, assetPath);
  const h = await hashFile(file);
  const pinned = pin ? { pin } : {};
  if ('problem' in h) {
    if (h.code === 'ENOENT' || h.code === 'ENOTDIR') return { status: pin ? 'missing' : 'not-pinned', file, ...pinned };
    return { status: 'mismatch', file, ...pinned, problem: h.problem };
  }
  if (!pin) return { status: 'cached-unpinned', file, actual: h };
  return { status: pinMismatch(pin, h) === undefined ? 'ok' : 'mismatch', file, pin, actual: h };
}

/**
 * The cached file of an asset, hashed and matched against its pin now: for anything that uses a
 * cached boot image (class sticks, netboot). A mismatch or an unpinned file is refused (exit 1),
 * a missing one is an environment problem (exit 3) that says how to fill the cache.
 */
export async function requireVerifiedAsset(cacheDir: string, lock: ImagesLock, assetPath: string): Promise<{ file: string; digest: Digest }> {
  const s = await assetState(cacheDir, assetPath, lock.pins.get(assetPath));
  switch (s.status) {
    case 'ok':
      return { file: s.file, digest: s.actual! };
    case 'mismatch':
      throw new VerifyError(
        `${s.file}: refused: ${s.problem ?? `does not match its pin in ${lock.path}: ${pinMismatch(s.pin!, s.actual!)}`}`,
      );
    case 'cached-unpinned':
      throw new VerifyError(`${s.file}: refused: not pinned in ${lock.path} (import or pull it to pin it: edgeimg images import/pull)`);
    default:
      throw new EnvironmentError(`${s.file}: boot image asset not in the cache (fill it with edgeimg images pull, or edgeimg images import offline)`);
  }
}

export type StoreCheck = (actual: Digest) => string | undefined;

export type StoreResult = { stored: true; file: string; digest: Digest } | { stored: false; file: string; digest: Digest; refused: string };

function cacheWriteError(path: string, err: unknown): EnvironmentError {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new EnvironmentError(`cannot write to the image cache: ${path} (${code})`);
}

/** Thrown by a StoreOptions.maxBytes overrun; the temporary file is gone. */
export class TooLargeError extends Error {}

export interface StoreOptions {
  /** Stop (TooLargeError) as soon as more than this many bytes arrived. */
  maxBytes?: number;
}

/**
 * Write `chunks` to the asset's place in the cache: to a temporary file beside it first, hashing
 * as it goes; `check` then decides (undefined: accept). A refused or failed write leaves nothing
 * behind. Errors of the source (a download) propagate unchanged after the cleanup.
 */
export async function storeAsset(
  cacheDir: string,
  assetPath: string,
  chunks: AsyncIterable<Uint8Array>,
  check: StoreCheck,
  opts: StoreOptions = {},
): Promise<StoreResult> {
  const file = cachedFile(cacheDir, assetPath);
  const dir = dirname(file);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw cacheWriteError(dir, err);
  }
  const tmp = join(dir, `${TMP_PREFIX}${randomBytes(6).toString('hex')}-${basename(file)}`);
  let fh;
  try {
    fh = await open(tmp, 'wx', 0o644);
  } catch (err) {
    throw cacheWriteError(tmp, err);
  }
  const hash = createHash('sha256');
  let size = 0;
  let done = false;
  try {
    for await (const chunk of chunks) {
      size += chunk.byteLength;
      if (opts.maxBytes !== undefined && size > opts.maxBytes) throw new TooLargeError(`more than ${opts.maxBytes} bytes`);
      hash.update(chunk);
      try {
        await fh.write(chunk);
      } catch (err) {
        throw cacheWriteError(tmp, err);
      }
    }
    try {
      await fh.sync();
      await fh.close();
      fh = undefined;
    } catch (err) {
      throw cacheWriteError(tmp, err);
    }
    const digest = { sha256: hash.digest('hex'), size };
    const refused = check(digest);
    if (refused !== undefined) return { stored: false, file, digest, refused };
    try {
      await rename(tmp, file);
    } catch (err) {
      throw cacheWriteError(file, err);
    }
    done = true;
    return { stored: true, file, digest };
  } finally {
    if (fh) await fh.close().catch(() => {});
    if (!done) await rm(tmp, { force: true }).catch(() => {});
  }
}

/** A local file's bytes, for storeAsset(): a regular file (symlinks on the command line are followed). */
export async function* readFileChunks(path: string): AsyncIterable<Uint8Array> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new EnvironmentError(`${path}: ${code === 'ENOENT' ? 'not found' : `cannot be opened (${code ?? (err as Error).message})`}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new EnvironmentError(`${path}: is ${fileTypeOf(st)}, not a regular file`);
    for (;;) {
      const buf = Buffer.allocUnsafe(1 << 20); // a fresh buffer per chunk: the consumer may keep it
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, 0, buf.length, null));
      } catch (err) {
        throw new EnvironmentError(`${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      if (n === 0) break;
      yield buf.subarray(0, n);
    }
  } finally {
    await fh.close();
  }
}
