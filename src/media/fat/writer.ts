// In-memory FAT12/FAT16 writer for NoCloud seed images (`seed.img` for USB sticks):
// one "superfloppy" volume (no partition table), a flat root directory with VFAT long
// file names, a root volume-label entry and a boot-sector label, fixed serial number.
//
// Written from the Microsoft FAT specification (FAT: General Overview of On-Disk Format).
//
// Layout (512-byte sectors):
//   0            boot sector + BPB (extended BPB, signature 0x29)
//   1..          FAT #1, FAT #2
//   ..           root directory (fixed size, >= 512 entries)
//   ..           data clusters: files stored contiguously, in name order
// Size: content + slack rounded up to a whole MiB, at least 1 MiB. FAT12 while the
// volume has at most 4000 clusters of <= 4 KiB (<= 16 MiB volumes), otherwise FAT16 with
// >= 2 KiB clusters; cluster counts stay well away from the FAT12/16 boundary (4085)
// where implementations disagree.

import { createHash } from 'node:crypto';
import { type MediaFile, utcParts, validateFileSet } from '../common.js';

export const FAT_SECTOR = 512;

export interface FatWriteOptions {
  /** Volume label, e.g. `CIDATA`: 1-11 characters valid in a short name (stored upper-case). */
  label: string;
  /** All timestamps come from this (UTC; FAT stores local time, we store UTC). */
  epochSeconds: number;
}

const MIB = 1024 * 1024;
const MIN_BYTES = MIB;
const FAT12_MAX_CLUSTERS = 4000; // < 4085, with margin
const FAT16_MAX_CLUSTERS = 65000; // < 65525, with margin
const MIN_ROOT_ENTRIES = 512;
const MEDIA_FIXED = 0xf8;

const ATTR_READ_ONLY = 0x01;
const ATTR_HIDDEN = 0x02;
const ATTR_SYSTEM = 0x04;
const ATTR_VOLUME_ID = 0x08;
const ATTR_ARCHIVE = 0x20;
const ATTR_LONG_NAME = ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_VOLUME_ID;

// Characters allowed in a short (8.3) name besides A-Z and 0-9.
const SHORT_SPECIALS = new Set([...`$%'-_@~\`!(){}^#&`]);

// ---------------------------------------------------------------------------------------
// Short names and long-name entries

function shortChar(ch: string): string | null {
  const up = ch.toUpperCase();
  if (/[A-Z0-9]/.test(up) || SHORT_SPECIALS.has(up)) return up;
  return null;
}

/** The 11-byte on-disk form ("NAME    EXT") as a string. */
function pack83(base: string, ext: string): string {
  return base.padEnd(8, ' ') + ext.padEnd(3, ' ');
}

/**
 * Short names for `names` (already in canonical order), Windows-style: upper-case, invalid
 * characters to '_', spaces and extra dots dropped, 8.3 truncation, and a "~N" numeric tail
 * whenever the conversion lost information or collided. Returns 11-byte packed names and
 * whether the long name must be kept in LFN entries.
 */
export function shortNames(names: readonly string[]): Array<{ packed: string; needsLfn: boolean }> {
  const used = new Set<string>();
  const out: Array<{ packed: string; needsLfn: boolean }> = [];
  for (const name of names) {
    let lossy = false;
    const stripped = name.replace(/^\.+/, () => {
      lossy = true;
      return '';
    });
    const dot = stripped.lastIndexOf('.');
    const rawBase = dot >= 0 ? stripped.slice(0, dot) : stripped;
    const rawExt = dot >= 0 ? stripped.slice(dot + 1) : '';
    const conv = (s: string): string => {
      let r = '';
      for (const ch of s) {
        if (ch === ' ' || ch === '.') {
          lossy = true;
          continue;
        }
        const c = shortChar(ch);
        if (c === null) {
          lossy = true;
          r += '_';
        } else r += c;
      }
      return r;
    };
    let base = conv(rawBase);
    let ext = conv(rawExt);
    if (base.length > 8) {
      lossy = true;
      base = base.slice(0, 8);
    }
    if (ext.length > 3) {
      lossy = true;
      ext = ext.slice(0, 3);
    }
    if (base.length === 0) {
      lossy = true;
      base = '_';
    }
    let packed = pack83(base, ext);
    if (lossy || used.has(packed)) {
      for (let n = 1; ; n++) {
        const tail = `~${n}`;
        if (tail.length > 7) throw new Error(`cannot make a unique short name for ${JSON.stringify(name)}`);
        packed = pack83(base.slice(0, 8 - tail.length) + tail, ext);
        if (!used.has(packed)) break;
      }
    }
    used.add(packed);
    const display = packed.slice(0, 8).trimEnd() + (ext ? `.${packed.slice(8).trimEnd()}` : '');
    out.push({ packed, needsLfn: display !== name });
  }
  return out;
}

