// verify across machines: `--all --shard K/N` splits the catalogue's sites so that the shards'
// union is exactly `--all` (and matches build --shard), and `--boot=sample` boots one node per
// (hardware class, OS and version, medium) while every node gets the static checks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { main } from '../../src/cli/main.js';
import { bootSampleKey, pickBoots } from '../../src/verify/index.js';
import type { Manifest } from '../../src/manifest/manifest.js';
import { copyCatalogue, type CatalogueCopy } from '../helpers/catalogue.js';
import { addStoreSites, SITES } from '../helpers/fleet-changes.js';
import { bootPrereqs, ensureProbeImages } from '../boot/helpers.js';

let c: CatalogueCopy;
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}
const common = (): string[] => ['--catalogue', c.catalogue, '--out', c.path('out'), '--secrets', c.path('secrets')];
const manifestOf = (site: string): Manifest => JSON.parse(readFileSync(c.path(`out/${site}/manifest.json`), 'utf8'));

describe('verify --all --shard and --boot=sample', () => {
  beforeAll(async () => {
    c = copyCatalogue();
    addStoreSites(c);
    // every site but one built: --all must report the missing one
    const r = await run(['build', ...SITES.filter((s) => s !== 'store-0008').flatMap((s) => ['--site', s]), '--media', 'iso,img', ...common()]);
    expect(r.code, r.err).toBe(0);
  }, 180_000);
  afterAll(() => c.cleanup());

  it('the shards partition --all exactly, like build --shard', async () => {
    const all = await run(['verify', '--all', '--json', ...common()]);
    const allSites = JSON.parse(all.out).sites.map((s: { site: string }) => s.site);
    expect([...allSites].sort()).toEqual(SITES);
    expect(all.code).toBe(1); // store-0008 was never built
    const unbuilt = JSON.parse(all.out).sites.find((s: { site: string }) => s.site === 'store-0008');
    expect(unbuilt.results.some((r: { ok: boolean }) => !r.ok)).toBe(true);
    const shards: string[][] = [];
    for (const k of [1, 2, 3, 4]) {
      const r = await run(['verify', '--all', '--shard', `${k}/4`, '--json', ...common()]);
      shards.push(JSON.parse(r.out).sites.map((s: { site: string }) => s.site));
      const b = await run(['build', '--all', '--shard', `${k}/4`, '--media', 'iso,img', '--json', ...common()]);
      expect(JSON.parse(b.out).sites.map((s: { site: string }) => s.site)).toEqual(shards.at(-1));
    }
    expect(shards.flat().sort()).toEqual([...allSites].sort());
    expect(new Set(shards.flat()).size).toBe(allSites.length);
    // the shard builds above built store-0008 too: now everything passes
    expect((await run(['verify', '--all', ...common()])).code).toBe(0);
    expect(existsSync(c.path('out/store-0412/verify/summary.json'))).toBe(true);
    const summary = JSON.parse(readFileSync(c.path('out/store-0412/verify/summary.json'), 'utf8'));
    expect(summary).toMatchObject({ schemaVersion: 1, site: 'store-0412', ok: true, failed: 0, boot: 'none', via: null, inputDigest: manifestOf('store-0412').inputDigest });
  }, 300_000);

  it('usage: --shard needs --all, --boot= takes all or sample', async () => {
    expect((await run(['verify', '--site', 'store-0412', '--shard', '1/2', ...common()])).code).toBe(2);
    expect((await run(['verify', '--all', '--shard', '3/2', ...common()])).code).toBe(2);
    expect((await run(['verify', '--all', '--boot=some', ...common()])).code).toBe(2);
    expect((await run(['verify', '--all', '--site', 'store-0412', ...common()])).code).toBe(2);
  });

  it('samples one node per (class, OS version, medium): 4 boots for 12 nodes', () => {
    const ms = SITES.map((site) => ({ site, manifest: manifestOf(site) }));
    const picks = pickBoots(ms, 'seed', 'sample');
    const booted = [...picks].flatMap(([site, nodes]) => nodes.map((n) => `${site}/${n}`));
    // nuc12 (store-0412 and -0413), legacy (store-0007 and -0008), ipc (plant), rpi4 (lab)
    expect(booted).toEqual(['lab-0001/ctl-1', 'plant-0031/server-1', 'store-0007/cp-1', 'store-0412/cp-1']);
    expect(ms.reduce((n, m) => n + m.manifest.nodes.length, 0)).toBe(12);
    // every node is covered by a booted node with the same key
    const keys = new Set(booted.map((b) => bootSampleKey(manifestOf(b.split('/')[0]!), b.split('/')[1]!, 'seed')));
    for (const m of ms) for (const n of m.manifest.nodes) expect(keys.has(bootSampleKey(m.manifest, n.name, 'seed'))).toBe(true);
    // another medium is another key: with only seed.iso, store-0413 would boot on its own
    const isoOnly = { ...manifestOf('store-0413'), artifacts: manifestOf('store-0413').artifacts.filter((a) => a.kind !== 'seed-img') };
    expect(bootSampleKey(isoOnly, 'cp-1', 'seed')).not.toBe(bootSampleKey(manifestOf('store-0412'), 'cp-1', 'seed'));
    expect([...pickBoots(ms, 'seed', 'all').values()].flat()).toHaveLength(12);
  });

  const pre = bootPrereqs(['amd64'], 'verify --boot=sample');
  it.runIf(pre.run)('--boot=sample boots the sample in QEMU and records what it booted', async () => {
    ensureProbeImages(['amd64']);
    const r = await run(['verify', '--site', 'store-0412', '--site', 'store-0413', '--site', 'store-0007', '--boot=sample', '--jobs', '2', ...common()]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/booting a sample: 2 of 7 nodes/);
    const s412 = JSON.parse(readFileSync(c.path('out/store-0412/verify/summary.json'), 'utf8'));
    const s413 = JSON.parse(readFileSync(c.path('out/store-0413/verify/summary.json'), 'utf8'));
    expect(s412).toMatchObject({ ok: true, boot: 'sample', via: 'seed', booted: ['cp-1'] });
    expect(s413).toMatchObject({ ok: true, boot: 'sample', booted: [] });
    expect(s413.checks.filter((x: { check: string }) => x.check.startsWith('boot'))).toEqual([]);
    expect(s413.passed).toBeGreaterThan(20);
  }, 600_000);
});
