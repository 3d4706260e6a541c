// YAML loading that keeps source positions, so every later check can point at FILE:LINE:COL.
// We use `yaml` (eemeli) rather than js-yaml: it exposes node ranges and caps alias
// expansion (billion-laughs) natively. See docs/decisions.md.

import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Node, type Tags } from 'yaml';
import type { Diagnostic, SourcePos } from '../util/diagnostics.js';
import { bare, excerpt, plainMessage } from './excerpt.js';

/** Where one node's key and value start (source offsets), and its children by escaped segment. */
export interface PosNode {
  key: number; // -1: none (document root, sequence items)
  value: number; // -1: none
  children?: Map<string, PosNode>;
}

/**
 * JSON-pointer-like path ('/spec/nodes/0/mac') to where its key and value sit in the file.
 * Positions are kept as a tree of path segments holding source offsets, so indexing costs time
 * and memory linear in the file: no full path string is built per node (a flat map of paths
 * costs the path length for every node, which a long key over many children makes quadratic).
 */
export class PositionIndex {
  private root: PosNode = { key: -1, value: -1 };
  constructor(
    readonly file: string,
    readonly docStart: SourcePos,
    private readonly lineCol: (offset: number) => { line: number; col: number },
    /** The file's line start offsets (yaml's LineCounter), kept for snapshot(). */
    private readonly lineStarts: readonly number[] = [],
  ) {}

  /** Plain data (structured-clone safe) from which restore() rebuilds this index. */
  snapshot(): PositionSnapshot {
    return { docStart: { line: this.docStart.line, col: this.docStart.col }, root: this.root, lineStarts: [...this.lineStarts] };
  }

  /** The index a snapshot was taken of, for `file` (its display path now). */
  static restore(snap: PositionSnapshot, file: string): PositionIndex {
    const lc = new LineCounter();
    for (const offset of snap.lineStarts) lc.addNewLine(offset);
    const index = new PositionIndex(file, { file, ...snap.docStart }, (offset) => lc.linePos(offset), snap.lineStarts);
    index.root = snap.root;
    return index;
  }

  /** The node at `path`, if indexed. */
  private node(path: string): PosNode | undefined {
    let cur: PosNode | undefined = this.root;
    if (path === '') return cur;
    for (const seg of path.slice(1).split('/')) {
      cur = cur.children?.get(seg);
      if (!cur) return undefined;
    }
    return cur;
  }
  /** The child of `parent` at segment `seg` (escaped), created for indexing. */
  child(parent: PosNode, seg: string): PosNode {
    let next = parent.children?.get(seg);
    if (!next) {
      next = { key: -1, value: -1 };
      (parent.children ??= new Map()).set(seg, next);
    }
    return next;
  }
  rootNode(): PosNode {
    return this.root;
  }

  private resolve(offset: number): SourcePos {
    const { line, col } = this.lineCol(offset);
    return { file: this.file, line, col };
  }

  /** Position of the value at `path`, or of the nearest ancestor that exists. */
  value(path: string): SourcePos {
    let cur: PosNode | undefined = this.root;
    let best = cur.value;
    if (path !== '') {
      for (const seg of path.slice(1).split('/')) {
        cur = cur.children?.get(seg);
        if (!cur) break;
        if (cur.value !== -1) best = cur.value;
      }
    }
    return best === -1 ? this.docStart : this.resolve(best);
  }
  /** Position of the key at `path` (useful for unknown-key errors), falling back to its value. */
  key(path: string): SourcePos {
    const n = this.node(path);
    return n && n.key !== -1 ? this.resolve(n.key) : this.value(path);
  }
  /**
   * Every path that has a key position, in document order. Paths longer than `maxLength`
   * characters (and everything below them) are left out, so the list stays bounded.
   */
  keyPaths(maxLength = 4096): string[] {
    const out: string[] = [];
    const walk = (n: PosNode, path: string): void => {
      if (!n.children) return;
      for (const [seg, c] of n.children) {
        const p = `${path}/${seg}`;
        if (p.length > maxLength) continue;
        if (c.key !== -1) out.push(p);
        walk(c, p);
      }
    };
    walk(this.root, '');
    return out;
  }
}

