// Class boot sticks: one per hardware class and OS version, linked once into OUT/_boot from the
// image cache (never copied per site), named with their pin in every site's manifest; stand-ins
// are kept apart from real pins; `flash --class` and `inspect` handle them. The stand-in ISOs
// here are plain ISO9660 images with the stand-in marker (xorriso), enough for everything but
// booting; booting real stand-ins is test/boot/usb-kit.test.ts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execaSync } from 'execa';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { copyCatalogue, type CatalogueCopy } from '../helpers/catalogue.js';
import { requireTool } from '../helpers/tools.js';
import { standinMarker } from '../../src/images/standin.js';
import { peekIso } from '../../src/media/iso9660/peek.js';

const work = mkdtempSync(join(tmpdir(), 'edgeimg-class-'));
const cache = join(work, 'cache');
const from = join(work, 'standin');
const out = join(work, 'out');
let cat: CatalogueCopy;
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  cat?.cleanup();
});

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let o = '';
  let e = '';
  const code = await main(args, { out: (s) => (o += s), err: (s) => (e += s) });
  return { code, out: o, err: e };
}

function fakeStandin(arch: string, kind: string): void {
  const dir = join(work, `tree-${arch}-${kind}`);
  mkdirSync(join(dir, 'boot'), { recursive: true });
  writeFileSync(join(dir, 'EDGEIMG-STANDIN.json'), JSON.stringify({ standin: kind, arch, version: 1, note: 'test' }));
  writeFileSync(join(dir, 'boot', 'kernel'), `${arch} ${kind} `.repeat(20000)); // ~0.3 MB, so sizes differ per kind
  mkdirSync(join(from, arch), { recursive: true });
  execaSync('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-V', kind === 'kairos-like' ? 'COS_LIVE' : 'EDGEIMG_TALOS_LIKE', '-o', join(from, arch, `${kind}.iso`), dir]);
}

const haveXorriso = requireTool('xorriso');

beforeAll(async () => {
  cat = copyCatalogue();
  if (!haveXorriso) return;
  for (const arch of ['amd64', 'arm64']) for (const kind of ['talos-like', 'kairos-like']) fakeStandin(arch, kind);
}, 60_000);

const cli = (args: string[]) => run([...args, '--catalogue', cat.catalogue]);

describe('stand-ins in the image cache', () => {
  it('are found by their marker, and pinned in the cache, never in images.lock', async () => {
    if (!haveXorriso) return;
    expect(standinMarker(join(from, 'amd64', 'talos-like.iso'))).toEqual({ standin: 'talos-like', arch: 'amd64', version: 1 });
    const before = readFileSync(join(cat.catalogue, 'images.lock'), 'utf8');
    const r = await cli(['images', 'standin', '--from', from, '--cache', cache]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/stand-in boot images? in the cache/);
    expect(readFileSync(join(cat.catalogue, 'images.lock'), 'utf8')).toBe(before);
    const pins = JSON.parse(readFileSync(join(cache, 'standin.lock'), 'utf8')).assets;
    expect(Object.keys(pins).some((k) => k.endsWith('/nocloud-amd64.iso'))).toBe(true);
    const list = await cli(['images', 'list', '--cache', cache]);
    expect(list.out).toMatch(/STAND-IN talos +boot +nocloud-amd64\.iso/);
    expect(list.out).toMatch(/STAND-IN kairos +boot +kairos-/);
  });
});

