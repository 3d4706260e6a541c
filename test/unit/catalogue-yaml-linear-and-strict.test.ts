// The catalogue's YAML loader in linear time on big mappings (duplicate keys found by our own
// pass, not the library's pairwise check), with unknown tags and over-long keys as positioned
// errors. How long it takes is measured by `npm run bench:yaml`, not asserted here.
import { afterEach, describe, expect, it } from 'vitest';
import { planFleet } from '../../src/catalogue/index.js';
import { MAX_KEY_CHARS, parseYaml } from '../../src/catalogue/yaml.js';
import { CatalogueError, type Diagnostic } from '../../src/util/diagnostics.js';
import { copyCatalogue, type CatalogueCopy } from '../helpers/catalogue.js';

let copy: CatalogueCopy | undefined;
afterEach(() => {
  copy?.cleanup();
  copy = undefined;
});

function siteWithLabels(n: number, extra = ''): string {
  const rows = ['apiVersion: edgeimg.dev/v1alpha1', 'kind: Site', 'metadata:', '  name: store-9999', '  labels:'];
  for (let i = 0; i < n; i++) rows.push(`    k${i}: v${i}`);
  if (extra) rows.push(extra);
  rows.push('spec:', '  profile: store-single', '  subnet: 10.99.99.0/24', '  nodes:', '    - { name: cp-1, mac: "02:00:00:99:99:11" }', '');
  return rows.join('\n');
}

