// The printable field sheet: every node with its MAC, class, class boot stick and seed stick
// (with the manifest's sha256), the steps in order; reproducible; and rendered by a real
// browser (Debian's headless Chromium), which must show the same facts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { repoRoot } from '../helpers/catalogue.js';
import { requireTool } from '../helpers/tools.js';

const work = mkdtempSync(join(tmpdir(), 'edgeimg-sheet-'));
const out = join(work, 'out');
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function build(dir: string): Promise<void> {
  let err = '';
  const code = await main(['build', '--site', 'store-0412', '--site', 'plant-0031', '--catalogue', join(repoRoot, 'catalogue'), '--out', dir, '--secrets', join(work, 's'), '--media', 'iso,img'], { out: () => {}, err: (s) => (err += s) });
  expect(code, err).toBe(0);
}

beforeAll(() => build(out), 120_000);

describe('field sheet', () => {
  it('lists every node with MAC, class, boot stick and seed stick sha256 from the manifest', () => {
    for (const site of ['store-0412', 'plant-0031']) {
      const html = readFileSync(join(out, site, 'field-sheet.html'), 'utf8');
      const m = JSON.parse(readFileSync(join(out, site, 'manifest.json'), 'utf8'));
      expect(m.artifacts.find((a: { path: string }) => a.path === 'field-sheet.html')).toMatchObject({ kind: 'field-sheet', secret: false });
      for (const n of m.nodes) {
        expect(html).toContain(`<strong>${n.name}</strong>`);
        expect(html).toContain(n.mac);
        expect(html).toContain(n.hardwareClass);
        const seed = m.artifacts.find((a: { node: string; kind: string }) => a.node === n.name && a.kind === 'seed-img');
        expect(html).toContain(`sha256 ${seed.sha256}`);
      }
      expect(html).toMatch(/Steps, in order/);
      expect(html).not.toMatch(/BEGIN|PRIVATE|token/i);
    }
    expect(readFileSync(join(out, 'store-0412', 'field-sheet.html'), 'utf8')).toContain('nocloud-amd64.iso (talos v1.13.9)');
  });

  it('is byte-identical on a rebuild', async () => {
    const again = join(work, 'again');
    await build(again);
    expect(readFileSync(join(again, 'store-0412', 'field-sheet.html'))).toEqual(readFileSync(join(out, 'store-0412', 'field-sheet.html')));
  });

  it('renders in headless Chromium: the page shows the nodes and MACs, and a screenshot is taken', async () => {
    const chromium = ['chromium', 'chromium-browser'].find((c) => requireTool(c));
    if (!chromium) return;
    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${join(work, 'chrome')}`];
    const page = `file://${join(out, 'store-0412', 'field-sheet.html')}`;
    const dom = await execa(chromium, [...flags, '--dump-dom', page], { timeout: 60_000 });
    expect(dom.stdout).toContain('Field sheet: store-0412');
    for (const mac of ['52:54:00:04:12:11', '52:54:00:04:12:12', '52:54:00:04:12:13']) expect(dom.stdout).toContain(mac);
    const png = join(work, 'sheet.png');
    await execa(chromium, [...flags, '--window-size=900,1300', `--screenshot=${png}`, page], { timeout: 60_000 });
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
    expect(statSync(png).size).toBeGreaterThan(20_000); // a blank page is a few KB
  }, 150_000);
});
