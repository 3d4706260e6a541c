// In-memory ISO9660 writer for NoCloud seeds: a flat root directory, a primary tree with
// Rock Ridge (RRIP 1991A over SUSP) so POSIX readers see the real names, and a Joliet tree
// (UCS-2, level 3) for readers that prefer it (Windows, Talos's label prober).
//
// Written from ECMA-119, the Joliet specification, SUSP 1.12 and RRIP 1.12 (1991A ER).
//
// Layout (2048-byte sectors, no trailing padding):
//   0-15   system area (zero)
//   16     Primary Volume Descriptor
//   17     Joliet Supplementary Volume Descriptor
//   18     Volume Descriptor Set Terminator
//   19-22  path tables: primary L, primary M, Joliet L, Joliet M (one sector each)
//   23..   primary root directory (with Rock Ridge)
//   ..     one SUSP continuation sector (holds the ER entry)
//   ..     Joliet root directory
//   ..     file data, each file starting on a sector boundary, in name order

import { type MediaFile, utcParts, validateFileSet } from '../common.js';

export const ISO_SECTOR = 2048;

export interface IsoWriteOptions {
  /** Volume identifier, e.g. `cidata`: 1-16 printable ASCII characters (Joliet holds 16). */
  volumeId: string;
  /** Every timestamp in the image comes from this (seconds since 1970, UTC). */
  epochSeconds: number;
}

// Fixed identification strings (a-characters; also written UCS-2 in the Joliet SVD).
const SYSTEM_ID = 'LINUX';
const APPLICATION_ID = 'EDGEIMG';

// RRIP 1991A extension reference (the identifier, descriptor and source texts that the
// Rock Ridge specification assigns to this version).
const ER_ID = 'RRIP_1991A';
const ER_DESCRIPTOR = 'THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS';
const ER_SOURCE =
  'PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.';

const MODE_FILE = 0o100444;
const MODE_DIR = 0o040555;

// RR entry flag bits (which Rock Ridge entries a record carries).
const RR_PX = 0x01;
const RR_NM = 0x08;
const RR_TF = 0x80;

const FLAG_DIRECTORY = 0x02;

// ---------------------------------------------------------------------------------------
// Little byte helpers

function both16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

function both32(b: Uint8Array, off: number, v: number): void {
  le32(b, off, v);
  be32(b, off + 4, v);
}

function le32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

function be32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

function le16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}

function be16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

/** ASCII text padded with spaces to `len` bytes. */
function putAscii(b: Uint8Array, off: number, len: number, s: string): void {
  for (let i = 0; i < len; i++) b[off + i] = i < s.length ? s.charCodeAt(i) : 0x20;
}

/** UCS-2 BE text padded with UCS-2 spaces (0x0020); an odd final byte is 0x00. */
function putUcs2(b: Uint8Array, off: number, len: number, s: string): void {
  const chars = Math.floor(len / 2);
  for (let i = 0; i < chars; i++) be16(b, off + 2 * i, i < s.length ? s.charCodeAt(i) : 0x20);
  if (len % 2 === 1) b[off + len - 1] = 0;
}

function ucs2(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) be16(out, 2 * i, s.charCodeAt(i));
  return out;
}

function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function sectorsFor(bytes: number): number {
  return Math.ceil(bytes / ISO_SECTOR);
}

// ---------------------------------------------------------------------------------------
// Dates

/** 7-byte directory record date (ECMA-119 9.1.5), GMT offset 0. */
function date7(epochSeconds: number): Uint8Array {
  const p = utcParts(epochSeconds);
  if (p.year < 1900 || p.year > 2155) throw new RangeError(`epochSeconds ${epochSeconds}: year ${p.year} does not fit ISO9660 dates (1900-2155)`);
  return Uint8Array.of(p.year - 1900, p.month, p.day, p.hour, p.minute, p.second, 0);
}

/** 17-byte volume descriptor date (ECMA-119 8.4.26.1): "YYYYMMDDHHMMSScc" + GMT offset 0. */
function date17(epochSeconds: number): Uint8Array {
  const p = utcParts(epochSeconds);
  const two = (n: number): string => String(n).padStart(2, '0');
  const s = `${String(p.year).padStart(4, '0')}${two(p.month)}${two(p.day)}${two(p.hour)}${two(p.minute)}${two(p.second)}00`;
  const out = new Uint8Array(17);
  out.set(ascii(s), 0);
  return out;
}

