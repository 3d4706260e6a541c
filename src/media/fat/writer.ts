// In-memory FAT32 writer for NoCloud seed images (`seed.img` for USB sticks): one
// "superfloppy" volume (no partition table), a flat root directory with VFAT long file names,
// a root volume-label entry and a boot-sector label, a serial number derived from the content.
//
// Written from the Microsoft FAT specification (FAT: General Overview of On-Disk Format).
// FAT32 because Kairos finds the seed with go-diskfs, whose FAT reader (v1.7.0) reads FAT32
// only; and >= 65525 clusters because the specification decides the FAT type by cluster count
// alone, so anything smaller is FAT16 to Windows and macOS. See docs/decisions-media.md.
//
// Layout (512-byte sectors, sizes for the usual 33 MiB seed):
//   0            boot sector + FAT32 BPB (extended signature 0x29, label, "FAT32   ")
//   1            FSInfo (free-cluster count, next-free hint)
//   6, 7         backup boot sector, backup FSInfo
//   32..555      FAT #1 (BPB_FATSz32 = 524 sectors, from the specification's formula)
//   556..1079    FAT #2 (identical)
//   1080..       data: cluster 2 = root directory, then the files, contiguous, in name order
// Size: at least 33 MiB (67584 sectors: above the specification's 66600-sector minimum for
// FAT32, 66504 clusters of 512 bytes); more, in whole MiB, when the content needs it.
// Sectors per cluster follow the specification's FAT32 table (1 up to 260 MB, then 8, ...).

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
/** Smallest volume: 33 MiB = 67584 sectors, gives 66504 clusters of 512 bytes. */
export const FAT32_MIN_BYTES = 33 * MIB;
/** The specification: a volume with fewer clusters than this is FAT12 or FAT16. */
export const FAT32_MIN_CLUSTERS = 65525;
/** The largest cluster count FAT32 can address (0x0FFFFFF5). */
const FAT32_MAX_CLUSTERS = 0x0ffffff5;
const RESERVED_SECTORS = 32; // the value the specification's tables assume for FAT32
const NUM_FATS = 2; // go-diskfs assumes two FATs when it locates the data area
const FSINFO_SECTOR = 1;
const BACKUP_BOOT_SECTOR = 6; // the specification's recommended value; FSInfo copy at 7
const ROOT_CLUSTER = 2; // go-diskfs reads the root directory at cluster 2 whatever the BPB says
const MEDIA_FIXED = 0xf8;
const FAT32_EOC = 0x0fffffff;
const FAT32_MASK = 0x0fffffff;

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
  v.setUint16(20, cluster >>> 16, true); // high cluster word
  v.setUint16(22, st.time, true); // write time
  v.setUint16(24, st.date, true); // write date
  v.setUint16(26, cluster & 0xffff, true);
  v.setUint32(28, size, true);
  return e;
}


// ---------------------------------------------------------------------------------------
// Geometry

export interface FatGeometry {
  fatType: 32;
  sectorsPerCluster: number;
  reservedSectors: number;
  numFats: number;
  /** BPB_FATSz32: sectors per FAT. */
  sectorsPerFat: number;
  totalSectors: number;
  /** Data clusters: what decides the FAT type (>= 65525 for FAT32). */
  clusterCount: number;
  firstDataSector: number;
  /** Clusters the root directory takes (from cluster 2). */
  rootDirClusters: number;
}

/**
 * Sectors per cluster for a FAT32 volume of `totalSectors` 512-byte sectors: the
 * specification's DskTableFAT32 (which assumes 32 reserved sectors and 2 FATs). Volumes of
 * at most 66600 sectors (32.5 MB) are too small for FAT32.
 */
export function fat32SectorsPerCluster(totalSectors: number): number {
  if (totalSectors <= 66600) throw new Error(`FAT32 volume of ${totalSectors} sectors is too small (needs more than 66600)`);
  if (totalSectors <= 532480) return 1; // up to 260 MB: 512-byte clusters
  if (totalSectors <= 16777216) return 8; // up to 8 GB: 4 KiB
  if (totalSectors <= 33554432) return 16; // up to 16 GB: 8 KiB
  if (totalSectors <= 67108864) return 32; // up to 32 GB: 16 KiB
  return 64; // 32 KiB
}