const show = (ds: Diagnostic[]): string => ds.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`).join('\n');

describe('big mappings', () => {
  it('loads a site with a 40,000-key mapping', async () => {
    copy = copyCatalogue();
    copy.write('catalogue/sites/store-9999.yaml', siteWithLabels(40_000));
    const { plans } = await planFleet(copy.catalogue);
    const site = plans.find((p) => p.id === 'store-9999')!;
    expect(Object.keys(site.labels)).toHaveLength(40_000);
    expect(site.labels['k39999']).toBe('v39999');
  });

  it('reports a duplicate as the 40,001st key at its line, pointing at the first', () => {
    const text = siteWithLabels(40_000, '    k17: again');
    const { docs, diagnostics } = parseYaml('big.yaml', text);
    expect(docs).toHaveLength(0);
    // header is 5 lines, k0 on line 6, so k17 first on line 23 and the duplicate after k39999
    expect(diagnostics).toEqual([{ file: 'big.yaml', line: 40_006, col: 5, message: 'duplicate key "k17"; mapping keys must be unique (first at line 23, column 5)' }]);
  });
});

describe('duplicate keys', () => {
  it('are reported at the second key, in nested and flow mappings, once each', () => {
    const text = ['a: 1', 'b:', '  c: 1', '  c: 2', 'd: { x: 1, y: 2, x: 3 }', 'a: 3', ''].join('\n');
    const { docs, diagnostics } = parseYaml('dup.yaml', text);
    expect(docs).toHaveLength(0);
    expect(diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`)).toEqual([
      '4:3 duplicate key "c"; mapping keys must be unique (first at line 3, column 3)',
      '5:18 duplicate key "x"; mapping keys must be unique (first at line 5, column 6)',
      '6:1 duplicate key "a"; mapping keys must be unique (first at line 1, column 1)',
    ]);
  });

  it('include keys that differ only in YAML type but name the same property', () => {
    const { diagnostics } = parseYaml('dup.yaml', '1: a\n"1": b\n');
    expect(diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`)).toEqual(['2:1 duplicate key "1"; mapping keys must be unique (first at line 1, column 1)']);
  });

  it('are reported in a catalogue file at their line', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/store-0007.yaml', (t) => t.replace('  subnet: 10.0.7.0/24', '  subnet: 10.0.7.0/24\n  subnet: 10.0.8.0/24'));
    const lines = copy.path('catalogue/sites/store-0007.yaml');
    const text = (await import('node:fs')).readFileSync(lines, 'utf8').split('\n');
    const second = text.findIndex((l) => l.includes('10.0.8.0/24')) + 1;
    let diags: Diagnostic[] = [];
    try {
      await planFleet(copy.catalogue);
    } catch (err) {
      if (!(err instanceof CatalogueError)) throw err;
      diags = err.diagnostics;
    }
    expect(diags.find((d) => d.file.endsWith('sites/store-0007.yaml') && d.line === second && /duplicate key "subnet"/.test(d.message)), show(diags)).toBeDefined();
  });

  it('do not include repeated YAML 1.1 merge keys in overlays read as YAML 1.1', () => {
    const { docs, diagnostics } = parseYaml('merge.yaml', 'a: &x { p: 1 }\nb: &y { q: 2 }\nc:\n  <<: *x\n  <<: *y\n', { version: '1.1' });
    expect(diagnostics).toEqual([]);
    expect(docs[0]!.value).toEqual({ a: { p: 1 }, b: { q: 2 }, c: { p: 1, q: 2 } });
  });
});

describe('tags', () => {
  it('refuses unknown tags at the tag: !!python/object, !custom, and non-JSON types', () => {
    const text = ['a: !!python/object:os.system ls', 'b: !custom x', 'c: !custom { x: 1 }', 'd: !!binary aGk=', 'e: !!set { x }', 'f: !!timestamp 2001-12-14', ''].join('\n');
    const { docs, diagnostics } = parseYaml('tags.yaml', text);
    expect(docs).toHaveLength(0);
    expect(diagnostics.map((d) => `${d.line}:${d.col} ${d.message.replace(/;.*/, '')}`)).toEqual([
      '1:4 unknown YAML tag !!python/object:os.system',
      '2:4 unknown YAML tag !custom',
      '3:4 unknown YAML tag !custom',
      '4:4 unknown YAML tag !!binary',
      '5:4 unknown YAML tag !!set',
      '6:4 unknown YAML tag !!timestamp',
    ]);
    expect(diagnostics[0]!.message).toMatch(/only !!str, !!int, !!float, !!bool, !!null, !!seq and !!map may be used/);
  });

  it('refuses them in YAML 1.1 overlays too, and a value that does not fit a core tag', () => {
    const { diagnostics } = parseYaml('tags.yaml', 'a: !!binary aGk=\nb: !!int abc\nc: !!python/name:os.system\n', { version: '1.1' });
    expect(diagnostics.map((d) => `${d.line}:${d.col} ${d.message.replace(/;.*/, '')}`)).toEqual([
      '1:4 unknown YAML tag !!binary',
      '2:4 value does not match its YAML tag !!int',
      '3:4 unknown YAML tag !!python/name:os.system',
    ]);
  });

  it('accepts the core tags', () => {
    const { docs, diagnostics } = parseYaml('tags.yaml', 'a: !!str 0644\nb: !!int "12"\nc: !!map { x: !!null "" }\nd: !!seq [ !!bool true, !!float 1.5 ]\n');
    expect(diagnostics).toEqual([]);
    expect(docs[0]!.value).toEqual({ a: '0644', b: 12, c: { x: null }, d: [true, 1.5] });
  });

  it('reports an unknown tag in a catalogue file at its line and column', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/store-0007.yaml', (t) => t.replace('subnet: 10.0.7.0/24', 'subnet: !!python/object:__main__.Exploit 10.0.7.0/24'));
    let diags: Diagnostic[] = [];
    try {
      await planFleet(copy.catalogue);
    } catch (err) {
      if (!(err instanceof CatalogueError)) throw err;
      diags = err.diagnostics;
    }
    const text = (await import('node:fs')).readFileSync(copy.path('catalogue/sites/store-0007.yaml'), 'utf8').split('\n');
    const line = text.findIndex((l) => l.includes('!!python')) + 1;
    const col = text[line - 1]!.indexOf('!!python') + 1;
    expect(diags.find((d) => d.file.endsWith('sites/store-0007.yaml') && d.line === line && d.col === col && /unknown YAML tag !!python\/object:__main__\.Exploit/.test(d.message)), show(diags)).toBeDefined();
  });
});

describe('keys', () => {
  it(`refuses an explicit key longer than ${MAX_KEY_CHARS} characters, quoting only its start`, () => {
    const key = 'k'.repeat(100_000);
    const { docs, diagnostics } = parseYaml('long.yaml', `a: 1\n? ${key}\n: 1\n`);
    expect(docs).toHaveLength(0);
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({ line: 2, col: 3 });
    expect(diagnostics[0]!.message).toMatch(/^mapping key "k+…" is longer than 1024 characters$/);
    expect(diagnostics[0]!.message.length).toBeLessThan(200);
  });

  it('refuses collection keys', () => {
    const { diagnostics } = parseYaml('complex.yaml', '? [a, b]\n: 1\n');
    expect(diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`)).toEqual(['1:3 a mapping key must be a plain value, not a collection or an alias']);
  });

  it('keeps key and value positions for paths, escaped segments and nearest ancestors', () => {
    const { docs } = parseYaml('pos.yaml', 'a: 1\nb: { c: [1, { d: 2 }] }\n"x/y~z": 3\n');
    const pos = docs[0]!.pos;
    expect(pos.value('/b/c/1/d')).toMatchObject({ line: 2, col: 18 });
    expect(pos.key('/b/c')).toMatchObject({ line: 2, col: 6 });
    expect(pos.value('/b/nope/deeper')).toMatchObject({ line: 2, col: 4 });
    expect(pos.key('/x~1y~0z')).toMatchObject({ line: 3, col: 1 });
    expect(pos.keyPaths()).toEqual(['/a', '/b', '/b/c', '/b/c/1/d', '/x~1y~0z']);
  });
});
