// Incremental builds (src/build/stamp.ts, src/build/inputs.ts): after each kind of change a
// build rebuilds exactly the sites whose inputs changed, and what it keeps is byte for byte
// what a clean build (--force, fresh output) makes from the same inputs, so the input digest
// misses nothing that changes bytes and counts nothing that does not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import { build, type BuildOptions } from '../../src/build/build.js';
import { main } from '../../src/cli/main.js';
import { copyCatalogue, type CatalogueCopy } from '../helpers/catalogue.js';
import { addStoreSites, CHANGES, SITES } from '../helpers/fleet-changes.js';

let c: CatalogueCopy;
/** The sites after every change in CHANGES: one added, one removed. */
const NOW = [...SITES.filter((s) => s !== 'store-0008'), 'store-0500'].sort();
const opts = (out: string, extra: Partial<BuildOptions> = {}): BuildOptions => ({
  catalogueDir: c.catalogue,
  outDir: c.path(out),
  secretsDir: c.path('secrets'),
  sites: [],
  all: true,
  media: ['iso', 'img'],
  workers: 1,
  env: {},
  ...extra,
});

/** sha256 of every artifact file of `sites` under OUT (not the stamps, class sticks or verify logs). */
function tree(out: string, sites: string[]): Record<string, string> {
  const t: Record<string, string> = {};
  for (const e of readdirSync(out, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const rel = relative(out, join(e.parentPath, e.name));
    if (!sites.includes(rel.split('/')[0]!) || rel.includes('/verify/')) continue;
    t[rel] = createHash('sha256').update(readFileSync(join(e.parentPath, e.name))).digest('hex');
  }
  return t;
}

async function builtSites(extra: Partial<BuildOptions> = {}): Promise<string[]> {
  const r = await build(opts('out', extra));
  return r.sites.filter((s) => s.status === 'built').map((s) => s.site).sort();
}

/** A clean build of the same inputs into a fresh directory must give the same bytes. */
async function expectSameAsClean(): Promise<void> {
  rmSync(c.path('clean'), { recursive: true, force: true });
  const r = await build(opts('clean', { force: true }));
  const sites = r.sites.map((s) => s.site);
  expect(tree(c.path('out'), sites)).toEqual(tree(c.path('clean'), sites));
}

describe('incremental build', () => {
  beforeAll(async () => {
    c = copyCatalogue();
    addStoreSites(c);
    expect(await builtSites()).toEqual(SITES);
  }, 120_000);
  afterAll(() => c.cleanup());

  it('keeps every site when nothing changed, and says so in the result', async () => {
    const r = await build(opts('out'));
    expect(r.unchanged).toBe(SITES.length);
    expect(r.sites.map((s) => s.status)).toEqual(SITES.map(() => 'unchanged'));
    expect(r.sites.map((s) => s.site).sort()).toEqual(SITES);
  });

  for (const change of CHANGES) {
    it(`rebuilds exactly what ${change.name} touches`, async () => {
      await change.apply(c);
      const lines: string[] = [];
      expect(await builtSites({ log: (l) => lines.push(l) })).toEqual(change.sites);
      // a site the catalogue no longer has stays in OUT, and the build says so
      if (change.removed) expect(lines.join('\n')).toMatch(new RegExp(`1 site in .* no longer in the catalogue, left as they are: ${change.removed[0]}`));
      await expectSameAsClean();
    }, 120_000);
  }

  it('rebuilds the site whose secrets changed (a reissued admin certificate)', async () => {
    const io = { out: () => {}, err: () => {} };
    expect(await main(['secrets', 'reissue-admin', '--site', 'store-0412', '--secrets', c.path('secrets'), '--catalogue', c.catalogue], io)).toBe(0);
    expect(await builtSites()).toEqual(['store-0412']);
    await expectSameAsClean();
  }, 120_000);

  it('rebuilds every site for another media selection, and --force rebuilds all', async () => {
    expect(await builtSites({ media: ['iso'] })).toEqual(NOW);
    expect(await builtSites({ media: ['iso'] })).toEqual([]);
    expect(await builtSites({ media: ['iso'], force: true })).toEqual(NOW);
  }, 180_000);

  it('rebuilds a site whose output was changed or removed since', async () => {
    const seed = c.path('out/store-0007/nodes/cp-1/seed.iso');
    utimesSync(seed, new Date(), new Date()); // same size, new mtime: someone wrote to it
    rmSync(c.path('out/plant-0031/nodes/agent-1/meta-data'));
    expect(await builtSites({ media: ['iso'] })).toEqual(['plant-0031', 'store-0007']);
    await build(opts('out', { media: ['iso'] }));
  }, 120_000);

  it('points errors in unchanged (cached) files at the same FILE:LINE:COL as a fresh parse', async () => {
    // the sites' own files are unchanged and come from the parse cache; the profile they name goes
    c.edit('catalogue/profiles/store-ha3.yaml', (t) => t.replace('name: store-ha3', 'name: store-ha4'));
    const cached: string[] = [];
    await expect(build(opts('out', { media: ['iso'] }))).rejects.toSatisfy((e: unknown) => {
      cached.push(...((e as { diagnostics?: Array<{ file: string; line: number; col: number; message: string }> }).diagnostics ?? []).map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`));
      return cached.length > 0;
    });
    expect(cached.join('\n')).toMatch(/store-0412\.yaml:\d+:\d+: unknown site profile "store-ha3"/);
    const fresh = await build(opts('out', { media: ['iso'], force: true })).then(
      () => [],
      (e: { diagnostics?: Array<{ file: string; line: number; col: number; message: string }> }) => (e.diagnostics ?? []).map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`),
    );
    expect(cached).toEqual(fresh);
    c.edit('catalogue/profiles/store-ha3.yaml', (t) => t.replace('name: store-ha4', 'name: store-ha3'));
  }, 120_000);

  it('rebuilds every site for another fleet signing key, and for another SOURCE_DATE_EPOCH', async () => {
    const sites = NOW;
    rmSync(c.path('secrets/_signing'), { recursive: true }); // the catalogue pins none: a new key is made
    expect(await builtSites({ media: ['iso'] })).toEqual(sites);
    expect(await builtSites({ media: ['iso'], env: { SOURCE_DATE_EPOCH: '1700000000' } })).toEqual(sites);
    expect(await builtSites({ media: ['iso'], env: { SOURCE_DATE_EPOCH: '1700000000' } })).toEqual([]);
  }, 180_000);
});