function geometryFor(totalSectors: number, rootEntries: number): FatGeometry {
  const spc = fat32SectorsPerCluster(totalSectors);
  // The specification's FAT size computation (slightly generous, never too small):
  // FATSz = ceil((TotSec - ResvdSecCnt) / ((256 * SecPerClus + NumFATs) / 2)).
  const tmp2 = Math.floor((256 * spc + NUM_FATS) / 2);
  const sectorsPerFat = Math.ceil((totalSectors - RESERVED_SECTORS) / tmp2);
  const firstDataSector = RESERVED_SECTORS + NUM_FATS * sectorsPerFat;
  const clusterCount = Math.floor((totalSectors - firstDataSector) / spc);
  if ((sectorsPerFat * FAT_SECTOR) / 4 < clusterCount + 2) throw new Error('internal: FAT too small for its clusters');
  if (clusterCount > FAT32_MAX_CLUSTERS) throw new Error(`FAT image of ${totalSectors} sectors is too large for FAT32`);
  const rootDirClusters = Math.max(1, Math.ceil((rootEntries * 32) / (spc * FAT_SECTOR)));
  return {
    fatType: 32,
    sectorsPerCluster: spc,
    reservedSectors: RESERVED_SECTORS,
    numFats: NUM_FATS,
    sectorsPerFat,
    totalSectors,
    clusterCount,
    firstDataSector,
    rootDirClusters,
  };
}

function clustersNeeded(sizes: readonly number[], spc: number): number {
  const cb = spc * FAT_SECTOR;
  let n = 0;
  for (const s of sizes) n += Math.ceil(s / cb);
  return n;
}

/**
 * Choose a volume size (whole MiB, at least 33 MiB) and FAT32 geometry that holds files of
 * `sizes` plus a root directory of `rootEntries` 32-byte entries, with some slack.
 */