/** Checksum of an 11-byte short name, stored in each of its LFN entries. */
export function shortNameChecksum(packed: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + (packed[i] ?? 0)) & 0xff;
  return sum;
}

const LFN_OFFSETS = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/** LFN entries for `name`, in on-disk order (last part first). */
function lfnEntries(name: string, checksum: number): Uint8Array[] {
  const units: number[] = [];
  for (let i = 0; i < name.length; i++) units.push(name.charCodeAt(i));
  if (units.length % 13 !== 0) units.push(0x0000);
  while (units.length % 13 !== 0) units.push(0xffff);
  const count = units.length / 13;
  const entries: Uint8Array[] = [];
  for (let seq = count; seq >= 1; seq--) {
    const e = new Uint8Array(32);
    e[0] = seq | (seq === count ? 0x40 : 0);
    e[11] = ATTR_LONG_NAME;
    e[12] = 0;
    e[13] = checksum;
    for (let j = 0; j < 13; j++) {
      const u = units[(seq - 1) * 13 + j] ?? 0xffff;
      const off = LFN_OFFSETS[j] as number;
      e[off] = u & 0xff;
      e[off + 1] = u >> 8;
    }
    // bytes 26-27 (first cluster) stay 0
    entries.push(e);
  }
  return entries;
}

// ---------------------------------------------------------------------------------------
// Dates

interface FatStamp {
  date: number;
  time: number;
  tenths: number; // creation time fine resolution (10 ms units)
}

function fatStamp(epochSeconds: number): FatStamp {
  // FAT dates cover 1980-01-01 .. 2107-12-31; clamp into that range rather than fail, as
  // zip tools do for SOURCE_DATE_EPOCH values before 1980.
  const MIN = 315532800; // 1980-01-01T00:00:00Z
  const MAX = 4354819198; // 2107-12-31T23:59:58Z
  const e = Math.min(Math.max(epochSeconds, MIN), MAX);
  const p = utcParts(e);
  return {
    date: ((p.year - 1980) << 9) | (p.month << 5) | p.day,
    time: (p.hour << 11) | (p.minute << 5) | (p.second >> 1),
    tenths: (p.second & 1) * 100,
  };
}

function dirEntry(packed: string, attr: number, cluster: number, size: number, st: FatStamp): Uint8Array {
  const e = new Uint8Array(32);
  for (let i = 0; i < 11; i++) e[i] = packed.charCodeAt(i);
  const v = new DataView(e.buffer);
  e[11] = attr;
  e[12] = 0; // NTRes
  e[13] = st.tenths;
  v.setUint16(14, st.time, true); // creation time
  v.setUint16(16, st.date, true); // creation date
  v.setUint16(18, st.date, true); // last access date
  v.setUint16(20, 0, true); // high cluster word (FAT32 only)
  v.setUint16(22, st.time, true); // write time
  v.setUint16(24, st.date, true); // write date
  v.setUint16(26, cluster, true);
  v.setUint32(28, size, true);
  return e;
}

// ---------------------------------------------------------------------------------------
// Geometry

export interface FatGeometry {
  fatType: 12 | 16;
  sectorsPerCluster: number;
  reservedSectors: number;
  numFats: number;
  rootEntries: number;
  sectorsPerFat: number;
  totalSectors: number;
  clusterCount: number;
  firstDataSector: number;
}

function fatBytes(type: 12 | 16, entries: number): number {
  return type === 12 ? Math.ceil((entries * 3) / 2) : entries * 2;
}

