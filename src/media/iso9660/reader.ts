// Defensive ISO9660 reader used by the verifier and the tests. Reads the root directory
// (and any subdirectories) of an in-memory image and returns names and contents.
// Name preference: Rock Ridge NM (primary tree) > Joliet > ISO identifier without ";1".
// Every offset is bounds-checked; loops are bounded, so garbage input throws, never hangs.

import { u16be, u16le, u32le } from '../common.js';
import { excerpt } from '../../util/diagnostics.js';

export interface IsoReadResult {
  volumeId: string;
  jolietVolumeId?: string;
  files: Array<{ name: string; data: Uint8Array }>;
}

export class IsoFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IsoFormatError';
  }
}

const SYSTEM_AREA = 16 * 2048;
const MAX_DESCRIPTORS = 64;
const MAX_DEPTH = 8;
const MAX_CE_HOPS = 32;
const MAX_ENTRIES = 100_000;

function truncated(what: string): never {
  throw new IsoFormatError(`truncated ISO: ${what}`);
}

function invalid(what: string): never {
  throw new IsoFormatError(`invalid ISO: ${what}`);
}

function asciiAt(b: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(b[off + i] ?? 0);
  return s;
}

function ucs2At(b: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let i = 0; i + 1 < len; i += 2) s += String.fromCharCode(u16be(b, off + i));
  return s;
}

function trimId(s: string): string {
  return s.replace(/[\u0000 ]+$/u, '');
}

interface Volume {
  blockSize: number;
  rootExtent: number;
  rootSize: number;
}

interface Entry {
  name: string;
  isDir: boolean;
  extent: number;
  size: number;
  multiExtent: boolean;
  rrName?: string;
}

function readRoot(b: Uint8Array, vd: number): Volume {
  const blockSize = u16le(b, vd + 128);
  if (blockSize !== 512 && blockSize !== 1024 && blockSize !== 2048) invalid(`logical block size ${blockSize}`);
  const root = vd + 156;
  if ((b[root] ?? 0) < 34) invalid('root directory record too short');
  return { blockSize, rootExtent: u32le(b, root + 2), rootSize: u32le(b, root + 10) };
}

/** Parse SUSP entries of one record, following CE continuation areas. */
function suspEntries(
  b: Uint8Array,
  blockSize: number,
  su: Uint8Array,
  visit: (sig: string, entry: Uint8Array) => void,
): void {
  let area: Uint8Array | null = su;
  for (let hops = 0; area !== null; hops++) {
    if (hops > MAX_CE_HOPS) invalid('too many SUSP continuation areas');
    let next: Uint8Array | null = null;
    let p = 0;
    while (p + 4 <= area.length) {
      const sig = String.fromCharCode(area[p] ?? 0, area[p + 1] ?? 0);
      const len = area[p + 2] ?? 0;
      if (len < 4 || p + len > area.length) break; // padding or damaged tail: stop quietly
      const entry = area.subarray(p, p + len);
      if (sig === 'ST') break;
      if (sig === 'CE' && len >= 28) {
        const lba = u32le(entry, 4);
        const off = u32le(entry, 12);
        const clen = u32le(entry, 20);
        if (clen > blockSize || off >= blockSize) invalid(`SUSP continuation area of ${clen} bytes at offset ${off}`);
        const start = lba * blockSize + off;
        if (clen > 0 && start + clen > b.length) truncated(`SUSP continuation area at block ${lba} beyond end of image`);
        next = b.subarray(start, start + clen);
      } else {
        visit(sig, entry);
      }
      p += len;
    }
    area = next;
  }
}

function readDirectory(
  b: Uint8Array,
  vol: Volume,
  extent: number,
  size: number,
  joliet: boolean,
  rockSkip: number | null,
): Entry[] {
  const start = extent * vol.blockSize;
  if (start + size > b.length) truncated(`directory at block ${extent} (${size} bytes) beyond end of image (${b.length} bytes)`);
  const dir = b.subarray(start, start + size);
  const out: Entry[] = [];
  let p = 0;
  while (p < dir.length) {
    const len = dir[p] ?? 0;
    if (len === 0) {
      // records never straddle a sector; zero means "skip to the next sector"
      p = (Math.floor(p / 2048) + 1) * 2048;
      continue;
    }
    if (len < 34 || p + len > dir.length) invalid(`directory record of length ${len} at block ${extent} offset ${p}`);
    const rec = dir.subarray(p, p + len);
    p += len;
    const idLen = rec[32] ?? 0;
    if (33 + idLen > len) invalid(`file identifier overruns its directory record at block ${extent}`);
    const id = rec.subarray(33, 33 + idLen);
    if (idLen === 1 && ((id[0] ?? 0) === 0 || (id[0] ?? 0) === 1)) continue; // '.' and '..'
    const flags = rec[25] ?? 0;
    let name = joliet ? ucs2At(id, 0, idLen) : asciiAt(id, 0, idLen);
    name = name.replace(/;\d*$/, '');
    if (!joliet || !(flags & 0x02)) name = name.replace(/\.$/, '');
    const entry: Entry = {
      name,
      isDir: (flags & 0x02) !== 0,
      extent: u32le(rec, 2),
      size: u32le(rec, 10),
      multiExtent: (flags & 0x80) !== 0,
    };
    if (rockSkip !== null) {
      const suStart = 33 + idLen + (idLen % 2 === 0 ? 1 : 0) + rockSkip;
      if (suStart < len) {
        let nm = '';
        let haveNm = false;
        suspEntries(b, vol.blockSize, rec.subarray(suStart), (sig, e) => {
          if (sig === 'NM' && e.length >= 5) {
            const nmFlags = e[4] ?? 0;
            if (nmFlags & 0x06) return; // CURRENT / PARENT
            nm += Buffer.from(e.subarray(5)).toString('utf8');
            haveNm = true;
          }
        });
        if (haveNm) entry.rrName = nm;
      }
    }
    out.push(entry);
    if (out.length > MAX_ENTRIES) invalid('too many directory entries');
  }
  return out;
}

