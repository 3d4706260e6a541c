// The precompiled schema validators (dist/precompiled/validators/, written by scripts/precompile.ts at
// `npm run build`) are current, behave exactly as Ajv compiling the schemas at run time, and are
// never used for schema bytes they were not generated from.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { ValidateFunction } from 'ajv';
import { VALIDATOR_SETS, generateValidatorFiles, staleFiles } from '../../scripts/precompile.js';
import { planFleet } from '../../src/catalogue/index.js';
import { CATALOGUE_VALIDATORS } from '../../src/catalogue/schema.js';
import { parseYaml } from '../../src/catalogue/yaml.js';
import { KAIROS_STRICT_VALIDATORS } from '../../src/render/kairos/strict.js';
import { renderKairosCloudConfig } from '../../src/render/kairos/index.js';
import { renderTalosDocuments, type TalosMinor } from '../../src/render/talos/index.js';
import { talosValidatorSets } from '../../src/render/talos/schema.js';
import { placeholderSecrets } from '../../src/secrets/placeholder.js';
import type { KairosSecrets } from '../../src/secrets/types.js';
import { packagePath } from '../../src/util/paths.js';
import { compiledDir, loadValidators, preparedSchema, schemaId, setAjv, type ValidatorSet } from '../../src/util/schema-validators.js';
import { repoRoot } from '../helpers/catalogue.js';
import { talosSite, talosSite114 } from '../fixtures/plans.js';
import { talosSecretsFixture } from '../fixtures/talos-secrets.js';