/** "Not specified" 17-byte date: sixteen '0' digits and a zero offset. */
function date17Unset(): Uint8Array {
  const out = new Uint8Array(17).fill(0x30);
  out[16] = 0;
  return out;
}

// ---------------------------------------------------------------------------------------
// Names

const D_CHAR = /[A-Z0-9_]/;
const ISO_MAX_NAME_EXT = 30; // level-2 style: name + extension <= 30 characters
const ISO_MAX_EXT = 8;

function dChars(s: string): string {
  let out = '';
  for (const ch of s.toUpperCase()) out += D_CHAR.test(ch) ? ch : '_';
  return out;
}

/**
 * Primary-tree identifiers (`NAME.EXT;1`) from d-characters. The real name lives in the
 * Rock Ridge NM entry and the Joliet tree; this one only has to be legal and unique.
 * `files` must already be in canonical (sorted) order so that mangling is deterministic.
 */
export function isoIdentifiers(names: readonly string[]): string[] {
  const used = new Set<string>();
  const out: string[] = [];
  for (const name of names) {
    const dot = name.lastIndexOf('.');
    let base = dChars(dot >= 0 ? name.slice(0, dot) : name);
    let ext = dChars(dot >= 0 ? name.slice(dot + 1) : '').slice(0, ISO_MAX_EXT);
    base = base.slice(0, ISO_MAX_NAME_EXT - ext.length);
    if (base.length === 0 && ext.length === 0) base = '_';
    let candidate = `${base}.${ext}`;
    for (let n = 1; used.has(candidate); n++) {
      const tail = `_${n}`;
      const room = ISO_MAX_NAME_EXT - ext.length - tail.length;
      candidate = `${base.slice(0, room)}${tail}.${ext}`;
    }
    used.add(candidate);
    out.push(`${candidate};1`);
  }
  return out;
}

/**
 * ECMA-119 9.3 ordering: compare the name parts (shorter padded with spaces), then the
 * extension parts, then the version (descending; ours is always 1). Works on code units,
 * so the same function orders ISO (ASCII) and Joliet (UCS-2) identifiers.
 */
export function compareIdentifiers(a: string, b: string): number {
  const split = (s: string): [string, string, string] => {
    const semi = s.lastIndexOf(';');
    const body = semi >= 0 ? s.slice(0, semi) : s;
    const ver = semi >= 0 ? s.slice(semi + 1) : '';
    const dot = body.lastIndexOf('.');
    return dot >= 0 ? [body.slice(0, dot), body.slice(dot + 1), ver] : [body, '', ver];
  };
  const padCmp = (x: string, y: string): number => {
    const n = Math.max(x.length, y.length);
    for (let i = 0; i < n; i++) {
      const cx = i < x.length ? x.charCodeAt(i) : 0x20;
      const cy = i < y.length ? y.charCodeAt(i) : 0x20;
      if (cx !== cy) return cx - cy;
    }
    return 0;
  };
  const [an, ae, av] = split(a);
  const [bn, be, bv] = split(b);
  return padCmp(an, bn) || padCmp(ae, be) || (Number(bv || 0) > Number(av || 0) ? 1 : Number(bv || 0) < Number(av || 0) ? -1 : 0) || (a < b ? -1 : a > b ? 1 : 0);
}

// ---------------------------------------------------------------------------------------
// SUSP / Rock Ridge entries

function suspEntry(sig: string, payload: Uint8Array): Uint8Array {
  const len = 4 + payload.length;
  if (len > 255) throw new Error(`internal: SUSP ${sig} entry too long (${len})`);
  const out = new Uint8Array(len);
  out[0] = sig.charCodeAt(0);
  out[1] = sig.charCodeAt(1);
  out[2] = len;
  out[3] = 1; // entry version
  out.set(payload, 4);
  return out;
}

function spEntry(): Uint8Array {
  return suspEntry('SP', Uint8Array.of(0xbe, 0xef, 0)); // check bytes, LEN_SKP 0
}

