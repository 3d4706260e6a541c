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
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

import { packagePath } from '../../util/paths.js';
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
  root?: ValidateFunction;
  detailAjv?: Ajv2020;
  byDefinition: Map<string, ValidateFunction>;
  fastAjv?: Ajv2020;
  fast: Map<string, ValidateFunction>;
}

const loaded = new Map<TalosMinor, LoadedSchema>();

export function talosSchemaPath(minor: TalosMinor): string {
  return packagePath('schemas', 'talos', `v${minor}`, 'config.schema.json');
}

const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv2020) => Ajv2020;

function newAjv(allErrors: boolean): Ajv2020 {
  // strict: false only because the upstream schema uses annotation keywords Ajv does not know
  // (markdownDescription, x-intellij-html-description); validation itself is not relaxed.
  const ajv = new Ajv2020({ strict: false, allErrors, validateFormats: true });
  addFormats(ajv);
  return ajv;
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
  s = { schema, definitionByKind, kindAliases, byDefinition: new Map(), fast: new Map() };
  loaded.set(minor, s);
  return s;
}

/**
 * Fast path: the definition a document's kind selects, compiled without allErrors. The root
 * oneOf is discriminated by kind (and by version for v1alpha1), so a document valid for its
 * selected definition is valid for the root; this skips trying ~90 other branches per document.
 */
function fastValidator(s: LoadedSchema, definition: string): ValidateFunction {
  let v = s.fast.get(definition);
  if (!v) {
    s.fastAjv ??= (() => {
      const a = newAjv(false);
      a.addSchema(s.schema);
      return a;
    })();
    v = s.fastAjv.getSchema(`${s.schema.$id}#/$defs/${definition}`);
    if (!v) throw new Error(`Talos schema has no definition ${definition}`);
    s.fast.set(definition, v);
  }
  return v;
}

function rootValidator(s: LoadedSchema): ValidateFunction {
  // Compiled once per minor and cached: this runs for every document of every node in a fleet.
  s.root ??= newAjv(false).compile(s.schema);
  return s.root;
}

function definitionValidator(s: LoadedSchema, definition: string): ValidateFunction {
  let v = s.byDefinition.get(definition);
  if (!v) {
    if (!s.detailAjv) {
      s.detailAjv = newAjv(true);
      s.detailAjv.addSchema(s.schema);
    }
    v = s.detailAjv.getSchema(`${s.schema.$id}#/$defs/${definition}`);
    if (!v) throw new Error(`Talos schema has no definition ${definition}`);
    s.byDefinition.set(definition, v);
  }
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