function geometryFor(totalBytes: number, rootEntries: number): FatGeometry {
  const totalSectors = totalBytes / FAT_SECTOR;
  const rootSectors = (rootEntries * 32) / FAT_SECTOR;
  const pick = (type: 12 | 16, spc: number): FatGeometry => {
    // FAT sized for the largest cluster count this volume could have (slightly generous).
    const upper = Math.ceil(totalSectors / spc);
    const sectorsPerFat = Math.ceil(fatBytes(type, upper + 2) / FAT_SECTOR);
    const firstDataSector = 1 + 2 * sectorsPerFat + rootSectors;
    const clusterCount = Math.floor((totalSectors - firstDataSector) / spc);
    return { fatType: type, sectorsPerCluster: spc, reservedSectors: 1, numFats: 2, rootEntries, sectorsPerFat, totalSectors, clusterCount, firstDataSector };
  };
  for (const spc of [1, 2, 4, 8]) {
    const g = pick(12, spc);
    if (g.clusterCount <= FAT12_MAX_CLUSTERS) return g;
  }
  for (const spc of [4, 8, 16, 32, 64]) {
    const g = pick(16, spc);
    if (g.clusterCount <= FAT16_MAX_CLUSTERS) return g;
  }
  throw new Error(`FAT image of ${totalBytes} bytes is too large for FAT16`);
}

function clustersNeeded(sizes: readonly number[], spc: number): number {
  const cb = spc * FAT_SECTOR;
  let n = 0;
  for (const s of sizes) n += Math.ceil(s / cb);
  return n;
}

/** Choose a volume size (whole MiB) and geometry that holds `sizes` with some slack. */
export function planFatGeometry(sizes: readonly number[], rootEntries: number): FatGeometry {
  const content = sizes.reduce((a, s) => a + s, 0);
  const slack = Math.max(64 * 1024, Math.ceil(content / 16));
  let total = Math.max(MIN_BYTES, Math.ceil((content + slack + 64 * 1024) / MIB) * MIB);
  for (;;) {
    const g = geometryFor(total, rootEntries);
    if (clustersNeeded(sizes, g.sectorsPerCluster) <= g.clusterCount) return g;
    total += MIB;
  }
}

// ---------------------------------------------------------------------------------------

function volumeSerial(label: string, epochSeconds: number, files: readonly MediaFile[]): number {
  const h = createHash('sha256');
  h.update(`edgeimg-fat-serial\0${label}\0${epochSeconds}\0`);
  for (const f of files) {
    h.update(`${f.name}\0${f.data.length}\0`);
    h.update(f.data);
  }
  return h.digest().readUInt32LE(0);
}

function checkLabel(label: string): string {
  if (typeof label !== 'string' || label.length < 1 || label.length > 11) {
    throw new Error(`invalid FAT label ${JSON.stringify(label)}: 1-11 characters`);
  }
  let out = '';
  for (const ch of label) {
    const c = ch === ' ' ? ' ' : shortChar(ch);
    if (c === null) throw new Error(`invalid FAT label ${JSON.stringify(label)}: character '${ch}' is not allowed`);
    out += c;
  }
  if (out.startsWith(' ')) throw new Error(`invalid FAT label ${JSON.stringify(label)}: leading space`);
  return out.padEnd(11, ' ');
}

/**
 * Build a FAT12/16 image holding `files` in its root directory, with long names.
 * Pure function of its inputs (order of `files` does not matter).
 */