describe('build: class boot sticks', () => {
  it('without --allow-standin, a stand-in is never used: the manifest names the asset, unpinned', async () => {
    if (!haveXorriso) return;
    const r = await cli(['build', '--site', 'store-0412', '--out', out, '--secrets', join(work, 's'), '--cache', cache]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/not placed: .*test stand-in.*--allow-standin/);
    const m = JSON.parse(readFileSync(join(out, 'store-0412', 'manifest.json'), 'utf8'));
    expect(m.bootMedia).toHaveLength(1);
    expect(m.bootMedia[0]).toMatchObject({ hardwareClass: 'nuc12-amd64', os: 'talos', name: 'nocloud-amd64.iso' });
    expect(m.bootMedia[0].sha256).toBeUndefined();
    expect(existsSync(join(out, '_boot'))).toBe(false);
  });

  it('with --allow-standin: linked once per class into OUT/_boot (a hard link into the cache), marked in manifest and field sheet', async () => {
    if (!haveXorriso) return;
    const r = await cli(['build', '--site', 'store-0412', '--site', 'store-0007', '--site', 'plant-0031', '--out', out, '--secrets', join(work, 's'), '--cache', cache, '--allow-standin', '--media', 'iso,img']);
    expect(r.code, r.err).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'store-0412', 'manifest.json'), 'utf8'));
    const b = m.bootMedia[0];
    expect(b).toMatchObject({ hardwareClass: 'nuc12-amd64', standin: 'talos-like', bytes: statSync(join(from, 'amd64', 'talos-like.iso')).size });
    const linked = join(out, '_boot', 'nuc12-amd64', `talos-${m.osVersion}`, 'nocloud-amd64.iso');
    const cached = join(cache, ...b.asset.split('/'));
    expect(statSync(linked).ino).toBe(statSync(cached).ino); // the cache's file, not a copy
    const index = JSON.parse(readFileSync(join(out, '_boot', 'index.json'), 'utf8'));
    expect(Object.keys(index.files).sort()).toEqual([
      `ipc-amd64/kairos-${JSON.parse(readFileSync(join(out, 'plant-0031', 'manifest.json'), 'utf8')).bootMedia[0].version}/${JSON.parse(readFileSync(join(out, 'plant-0031', 'manifest.json'), 'utf8')).bootMedia[0].name}`,
      `legacy-amd64/talos-${m.osVersion}/nocloud-amd64.iso`,
      `nuc12-amd64/talos-${m.osVersion}/nocloud-amd64.iso`,
    ].sort());
    // nothing per site: no site directory holds a class image
    for (const site of ['store-0412', 'store-0007', 'plant-0031']) {
      const files = execaSync('find', [join(out, site), '-name', '*.iso', '-size', '+100k']).stdout.trim();
      expect(files).toBe('');
    }
    expect(readFileSync(join(out, 'store-0412', 'field-sheet.html'), 'utf8')).toMatch(/TEST STAND-IN \(talos-like\)/);
    // a rebuild keeps the link; the pin is part of the input digest
    const again = await cli(['build', '--site', 'store-0412', '--out', out, '--secrets', join(work, 's'), '--cache', cache, '--allow-standin', '--media', 'iso,img']);
    expect(again.code, again.err).toBe(0);
    expect(again.err).not.toMatch(/class boot stick _boot/);
    expect(JSON.parse(readFileSync(join(out, 'store-0412', 'manifest.json'), 'utf8')).inputDigest).toBe(m.inputDigest);
  });

  it('refuses an OUT/_boot it did not write, changing nothing', async () => {
    if (!haveXorriso) return;
    const other = join(work, 'out-foreign');
    mkdirSync(join(other, '_boot'), { recursive: true });
    writeFileSync(join(other, '_boot', 'mine.iso'), 'not edgeimg');
    const r = await cli(['build', '--site', 'store-0412', '--out', other, '--secrets', join(work, 's'), '--cache', cache, '--allow-standin']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/_boot: has no edgeimg index\.json/);
    expect(existsSync(join(other, 'store-0412'))).toBe(false);
    expect(readFileSync(join(other, '_boot', 'mine.iso'), 'utf8')).toBe('not edgeimg');
  });
});

