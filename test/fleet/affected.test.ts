// `edgeimg affected` on a hand-made git history (test/helpers/fleet-changes.ts): one commit
// per kind of change, each compared with the one before; the catalogue is read with git only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { affected, shardsOf } from '../../src/fleet/affected.js';
import { main } from '../../src/cli/main.js';
import { copyCatalogue, type CatalogueCopy } from '../helpers/catalogue.js';
import { addStoreSites, CHANGES, SITES } from '../helpers/fleet-changes.js';

let c: CatalogueCopy;
const commits: string[] = [];
const git = (...args: string[]): string => execFileSync('git', ['-C', c.root, ...args], { encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.invalid' } }).trim();
const commit = (msg: string): string => {
  git('add', '-A');
  git('commit', '-q', '--allow-empty', '-m', msg);
  return git('rev-parse', 'HEAD');
};

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

describe('edgeimg affected', () => {
  beforeAll(async () => {
    c = copyCatalogue();
    addStoreSites(c);
    git('init', '-q', '-b', 'main');
    commits.push(commit('fleet'));
    for (const change of CHANGES) {
      await change.apply(c);
      commits.push(commit(change.name));
    }
  }, 120_000);
  afterAll(() => c.cleanup());

  CHANGES.forEach((change, i) => {
    it(`lists exactly the sites of: ${change.name}`, async () => {
      const r = await affected({ catalogueDir: c.catalogue, base: commits[i]!, head: commits[i + 1]! });
      expect(r.sites).toEqual(change.sites);
      expect(r.removed).toEqual(change.removed ?? []);
      expect(r.all).toBe(change.sites.length > 0 && change.sites.length === r.total);
      for (const ch of r.changes) expect(ch.reasons.length).toBeGreaterThan(0);
    }, 60_000);
  });

  it('gives reasons that name what changed', async () => {
    const at = (name: string): number => CHANGES.findIndex((x) => x.name.startsWith(name));
    const hw = await affected({ catalogueDir: c.catalogue, base: commits[at('a hardware class')]!, head: commits[at('a hardware class') + 1]! });
    // the kernel arguments are part of the Talos schematic: the class boot image changes too
    expect(hw.changes[0]!.reasons).toContain('catalogue: catalogue/hardware/nuc12-amd64.yaml');
    expect(hw.changes[0]!.reasons.filter((r) => r.startsWith('class boot image pin: talos/v1.13.9/'))).toHaveLength(2);
    const ov = await affected({ catalogueDir: c.catalogue, base: commits[at('an overlay a site uses')]!, head: commits[at('an overlay a site uses') + 1]! });
    expect(ov.changes).toEqual([{ site: 'plant-0031', reasons: ['overlay: ../overlays/site-kairos-journald.yaml'] }]);
    const pin = await affected({ catalogueDir: c.catalogue, base: commits[at('the class boot image pin')]!, head: commits[at('the class boot image pin') + 1]! });
    expect(pin.changes[0]!.reasons[0]).toMatch(/^class boot image pin: talos\/v1\.13\.9\/[0-9a-f]{64}\/nocloud-amd64\.iso$/);
    const added = await affected({ catalogueDir: c.catalogue, base: commits[at('a new site')]!, head: commits[at('a new site') + 1]! });
    expect(added.changes).toEqual([{ site: 'store-0500', reasons: ['new site'] }]);
  }, 120_000);

  it('spans several commits (the union) and defaults --head to HEAD', async () => {
    const r = await affected({ catalogueDir: c.catalogue, base: commits[0]! });
    expect(r.head).toBe(commits.at(-1));
    expect(r.sites).toEqual(['lab-0001', 'plant-0031', 'store-0007', 'store-0412', 'store-0413', 'store-0500']);
    expect(r.removed).toEqual(['store-0008']);
    expect(r.all).toBe(true);
  }, 60_000);

  it('lists every site when the pinned fleet signing key changes', async () => {
    c.write('catalogue/signing.pub', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBX7xQhs6ZDY0x9lZ3jX0H6x0D2mMkN7fN9xg7zJ0Ldf fleet\n');
    const head = commit('pin the fleet key');
    const r = await affected({ catalogueDir: c.catalogue, base: commits.at(-1)!, head });
    expect(r.sites.length).toBe(r.total);
    expect(r.all).toBe(true);
    expect(r.changes[0]!.reasons).toEqual(['fleet signing key (signing.pub)']);
    commits.push(head);
  }, 60_000);

  it('touches no work tree: uncommitted edits are not read and nothing in the checkout changes', async () => {
    const site = c.path('catalogue/sites/store-0412.yaml');
    writeFileSync(site, readFileSync(site, 'utf8').replace('subnet: 10.4.12.0/24', 'subnet: 10.4.99.0/24'));
    const status = git('status', '--porcelain');
    const index = statSync(c.path('.git/index')).mtimeMs;
    const r = await affected({ catalogueDir: c.catalogue, base: commits.at(-2)!, head: commits.at(-1)! });
    expect(r.sites).not.toContain('store-0412x');
    expect(statSync(c.path('.git/index')).mtimeMs).toBe(index);
    expect(git('status', '--porcelain')).toBe(status);
    expect(readFileSync(site, 'utf8')).toContain('10.4.99.0/24');
    git('checkout', '-q', '--', 'catalogue/sites/store-0412.yaml');
  }, 60_000);

  it('shards the list for a CI matrix: contiguous, at most --max-jobs, the union is the list', async () => {
    const sites = Array.from({ length: 1000 }, (_, i) => `s-${String(i).padStart(4, '0')}`);
    const shards = shardsOf(sites, 256);
    expect(shards).toHaveLength(256);
    expect(shards.flatMap((s) => s.sites)).toEqual(sites);
    expect(new Set(shards.map((s) => s.sites.length))).toEqual(new Set([3, 4]));
    expect(shards[0]).toMatchObject({ index: 1, count: 256, shard: '1/256', siteArgs: '--site s-0000 --site s-0001 --site s-0002 --site s-0003' });
    expect(shardsOf(['a', 'b'], 256).map((s) => s.shard)).toEqual(['1/2', '2/2']);
    expect(shardsOf([], 256)).toEqual([]);
    const r = await cli(['affected', '--catalogue', c.catalogue, '--base', commits[0]!, '--max-jobs', '4', '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.shards).toHaveLength(4);
    expect(j.shards.flatMap((s: { sites: string[] }) => s.sites)).toEqual(j.sites);
  }, 60_000);

  it('prints one site per line, reasons on stderr; errors as the contract says', async () => {
    const r = await cli(['affected', '--catalogue', c.catalogue, '--base', commits[1]!, '--head', commits[2]!]);
    expect(r.code).toBe(0);
    expect(r.out).toBe('store-0412\n');
    expect(r.err).toMatch(/store-0412: catalogue: catalogue\/sites\/store-0412\.yaml/);
    expect(r.err).toMatch(/1 site of 6 affected between/);
    const none = await cli(['affected', '--catalogue', c.catalogue, '--base', commits[0]!, '--head', commits[1]!, '--json']);
    expect(JSON.parse(none.out)).toMatchObject({ sites: [], shards: [], all: false });
    expect((await cli(['affected', '--catalogue', c.catalogue])).code).toBe(2);
    const unknown = await cli(['affected', '--catalogue', c.catalogue, '--base', 'no-such-branch']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/--base no-such-branch: no such commit.*fetch-depth: 0/);
    // a head whose catalogue is broken: exit 1, positioned like validate
    c.edit('catalogue/sites/store-0007.yaml', (t) => t.replace('profile: store-single', 'profile: store-singel'));
    const broken = commit('typo');
    const bad = await cli(['affected', '--catalogue', c.catalogue, '--base', commits.at(-1)!, '--head', broken]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^catalogue\/sites\/store-0007\.yaml:\d+:\d+: .*store-singel/m);
    expect(bad.err).not.toMatch(/edgeimg-affected-/);
  }, 120_000);

  it('outside a git repository: exit 3, naming it', async () => {
    const other = copyCatalogue();
    try {
      const r = await cli(['affected', '--catalogue', other.catalogue, '--base', 'HEAD~1']);
      expect(r.code).toBe(3);
      expect(r.err).toMatch(/is not inside a git repository/);
    } finally {
      other.cleanup();
    }
  });

  it('covers every site of the example fleet', () => {
    expect(SITES).toHaveLength(6);
  });
});