export function planFatGeometry(sizes: readonly number[], rootEntries: number): FatGeometry {
  const content = sizes.reduce((a, s) => a + s, 0);
  const slack = Math.max(64 * 1024, Math.ceil(content / 16));
  let total = Math.max(FAT32_MIN_BYTES, Math.ceil((content + slack + MIB) / MIB) * MIB);
  for (;;) {
    const g = geometryFor(total / FAT_SECTOR, rootEntries);
    if (g.clusterCount >= FAT32_MIN_CLUSTERS && g.rootDirClusters + clustersNeeded(sizes, g.sectorsPerCluster) <= g.clusterCount) return g;
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

function putAscii(img: Uint8Array, off: number, s: string): void {
  for (let i = 0; i < s.length; i++) img[off + i] = s.charCodeAt(i);
}

/**
 * Build a FAT32 image holding `files` in its root directory, with long names.
 * Pure function of its inputs (order of `files` does not matter). The image is mostly
 * zeros (33 MiB for a seed); write it with writeSparseFileSync to keep files small.
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
  const g = planFatGeometry(
    sorted.map((f) => f.data.length),
    entryCount,
  );
  const clusterBytes = g.sectorsPerCluster * FAT_SECTOR;

  const img = new Uint8Array(g.totalSectors * FAT_SECTOR);
  const view = new DataView(img.buffer);

  // -- FAT #1, written in place, copied to FAT #2 at the end
  const fatOff = g.reservedSectors * FAT_SECTOR;
  const setFat = (cluster: number, value: number): void => view.setUint32(fatOff + cluster * 4, value & FAT32_MASK, true);
  setFat(0, 0x0fffff00 | MEDIA_FIXED);
  setFat(1, FAT32_EOC); // clean-shutdown and no-error bits set
  const dataStart = g.firstDataSector * FAT_SECTOR;
  const clusterOff = (c: number): number => dataStart + (c - 2) * clusterBytes;

  // -- root directory: clusters 2 .. 2 + rootDirClusters - 1
  for (let c = 0; c < g.rootDirClusters; c++) setFat(ROOT_CLUSTER + c, c === g.rootDirClusters - 1 ? FAT32_EOC : ROOT_CLUSTER + c + 1);
  let nextCluster = ROOT_CLUSTER + g.rootDirClusters;
  const rootStart = clusterOff(ROOT_CLUSTER);
  const rootEnd = rootStart + g.rootDirClusters * clusterBytes;
  let dirPos = rootStart;
  img.set(dirEntry(label, ATTR_VOLUME_ID, 0, 0, stamp), dirPos);
  dirPos += 32;

  // -- files, contiguous, in name order
  sorted.forEach((f, i) => {
    const s = shorts[i] as { packed: string; needsLfn: boolean };
    const n = Math.ceil(f.data.length / clusterBytes);
    const first = n > 0 ? nextCluster : 0;
    for (let c = 0; c < n; c++) setFat(nextCluster + c, c === n - 1 ? FAT32_EOC : nextCluster + c + 1);
    if (n > 0) img.set(f.data, clusterOff(nextCluster));
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
  const used = nextCluster - 2;
  if (used > g.clusterCount) throw new Error('internal: FAT data overflow');
  if (dirPos > rootEnd) throw new Error('internal: root directory overflow');
  const fatBytes = g.sectorsPerFat * FAT_SECTOR;
  img.copyWithin(fatOff + fatBytes, fatOff, fatOff + fatBytes);

  // -- boot sector
  img.set([0xeb, 0x58, 0x90], 0); // jmp to the boot code at 0x5A
  putAscii(img, 3, 'MSWIN4.1');
  view.setUint16(11, FAT_SECTOR, true); // BPB_BytsPerSec
  img[13] = g.sectorsPerCluster;
  view.setUint16(14, g.reservedSectors, true);
  img[16] = g.numFats;
  view.setUint16(17, 0, true); // BPB_RootEntCnt: 0 on FAT32
  view.setUint16(19, 0, true); // BPB_TotSec16: 0 on FAT32
  img[21] = MEDIA_FIXED;
  view.setUint16(22, 0, true); // BPB_FATSz16: 0 marks FAT32
  view.setUint16(24, 32, true); // sectors per track (nominal)
  view.setUint16(26, 64, true); // heads (nominal)
  view.setUint32(28, 0, true); // hidden sectors: no partition table
  view.setUint32(32, g.totalSectors, true); // BPB_TotSec32
  view.setUint32(36, g.sectorsPerFat, true); // BPB_FATSz32
  view.setUint16(40, 0, true); // BPB_ExtFlags: FATs mirrored
  view.setUint16(42, 0, true); // BPB_FSVer 0.0
  view.setUint32(44, ROOT_CLUSTER, true); // BPB_RootClus
  view.setUint16(48, FSINFO_SECTOR, true);
  view.setUint16(50, BACKUP_BOOT_SECTOR, true);
  img[64] = 0x80; // BS_DrvNum
  img[66] = 0x29; // BS_BootSig: serial, label and type follow
  view.setUint32(67, volumeSerial(label, opts.epochSeconds, sorted), true);
  putAscii(img, 71, label); // BS_VolLab
  putAscii(img, 82, 'FAT32   '); // BS_FilSysType (informational only)
  img.set([0xfa, 0xf4, 0xeb, 0xfd], 90); // not bootable: cli; hlt; jmp back to hlt
  img[510] = 0x55;
  img[511] = 0xaa;

  // -- FSInfo
  const fsi = FSINFO_SECTOR * FAT_SECTOR;
  view.setUint32(fsi, 0x41615252, true); // "RRaA"
  view.setUint32(fsi + 484, 0x61417272, true); // "rrAa"
  const free = g.clusterCount - used;
  view.setUint32(fsi + 488, free, true); // FSI_Free_Count: exact
  view.setUint32(fsi + 492, free > 0 ? nextCluster : 0xffffffff, true); // FSI_Nxt_Free hint
  view.setUint32(fsi + 508, 0xaa550000, true); // trail signature 00 00 55 AA

  // -- backups: boot sector at 6, FSInfo at 7
  img.copyWithin(BACKUP_BOOT_SECTOR * FAT_SECTOR, 0, FAT_SECTOR);
  img.copyWithin((BACKUP_BOOT_SECTOR + 1) * FAT_SECTOR, fsi, fsi + FAT_SECTOR);
  return img;
}