describe('flash --class and inspect of class boot media', () => {
  it('flash --class writes the class stick from the cache and reads it back; inspect names it', async () => {
    if (!haveXorriso) return;
    const dev = join(work, 'class-stick.img');
    writeFileSync(dev, Buffer.alloc(0));
    const r = await run(['flash', '--site', 'store-0007', '--class', 'legacy-amd64', dev, '--out', out, '--cache', cache]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/wrote the legacy-amd64 boot stick \(nocloud-amd64\.iso\)/);
    expect(peekIso(dev)?.volumeId).toBe('EDGEIMG_TALOS_LIKE');
    const i = await run(['inspect', dev, '--out', out, '--secrets', join(work, 's'), '--json']);
    expect(i.code, i.err).toBe(0);
    expect(i.err).toMatch(/class boot stick of hardware class (legacy|nuc12)-amd64, talos v1\.13\.\d+ \(nocloud-amd64\.iso\) \[TEST STAND-IN talos-like\]/);
    expect(JSON.parse(i.out)).toMatchObject({ ok: true, kind: 'class-boot' });
  });

  it('a class stick for the wrong node, a truncated one, and an unknown ISO fail plainly', async () => {
    if (!haveXorriso) return;
    const kairos = join(work, 'kairos-class.img');
    const r = await run(['flash', '--site', 'plant-0031', '--class', 'ipc-amd64', kairos, '--out', out, '--cache', cache]);
    expect(r.code, r.err).toBe(0);
    const wrong = await run(['inspect', kairos, '--out', out, '--secrets', join(work, 's'), '--site', 'store-0412', '--node', 'cp-1']);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/PROBLEM: .*matches no class boot stick of site store-0412/);
    const cut = join(work, 'cut.img');
    copyFileSync(kairos, cut);
    truncateSync(cut, statSync(kairos).size - 512);
    const t = await run(['inspect', cut, '--out', out, '--secrets', join(work, 's')]);
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/PROBLEM: truncated/);
    const flip = join(work, 'flip.img');
    const buf = readFileSync(kairos);
    buf[buf.length - 4096] = buf[buf.length - 4096]! ^ 1;
    writeFileSync(flip, buf);
    const f = await run(['inspect', flip, '--out', out, '--secrets', join(work, 's')]);
    expect(f.code).toBe(1);
    expect(f.err).toMatch(/matches no class boot stick/);
  });

  it('flash --class writes a real loop device (a USB stick larger than the image); inspect reads it through the device', async () => {
    if (!haveXorriso || process.getuid?.() !== 0 || !requireTool('losetup')) return;
    const backing = join(work, 'class-loop.img');
    writeFileSync(backing, Buffer.alloc(0));
    truncateSync(backing, 16 * 1024 * 1024);
    let dev: string;
    try {
      dev = execaSync('losetup', ['--find', '--show', backing]).stdout.trim();
    } catch (err) {
      console.warn(`\n*** SKIPPING the loop-device class flash test: losetup failed (${(err as Error).message.split('\n')[0]}) ***\n`);
      return;
    }
    try {
      const r = await run(['flash', '--site', 'store-0412', '--class', 'nuc12-amd64', dev, '--out', out, '--cache', cache]);
      expect(r.code, r.err).toBe(0);
      const i = await run(['inspect', dev, '--out', out, '--secrets', join(work, 's'), '--site', 'store-0412', '--node', 'cp-2']);
      expect(i.code, i.err).toBe(0);
      expect(i.err).toMatch(/class boot stick of hardware class nuc12-amd64/);
      // plant-0031's nodes take the ipc-amd64 Kairos stick, not this one
      const other = await run(['inspect', dev, '--out', out, '--secrets', join(work, 's'), '--site', 'plant-0031', '--node', 'server-1']);
      expect(other.code).toBe(1);
      expect(other.err).toMatch(/matches no class boot stick of site plant-0031/);
    } finally {
      execaSync('losetup', ['-d', dev], { reject: false });
    }
  });

  it('flash --class refuses a class the site does not use, and a cached image that changed', async () => {
    if (!haveXorriso) return;
    const r = await run(['flash', '--site', 'store-0412', '--class', 'ipc-amd64', join(work, 'x.img'), '--out', out, '--cache', cache]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no node of site store-0412 is of hardware class ipc-amd64/);
    const m = JSON.parse(readFileSync(join(out, 'store-0007', 'manifest.json'), 'utf8'));
    const cached = join(cache, ...m.bootMedia[0].asset.split('/'));
    const saved = readFileSync(cached);
    const bad = Buffer.from(saved);
    bad[100] = bad[100]! ^ 1;
    rmSync(cached); // the cache file is hard-linked into OUT/_boot: replace it, do not write through
    writeFileSync(cached, bad);
    try {
      const c = await run(['flash', '--site', 'store-0007', '--class', 'legacy-amd64', join(work, 'y.img'), '--out', out, '--cache', cache]);
      expect(c.code).toBe(1);
      expect(c.err).toMatch(/refused: does not match its pin/);
      expect(existsSync(join(work, 'y.img'))).toBe(false);
    } finally {
      rmSync(cached);
      writeFileSync(cached, saved);
    }
  });
});
