// verify proves whose artifacts these are, not only that their bytes match the manifest: a site
// tree copied under another site's name, two node directories swapped with the manifest
// "fixed", or a build from another catalogue all fail; with --boot the guest's report must
// name the expected node.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { copyCatalogue, repoRoot } from '../helpers/catalogue.js';

const work = mkdtempSync(join(tmpdir(), 'edgeimg-identity-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const catalogue = join(repoRoot, 'catalogue');
const secrets = join(work, 'secrets');
const pristine = join(work, 'pristine');

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Recompute every digest in a site's manifest, as someone "fixing" it would. */
function fixManifest(siteDir: string): void {
  const m = JSON.parse(readFileSync(join(siteDir, 'manifest.json'), 'utf8'));
  for (const a of m.artifacts) {
    a.sha256 = sha(join(siteDir, a.path));
    a.bytes = statSync(join(siteDir, a.path)).size;
  }
  writeFileSync(join(siteDir, 'manifest.json'), JSON.stringify(m, null, 2));
}

function fresh(name: string): string {
  const dir = join(work, name);
  cpSync(pristine, dir, { recursive: true });
  return dir;
}

function verifyArgs(out: string, site: string, ...extra: string[]): string[] {
  // --secrets: the fleet public key that signed the manifests (the example catalogue pins none)
  return ['verify', '--site', site, '--out', out, '--catalogue', catalogue, '--secrets', secrets, '--json', ...extra];
}

beforeAll(async () => {
  const r = await run(['build', '--all', '--catalogue', catalogue, '--out', pristine, '--secrets', secrets]);
  expect(r.code, r.err).toBe(0);
}, 300_000);

describe('identity in verify', () => {
  it('the example fleet verifies, identity included', async () => {
    for (const site of ['store-0412', 'store-0007', 'plant-0031', 'lab-0001']) {
      const r = await run(verifyArgs(pristine, site));
      expect(r.code, r.err).toBe(0);
      const checks = JSON.parse(r.out).sites[0].results.filter((c: { check: string }) => c.check === 'identity');
      expect(checks.length).toBeGreaterThan(1);
    }
  });

  it('a site tree copied under another site\'s name fails', async () => {
    const out = fresh('copied');
    rmSync(join(out, 'store-0412'), { recursive: true });
    cpSync(join(out, 'store-0007'), join(out, 'store-0412'), { recursive: true });
    const r = await run(verifyArgs(out, 'store-0412'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/identity: the manifest is for site "store-0007", not store-0412/);
    expect(r.err).toMatch(/the manifest's nodes differ from the catalogue's for store-0412/);
  });

  it('a copied tree whose manifest also names the new site still fails, per node', async () => {
    const out = fresh('copied2');
    rmSync(join(out, 'store-0412'), { recursive: true });
    cpSync(join(out, 'store-0007'), join(out, 'store-0412'), { recursive: true });
    const mf = join(out, 'store-0412', 'manifest.json');
    writeFileSync(mf, readFileSync(mf, 'utf8').replace('"site": "store-0007"', '"site": "store-0412"'));
    const r = await run(['verify', '--site', 'store-0412', '--out', out, '--catalogue', join(work, 'no-catalogue-here')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/store-0412\/cp-1 identity: meta-data instance-id "iid-store-0007\.cp-1\.[0-9a-f]+" is not iid-store-0412\.cp-1\./);
  });

  it('two node directories swapped, with the manifest fixed, fail for both nodes', async () => {
    const out = fresh('swapped');
    const nodes = join(out, 'store-0412', 'nodes');
    renameSync(join(nodes, 'cp-1'), join(nodes, 'tmp'));
    renameSync(join(nodes, 'cp-2'), join(nodes, 'cp-1'));
    renameSync(join(nodes, 'tmp'), join(nodes, 'cp-2'));
    fixManifest(join(out, 'store-0412'));
    const r = await run(verifyArgs(out, 'store-0412'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/store-0412\/cp-1 identity: .*local-hostname "store-0412-cp-2" is not store-0412-cp-1/);
    expect(r.err).toMatch(/store-0412\/cp-2 identity: .*local-hostname "store-0412-cp-1" is not store-0412-cp-2/);
  });

  it('a consistent build from another catalogue fails against this one', async () => {
    const copy = copyCatalogue();
    try {
      copy.edit('catalogue/sites/store-0007.yaml', (t) => t.replace('subnet: 10.0.7.0/24', 'subnet: 10.0.8.0/24'));
      const out = join(work, 'other-catalogue');
      expect((await run(['build', '--site', 'store-0007', '--catalogue', copy.catalogue, '--out', out, '--secrets', join(work, 'other-s')])).code).toBe(0);
      const r = await run(verifyArgs(out, 'store-0007'));
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/the manifest's nodes differ from the catalogue's for store-0007: catalogue has \[cp-1 store-0007-cp-1 controlplane 10\.0\.7\.11/);
    } finally {
      copy.cleanup();
    }
  });

  it('with --boot, the guest reports whose seed it read (swapped nodes fail)', async () => {
    const { bootPrereqs, ensureProbeImages } = await import('../boot/helpers.js');
    if (!bootPrereqs(['amd64'], 'the --boot identity check').run) return;
    ensureProbeImages(['amd64']);
    const out = fresh('swapped-boot');
    const nodes = join(out, 'store-0412', 'nodes');
    renameSync(join(nodes, 'cp-1'), join(nodes, 'tmp'));
    renameSync(join(nodes, 'cp-2'), join(nodes, 'cp-1'));
    renameSync(join(nodes, 'tmp'), join(nodes, 'cp-2'));
    fixManifest(join(out, 'store-0412'));
    const r = await run(verifyArgs(out, 'store-0412', '--boot', '--timeout', '90'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/store-0412\/cp-1 boot-cdrom: .*the seed that booted is store-0412-cp-2 \(iid-store-0412\.cp-2\.[0-9a-f]+\), not store-0412\/cp-1/);
    // and the good site boots with the guest naming each node
    const good = await run(verifyArgs(pristine, 'store-0007', '--boot', '--timeout', '90'));
    expect(good.code, good.err).toBe(0);
  }, 300_000);
});
