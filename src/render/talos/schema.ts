// Validation of rendered documents against the upstream Talos JSON schema of the target minor
// (schemas/talos/v1.x/config.schema.json, shipped with the package). Each document is validated
// on its own against the schema root, whose oneOf picks the document type; when that fails we
// validate again against the one definition the document's kind selects, which turns Ajv's
// oneOf noise into errors with a useful path.
//
// Upstream schema bugs are handled narrowly (see docs/decisions-talos.md): a document whose
// registered kind differs from the kind in its schema definition (UnattendedInstallConfig in
// 1.14, KubeSpanEndpointsConfig in both) is validated as a copy carrying the schema's kind,
// and only when the loaded schema really has that mismatch. Nothing else is relaxed.

import { readFileSync } from 'node:fs';
import type { ErrorObject, ValidateFunction } from 'ajv';

import { packagePath } from '../../util/paths.js';
import { loadValidators, type ValidatorSet, type Validators } from '../../util/schema-validators.js';
import { documentKind, type TalosDocument } from './document.js';
import { TALOS_MINORS, type TalosMinor } from './versions.js';

export interface TalosValidationError {
  index: number;
  kind: string;
  path: string;
  message: string;
}

/** Kinds Talos registers under a different name than its schema's kind enum says. */
const KIND_MISMATCHES: ReadonlyArray<{ registered: string; definition: string }> = [
  { registered: 'UnattendedInstallConfig', definition: 'runtime.UnattendedInstallConfigV1Alpha1' },
  { registered: 'KubeSpanEndpointsConfig', definition: 'network.KubespanEndpointsConfigV1Alpha1' },
];

interface SchemaDefinition {
  properties?: Record<string, { enum?: unknown[] }>;
}

interface LoadedSchema {
  schema: { $id: string; $defs: Record<string, SchemaDefinition>; oneOf: Array<{ $ref: string }> };
  /** Document kind ('v1alpha1' for the Config document) -> definition name. */
  definitionByKind: Map<string, string>;
  /** Registered kind -> the (wrong) kind the schema expects instead. */
  kindAliases: Map<string, string>;
  sets: TalosValidatorSets;
  fast?: Validators;
  root?: Validators;
  detail?: Validators;
}

const loaded = new Map<TalosMinor, LoadedSchema>();

export function talosSchemaPath(minor: TalosMinor): string {
  return packagePath('schemas', 'talos', `v${minor}`, 'config.schema.json');
}

export interface TalosValidatorSets {
  /** Every definition, first error only: the fast path. */
  fast: ValidatorSet;
  /** The root oneOf, first error only. */
  root: ValidatorSet;
  /** Every definition with all errors: for reports. */
  detail: ValidatorSet;
}

/** A minor's validators, precompiled by scripts/precompile.ts (src/util/schema-validators.ts). */
export function talosValidatorSets(minor: TalosMinor): TalosValidatorSets {
  const schema = ['schemas', 'talos', `v${minor}`, 'config.schema.json'];
  // strict: false only because the upstream schema uses annotation keywords Ajv does not know
  // (markdownDescription, x-intellij-html-description); validation itself is not relaxed.
  // Annotations are stripped before compiling: no message here reads the schema.
  const set = (id: string, allErrors: boolean, refs: ValidatorSet['refs']): ValidatorSet => ({
    id: `talos-v${minor}-${id}`,
    schema,
    dialect: '2020-12',
    options: { strict: false, allErrors, validateFormats: true },
    formats: true,
    stripAnnotations: true,
    refs,
  });
  return {
    fast: { ...set('definitions', false, '#/$defs'), split: true }, // a node's few kinds, not all ~125
    root: set('root', false, '#'),
    detail: set('definitions-all-errors', true, '#/$defs'),
  };
}