/** A PositionIndex as plain data (the catalogue parse cache keeps these). */
export interface PositionSnapshot {
  docStart: { line: number; col: number };
  root: PosNode;
  lineStarts: number[];
}

export interface YamlDoc {
  file: string;
  value: unknown;
  pos: PositionIndex;
}

export interface YamlLoadResult {
  docs: YamlDoc[];
  diagnostics: Diagnostic[];
}

/** Alias expansions allowed per document; real catalogues use a handful at most. */
const MAX_ALIAS_COUNT = 100;

/**
 * Longest mapping key, in characters. YAML itself limits implicit keys (`key: value`) to 1024;
 * this holds explicit ones (`? key`) to the same, so paths and messages stay short.
 */
export const MAX_KEY_CHARS = 1024;

/** Explicit tags a catalogue may use: the JSON-compatible core of YAML (1.1 adds !!timestamp, !!merge). */
const CORE_TAGS = ['str', 'int', 'float', 'bool', 'null', 'seq', 'map'].map((t) => `tag:yaml.org,2002:${t}`);
/** YAML 1.1 types with no JSON equivalent (bytes, sets, ordered maps): unknown tags here. */
const NON_JSON_TAGS = new Set(['binary', 'omap', 'pairs', 'set'].map((t) => `tag:yaml.org,2002:${t}`));
const withoutNonJsonTags = (tags: Tags): Tags => tags.filter((t) => typeof t === 'string' || !NON_JSON_TAGS.has(t.tag));

export function escapePointer(seg: string | number): string {
  return String(seg).replace(/~/g, '~0').replace(/\//g, '~1');
}

function shortTag(tag: string): string {
  return tag.startsWith('tag:yaml.org,2002:') ? `!!${tag.slice('tag:yaml.org,2002:'.length)}` : tag;
}

/** A tag warning of the `yaml` library as our error message. */
function tagMessage(code: string, message: string): string {
  const m = /^Unresolved tag: (.*)$/s.exec(message);
  if (m) {
    const tag = m[1]!;
    if (CORE_TAGS.includes(tag)) return `value does not match its YAML tag ${shortTag(tag)}`;
    return `unknown YAML tag ${bare(shortTag(tag))}; only !!str, !!int, !!float, !!bool, !!null, !!seq and !!map may be used`;
  }
  if (code === 'BAD_COLLECTION_TYPE') {
    const c = /^(\S+) used for (\w+) collection/.exec(message);
    if (c) return `YAML tag ${bare(shortTag(c[1]!))} cannot tag a ${c[2] === 'map' ? 'mapping' : 'sequence'}`;
  }
  return `YAML tag error: ${plainMessage(message)}`;
}

/**
 * `version: '1.1'` reads scalars as YAML 1.1 readers do (0644 is octal 420, `on` is true): for
 * text destined for Kairos/yip, which decodes with gopkg.in/yaml.v2.
 *
 * Cost is linear in the text: duplicate keys are found here with a set per mapping while
 * indexing positions (the library's `uniqueKeys` check compares every pair of keys, 40,000 keys
 * took 14-46 s), unknown tags (`!!python/object`, `!custom`, `!!binary`) are errors at the tag,
 * aliases are capped before expansion.
 */
export function parseYaml(file: string, text: string, opts: { version?: '1.1' | '1.2' } = {}): YamlLoadResult {
  const lc = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  const lineCol = (offset: number): { line: number; col: number } => lc.linePos(offset);
  const at = (offset: number): SourcePos => ({ file, ...lineCol(offset) });
  const version = opts.version ?? '1.2';
  const docs: YamlDoc[] = [];
  const parsed = parseAllDocuments(text, {
    lineCounter: lc,
    prettyErrors: false,
    uniqueKeys: false, // checked in indexNode, in linear time
    resolveKnownTags: false, // !!binary, !!set, !!timestamp… are not JSON: unknown tags
    customTags: withoutNonJsonTags,
    strict: true,
    version,
  });
  const list = Array.isArray(parsed) ? parsed : [parsed];
  for (const doc of list) {
    const errs = [...doc.errors];
    for (const e of errs) diagnostics.push({ ...at(e.pos[0]), message: `YAML syntax error: ${plainMessage(e.message)}` });
    if (errs.length > 0) continue;
    let bad = false;
    for (const w of doc.warnings) {
      if (w.code !== 'TAG_RESOLVE_FAILED' && w.code !== 'BAD_COLLECTION_TYPE') continue;
      diagnostics.push({ ...at(w.pos[0]), message: tagMessage(w.code, w.message) });
      bad = true;
    }
    if (doc.contents === null) continue; // empty document (e.g. a trailing '---')
    const start = at(doc.contents.range?.[0] ?? 0);
    const pos = new PositionIndex(file, start, lineCol, lc.lineStarts);
    const ctx: IndexCtx = { pos, at, merge: version === '1.1', problems: [] };
    indexNode(doc.contents as Node, pos.rootNode(), ctx);
    if (ctx.problems.length > 0) {
      diagnostics.push(...ctx.problems);
      bad = true;
    }
    if (bad) continue;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      const tooMany = /alias/i.test(msg);
      diagnostics.push({
        ...start,
        message: tooMany
          ? `YAML aliases expand to too many nodes (limit ${MAX_ALIAS_COUNT}); refusing a possible alias bomb`
          : `YAML error: ${plainMessage(msg)}`,
      });
      continue;
    }
    docs.push({ file, value, pos });
  }
  return { docs, diagnostics };
}

