// Shared pieces of the in-process media writers: the file-name rules both the ISO9660
// and the FAT writer enforce, and epoch -> calendar conversion (always UTC, never the clock).

export interface MediaFile {
  name: string;
  data: Uint8Array;
}

/** Longest file name accepted: the Joliet limit (64 UCS-2 characters). */
export const MAX_NAME_LENGTH = 64;

// Characters that at least one of Joliet, FAT long names or the ISO version suffix cannot
// carry; rejecting them keeps every tree (Rock Ridge, Joliet, ISO, FAT LFN) in agreement.
const FORBIDDEN = new Set(['/', '\\', ':', '*', '?', '"', '<', '>', '|', ';']);

/**
 * Validate one media file name. Names are printable ASCII (0x20-0x7e) without
 * `/ \ : * ? " < > | ;`, 1..64 characters, no leading or trailing space, no trailing dot,
 * and not `.`/`..`. Throws an Error naming the offending file and rule.
 */
export function validateName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new Error(`invalid file name: expected a string, got ${typeof name}`);
  const shown = JSON.stringify(name);
  if (name.length === 0) throw new Error('invalid file name: empty name');
  if (name.length > MAX_NAME_LENGTH) {
    throw new Error(`invalid file name ${shown}: longer than ${MAX_NAME_LENGTH} characters`);
  }
  for (const ch of name) {
    const c = ch.codePointAt(0) ?? 0;
    if (c < 0x20 || c > 0x7e) {
      throw new Error(`invalid file name ${shown}: only printable ASCII is allowed (found U+${c.toString(16).padStart(4, '0')})`);
    }
    if (FORBIDDEN.has(ch)) throw new Error(`invalid file name ${shown}: character '${ch}' is not allowed`);
  }
  if (name === '.' || name === '..') throw new Error(`invalid file name ${shown}: reserved name`);
  if (name.startsWith(' ') || name.endsWith(' ')) throw new Error(`invalid file name ${shown}: leading or trailing space`);
  if (name.endsWith('.')) throw new Error(`invalid file name ${shown}: trailing dot`);
}

/**
 * Validate a whole file set and return it sorted by name (UTF-16 code unit order), so
 * that output bytes never depend on the order the caller listed the files in.
 * `caseInsensitive` rejects names equal ignoring ASCII case (FAT).
 */
export function validateFileSet(files: readonly MediaFile[], caseInsensitive: boolean): MediaFile[] {
  if (!Array.isArray(files)) throw new Error('invalid file set: expected an array');
  const seen = new Map<string, string>();
  for (const f of files) {
    if (f === null || typeof f !== 'object') throw new Error('invalid file set: entries must be { name, data }');
    validateName(f.name);
    if (!(f.data instanceof Uint8Array)) throw new Error(`invalid file ${JSON.stringify(f.name)}: data must be a Uint8Array`);
    const key = caseInsensitive ? f.name.toUpperCase() : f.name;
    const prev = seen.get(key);
    if (prev !== undefined) {
      throw new Error(
        `duplicate file name ${JSON.stringify(f.name)}${prev !== f.name ? ` (clashes with ${JSON.stringify(prev)} ignoring case)` : ''}`,
      );
    }
    seen.set(key, f.name);
  }
  return [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface UtcParts {
  year: number;
  month: number; // 1-12
  day: number; // 1-31
  hour: number;
  minute: number;
  second: number;
}

export function checkEpoch(epochSeconds: number): void {
  if (!Number.isSafeInteger(epochSeconds) || epochSeconds < 0) {
    throw new RangeError(`epochSeconds must be a non-negative integer, got ${String(epochSeconds)}`);
  }
}

export function utcParts(epochSeconds: number): UtcParts {
  checkEpoch(epochSeconds);
  const d = new Date(epochSeconds * 1000);
  if (Number.isNaN(d.getTime())) throw new RangeError(`epochSeconds out of range: ${epochSeconds}`);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
  };
}

/** Bounds-checked view helpers shared by the readers. */
export function u16le(b: Uint8Array, off: number): number {
  return (b[off] ?? 0) | ((b[off + 1] ?? 0) << 8);
}
export function u32le(b: Uint8Array, off: number): number {
  return ((b[off] ?? 0) | ((b[off + 1] ?? 0) << 8) | ((b[off + 2] ?? 0) << 16)) + (b[off + 3] ?? 0) * 0x1000000;
}
export function u16be(b: Uint8Array, off: number): number {
  return ((b[off] ?? 0) << 8) | (b[off + 1] ?? 0);
}
export function u32be(b: Uint8Array, off: number): number {
  return (b[off] ?? 0) * 0x1000000 + (((b[off + 1] ?? 0) << 16) | ((b[off + 2] ?? 0) << 8) | (b[off + 3] ?? 0));
}