function rrEntry(flags: number): Uint8Array {
  return suspEntry('RR', Uint8Array.of(flags));
}

function pxEntry(mode: number, nlink: number): Uint8Array {
  const p = new Uint8Array(32); // mode, links, uid 0, gid 0 (RRIP 1991A: no serial number)
  both32(p, 0, mode);
  both32(p, 8, nlink);
  return suspEntry('PX', p);
}

function tfEntry(d7: Uint8Array): Uint8Array {
  // flags: modify | access | attributes (short 7-byte form)
  return suspEntry('TF', concat([Uint8Array.of(0x0e), d7, d7, d7]));
}

function nmEntry(name: string): Uint8Array {
  return suspEntry('NM', concat([Uint8Array.of(0), ascii(name)]));
}

function ceEntry(lba: number, offset: number, length: number): Uint8Array {
  const p = new Uint8Array(24);
  both32(p, 0, lba);
  both32(p, 8, offset);
  both32(p, 16, length);
  return suspEntry('CE', p);
}

function erEntry(): Uint8Array {
  const head = Uint8Array.of(ER_ID.length, ER_DESCRIPTOR.length, ER_SOURCE.length, 1);
  return suspEntry('ER', concat([head, ascii(ER_ID), ascii(ER_DESCRIPTOR), ascii(ER_SOURCE)]));
}

const CE_ENTRY_LENGTH = 28;

// ---------------------------------------------------------------------------------------
// Directory records

interface Rec {
  id: Uint8Array; // file identifier bytes (0x00 for '.', 0x01 for '..')
  isDir: boolean;
  extent: number;
  size: number;
  su: Uint8Array; // system use field (complete, including any CE)
}

function recordLength(idLen: number, suLen: number): number {
  let len = 33 + idLen + (idLen % 2 === 0 ? 1 : 0) + suLen;
  if (len % 2 === 1) len++; // keep records even-sized
  if (len > 255) throw new Error(`internal: directory record too long (${len})`);
  return len;
}

function encodeRecord(r: Rec, d7: Uint8Array): Uint8Array {
  const len = recordLength(r.id.length, r.su.length);
  const b = new Uint8Array(len);
  b[0] = len;
  b[1] = 0; // extended attribute record length
  both32(b, 2, r.extent);
  both32(b, 10, r.size);
  b.set(d7, 18);
  b[25] = r.isDir ? FLAG_DIRECTORY : 0;
  b[26] = 0; // file unit size
  b[27] = 0; // interleave gap
  both16(b, 28, 1); // volume sequence number
  b[32] = r.id.length;
  b.set(r.id, 33);
  const suOff = 33 + r.id.length + (r.id.length % 2 === 0 ? 1 : 0);
  b.set(r.su, suOff);
  return b;
}

/** Offsets of records packed into sectors (a record never straddles a sector). */
function packRecords(lengths: readonly number[]): { offsets: number[]; bytes: number } {
  const offsets: number[] = [];
  let pos = 0;
  for (const len of lengths) {
    const room = ISO_SECTOR - (pos % ISO_SECTOR);
    if (len > room) pos += room;
    offsets.push(pos);
    pos += len;
  }
  return { offsets, bytes: sectorsFor(pos) * ISO_SECTOR };
}

// ---------------------------------------------------------------------------------------
// Volume descriptors and path tables

interface VdParams {
  type: 1 | 2;
  joliet: boolean;
  volumeId: string;
  totalSectors: number;
  pathTableSize: number;
  lPath: number;
  mPath: number;
  rootRecord: Uint8Array; // 34 bytes
  created: Uint8Array; // 17 bytes
}

