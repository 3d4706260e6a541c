// Writing mostly-zero images as sparse files. The FAT32 seed is 33 MiB of which a few KiB
// are not zero: the file gets its full logical size from ftruncate and only the non-zero
// blocks are written, so on filesystems with holes (ext4, xfs, btrfs, tmpfs, APFS, ZFS) a seed
// takes tens of KiB on disk and little write bandwidth. Readers see every byte, zeros
// included: hashes and copies are of the full logical image. Where the filesystem has no
// holes, the result is the same bytes written the slow way.

import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';

/** Granularity of holes: the usual filesystem block size. */
export const SPARSE_BLOCK = 4096;
const CHUNK = 16 * SPARSE_BLOCK;
const ZERO = Buffer.alloc(CHUNK);

function isZero(buf: Buffer, start: number, end: number): boolean {
  for (let p = start; p < end; p += CHUNK) {
    const e = Math.min(end, p + CHUNK);
    if (buf.compare(ZERO, 0, e - p, p, e) !== 0) return false;
  }
  return true;
}

/**
 * The parts of `data` that are not all zeros, as [start, end) byte ranges aligned to
 * `block` (the last one may end at data.length), in order, adjacent blocks merged.
 */
export function nonZeroExtents(data: Uint8Array, block: number = SPARSE_BLOCK): Array<[number, number]> {
  if (!Number.isSafeInteger(block) || block <= 0) throw new RangeError(`nonZeroExtents: bad block size ${String(block)}`);
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: Array<[number, number]> = [];
  const step = Math.max(block, Math.floor(CHUNK / block) * block); // skip long zero runs quickly
  for (let s = 0; s < buf.length; s += step) {
    const se = Math.min(buf.length, s + step);
    if (isZero(buf, s, se)) continue;
    for (let b = s; b < se; b += block) {
      const be = Math.min(se, b + block);
      if (isZero(buf, b, be)) continue;
      const last = out[out.length - 1];
      if (last !== undefined && last[1] === b) last[1] = be;
      else out.push([b, be]);
    }
  }
  return out;
}

export interface SparseWriteOptions {
  /** File mode for a newly created file (default 0o666, less the umask). */
  mode?: number;
  /** Open flag: 'w' (default) or 'wx' (fail if the file exists). */
  flag?: 'w' | 'wx';
}

/**
 * Write `data` to `path` as a sparse file: set the size, then write only the non-zero
 * blocks. The file's contents are exactly `data`.
 */
export function writeSparseFileSync(path: string, data: Uint8Array, opts: SparseWriteOptions = {}): void {
  const flag = opts.flag ?? 'w';
  if (flag !== 'w' && flag !== 'wx') throw new Error(`writeSparseFileSync: unsupported flag ${JSON.stringify(flag)}`);
  const fd = openSync(path, flag, opts.mode ?? 0o666);
  try {
    ftruncateSync(fd, 0); // 'w' truncates already; make sure no old bytes survive in the holes
    ftruncateSync(fd, data.length);
    for (const [start, end] of nonZeroExtents(data)) {
      let off = start;
      while (off < end) off += writeSync(fd, data, off, end - off, off);
    }
  } finally {
    closeSync(fd);
  }
}
