// NoCloud seed media: the `cidata` volume holding user-data, meta-data and network-config.
// Talos (platform nocloud) and cloud-init read all three; Kairos (yip's cdrom datasource,
// v1.16.5 cdrom_shared.go FindCIs) reads only user-data, and finds the volume through go-diskfs,
// which knows ISO9660 and FAT32 only. See docs/consumers.md.

import { UsageError } from '../util/diagnostics.js';
import { writeFatImage } from './fat/writer.js';
import { writeIso9660 } from './iso9660/writer.js';
import { STICK_INFO_NAME } from './stick-info.js';

export interface SeedFiles {
  userData: Uint8Array | string;
  metaData: Uint8Array | string;
  networkConfig: Uint8Array | string;
}

/** Volume label of the seed ISO (what Talos, Kairos and cloud-init look for). */
export const SEED_ISO_LABEL = 'cidata';
/** Volume label of the FAT seed image (FAT labels are upper-case; NoCloud matches either). */
export const SEED_IMG_LABEL = 'CIDATA';

const utf8 = new TextEncoder();

function bytes(v: Uint8Array | string, what: string): Uint8Array {
  if (typeof v === 'string') return utf8.encode(v);
  if (v instanceof Uint8Array) return v;
  throw new TypeError(`seed ${what}: expected a string or Uint8Array`);
}

export function seedFileList(files: SeedFiles): Array<{ name: string; data: Uint8Array }> {
  return [
    { name: 'user-data', data: bytes(files.userData, 'user-data') },
    { name: 'meta-data', data: bytes(files.metaData, 'meta-data') },
    { name: 'network-config', data: bytes(files.networkConfig, 'network-config') },
  ];
}

/** ISO9660 (Rock Ridge + Joliet) seed labelled `cidata`. */
export function buildSeedIso(files: SeedFiles, epochSeconds: number): Uint8Array {
  return writeIso9660(seedFileList(files), { volumeId: SEED_ISO_LABEL, epochSeconds });
}

/**
 * FAT32 seed image (for USB sticks) labelled `CIDATA`, with long file names. `info` is the
 * human-readable EDGEIMG.TXT (stick-info.ts); the consumers ignore files they do not read.
 */
export function buildSeedImg(files: SeedFiles, epochSeconds: number, info?: string): Uint8Array {
  const list = seedFileList(files);
  if (info !== undefined) list.push({ name: STICK_INFO_NAME, data: bytes(info, STICK_INFO_NAME) });
  return writeFatImage(list, { label: SEED_IMG_LABEL, epochSeconds });
}

/** 2020-01-01T00:00:00Z: start of the window digest-derived timestamps fall in. */
export const DIGEST_EPOCH_BASE = 1577836800;
/** Width of that window: four years of 365 days. */
export const DIGEST_EPOCH_SPAN = 4 * 365 * 86400;
/** Latest timestamp every seed format can hold (ISO9660 directory dates end in 2155). */
export const MAX_SEED_EPOCH = Date.UTC(2156, 0, 1) / 1000 - 1;

/**
 * A fixed, plausible timestamp for media built from inputs with this digest, used when
 * SOURCE_DATE_EPOCH is unset: 2020-01-01 plus an offset taken from the first 32 bits of
 * the digest, within four years, rounded down to an even second (FAT keeps 2-second
 * resolution, so the ISO and FAT seeds carry the same time). Same digest -> same time;
 * it never reveals when the build ran.
 */
export function epochFromDigest(hexDigest: string): number {
  if (typeof hexDigest !== 'string' || !/^[0-9a-fA-F]{8,}$/.test(hexDigest)) {
    throw new TypeError(`epochFromDigest: expected a hex digest of at least 8 digits, got ${JSON.stringify(hexDigest)}`);
  }
  const n = Number.parseInt(hexDigest.slice(0, 8), 16);
  const offset = n % DIGEST_EPOCH_SPAN;
  return DIGEST_EPOCH_BASE + offset - (offset % 2);
}

/**
 * The timestamp to stamp media with: SOURCE_DATE_EPOCH when set (reproducible-builds.org
 * convention: decimal seconds since 1970), else epochFromDigest(digest). An empty
 * SOURCE_DATE_EPOCH counts as unset; a malformed or out-of-range one is an error rather
 * than silently ignored.
 */
export function resolveEpoch(env: Readonly<Record<string, string | undefined>>, digest: string): number {
  const raw = env['SOURCE_DATE_EPOCH'];
  if (raw === undefined || raw === '') return epochFromDigest(digest);
  if (!/^[0-9]{1,12}$/.test(raw)) {
    throw new UsageError(`SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01 UTC, got ${JSON.stringify(raw)}`);
  }
  const v = Number(raw);
  if (v > MAX_SEED_EPOCH) {
    throw new UsageError(`SOURCE_DATE_EPOCH ${raw} is after 2155-12-31, the last date ISO9660 can record`);
  }
  return v;
}