function load(minor: TalosMinor): LoadedSchema {
  let s = loaded.get(minor);
  if (s) return s;
  const schema = JSON.parse(readFileSync(talosSchemaPath(minor), 'utf8')) as LoadedSchema['schema'];
  const definitionByKind = new Map<string, string>();
  for (const { $ref } of schema.oneOf) {
    const name = $ref.replace('#/$defs/', '');
    const props = schema.$defs[name]?.properties ?? {};
    const kinds = props.kind?.enum ?? (props.version?.enum?.includes('v1alpha1') ? ['v1alpha1'] : []);
    for (const k of kinds) if (typeof k === 'string') definitionByKind.set(k, name);
  }
  const kindAliases = new Map<string, string>();
  for (const { registered, definition } of KIND_MISMATCHES) {
    const enumKinds = schema.$defs[definition]?.properties?.kind?.enum;
    if (enumKinds && !enumKinds.includes(registered) && typeof enumKinds[0] === 'string') {
      kindAliases.set(registered, enumKinds[0]);
    }
  }
  s = { schema, definitionByKind, kindAliases, sets: talosValidatorSets(minor) };
  loaded.set(minor, s);
  return s;
}

/**
 * Fast path: the definition a document's kind selects, compiled without allErrors. The root
 * oneOf is discriminated by kind (and by version for v1alpha1), so a document valid for its
 * selected definition is valid for the root; this skips trying ~90 other branches per document.
 */
function fastValidator(s: LoadedSchema, definition: string): ValidateFunction {
  s.fast ??= loadValidators(s.sets.fast).get;
  const v = s.fast(`#/$defs/${definition}`);
  if (!v) throw new Error(`Talos schema has no definition ${definition}`);
  return v;
}

function rootValidator(s: LoadedSchema): ValidateFunction {
  // Loaded once per minor: this runs for every document of every node in a fleet.
  s.root ??= loadValidators(s.sets.root).get;
  return s.root('#')!;
}

function definitionValidator(s: LoadedSchema, definition: string): ValidateFunction {
  s.detail ??= loadValidators(s.sets.detail).get;
  const v = s.detail(`#/$defs/${definition}`);
  if (!v) throw new Error(`Talos schema has no definition ${definition}`);
  return v;
}

function describe(e: ErrorObject): { path: string; message: string } {
  const path = e.instancePath || '/';
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      return { path: `${e.instancePath}/${key}`, message: `unknown field "${key}" (not in the Talos schema)` };
    }
    case 'required': {
      const key = String((e.params as { missingProperty: string }).missingProperty);
      return { path: `${e.instancePath}/${key}`, message: `missing required field "${key}"` };
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      return { path, message: `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}` };
    }
    default:
      return { path, message: e.message ?? e.keyword };
  }
}

/** The copy of `doc` the schema can judge: registered kinds the schema misspells get the schema's spelling. */
function asSchemaSees(s: LoadedSchema, doc: TalosDocument): TalosDocument {
  const alias = typeof doc.kind === 'string' ? s.kindAliases.get(doc.kind) : undefined;
  return alias ? { ...doc, kind: alias } : doc;
}

export function validateTalosDocuments(docs: TalosDocument[], minor: TalosMinor): TalosValidationError[] {
  if (!TALOS_MINORS.includes(minor)) throw new Error(`no Talos schema for ${minor}`);
  const s = load(minor);
  const errors: TalosValidationError[] = [];
  docs.forEach((doc, index) => {
    const kind = documentKind(doc);
    const candidate = asSchemaSees(s, doc);
    const selected = s.definitionByKind.get(documentKind(candidate));
    if (selected && fastValidator(s, selected)(candidate)) return;
    if (rootValidator(s)(candidate)) return;
    const definition = s.definitionByKind.get(documentKind(candidate));
    if (!definition) {
      errors.push({ index, kind, path: kind === 'v1alpha1' ? '/version' : '/kind', message: `Talos ${minor} has no document of kind "${kind}"` });
      return;
    }
    const validate = definitionValidator(s, definition);
    if (validate(candidate)) {
      // Valid for its own kind but rejected by the root: it also matches another document type.
      errors.push({ index, kind, path: '/', message: `document matches more than one Talos ${minor} document type` });
      return;
    }
    const seen = new Set<string>();
    for (const e of validate.errors ?? []) {
      const d = describe(e);
      const key = `${d.path}\u0000${d.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      errors.push({ index, kind, ...d });
    }
  });
  return errors;
}
