// A cache of parsed, schema-valid catalogue documents for incremental builds, kept in
// OUT/.edgeimg-state/catalogue.cache. Reading 3,400 store files costs a few seconds, nearly all
// of it in the YAML parser; a no-op rebuild should cost a fraction of a full one. An entry is
// the values of one file's documents, keyed by the sha256 of the file's bytes, and is only ever
// made from a file that parsed without a problem and whose every document passed the schema.
// The whole cache is dropped when the edgeimg version or the catalogue schema changes.
// Each document is cached with its value and its source positions (a PositionIndex snapshot),
// so diagnostics from a cached document point at the same FILE:LINE:COL as a fresh parse.

import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { sha256Hex } from '../util/fsx.js';
import { packagePath } from '../util/paths.js';
import { generator } from '../version.js';

const MAX_CACHE_BYTES = 256 << 20;
const FORMAT = 2; // entries: Array<{ value, pos: PositionSnapshot }>

let schemaKey: string | undefined;
function cacheKey(): string {
  schemaKey ??= sha256Hex(`${FORMAT}\n${generator().version}\n${sha256Hex(readFileSync(packagePath('schemas', 'catalogue.schema.json')))}`);
  return schemaKey;
}

export class ParseCache {
  private readonly old: Map<string, Buffer>;
  private readonly used = new Map<string, Buffer>();
  private hits = 0;

  private constructor(
    private readonly file: string,
    old: Map<string, Buffer>,
  ) {
    this.old = old;
  }

  /** The cache at `file`; empty when it is missing, unreadable or from another version. */
  static open(file: string): ParseCache {
    let old = new Map<string, Buffer>();
    try {
      if (statSync(file).size <= MAX_CACHE_BYTES) {
        const v = deserialize(readFileSync(file)) as { key?: unknown; entries?: unknown };
        if (v && v.key === cacheKey() && v.entries instanceof Map) old = v.entries as Map<string, Buffer>;
      }
    } catch {
      // no cache (first build) or an unreadable one: parse everything
    }
    return new ParseCache(file, old);
  }

  /** The document values of a file with these bytes, when it parsed and validated cleanly before. */
  get(sha256: string): unknown[] | undefined {
    const hit = this.old.get(sha256) ?? this.used.get(sha256);
    if (!hit) return undefined;
    this.used.set(sha256, hit);
    this.hits++;
    return deserialize(hit) as unknown[];
  }

  /** Remember a cleanly parsed and validated file's document values (copied now). */
  set(sha256: string, values: unknown[]): void {
    this.used.set(sha256, serialize(values));
  }

  get hitCount(): number {
    return this.hits;
  }

  /** Write the entries this load used (older ones are dropped), atomically. Best effort. */
  save(): void {
    const tmp = `${this.file}.tmp-${process.pid}`;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileSync(tmp, serialize({ key: cacheKey(), entries: this.used }), { mode: 0o644 });
      renameSync(tmp, this.file);
    } catch {
      rmSync(tmp, { force: true }); // a cache: failing to write it only costs a parse next time
    }
  }
}
