// Defensive FAT12/FAT16/FAT32 reader for verifying seed images: returns the volume label and
// the files (with their VFAT long names) of the root directory and any subdirectories.
// Every access is bounds-checked and every loop bounded: damaged input throws.
//
// FAT32 is recognised by its layout (BPB_FATSz16 = 0 and BPB_FATSz32 != 0), as Linux,
// fsck.fat and go-diskfs do; FAT12 vs FAT16 by cluster count, as the specification says.
// `clusterCount` is returned so that callers can apply the specification's rule to FAT32
// too (a FAT32 layout with fewer than 65525 clusters is FAT16 to Windows and macOS).

import { u16le, u32le } from '../common.js';
import { shortNameChecksum } from './writer.js';

export interface FatReadResult {
  /** Label from the root-directory volume-label entry, else from the boot sector, else ''. */
  label: string;
  /** Label stored in the extended BPB (boot sector), when the 0x29 signature is present. */
  bootSectorLabel?: string;
  /** Volume serial number from the extended BPB. */
  serial?: number;
  /** FAT32 by layout; FAT12/16 by cluster count. */
  fatType: 12 | 16 | 32;
  /** Data clusters in the volume. */
  clusterCount: number;
  files: Array<{ name: string; data: Uint8Array }>;
}

export class FatFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FatFormatError';
  }
}

function truncated(what: string): never {
  throw new FatFormatError(`truncated FAT image: ${what}`);
}

function invalid(what: string): never {
  throw new FatFormatError(`invalid FAT image: ${what}`);
}

const MAX_DEPTH = 8;
const LFN_OFFSETS = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

function ascii(b: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(b[off + i] ?? 0);
  return s;
}