interface IndexCtx {
  pos: PositionIndex;
  at: (offset: number) => SourcePos;
  /** YAML 1.1 merge keys (`<<`) may repeat. */
  merge: boolean;
  problems: Diagnostic[];
}

/** The property name a scalar key becomes in the loaded object (as `yaml`'s toJS names it). */
function jsKey(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'symbol') return '<<'; // YAML 1.1 merge key
  return typeof v === 'object' ? JSON.stringify(v) ?? String(v) : String(v);
}

function indexNode(node: Node | null, at: PosNode, ctx: IndexCtx): void {
  if (!node) return;
  if (node.range) at.value = node.range[0];
  if (isAlias(node)) return; // positions inside an alias point at the anchor; the alias itself is enough
  if (isMap(node)) {
    const seen = new Map<string, number>(); // property name -> offset of its first key
    for (const item of node.items) {
      if (!isPair(item)) continue;
      const k = item.key as Node | null;
      const keyOffset = k?.range?.[0] ?? node.range?.[0] ?? 0;
      if (k !== null && !isScalar(k)) {
        ctx.problems.push({ ...ctx.at(keyOffset), message: 'a mapping key must be a plain value, not a collection or an alias' });
        continue;
      }
      const name = jsKey(k?.value);
      if (name.length > MAX_KEY_CHARS) {
        ctx.problems.push({ ...ctx.at(keyOffset), message: `mapping key ${excerpt(name)} is longer than ${MAX_KEY_CHARS} characters` });
        continue;
      }
      const isMerge = ctx.merge && typeof k?.value === 'symbol';
      const first = seen.get(name);
      if (first !== undefined && !isMerge) {
        const f = ctx.at(first);
        ctx.problems.push({ ...ctx.at(keyOffset), message: `duplicate key ${excerpt(name)}; mapping keys must be unique (first at line ${f.line}, column ${f.col})` });
        continue;
      }
      seen.set(name, keyOffset);
      const child = ctx.pos.child(at, escapePointer(name));
      if (k?.range) child.key = k.range[0];
      const v = item.value as Node | null;
      if (v) indexNode(v, child, ctx);
      else if (k?.range) child.value = k.range[0];
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => indexNode(item as Node, ctx.pos.child(at, String(i)), ctx));
  }
}
