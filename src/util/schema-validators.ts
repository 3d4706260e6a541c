// JSON Schema validators compiled ahead of time. Compiling the catalogue, Kairos and Talos
// schemas with Ajv cost ~0.7 s at every start of `validate` and `build`; scripts/precompile.ts
// writes Ajv's standalone code for each set below into dist/precompiled/validators/<id>.cjs
// (at `npm run build`), and loading that is a few milliseconds. Build output, not committed.
//
// A compiled file is used only when its key matches: a digest of the schema file's bytes, the
// Ajv (and ajv-formats) version and the options. Anything else (no file yet, a schema edited
// since the last build, another Ajv) compiles the schema at run time, as before, with the same
// options: slower, never different. Either way the functions are Ajv's own, so errors, and the
// diagnostics made from them, are the same byte for byte.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { AnySchemaObject, Options, ValidateFunction } from 'ajv';
import { requireWithCodeCache } from './code-cache.js';
import { packagePath } from './paths.js';

/** One schema file, the Ajv that compiles it, and the references callers validate against. */
export interface ValidatorSet {
  /** File name in dist/precompiled/validators/ (without .cjs). */
  id: string;
  /** The schema file, relative to the package root. */
  schema: readonly string[];
  dialect: 'draft-07' | '2020-12';
  options: Options;
  /** Add ajv-formats (full mode). */
  formats?: boolean;
  /**
   * Drop annotation keywords (description, title, …) before compiling. Validation ignores them;
   * Ajv would otherwise embed them in the code (the Talos schemas: ~0.5 MB each). Only for sets
   * whose callers never read `parentSchema`/`schema` (those need `verbose`).
   */
  stripAnnotations?: boolean;
  /** '#' for the schema root; '#/$defs' for every definition, each as `#/$defs/<name>`. */
  refs: '#' | '#/$defs';
  /**
   * One module per reference, in dist/precompiled/validators/<id>/, with an index: for sets of
   * many definitions of which a run uses a few (a Talos node uses ~8 of ~125; loading all of
   * them cost ~25 ms).
   */
  split?: boolean;
}

export type Validators = (ref: string) => ValidateFunction | undefined;

/** Bump when the generated file's shape or the key's inputs change. */
const FORMAT = 'edgeimg-validators/1';

const require = createRequire(import.meta.url);

export function compiledDir(): string {
  return packagePath('dist', 'precompiled', 'validators');
}

/** The references a set exports, for its (prepared) schema. */
export function setRefs(set: ValidatorSet, schema: AnySchemaObject): string[] {
  if (set.refs === '#') return ['#'];
  return Object.keys((schema.$defs ?? {}) as object).map((name) => `#/$defs/${name}`);
}

/** What a compiled file must have been generated from to be used. */
export function validatorKey(set: ValidatorSet, schemaBytes: Buffer): string {
  const h = createHash('sha256');
  const versions = [`ajv@${packageVersion('ajv')}`, set.formats ? `ajv-formats@${packageVersion('ajv-formats')}` : ''];
  h.update(JSON.stringify([FORMAT, set.id, set.dialect, set.options, !!set.formats, !!set.stripAnnotations, set.refs, !!set.split, versions]));
  h.update('\0');
  h.update(schemaBytes);
  return h.digest('hex');
}

function packageVersion(name: string): string {
  return (require(`${name}/package.json`) as { version: string }).version;
}

const ANNOTATIONS = new Set(['description', 'markdownDescription', 'x-intellij-html-description', 'title', 'examples', '$comment']);
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);
const SCHEMA_LISTS = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems', 'items']);
const SCHEMA_ONE = new Set(['additionalProperties', 'items', 'not', 'if', 'then', 'else', 'contains', 'propertyNames', 'unevaluatedProperties', 'unevaluatedItems', 'additionalItems']);

/** A copy of a schema without annotation keywords, walking only schema positions (never enum/const values or property names). */
export function stripAnnotations(schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (ANNOTATIONS.has(k)) continue;
    if (SCHEMA_MAPS.has(k) && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      out[k] = Object.fromEntries(Object.entries(v).map(([name, sub]) => [name, stripAnnotations(sub)]));
    } else if (SCHEMA_LISTS.has(k) && Array.isArray(v)) {
      out[k] = v.map(stripAnnotations);
    } else if (SCHEMA_ONE.has(k)) {
      out[k] = stripAnnotations(v);
    } else {
      out[k] = v;
    }
  }
  return out;
}