export function readFatImage(buf: Uint8Array): FatReadResult {
  if (!(buf instanceof Uint8Array)) throw new TypeError('readFatImage: expected a Uint8Array');
  if (buf.length < 512) truncated(`${buf.length} bytes, shorter than a boot sector`);
  if (buf[510] !== 0x55 || buf[511] !== 0xaa) invalid('boot sector signature 0x55AA missing');
  const bps = u16le(buf, 11);
  if (![512, 1024, 2048, 4096].includes(bps)) invalid(`bytes per sector ${bps}`);
  const spc = buf[13] ?? 0;
  if (spc === 0 || (spc & (spc - 1)) !== 0) invalid(`sectors per cluster ${spc}`);
  const reserved = u16le(buf, 14);
  const nFats = buf[16] ?? 0;
  const rootEntries = u16le(buf, 17);
  const total = u16le(buf, 19) || u32le(buf, 32);
  const fat16Size = u16le(buf, 22);
  const fat32Size = u32le(buf, 36);
  if (reserved === 0 || nFats === 0) invalid('no reserved sectors or no FATs');
  const isFat32 = fat16Size === 0;
  if (isFat32 && fat32Size === 0) invalid('FAT size is 0');
  const fatSize = isFat32 ? fat32Size : fat16Size;
  const rootSectors = isFat32 ? 0 : Math.ceil((rootEntries * 32) / bps);
  if (!isFat32 && rootEntries === 0) invalid('no root directory entries');
  const firstData = reserved + nFats * fatSize + rootSectors;
  if (total <= firstData) invalid(`total sectors ${total} leave no data area`);
  if (total * bps > buf.length) truncated(`volume is ${total * bps} bytes but the image has ${buf.length}`);
  const clusterCount = Math.floor((total - firstData) / spc);
  if (clusterCount === 0) invalid('no data clusters');
  if (!isFat32 && clusterCount >= 65525) invalid(`${clusterCount} clusters in a FAT12/16 layout`);
  if (isFat32 && clusterCount > 0x0ffffff5) invalid(`${clusterCount} clusters: too many for FAT32`);
  const fatType: 12 | 16 | 32 = isFat32 ? 32 : clusterCount < 4085 ? 12 : 16;
  const fatOff = reserved * bps;
  const fatLimit = fatSize * bps;
  const fatNeeds = fatType === 32 ? (clusterCount + 2) * 4 : fatType === 16 ? (clusterCount + 2) * 2 : Math.ceil(((clusterCount + 2) * 3) / 2);
  if (fatNeeds > fatLimit) invalid(`FAT of ${fatSize} sectors is too small for ${clusterCount} clusters`);
  const clusterBytes = spc * bps;
  const dataOff = firstData * bps;

  const next = (c: number): number => {
    if (fatType === 32) return u32le(buf, fatOff + c * 4) % 0x10000000; // low 28 bits
    if (fatType === 16) return u16le(buf, fatOff + c * 2);
    const v = u16le(buf, fatOff + Math.floor((c * 3) / 2));
    return c & 1 ? v >> 4 : v & 0x0fff;
  };
  const isEoc = (v: number): boolean => (fatType === 32 ? v >= 0x0ffffff8 : fatType === 16 ? v >= 0xfff8 : v >= 0xff8);

  /** Cluster chain of `count` clusters starting at `first` (bounded, loop-safe). */
  const chain = (first: number, count: number | null, what: string): number[] => {
    const out: number[] = [];
    let c = first;
    const limit = count ?? clusterCount;
    for (;;) {
      if (c < 2 || c >= clusterCount + 2) invalid(`${what}: cluster ${c} out of range`);
      out.push(c);
      if (out.length > clusterCount) invalid(`${what}: cluster chain loops`);
      const v = next(c);
      if (isEoc(v)) break;
      if (count !== null && out.length >= limit) invalid(`${what}: cluster chain longer than its size`);
      c = v;
    }
    if (count !== null && out.length < count) invalid(`${what}: cluster chain ends early (${out.length} of ${count} clusters)`);
    return out;
  };

  const readChain = (clusters: number[], size: number): Uint8Array => {
    const out = new Uint8Array(size);
    let pos = 0;
    for (const c of clusters) {
      const start = dataOff + (c - 2) * clusterBytes;
      const n = Math.min(clusterBytes, size - pos);
      if (n <= 0) break;
      if (start + n > buf.length) truncated(`cluster ${c} beyond end of image`);
      out.set(buf.subarray(start, start + n), pos);
      pos += n;
    }
    return out;
  };

  let rootLabel: string | undefined;
  const files: Array<{ name: string; data: Uint8Array }> = [];
  const visited = new Set<number>();

  const walk = (dir: Uint8Array, prefix: string, depth: number, isRoot: boolean): void => {
    if (depth > MAX_DEPTH) invalid('directories nested too deeply');
    let lfnParts: string[] = [];
    let lfnSum = -1;
    let lfnExpect = 0;
    for (let p = 0; p + 32 <= dir.length; p += 32) {
      const first = dir[p] ?? 0;
      if (first === 0x00) break;
      if (first === 0xe5) {
        lfnParts = [];
        continue;
      }
      const attr = dir[p + 11] ?? 0;
      if ((attr & 0x3f) === 0x0f) {
        const ord = first & 0x3f;
        if (ord === 0 || ord > 20) {
          lfnParts = [];
          lfnExpect = 0;
          continue;
        }
        if (first & 0x40) {
          lfnParts = [];
          lfnExpect = ord;
          lfnSum = dir[p + 13] ?? 0;
        } else if (ord !== lfnExpect || (dir[p + 13] ?? 0) !== lfnSum) {
          lfnParts = []; // orphaned or out-of-order LFN entry: ignore
          lfnExpect = 0;
          continue;
        }
        let part = '';
        for (const off of LFN_OFFSETS) {
          const u = u16le(dir, p + off);
          if (u === 0x0000 || u === 0xffff) break;
          part += String.fromCharCode(u);
        }
        lfnParts[ord - 1] = part;
        lfnExpect = ord - 1;
        continue;
      }
      const raw = dir.subarray(p, p + 11);
      const longName = lfnExpect === 0 && lfnParts.length > 0 && shortNameChecksum(raw) === lfnSum ? lfnParts.join('') : undefined;
      lfnParts = [];
      lfnExpect = 0;
      if (attr & 0x08) {
        if (isRoot && rootLabel === undefined) rootLabel = ascii(dir, p, 11).trimEnd();
        continue;
      }
      const nt = dir[p + 12] ?? 0;
      let base = ascii(dir, p, 8).trimEnd();
      let ext = ascii(dir, p + 8, 3).trimEnd();
      if (base === '.' || base === '..') continue;
      if (base.charCodeAt(0) === 0x05) base = '\u00e5' + base.slice(1);
      if (nt & 0x08) base = base.toLowerCase();
      if (nt & 0x10) ext = ext.toLowerCase();
      const name = longName ?? (ext ? `${base}.${ext}` : base);
      if (name.length === 0 || name.includes('/')) invalid(`bad file name ${JSON.stringify(name)}`);
      const cluster = u16le(dir, p + 26) + (fatType === 32 ? u16le(dir, p + 20) * 0x10000 : 0);
      const size = u32le(dir, p + 28);
      if (attr & 0x10) {
        if (cluster === 0) invalid(`directory ${JSON.stringify(prefix + name)} has no cluster`);
        if (visited.has(cluster)) invalid(`directory loop at cluster ${cluster}`);
        visited.add(cluster);
        const cl = chain(cluster, null, `directory ${JSON.stringify(prefix + name)}`);
        walk(readChain(cl, cl.length * clusterBytes), `${prefix}${name}/`, depth + 1, false);
        continue;
      }
      if (size === 0) {
        files.push({ name: prefix + name, data: new Uint8Array(0) });
        continue;
      }
      if (size > clusterCount * clusterBytes) truncated(`file ${JSON.stringify(prefix + name)} of ${size} bytes is larger than the volume`);
      const cl = chain(cluster, Math.ceil(size / clusterBytes), `file ${JSON.stringify(prefix + name)}`);
      files.push({ name: prefix + name, data: readChain(cl, size) });
    }
  };

  if (fatType === 32) {
    const rootCluster = u32le(buf, 44);
    visited.add(rootCluster);
    const cl = chain(rootCluster, null, 'root directory');
    walk(readChain(cl, cl.length * clusterBytes), '', 0, true);
  } else {
    const rootOff = (reserved + nFats * fatSize) * bps;
    if (rootOff + rootEntries * 32 > buf.length) truncated('root directory beyond end of image');
    walk(buf.subarray(rootOff, rootOff + rootEntries * 32), '', 0, true);
  }

  const result: FatReadResult = { label: '', fatType, clusterCount, files };
  const ebpb = fatType === 32 ? 64 : 36; // extended BPB: drive number, reserved, signature, serial, label
  if (buf[ebpb + 2] === 0x29) {
    result.bootSectorLabel = ascii(buf, ebpb + 7, 11).trimEnd();
    result.serial = u32le(buf, ebpb + 3);
  }
  result.label = rootLabel ?? result.bootSectorLabel ?? '';
  if (result.label === 'NO NAME') result.label = rootLabel ?? '';
  return result;
}