// generated modules require Ajv's runtime helpers, so they live below the package root
const scratch = mkdtempSync(packagePath('.edgeimg-tmp-validators-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const generated = new Map<string, Map<string, string>>();
function generatedFiles(set: ValidatorSet): Map<string, string> {
  let files = generated.get(set.id);
  if (!files) {
    files = generateValidatorFiles(set);
    generated.set(set.id, files);
    for (const [rel, code] of files) {
      mkdirSync(dirname(join(scratch, rel)), { recursive: true });
      writeFileSync(join(scratch, rel), code);
    }
  }
  return files;
}

describe('dist/precompiled/validators/', () => {
  const built = existsSync(compiledDir());
  if (!built) {
    if (process.env.CI) throw new Error('dist/precompiled/validators/ missing: run `npm run build` (make test does)');
    console.warn('\n*** dist/precompiled/validators/ not built (npm run build): only the in-memory generation is checked ***\n');
  }

  it.each(VALIDATOR_SETS.map((s) => [s.id, s] as const))('%s is what scripts/precompile.ts writes for the schemas as they are', (_id, set) => {
    const files = generatedFiles(set);
    expect(files.size).toBeGreaterThan(0);
    if (built) expect(staleFiles(set, files), 'run `make validators` (or npm run build)').toEqual([]);
  });

  it('covers every validator set the code loads', () => {
    const ids = VALIDATOR_SETS.map((s) => s.id);
    expect(ids).toEqual(expect.arrayContaining([CATALOGUE_VALIDATORS.id, KAIROS_STRICT_VALIDATORS.id]));
    for (const minor of ['1.13', '1.14'] as const) for (const s of Object.values(talosValidatorSets(minor))) expect(ids).toContain(s.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

// ---------------------------------------------------------------------------------------------
// Same errors: each set's precompiled functions against Ajv compiling the schema now, on real
// documents and on random mutations of them (deleted, renamed, retyped and added keys).

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface Mutation {
  at: number;
  op: 'delete' | 'rename' | 'retype' | 'add';
  value: Json;
}

function places(doc: Json): Array<{ parent: Json[] | Record<string, Json>; key: string | number }> {
  const out: Array<{ parent: Json[] | Record<string, Json>; key: string | number }> = [];
  const walk = (v: Json): void => {
    if (Array.isArray(v)) v.forEach((c, i) => (out.push({ parent: v, key: i }), walk(c)));
    else if (v !== null && typeof v === 'object') for (const [k, c] of Object.entries(v)) out.push({ parent: v, key: k }), walk(c);
  };
  walk(doc);
  return out;
}

function mutate(doc: Json, mutations: Mutation[]): Json {
  const copy = structuredClone(doc);
  for (const m of mutations) {
    const all = places(copy);
    if (all.length === 0) break;
    const { parent, key } = all[m.at % all.length]!;
    if (Array.isArray(parent)) {
      if (m.op === 'delete') parent.splice(key as number, 1);
      else parent[key as number] = m.value;
    } else if (m.op === 'delete') delete parent[key];
    else if (m.op === 'rename') {
      parent[`${String(key).slice(0, -1)}${String(key).slice(-1) === 's' ? 'z' : 's'}`] = parent[key]!;
      delete parent[key];
    } else if (m.op === 'retype') parent[key] = m.value;
    else {
      const target = parent[key];
      if (target !== null && typeof target === 'object' && !Array.isArray(target)) target.extraKey = m.value;
      else parent.extraKey = m.value;
    }
  }
  return copy;
}

const mutationsArb = fc.array(
  fc.record({
    at: fc.nat(10_000),
    op: fc.constantFrom<Mutation['op']>('delete', 'rename', 'retype', 'add'),
    value: fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
  }),
  { minLength: 1, maxLength: 3 },
);

function outcome(validate: ValidateFunction, doc: Json): { valid: boolean; errors: unknown } {
  const valid = validate(structuredClone(doc)) as boolean;
  return { valid, errors: structuredClone(validate.errors ?? null) };
}

/** Precompiled (from this run's generation) and run-time validators of `set` agree on every document and mutation of it. */
function expectSameErrors(set: ValidatorSet, docs: Array<{ ref: string; doc: Json }>, runs: number): void {
  generatedFiles(set);
  const pre = loadValidators(set, scratch);
  const now = loadValidators(set, join(scratch, 'nothing-here'));
  expect(pre.precompiled).toBe(true);
  expect(now.precompiled).toBe(false);
  // the run-time side compiles the schema exactly as before precompiling (annotations kept)
  const raw = JSON.parse(readFileSync(packagePath(...set.schema), 'utf8')) as Record<string, unknown>;
  const unstripped = setAjv({ ...set, stripAnnotations: false }, raw);
  const original = (ref: string): ValidateFunction => unstripped.getSchema(ref === '#' ? schemaId(set, raw) : `${schemaId(set, raw)}${ref}`)!;
  let invalid = 0;
  let total = 0;
  for (const { ref, doc } of docs) {
    const a = pre.get(ref)!;
    const b = now.get(ref)!;
    expect(a, ref).toBeTypeOf('function');
    expect(outcome(a, doc)).toEqual(outcome(b, doc));
    fc.assert(
      fc.property(mutationsArb, (ms) => {
        const d = mutate(doc, ms);
        const got = outcome(a, d);
        total++;
        if (!got.valid) invalid++;
        expect(got).toEqual(outcome(b, d));
        if (set.stripAnnotations) expect(got).toEqual(outcome(original(ref), d));
      }),
      { numRuns: runs, seed: 20261201 },
    );
  }
  // the comparison is of errors, not only of `true`: most mutations must break the document
  expect(invalid).toBeGreaterThan(total / 3);
}

describe('precompiled validators', () => {
  it('report the same catalogue errors as Ajv compiling catalogue.schema.json at run time', async () => {
    const docs: Array<{ ref: string; doc: Json }> = [];
    for (const rel of ['fleet.yaml', 'sites/store-0412.yaml', 'sites/plant-0031.yaml', 'hardware/nuc12-amd64.yaml', 'profiles/store-ha3.yaml']) {
      const file = join(repoRoot, 'catalogue', rel);
      for (const d of parseYaml(file, readFileSync(file, 'utf8')).docs) docs.push({ ref: '#', doc: d.value as Json });
    }
    expect(docs.length).toBeGreaterThanOrEqual(5);
    expectSameErrors(CATALOGUE_VALIDATORS, docs, 150);
  });

  it('report the same Kairos cloud-config errors as Ajv compiling the strict schema at run time', async () => {
    const { plans } = await planFleet(join(repoRoot, 'catalogue'));
    const docs = plans
      .filter((p) => p.os === 'kairos')
      .flatMap((p) => p.nodes.map((n) => ({ ref: '#', doc: renderKairosCloudConfig(p, n, placeholderSecrets('kairos') as KairosSecrets) as Json })));
    expect(docs.length).toBeGreaterThanOrEqual(2);
    expectSameErrors(KAIROS_STRICT_VALIDATORS, docs.slice(0, 2), 150);
  });

  it.each([
    ['1.13', talosSite],
    ['1.14', talosSite114],
  ] as const)('report the same Talos %s errors as Ajv compiling the upstream schema at run time', (minor, site) => {
    const docs = renderTalosDocuments(site, site.nodes[0]!, talosSecretsFixture()) as unknown as Json[];
    const sets = talosValidatorSets(minor as TalosMinor);
    const raw = JSON.parse(readFileSync(packagePath(...sets.fast.schema), 'utf8')) as { $defs: Record<string, { properties?: { kind?: { enum?: string[] } } }> };
    const defOf = (doc: Json): string | undefined => {
      const kind = (doc as { kind?: string }).kind;
      if (kind === undefined) return 'v1alpha1.Config';
      return Object.keys(raw.$defs).find((d) => raw.$defs[d]!.properties?.kind?.enum?.includes(kind));
    };
    const byDefinition = docs.map((doc) => ({ ref: `#/$defs/${defOf(doc)}`, doc })).filter((d) => !d.ref.endsWith('undefined'));
    expect(byDefinition.length).toBeGreaterThanOrEqual(3);
    expectSameErrors(sets.fast, byDefinition, 40);
    expectSameErrors(sets.detail, byDefinition, 40);
    expectSameErrors(sets.root, docs.map((doc) => ({ ref: '#', doc })), 20);
  });
});

describe('a compiled file', () => {
  it('made from other schema bytes is not used: the schema is compiled at run time', () => {
    const dir = join(scratch, 'stale');
    mkdirSync(dir, { recursive: true });
    const code = generatedFiles(CATALOGUE_VALIDATORS).get(`${CATALOGUE_VALIDATORS.id}.cjs`)!;
    const key = /exports\.key = "([0-9a-f]{64})";/.exec(code)![1]!;
    writeFileSync(join(dir, `${CATALOGUE_VALIDATORS.id}.cjs`), code.replace(key, '0'.repeat(64)));
    const v = loadValidators(CATALOGUE_VALIDATORS, dir);
    expect(v.precompiled).toBe(false);
    expect(v.get('#')!({ apiVersion: 'edgeimg.dev/v1alpha1' })).toBe(false);
  });

  it('of a split set is loaded per definition, and a definition the schema lacks is undefined', () => {
    const set = talosValidatorSets('1.13').fast;
    generatedFiles(set);
    const v = loadValidators(set, scratch);
    expect(v.precompiled).toBe(true);
    expect(v.get('#/$defs/network.HostnameConfigV1Alpha1')).toBeTypeOf('function');
    expect(v.get('#/$defs/no.SuchConfig')).toBeUndefined();
    const prepared = preparedSchema(set, readFileSync(packagePath(...set.schema)));
    expect(JSON.stringify(prepared)).not.toContain('markdownDescription');
  });
});
