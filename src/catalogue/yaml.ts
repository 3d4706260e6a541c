// YAML loading that keeps source positions, so every later check can point at FILE:LINE:COL.
// We use `yaml` (eemeli) rather than js-yaml: it exposes node ranges and caps alias
// expansion (billion-laughs) natively. See docs/decisions.md.

import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Node } from 'yaml';
import type { Diagnostic, SourcePos } from '../util/diagnostics.js';

/** JSON-pointer-like path ('/spec/nodes/0/mac') to where its key and value sit in the file. */
export class PositionIndex {
  private readonly keys = new Map<string, SourcePos>();
  private readonly values = new Map<string, SourcePos>();
  constructor(readonly file: string, readonly docStart: SourcePos) {}

  setKey(path: string, pos: SourcePos): void {
    this.keys.set(path, pos);
  }
  setValue(path: string, pos: SourcePos): void {
    this.values.set(path, pos);
  }
  /** Position of the value at `path`, or of the nearest ancestor that exists. */
  value(path: string): SourcePos {
    return this.lookup(path, this.values) ?? this.docStart;
  }
  /** Every path that has a key position, in document order. */
  keyPaths(): string[] {
    return [...this.keys.keys()];
  }
  /** Position of the key at `path` (useful for unknown-key errors), falling back to its value. */
  key(path: string): SourcePos {
    return this.keys.get(path) ?? this.value(path);
  }
  private lookup(path: string, map: Map<string, SourcePos>): SourcePos | undefined {
    let p = path;
    for (;;) {
      const hit = map.get(p);
      if (hit) return hit;
      if (p === '') return undefined;
      p = p.slice(0, Math.max(0, p.lastIndexOf('/')));
    }
  }
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

export function escapePointer(seg: string | number): string {
  return String(seg).replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * `version: '1.1'` reads scalars as YAML 1.1 readers do (0644 is octal 420, `on` is true): for
 * text destined for Kairos/yip, which decodes with gopkg.in/yaml.v2.
 */
export function parseYaml(file: string, text: string, opts: { version?: '1.1' | '1.2' } = {}): YamlLoadResult {
  const lc = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  const at = (offset: number): SourcePos => {
    const { line, col } = lc.linePos(offset);
    return { file, line, col };
  };
  const docs: YamlDoc[] = [];
  const parsed = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, strict: true, version: opts.version ?? '1.2' });
  const list = Array.isArray(parsed) ? parsed : [parsed];
  for (const doc of list) {
    const errs = [...doc.errors];
    for (const e of errs) diagnostics.push({ ...at(e.pos[0]), message: `YAML syntax error: ${firstLine(e.message)}` });
    if (errs.length > 0) continue;
    if (doc.contents === null) continue; // empty document (e.g. a trailing '---')
    const start = at(doc.contents.range?.[0] ?? 0);
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
          : `YAML error: ${firstLine(msg)}`,
      });
      continue;
    }
    const pos = new PositionIndex(file, start);
    indexNode(doc.contents as Node, '', pos, at);
    docs.push({ file, value, pos });
  }
  return { docs, diagnostics };
}

function indexNode(node: Node | null, path: string, pos: PositionIndex, at: (o: number) => SourcePos): void {
  if (!node) return;
  if (node.range) pos.setValue(path, at(node.range[0]));
  if (isAlias(node)) return; // positions inside an alias point at the anchor; the alias itself is enough
  if (isMap(node)) {
    for (const item of node.items) {
      if (!isPair(item)) continue;
      const k = item.key as Node | null;
      const keyStr = isScalar(k) ? String(k.value) : '';
      const p = `${path}/${escapePointer(keyStr)}`;
      if (k?.range) pos.setKey(p, at(k.range[0]));
      const v = item.value as Node | null;
      if (v) indexNode(v, p, pos, at);
      else if (k?.range) pos.setValue(p, at(k.range[0]));
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => indexNode(item as Node, `${path}/${i}`, pos, at));
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}