export function writeFatImage(files: Array<{ name: string; data: Uint8Array }>, opts: FatWriteOptions): Uint8Array {
  const label = checkLabel(opts.label);
  const stamp = fatStamp(opts.epochSeconds);
  const sorted = validateFileSet(files, true);
  for (const f of sorted) {
    if (f.data.length > 0xffffffff) throw new Error(`file ${JSON.stringify(f.name)} too large for FAT`);
  }
  const shorts = shortNames(sorted.map((f) => f.name));

  // directory entries: label first, then each file's LFN entries + short entry
  let entryCount = 1;
  sorted.forEach((f, i) => {
    entryCount += 1 + ((shorts[i] as { needsLfn: boolean }).needsLfn ? Math.ceil(f.name.length / 13) : 0);
  });
  const rootEntries = Math.max(MIN_ROOT_ENTRIES, Math.ceil(entryCount / 16) * 16);
  const g = planFatGeometry(
    sorted.map((f) => f.data.length),
    rootEntries,
  );
  const clusterBytes = g.sectorsPerCluster * FAT_SECTOR;

  const img = new Uint8Array(g.totalSectors * FAT_SECTOR);
  const view = new DataView(img.buffer);

  // -- boot sector
  img.set([0xeb, 0x3c, 0x90], 0);
  for (let i = 0; i < 8; i++) img[3 + i] = 'MSWIN4.1'.charCodeAt(i);
  view.setUint16(11, FAT_SECTOR, true);
  img[13] = g.sectorsPerCluster;
  view.setUint16(14, g.reservedSectors, true);
  img[16] = g.numFats;
  view.setUint16(17, g.rootEntries, true);
  view.setUint16(19, g.totalSectors < 0x10000 ? g.totalSectors : 0, true);
  img[21] = MEDIA_FIXED;
  view.setUint16(22, g.sectorsPerFat, true);
  view.setUint16(24, 32, true); // sectors per track (nominal)
  view.setUint16(26, 64, true); // heads (nominal)
  view.setUint32(28, 0, true); // hidden sectors: no partition table
  view.setUint32(32, g.totalSectors < 0x10000 ? 0 : g.totalSectors, true);
  img[36] = 0x80; // drive number
  img[38] = 0x29; // extended boot signature
  view.setUint32(39, volumeSerial(label, opts.epochSeconds, sorted), true);
  for (let i = 0; i < 11; i++) img[43 + i] = label.charCodeAt(i);
  const fsType = g.fatType === 12 ? 'FAT12   ' : 'FAT16   ';
  for (let i = 0; i < 8; i++) img[54 + i] = fsType.charCodeAt(i);
  img.set([0xfa, 0xf4, 0xeb, 0xfd], 62); // not bootable: cli; hlt; jmp back to hlt
  img[510] = 0x55;
  img[511] = 0xaa;

  // -- FAT (built once, copied)
  const fat = new Uint8Array(g.sectorsPerFat * FAT_SECTOR);
  const setFat = (cluster: number, value: number): void => {
    if (g.fatType === 16) {
      fat[cluster * 2] = value & 0xff;
      fat[cluster * 2 + 1] = (value >> 8) & 0xff;
    } else {
      const off = Math.floor((cluster * 3) / 2);
      if (cluster & 1) {
        fat[off] = ((fat[off] ?? 0) & 0x0f) | ((value & 0x0f) << 4);
        fat[off + 1] = (value >> 4) & 0xff;
      } else {
        fat[off] = value & 0xff;
        fat[off + 1] = ((fat[off + 1] ?? 0) & 0xf0) | ((value >> 8) & 0x0f);
      }
    }
  };
  const eoc = g.fatType === 16 ? 0xffff : 0xfff;
  setFat(0, (g.fatType === 16 ? 0xff00 : 0xf00) | MEDIA_FIXED);
  setFat(1, eoc); // FAT16: clean-shutdown and no-error bits set

  // -- data and directory
  const rootStart = (g.reservedSectors + g.numFats * g.sectorsPerFat) * FAT_SECTOR;
  const dataStart = g.firstDataSector * FAT_SECTOR;
  let nextCluster = 2;
  let dirPos = rootStart;
  img.set(dirEntry(label, ATTR_VOLUME_ID, 0, 0, stamp), dirPos);
  dirPos += 32;
  sorted.forEach((f, i) => {
    const s = shorts[i] as { packed: string; needsLfn: boolean };
    const n = Math.ceil(f.data.length / clusterBytes);
    const first = n > 0 ? nextCluster : 0;
    for (let c = 0; c < n; c++) setFat(nextCluster + c, c === n - 1 ? eoc : nextCluster + c + 1);
    if (n > 0) img.set(f.data, dataStart + (nextCluster - 2) * clusterBytes);
    nextCluster += n;
    if (s.needsLfn) {
      const packedBytes = Uint8Array.from(s.packed, (ch) => ch.charCodeAt(0));
      for (const e of lfnEntries(f.name, shortNameChecksum(packedBytes))) {
        img.set(e, dirPos);
        dirPos += 32;
      }
    }
    img.set(dirEntry(s.packed, ATTR_ARCHIVE, first, f.data.length, stamp), dirPos);
    dirPos += 32;
  });
  if (nextCluster - 2 > g.clusterCount) throw new Error('internal: FAT data overflow');
  if (dirPos > rootStart + g.rootEntries * 32) throw new Error('internal: root directory overflow');

  for (let k = 0; k < g.numFats; k++) img.set(fat, (g.reservedSectors + k * g.sectorsPerFat) * FAT_SECTOR);
  return img;
}
