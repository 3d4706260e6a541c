// A build killed at any moment never leaves a partial artifact under its final name: every
// site directory in OUT is either the previous complete build or the new complete one, and the
// next build clears what the killed one left behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../helpers/catalogue.js';
import { staticChecks } from '../../src/verify/static.js';

const cli = join(repoRoot, 'dist', 'cli', 'main.js');
const haveDist = existsSync(cli);
if (!haveDist) {
  if (process.env.CI) throw new Error('dist/ missing: run `npm run build` (make test does)');
  console.warn('\n*** SKIPPING crash-safety tests: dist/ not built (run `npm run build` or `make test`) ***\n');
}

const work = mkdtempSync(join(tmpdir(), 'edgeimg-crash-'));
const out = join(work, 'out');
const args = ['build', '--all', '--media', 'iso,img', '--catalogue', join(repoRoot, 'catalogue'), '--out', out, '--secrets', join(work, 'secrets')];
const bin = join(repoRoot, 'bin', 'edgeimg.js');

describe.runIf(haveDist)('builds killed part-way', () => {
  beforeAll(async () => {
    await execa(process.execPath, [bin, ...args]); // a complete previous build, secrets made
  }, 120_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('leave every site directory complete and consistent, whenever the kill lands', async () => {
    for (const delay of [150, 300, 450, 600, 800, 1000, 1300]) {
      const child = execa(process.execPath, [bin, ...args, '--force'], { reject: false }); // a real rebuild each time
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      await child;
      for (const site of readdirSync(out).filter((n) => !n.startsWith('.') && !n.includes('.edgeimg-old-'))) {
        const { results } = await staticChecks(join(out, site));
        expect(results.filter((r) => !r.ok), `${site} after a kill at ${delay} ms`).toEqual([]);
      }
    }
    const r = await execa(process.execPath, [bin, ...args], { reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['.edgeimg-state', 'lab-0001', 'plant-0031', 'store-0007', 'store-0412']); // nothing stale left
  }, 180_000);
});

describe.runIf(haveDist)('worker-thread fleet builds', () => {
  it('produce the same bytes as in-process builds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeimg-workers-'));
    try {
      const cat = join(dir, 'catalogue');
      cpSync(join(repoRoot, 'catalogue'), cat, { recursive: true });
      cpSync(join(repoRoot, 'overlays'), join(dir, 'overlays'), { recursive: true });
      for (let i = 0; i < 20; i++) {
        const id = `store-9${String(i).padStart(3, '0')}`;
        writeFileSync(join(cat, 'sites', `${id}.yaml`), `apiVersion: edgeimg.dev/v1alpha1\nkind: Site\nmetadata:\n  name: ${id}\nspec:\n  profile: store-ha3\n  subnet: 10.90.${i}.0/24\n  nodes:\n${[1, 2, 3].map((n) => `    - { name: cp-${n}, mac: "02:90:00:00:${i.toString(16).padStart(2, '0')}:0${n}" }\n`).join('')}`);
      }
      const trees: Record<string, string>[] = [];
      for (const workers of ['1', '2']) {
        const o = join(dir, `out-${workers}`);
        const r = await execa(process.execPath, [bin, 'build', '--all', '--catalogue', cat, '--out', o, '--secrets', join(dir, 'secrets')], {
          reject: false,
          all: true,
          env: { EDGEIMG_WORKERS: workers },
        });
        expect(r.exitCode, r.all).toBe(0);
        const t: Record<string, string> = {};
        for (const e of readdirSync(o, { recursive: true, withFileTypes: true })) {
          if (e.isFile() && !relative(o, e.parentPath).startsWith('.edgeimg-state')) t[relative(o, join(e.parentPath, e.name))] = createHash('sha256').update(readFileSync(join(e.parentPath, e.name))).digest('hex');
        }
        trees.push(t);
      }
      expect(Object.keys(trees[0]!).length).toBeGreaterThan(24 * 4);
      expect(trees[1]).toEqual(trees[0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