/** The schema exactly as the set compiles it. */
export function preparedSchema(set: ValidatorSet, schemaBytes: Buffer): AnySchemaObject {
  const schema = JSON.parse(schemaBytes.toString('utf8')) as AnySchemaObject;
  return (set.stripAnnotations ? stripAnnotations(schema) : schema) as AnySchemaObject;
}

/** The id the set's schema is registered under (its $id, else one of ours). */
export function schemaId(set: ValidatorSet, schema: AnySchemaObject): string {
  return typeof schema.$id === 'string' ? schema.$id : `edgeimg:${set.id}`;
}

type AjvInstance = import('ajv').default;

/**
 * An Ajv with the set's options and its schema added (compiled lazily, per reference). Loaded
 * with require so that the precompiled path never loads Ajv's compiler.
 */
export function setAjv(set: ValidatorSet, schema: AnySchemaObject, extra: Options = {}): AjvInstance {
  const AjvClass = (set.dialect === '2020-12'
    ? (require('ajv/dist/2020.js') as { Ajv2020: new (o: Options) => AjvInstance }).Ajv2020
    : (require('ajv') as { Ajv: new (o: Options) => AjvInstance }).Ajv);
  const ajv = new AjvClass({ ...set.options, ...extra });
  if (set.formats) (require('ajv-formats') as (a: AjvInstance) => AjvInstance)(ajv);
  ajv.addSchema(schema, typeof schema.$id === 'string' ? undefined : schemaId(set, schema));
  return ajv;
}

function runtimeValidators(set: ValidatorSet, schemaBytes: Buffer): Validators {
  const schema = preparedSchema(set, schemaBytes);
  const ajv = setAjv(set, schema);
  const id = schemaId(set, schema);
  return (ref) => ajv.getSchema(ref === '#' ? id : `${id}${ref}`);
}

/** A compiled module's exports, if it exists and was generated from exactly this set and schema. */
function compiledModule(file: string, key: string): Record<string, unknown> | undefined {
  let mod: Record<string, unknown>;
  try {
    mod = requireWithCodeCache(file) as Record<string, unknown>; // like require, with V8's code cache
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (err as NodeJS.ErrnoException).path === file) return undefined;
    throw err;
  }
  return mod.key === key ? mod : undefined;
}

/**
 * The set's validators: `get('#')` for the root, `get('#/$defs/<name>')` for a definition
 * (undefined when the schema has no such definition). From dist/precompiled/validators/ when
 * current, else compiled now. `dir` is for tests.
 */
export function loadValidators(set: ValidatorSet, dir = compiledDir()): { get: Validators; precompiled: boolean } {
  const bytes = readFileSync(packagePath(...set.schema));
  const key = validatorKey(set, bytes);
  let runtime: Validators | undefined;
  const atRunTime: Validators = (ref) => (runtime ??= runtimeValidators(set, bytes))(ref);
  const pick = (mod: Record<string, unknown>, ref: string): ValidateFunction | undefined =>
    Object.hasOwn(mod, ref) ? (mod[ref] as ValidateFunction) : undefined;
  if (!set.split) {
    const mod = compiledModule(join(dir, `${set.id}.cjs`), key);
    return mod ? { get: (ref) => pick(mod, ref), precompiled: true } : { get: atRunTime, precompiled: false };
  }
  // index.cjs maps each reference to its module; the directory is swapped in whole, so a
  // current index means current modules (each is checked again as it is loaded)
  const index = compiledModule(join(dir, set.id, 'index.cjs'), key) as { modules?: Record<string, string> } | undefined;
  const modules = index?.modules;
  if (!modules) return { get: atRunTime, precompiled: false };
  const loaded = new Map<string, ValidateFunction | undefined>();
  return {
    get: (ref) => {
      if (!Object.hasOwn(modules, ref)) return undefined;
      if (!loaded.has(ref)) {
        const mod = compiledModule(join(dir, set.id, modules[ref]!), key);
        loaded.set(ref, mod ? pick(mod, ref) : atRunTime(ref));
      }
      return loaded.get(ref);
    },
    precompiled: true,
  };
}