/** Detect Rock Ridge: SP entry at the start of the root '.' record's system use field. */
function rockRidgeSkip(b: Uint8Array, vol: Volume): number | null {
  const start = vol.rootExtent * vol.blockSize;
  if (start + 34 > b.length) truncated(`root directory at block ${vol.rootExtent} beyond end of image`);
  const len = b[start] ?? 0;
  if (len < 34 || start + len > b.length) invalid('root directory "." record');
  const idLen = b[start + 32] ?? 0;
  const su = start + 33 + idLen + (idLen % 2 === 0 ? 1 : 0);
  if (su + 7 > start + len) return null;
  if (b[su] === 0x53 && b[su + 1] === 0x50 && b[su + 4] === 0xbe && b[su + 5] === 0xef) return b[su + 6] ?? 0;
  return null;
}

function collect(
  b: Uint8Array,
  vol: Volume,
  joliet: boolean,
  rockSkip: number | null,
): Array<{ name: string; data: Uint8Array }> {
  const files: Array<{ name: string; data: Uint8Array }> = [];
  const visited = new Set<number>();
  // Extents may be shared (empty files, hard links); bound the copies a hostile image can
  // make us allocate.
  let budget = 4 * b.length + 1024 * 1024;
  const walk = (extent: number, size: number, prefix: string, depth: number): void => {
    if (depth > MAX_DEPTH) invalid('directories nested too deeply');
    if (visited.has(extent)) invalid(`directory loop at block ${extent}`);
    visited.add(extent);
    const entries = readDirectory(b, vol, extent, size, joliet, rockSkip);
    let pending: Uint8Array[] = [];
    for (const e of entries) {
      const name = e.rrName ?? e.name;
      if (name.length === 0 || name.includes('/') || name === '.' || name === '..') invalid(`bad file name ${excerpt(name)}`);
      if (e.isDir) {
        walk(e.extent, e.size, `${prefix}${name}/`, depth + 1);
        continue;
      }
      const start = e.extent * vol.blockSize;
      if (e.size > 0 && start + e.size > b.length) {
        truncated(`file ${excerpt(prefix + name)} (block ${e.extent}, ${e.size} bytes) extends beyond end of image (${b.length} bytes)`);
      }
      budget -= e.size;
      if (budget < 0) invalid('file extents add up to far more than the image size');
      const part = e.size > 0 ? b.subarray(start, start + e.size) : new Uint8Array(0);
      if (e.multiExtent) {
        pending.push(part);
        continue;
      }
      pending.push(part);
      const data = pending.length === 1 ? Uint8Array.from(part) : Uint8Array.from(Buffer.concat(pending));
      pending = [];
      files.push({ name: prefix + name, data });
    }
    if (pending.length > 0) invalid('multi-extent file without final extent');
  };
  walk(vol.rootExtent, vol.rootSize, '', 0);
  return files;
}

/**
 * Read an ISO9660 image. Throws IsoFormatError ("truncated ISO: ..." / "invalid ISO: ...")
 * on damaged input.
 */
export function readIso9660(buf: Uint8Array): IsoReadResult {
  if (!(buf instanceof Uint8Array)) throw new TypeError('readIso9660: expected a Uint8Array');
  if (buf.length < SYSTEM_AREA + 2048) truncated(`${buf.length} bytes, no room for a volume descriptor at 32768`);
  let pvd: number | null = null;
  let svd: number | null = null;
  let terminated = false;
  for (let i = 0; i < MAX_DESCRIPTORS; i++) {
    const off = SYSTEM_AREA + i * 2048;
    if (off + 2048 > buf.length) truncated('volume descriptor set has no terminator before end of image');
    if (asciiAt(buf, off + 1, 5) !== 'CD001') invalid(`volume descriptor ${16 + i} lacks the CD001 identifier`);
    const type = buf[off] ?? 0;
    if (type === 255) {
      terminated = true;
      break;
    }
    if (type === 1 && pvd === null) pvd = off;
    if (type === 2 && svd === null) {
      const esc = asciiAt(buf, off + 88, 3);
      if (esc === '%/@' || esc === '%/C' || esc === '%/E') svd = off;
    }
  }
  if (!terminated) invalid('too many volume descriptors');
  if (pvd === null) invalid('no primary volume descriptor');

  const volumeId = trimId(asciiAt(buf, pvd + 40, 32));
  const result: IsoReadResult = { volumeId, files: [] };
  const totalBlocks = u32le(buf, pvd + 80);
  const primary = readRoot(buf, pvd);
  if (totalBlocks * primary.blockSize > buf.length) {
    truncated(`volume space is ${totalBlocks} blocks (${totalBlocks * primary.blockSize} bytes) but the image has ${buf.length} bytes`);
  }
  if (svd !== null) result.jolietVolumeId = trimId(ucs2At(buf, svd + 40, 32));

  const rock = rockRidgeSkip(buf, primary);
  if (rock !== null) {
    result.files = collect(buf, primary, false, rock);
  } else if (svd !== null) {
    result.files = collect(buf, readRoot(buf, svd), true, null);
  } else {
    result.files = collect(buf, primary, false, null);
  }
  return result;
}