function volumeDescriptor(p: VdParams): Uint8Array {
  const b = new Uint8Array(ISO_SECTOR);
  const text = p.joliet ? putUcs2 : putAscii;
  b[0] = p.type;
  b.set(ascii('CD001'), 1);
  b[6] = 1;
  text(b, 8, 32, SYSTEM_ID);
  text(b, 40, 32, p.volumeId);
  both32(b, 80, p.totalSectors);
  if (p.joliet) b.set(ascii('%/E'), 88); // UCS-2 level 3
  both16(b, 120, 1); // volume set size
  both16(b, 124, 1); // volume sequence number
  both16(b, 128, ISO_SECTOR);
  both32(b, 132, p.pathTableSize);
  le32(b, 140, p.lPath);
  be32(b, 148, p.mPath);
  b.set(p.rootRecord, 156);
  text(b, 190, 128, ''); // volume set identifier
  text(b, 318, 128, ''); // publisher
  text(b, 446, 128, ''); // data preparer
  text(b, 574, 128, APPLICATION_ID);
  text(b, 702, 37, ''); // copyright file
  text(b, 739, 37, ''); // abstract file
  text(b, 776, 37, ''); // bibliographic file
  b.set(p.created, 813); // creation
  b.set(p.created, 830); // modification
  b.set(date17Unset(), 847); // expiration
  b.set(date17Unset(), 864); // effective
  b[881] = 1; // file structure version
  return b;
}

function terminator(): Uint8Array {
  const b = new Uint8Array(ISO_SECTOR);
  b[0] = 255;
  b.set(ascii('CD001'), 1);
  b[6] = 1;
  return b;
}

/** Path table holding only the root (10 bytes). */
function rootPathTable(rootLba: number, bigEndian: boolean): Uint8Array {
  const b = new Uint8Array(10);
  b[0] = 1; // identifier length
  b[1] = 0;
  if (bigEndian) {
    be32(b, 2, rootLba);
    be16(b, 6, 1);
  } else {
    le32(b, 2, rootLba);
    le16(b, 6, 1);
  }
  b[8] = 0; // root identifier
  return b;
}

// ---------------------------------------------------------------------------------------

/**
 * Build an ISO9660 image (primary tree with Rock Ridge, plus Joliet) holding `files` in
 * its root directory. Pure function of its inputs: same files + options -> same bytes,
 * independent of the order of `files`.
 */
