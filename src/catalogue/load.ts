// Reads every YAML file under the catalogue directory, validates each document against the
// catalogue schema, and indexes documents by kind and name. Errors are collected, never
// thrown one at a time, so a user sees everything wrong in one run.

import { readdirSync, statSync, type Dirent } from 'node:fs';
import { stat } from 'node:fs/promises';
import { relative, resolve, join } from 'node:path';
import { sha256Hex } from '../util/fsx.js';
import type { Diagnostic } from '../util/diagnostics.js';
import { excerpt } from './excerpt.js';
import { fileTypeOf, readRegularFileSync } from '../util/safe-read.js';
import { MAX_CATALOGUE_FILE_BYTES } from './files.js';
import { parseYaml, PositionIndex, type PositionSnapshot, type YamlDoc } from './yaml.js';
import type { ParseCache } from './parse-cache.js';
import { validateDocument } from './schema.js';
import type { Catalogue, Entry, FleetSpec, HardwareSpec, ProfileSpec, SiteSpec } from './types.js';

export interface LoadResult {
  catalogue: Catalogue;
  diagnostics: Diagnostic[];
}

/** Path as shown to users: relative to the working directory when that is shorter. */
export function displayPath(abs: string): string {
  const rel = relative(process.cwd(), abs);
  return rel && !rel.startsWith('..') ? rel : abs;
}

const YAML_NAME = /\.ya?ml$/;

/**
 * Every YAML file under `dir`, sorted. Symlinks are never followed; a symlink or other
 * non-regular entry that would have been read (a *.yaml name, or a link to a directory) is an
 * error rather than silently skipped. Non-YAML entries are ignored as before.
 */
function listYamlFiles(dir: string, diagnostics: Diagnostic[]): string[] {
  const out: string[] = [];
  const refuse = (p: string, what: string): void => {
    diagnostics.push({ file: displayPath(p), line: 1, col: 1, message: `${what}; catalogue files must be regular files inside the catalogue (symlinks are not followed)` });
  };
  const walk = (d: string): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (err) {
      diagnostics.push({ file: displayPath(d), line: 1, col: 1, message: `cannot list directory (${(err as NodeJS.ErrnoException).code ?? String(err)})` });
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        if (YAML_NAME.test(e.name)) out.push(p);
      } else if (e.isSymbolicLink()) {
        let target: string | undefined;
        try {
          target = statSync(p).isDirectory() ? 'a directory' : undefined; // stat never opens the target
        } catch {
          target = undefined; // dangling
        }
        if (YAML_NAME.test(e.name)) refuse(p, 'is a symbolic link');
        else if (target) refuse(p, `is a symbolic link to ${target}`);
      } else if (YAML_NAME.test(e.name)) {
        refuse(p, `is ${fileTypeOf(e)}, not a regular file`);
      }
    }
  };
  walk(dir);
  return out.sort();
}

export interface LoadOptions {
  /** Parsed documents of files seen before (incremental builds; src/catalogue/parse-cache.ts). */
  parseCache?: ParseCache;
}

export async function loadCatalogue(dir: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const root = resolve(dir);
  const diagnostics: Diagnostic[] = [];
  const catalogue: Catalogue = {
    root,
    hardware: new Map(),
    profiles: new Map(),
    sites: new Map(),
    fileDigests: new Map(),
  };
  const st = await stat(root).catch(() => undefined);
  if (!st?.isDirectory()) {
    diagnostics.push({ file: displayPath(root), line: 1, col: 1, message: 'catalogue directory not found' });
    return { catalogue, diagnostics };
  }
  const files = listYamlFiles(root, diagnostics);
  const fleets: Entry<FleetSpec>[] = [];
  for (const abs of files) {
    // opened O_NOFOLLOW|O_NONBLOCK and checked with fstat: a file swapped for a symlink or a
    // FIFO after listing is refused, never followed or waited on
    const read = readRegularFileSync(abs, MAX_CATALOGUE_FILE_BYTES, 'catalogue files');
    if ('problem' in read) {
      diagnostics.push({ file: displayPath(abs), line: 1, col: 1, message: `file ${read.problem}` });
      continue;
    }
    const buf = read.data;
    const sha = sha256Hex(buf);
    catalogue.fileDigests.set(abs, sha);
    const display = displayPath(abs);
    const cached = opts.parseCache?.get(sha) as Array<{ value: unknown; pos: PositionSnapshot }> | undefined;
    if (cached) {
      // these very bytes parsed and passed the schema before
      for (const d of cached) index({ file: display, value: d.value, pos: PositionIndex.restore(d.pos, display) }, catalogue, fleets, diagnostics);
      continue;
    }
    const { docs, diagnostics: yamlDiags } = parseYaml(display, buf.toString('utf8'));
    diagnostics.push(...yamlDiags);
    let clean = yamlDiags.length === 0;
    const valid: YamlDoc[] = [];
    for (const doc of docs) {
      const schemaDiags = validateDocument(doc);
      if (schemaDiags.length > 0) {
        diagnostics.push(...schemaDiags);
        clean = false;
        continue;
      }
      valid.push(doc);
      index(doc, catalogue, fleets, diagnostics);
    }
    // copied now, before resolve reads (or changes) anything
    if (clean) opts.parseCache?.set(sha, valid.map((d) => ({ value: d.value, pos: d.pos.snapshot() })));
  }
  if (fleets.length === 0 && !diagnostics.some((d) => /YAML|Fleet/.test(d.message))) {
    diagnostics.push({ file: displayPath(root), line: 1, col: 1, message: 'no Fleet document found in the catalogue' });
  }
  for (const extra of fleets.slice(1)) {
    diagnostics.push({
      ...extra.doc.pos.value('/kind'),
      message: `a second Fleet document; the first is ${fmt(fleets[0]!.doc.pos.value('/kind'))}`,
    });
  }
  catalogue.fleet = fleets[0];
  return { catalogue, diagnostics };
}

function index(doc: YamlDoc, cat: Catalogue, fleets: Entry<FleetSpec>[], diags: Diagnostic[]): void {
  const v = doc.value as { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: unknown };
  const entry = { name: v.metadata?.name, spec: v.spec, labels: v.metadata?.labels ?? {}, doc };
  const add = <T>(map: Map<string, Entry<T>>, what: string): void => {
    const prev = map.get(entry.name);
    if (prev) {
      diags.push({
        ...doc.pos.value('/metadata/name'),
        message: `duplicate ${what} ${excerpt(entry.name)}; first defined at ${fmt(prev.doc.pos.value('/metadata/name'))}`,
      });
      return;
    }
    map.set(entry.name, entry as Entry<T>);
  };
  switch (v.kind) {
    case 'Fleet':
      fleets.push(entry as Entry<FleetSpec>);
      break;
    case 'HardwareClass':
      add<HardwareSpec>(cat.hardware, 'hardware class');
      break;
    case 'SiteProfile':
      add<ProfileSpec>(cat.profiles, 'site profile');
      break;
    case 'Site':
      add<SiteSpec>(cat.sites, 'site id');
      break;
    case 'Overlay':
      break; // overlays are read where a catalogue entry references them
  }
}

export function fmt(p: { file: string; line: number; col: number }): string {
  return `${p.file}:${p.line}:${p.col}`;
}
