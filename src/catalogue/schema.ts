// Validates catalogue documents against schemas/catalogue.schema.json (the same file editors
// use through yaml-language-server) and turns Ajv's errors into positioned diagnostics.

import type { ErrorObject, ValidateFunction } from 'ajv';
import { packagePath } from '../util/paths.js';
import { loadValidators, type ValidatorSet } from '../util/schema-validators.js';
import type { Diagnostic } from '../util/diagnostics.js';
import { escapePointer, type YamlDoc } from './yaml.js';
import { bare, excerpt } from './excerpt.js';

let validator: ValidateFunction | undefined;

export function catalogueSchemaPath(): string {
  return packagePath('schemas', 'catalogue.schema.json');
}

/** Precompiled by scripts/precompile.ts; `verbose` because messages read `parentSchema`. */
export const CATALOGUE_VALIDATORS: ValidatorSet = {
  id: 'catalogue',
  schema: ['schemas', 'catalogue.schema.json'],
  dialect: 'draft-07',
  options: { allErrors: true, verbose: true, strict: true, allowUnionTypes: true },
  refs: '#',
};

function compiled(): ValidateFunction {
  validator ??= loadValidators(CATALOGUE_VALIDATORS).get('#')!;
  return validator;
}

export function validateDocument(doc: YamlDoc): Diagnostic[] {
  const validate = compiled();
  if (validate(doc.value)) return [];
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const e of validate.errors ?? []) {
    if (e.keyword === 'if') continue; // the failing `then` branch already reported the detail
    const d = describe(e, doc);
    if (!d) continue;
    const key = `${d.line}:${d.col}:${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return out;
}

function describe(e: ErrorObject, doc: YamlDoc): Diagnostic | undefined {
  const path = e.instancePath;
  const field = fieldName(path);
  if (e.propertyName !== undefined || e.keyword === 'propertyNames') {
    // a key that breaks `propertyNames` (e.g. a label name): point at that key, quote the key
    // (never the whole mapping, which for 40,000 bad keys made every message quote them all)
    if (e.keyword === 'propertyNames') return undefined; // the inner error says which and why
    const name = e.propertyName!;
    const pattern = (e.params as { pattern?: string }).pattern;
    return {
      ...doc.pos.key(`${path}/${escapePointer(name)}`),
      message: `${field ? `${field} key` : 'key'} ${excerpt(name)} is invalid${pattern ? ` (must match ${pattern})` : ` (${e.message ?? 'invalid'})`}`,
    };
  }
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      const allowed = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
      const hint = key.length <= 64 ? closest(key, allowed) : undefined; // no edit distance over a 1,000-character key
      const where = field ? ` in ${field}` : '';
      return {
        ...doc.pos.key(`${path}/${escapePointer(key)}`),
        message: `unknown key ${excerpt(key)}${where}${hint ? ` (did you mean "${hint}"?)` : `; allowed: ${allowed.join(', ')}`}`,
      };
    }
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      return { ...doc.pos.value(path), message: `missing required key "${missing}"${field ? ` in ${field}` : ''}` };
    }
    case 'type':
      return { ...doc.pos.value(path), message: `${field || 'document'} must be ${article((e.params as { type: string }).type)}` };
    case 'enum':
      return {
        ...doc.pos.value(path),
        message: `${field} must be one of: ${((e.params as { allowedValues: unknown[] }).allowedValues).join(', ')}`,
      };
    case 'const':
      return { ...doc.pos.value(path), message: `${field} must be "${String((e.params as { allowedValue: unknown }).allowedValue)}"` };
    case 'pattern': {
      const desc = (e.parentSchema as { description?: string }).description;
      return {
        ...doc.pos.value(path),
        message: `${field} has an invalid value ${excerpt(valueAt(doc.value, path))}${desc ? ` (expected ${desc})` : ''}`,
      };
    }
    case 'minProperties':
    case 'maxProperties': {
      const props = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
      return { ...doc.pos.value(path), message: `${field} needs exactly one of: ${props.join(', ')}` };
    }
    case 'minItems':
      return { ...doc.pos.value(path), message: `${field} must not be empty` };
    case 'minimum':
    case 'maximum':
      return { ...doc.pos.value(path), message: `${field} ${e.message ?? 'is out of range'}` };
    default:
      return { ...doc.pos.value(path), message: `${field || 'document'} ${e.message ?? 'is invalid'}` };
  }
}

function fieldName(path: string): string {
  return path
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${bare(s, 40)}`)) // user keys (labels, registries) cut
    .join('')
    .replace(/^\./, '');
}

function valueAt(root: unknown, path: string): unknown {
  let cur: unknown = root;
  for (const seg of path.split('/').slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** The allowed key closest to a misspelt one, if it is plausibly a typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = levenshtein(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  return best !== undefined && bestDist <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