export function writeIso9660(files: Array<{ name: string; data: Uint8Array }>, opts: IsoWriteOptions): Uint8Array {
  const volumeId = opts.volumeId;
  if (typeof volumeId !== 'string' || !/^[\x20-\x7e]{1,16}$/.test(volumeId) || volumeId.trim() !== volumeId) {
    throw new Error(`invalid volume id ${JSON.stringify(volumeId)}: 1-16 printable ASCII characters, no leading/trailing space`);
  }
  const d7 = date7(opts.epochSeconds);
  const d17 = date17(opts.epochSeconds);
  const sorted = validateFileSet(files, false);
  const isoIds = isoIdentifiers(sorted.map((f) => f.name));

  // -- primary tree records (sizes first; extents are patched after layout)
  const tf = tfEntry(d7);
  const dirPx = pxEntry(MODE_DIR, 2);
  const filePx = pxEntry(MODE_FILE, 1);
  const rootDotSuLen = 7 + 5 + dirPx.length + tf.length + CE_ENTRY_LENGTH;
  const rootDotDotSu = concat([rrEntry(RR_PX | RR_TF), dirPx, tf]);
  const primaryFiles = sorted
    .map((f, i) => ({
      file: f,
      id: ascii(isoIds[i] as string),
      su: concat([rrEntry(RR_PX | RR_NM | RR_TF), nmEntry(f.name), filePx, tf]),
    }))
    .sort((a, b) => compareIdentifiers(String.fromCharCode(...a.id), String.fromCharCode(...b.id)));
  const primaryLens = [
    recordLength(1, rootDotSuLen),
    recordLength(1, rootDotDotSu.length),
    ...primaryFiles.map((r) => recordLength(r.id.length, r.su.length)),
  ];
  const primaryPack = packRecords(primaryLens);

  // -- Joliet tree records
  const jolietFiles = sorted
    .map((f) => ({ file: f, id: ucs2(f.name) }))
    .sort((a, b) => compareIdentifiers(a.file.name, b.file.name));
  const jolietLens = [recordLength(1, 0), recordLength(1, 0), ...jolietFiles.map((r) => recordLength(r.id.length, 0))];
  const jolietPack = packRecords(jolietLens);

  // -- layout
  const er = erEntry();
  const LPATH_P = 19;
  const MPATH_P = 20;
  const LPATH_J = 21;
  const MPATH_J = 22;
  const rootP = 23;
  const ceLba = rootP + primaryPack.bytes / ISO_SECTOR;
  const rootJ = ceLba + 1;
  const dataStart = rootJ + jolietPack.bytes / ISO_SECTOR;
  const extentOf = new Map<MediaFile, number>();
  let next = dataStart;
  for (const f of sorted) {
    // An empty file gets the address where the next data would go (as mkisofs does),
    // clamped inside the image below once the total size is known.
    extentOf.set(f, next);
    next += sectorsFor(f.data.length);
  }
  const totalSectors = next;
  for (const f of sorted) {
    // Nothing follows an empty file at the very end: point it at the continuation sector,
    // which is inside the image and is no directory (libarchive rejects a file whose
    // extent equals an ancestor directory's as a loop).
    if (f.data.length === 0 && (extentOf.get(f) as number) >= totalSectors) extentOf.set(f, ceLba);
  }
  if (totalSectors > 0xffffffff) throw new Error('image too large for ISO9660');

  // -- encode
  const out = new Uint8Array(totalSectors * ISO_SECTOR);
  const rootPRec: Rec = { id: Uint8Array.of(0), isDir: true, extent: rootP, size: primaryPack.bytes, su: new Uint8Array(0) };
  const rootJRec: Rec = { id: Uint8Array.of(0), isDir: true, extent: rootJ, size: jolietPack.bytes, su: new Uint8Array(0) };

  out.set(
    volumeDescriptor({
      type: 1,
      joliet: false,
      volumeId,
      totalSectors,
      pathTableSize: 10,
      lPath: LPATH_P,
      mPath: MPATH_P,
      rootRecord: encodeRecord(rootPRec, d7),
      created: d17,
    }),
    16 * ISO_SECTOR,
  );
  out.set(
    volumeDescriptor({
      type: 2,
      joliet: true,
      volumeId,
      totalSectors,
      pathTableSize: 10,
      lPath: LPATH_J,
      mPath: MPATH_J,
      rootRecord: encodeRecord(rootJRec, d7),
      created: d17,
    }),
    17 * ISO_SECTOR,
  );
  out.set(terminator(), 18 * ISO_SECTOR);
  out.set(rootPathTable(rootP, false), LPATH_P * ISO_SECTOR);
  out.set(rootPathTable(rootP, true), MPATH_P * ISO_SECTOR);
  out.set(rootPathTable(rootJ, false), LPATH_J * ISO_SECTOR);
  out.set(rootPathTable(rootJ, true), MPATH_J * ISO_SECTOR);

  // primary root directory
  const rootDotSu = concat([spEntry(), rrEntry(RR_PX | RR_TF), dirPx, tf, ceEntry(ceLba, 0, er.length)]);
  if (rootDotSu.length !== rootDotSuLen) throw new Error('internal: root SU length mismatch');
  const primaryRecs: Rec[] = [
    { ...rootPRec, su: rootDotSu },
    { ...rootPRec, id: Uint8Array.of(1), su: rootDotDotSu },
    ...primaryFiles.map((r) => ({
      id: r.id,
      isDir: false,
      extent: extentOf.get(r.file) as number,
      size: r.file.data.length,
      su: r.su,
    })),
  ];
  primaryRecs.forEach((r, i) => out.set(encodeRecord(r, d7), rootP * ISO_SECTOR + (primaryPack.offsets[i] as number)));
  out.set(er, ceLba * ISO_SECTOR);

  // Joliet root directory
  const jolietRecs: Rec[] = [
    rootJRec,
    { ...rootJRec, id: Uint8Array.of(1) },
    ...jolietFiles.map((r) => ({
      id: r.id,
      isDir: false,
      extent: extentOf.get(r.file) as number,
      size: r.file.data.length,
      su: new Uint8Array(0),
    })),
  ];
  jolietRecs.forEach((r, i) => out.set(encodeRecord(r, d7), rootJ * ISO_SECTOR + (jolietPack.offsets[i] as number)));

  // file data
  for (const f of sorted) {
    if (f.data.length > 0) out.set(f.data, (extentOf.get(f) as number) * ISO_SECTOR);
  }
  return out;
}
