// A look at an ISO9660 image (or a stick holding one) without reading all of it: the primary
// volume descriptor and the root directory, with positioned reads. Class boot images are
// hundreds of MiB to GiB; `inspect`, `verify` and the stand-in check need only their label,
// declared size and a small file at the root. The full in-memory reader (./reader.ts) is for
// seeds. ECMA-119 §8.4 (primary volume descriptor), §9.1 (directory record).

import { closeSync, openSync, readSync, constants } from 'node:fs';

export interface IsoPeek {
  volumeId: string;
  /** Bytes the volume says it spans: volume space size × logical block size. */
  declaredBytes: number;
  blockSize: number;
  /** Root directory entries (files only), keyed by the name without ";1", upper case. */
  rootFiles: Map<string, { lba: number; size: number }>;
}

const MAX_ROOT_DIR = 1 << 20;

function readAt(fd: number, pos: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/**
 * Normalised ISO9660 name for lookups: upper case, ";1" and a trailing dot dropped, and anything
 * outside d-characters as "_" (how mkisofs/xorriso map a name like EDGEIMG-STANDIN.json).
 */
export function isoLookupName(name: string): string {
  return name.toUpperCase().replace(/;\d+$/, '').replace(/\.$/, '').replace(/[^A-Z0-9_.]/g, '_');
}

/** The name in a record's Rock Ridge NM entries (SUSP: sig, len, version, then data). */
function rockRidgeName(su: Buffer): string | undefined {
  let name: string | undefined;
  let p = 0;
  while (p + 4 <= su.length) {
    const sig = su.toString('latin1', p, p + 2);
    const len = su[p + 2]!;
    if (len < 4 || p + len > su.length) break;
    if (sig === 'NM' && len >= 5) name = (name ?? '') + su.toString('latin1', p + 5, p + len);
    p += len;
  }
  return name;
}

function peekFd(fd: number): IsoPeek | null {
  const pvd = readAt(fd, 16 * 2048, 2048);
  if (pvd.length < 2048 || pvd[0] !== 1 || pvd.toString('latin1', 1, 6) !== 'CD001') return null;
  const blockSize = pvd.readUInt16LE(128);
  if (![512, 1024, 2048].includes(blockSize)) return null;
  const volumeId = pvd.toString('latin1', 40, 72).replace(/[ \0]+$/, '');
  const declaredBytes = pvd.readUInt32LE(80) * blockSize;
  const root = pvd.subarray(156, 156 + 34);
  const rootLba = root.readUInt32LE(2);
  const rootSize = Math.min(root.readUInt32LE(10), MAX_ROOT_DIR);
  const dir = readAt(fd, rootLba * blockSize, rootSize);
  const rootFiles = new Map<string, { lba: number; size: number }>();
  let off = 0;
  while (off < dir.length) {
    const len = dir[off]!;
    if (len === 0) {
      // records do not cross sector boundaries: skip to the next sector
      off = (Math.floor(off / 2048) + 1) * 2048;
      continue;
    }
    if (off + 33 > dir.length || len < 34) break;
    const flags = dir[off + 25]!;
    const nameLen = dir[off + 32]!;
    const raw = dir.subarray(off + 33, off + 33 + nameLen);
    if ((flags & 0x02) === 0 && !(nameLen === 1 && raw[0]! <= 1)) {
      // the Rock Ridge name (IEEE P1282 NM entries in the system use area) when there is one:
      // plain ISO9660 names may be shortened to 8.3
      const su = dir.subarray(off + 33 + nameLen + (nameLen % 2 === 0 ? 1 : 0), off + len);
      const name = rockRidgeName(su) ?? raw.toString('latin1');
      rootFiles.set(isoLookupName(name), { lba: dir.readUInt32LE(off + 2), size: dir.readUInt32LE(off + 10) });
    }
    off += len;
  }
  return { volumeId, declaredBytes, blockSize, rootFiles };
}

/** The PVD and root directory of an ISO image or device, or null when it holds no ISO9660. */
export function peekIso(path: string): IsoPeek | null {
  const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    return peekFd(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A small file at the root of an ISO image (ISO9660 name, matched as isoLookupName does), or
 * undefined when absent or larger than `maxBytes`.
 */
export function readIsoRootFile(path: string, name: string, maxBytes = 64 * 1024): Buffer | undefined {
  const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const p = peekFd(fd);
    const e = p?.rootFiles.get(isoLookupName(name));
    if (!p || !e || e.size > maxBytes) return undefined;
    const data = readAt(fd, e.lba * p.blockSize, e.size);
    return data.length === e.size ? data : undefined;
  } finally {
    closeSync(fd);
  }
}
