// Seed sticks in the field: EDGEIMG.TXT names the node, `flash` writes and reads back (image
// files and real loop devices), `inspect` says whose stick it is and whether it is intact, and
// the refusals that protect a technician's laptop hold.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa, execaSync } from 'execa';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { flashRefusal, MAX_DEVICE_BYTES } from '../../src/field/flash.js';
import { repoRoot } from '../helpers/catalogue.js';
import { requireTool } from '../helpers/tools.js';

const work = mkdtempSync(join(tmpdir(), 'edgeimg-field-'));
const out = join(work, 'out');
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let o = '';
  let e = '';
  const code = await main(args, { out: (s) => (o += s), err: (s) => (e += s) });
  return { code, out: o, err: e };
}

beforeAll(async () => {
  const r = await run(['build', '--site', 'store-0412', '--site', 'plant-0031', '--catalogue', join(repoRoot, 'catalogue'), '--out', out, '--secrets', join(work, 's'), '--media', 'iso,img']);
  expect(r.code, r.err).toBe(0);
}, 120_000);

describe('the seed stick says what it is', () => {
  it('holds EDGEIMG.TXT naming site, node, MAC, hostname and build (read with mtools)', async () => {
    if (!requireTool('mcopy')) return;
    const img = join(out, 'store-0412', 'nodes', 'cp-2', 'seed.img');
    const text = execaSync('mcopy', ['-i', img, '::/EDGEIMG.TXT', '-']).stdout;
    const m = JSON.parse(readFileSync(join(out, 'store-0412', 'manifest.json'), 'utf8'));
    expect(text).toContain('Site:         store-0412');
    expect(text).toContain('Node:         cp-2 (control plane)');
    expect(text).toContain('MAC address:  52:54:00:04:12:12');
    expect(text).toContain('Hostname:     store-0412-cp-2');
    expect(text).toContain(`Build:        ${m.inputDigest}`);
    expect(text).toMatch(/Instance: {5}iid-store-0412\.cp-2\.[0-9a-f]{32}/);
    expect(readFileSync(img).includes(Buffer.from('\r\nSite:'))).toBe(true); // Windows line ends
  });
});

describe('inspect', () => {
  it('names the stick and confirms it against the manifest', async () => {
    const r = await run(['inspect', join(out, 'store-0412', 'nodes', 'cp-1', 'seed.img'), '--out', out, '--secrets', join(work, 's'), '--json']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/seed stick \(FAT32\) for store-0412 node cp-1 \(hostname store-0412-cp-1, MAC 52:54:00:04:12:11\), talos v1\.13\.9/);
    expect(JSON.parse(r.out)).toMatchObject({ ok: true, kind: 'seed-img', site: 'store-0412', node: 'cp-1' });
    const iso = await run(['inspect', join(out, 'plant-0031', 'nodes', 'agent-1', 'seed.iso'), '--out', out, '--secrets', join(work, 's')]);
    expect(iso.code, iso.err).toBe(0);
    expect(iso.err).toMatch(/seed ISO for plant-0031 node agent-1/);
  });

  it('a stick for another node fails plainly', async () => {
    const r = await run(['inspect', join(out, 'store-0412', 'nodes', 'cp-2', 'seed.img'), '--out', out, '--secrets', join(work, 's'), '--site', 'store-0412', '--node', 'cp-1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/PROBLEM: this stick is for node store-0412\/cp-2 \(store-0412-cp-2\), not cp-1/);
  });

  it('one changed byte fails, naming the file', async () => {
    const img = join(work, 'flipped.img');
    copyFileSync(join(out, 'store-0412', 'nodes', 'cp-1', 'seed.img'), img);
    const buf = readFileSync(img);
    const at = buf.indexOf('machine:');
    buf[at + 1] = buf[at + 1]! ^ 0x01;
    writeFileSync(img, buf);
    const r = await run(['inspect', img, '--out', out, '--secrets', join(work, 's')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/does NOT match the site's manifest: .*\(user-data differs\)/);
  });

  it('a stick truncated by one sector fails', async () => {
    const img = join(work, 'short.img');
    copyFileSync(join(out, 'store-0412', 'nodes', 'cp-1', 'seed.img'), img);
    truncateSync(img, readFileSync(img).length - 512);
    const r = await run(['inspect', img, '--out', out, '--secrets', join(work, 's')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/truncated: the volume needs \d+ bytes, the file holds \d+/);
  });

  it('something that is not a seed is said so', async () => {
    const junk = join(work, 'junk.img');
    writeFileSync(junk, Buffer.alloc(40960, 7));
    const r = await run(['inspect', junk, '--out', out, '--secrets', join(work, 's')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/not an edgeimg seed/);
  });
});

describe('flash', () => {
  it('writes a node\'s seed to an image file, reads it back, and inspect agrees', async () => {
    const file = join(work, 'stick.img');
    const r = await run(['flash', '--site', 'plant-0031', '--node', 'server-1', '--out', out, file]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/wrote plant-0031\/server-1's seed stick to .* and read it back: sha256 [0-9a-f]{64} matches/);
    expect((await run(['inspect', file, '--out', out, '--secrets', join(work, 's'), '--node', 'server-1'])).code).toBe(0);
  });

  it('writes to a real loop device (a stand-in USB stick), read back through the device', async () => {
    if (process.getuid?.() !== 0 || !requireTool('losetup')) return;
    const backing = join(work, 'loop-backing.img');
    writeFileSync(backing, Buffer.alloc(0));
    truncateSync(backing, 64 * 1024 * 1024);
    let dev: string;
    try {
      dev = (await execa('losetup', ['--find', '--show', backing])).stdout.trim();
    } catch (err) {
      console.warn(`\n*** SKIPPING the loop-device flash test: losetup failed (${(err as Error).message.split('\n')[0]}) ***\n`);
      return;
    }
    try {
      const r = await run(['flash', '--site', 'store-0412', '--node', 'cp-3', '--out', out, dev]);
      expect(r.code, r.err).toBe(0);
      const ins = await run(['inspect', dev, '--out', out, '--secrets', join(work, 's'), '--site', 'store-0412', '--node', 'cp-3']);
      expect(ins.code, ins.err).toBe(0);
      expect(ins.err).toMatch(/for store-0412 node cp-3/);
      // a stick for the wrong node, on the device
      const wrong = await run(['inspect', dev, '--out', out, '--secrets', join(work, 's'), '--node', 'cp-1']);
      expect(wrong.code).toBe(1);
    } finally {
      await execa('losetup', ['-d', dev], { reject: false });
    }
  });

  it('refuses the disk holding /, a mounted disk, an oversized device without --force, a too-small one', () => {
    const dev = (size: number) => ({ path: '/dev/sdz', kind: 'block' as const, size, name: 'sdz' });
    const none = { mounted: new Map<string, string>() };
    expect(flashRefusal(dev(16e9), { mounted: new Map([['sdz', '/']]), root: 'sdz' }, 1000, true)).toMatch(/holds the running system/);
    expect(flashRefusal(dev(16e9), { mounted: new Map([['sdz', '/media/usb']]) }, 1000, true)).toMatch(/is mounted \(at \/media\/usb\)/);
    expect(flashRefusal(dev(MAX_DEVICE_BYTES + 1), none, 1000, false)).toMatch(/larger than a USB stick usually is.*--force/);
    expect(flashRefusal(dev(MAX_DEVICE_BYTES + 1), none, 1000, true)).toBeUndefined();
    expect(flashRefusal(dev(512), none, 1000, false)).toMatch(/holds 512 bytes, the seed needs 1000/);
    expect(flashRefusal({ path: '/tmp/x.img', kind: 'file', size: 0 }, none, 1000, false)).toBeUndefined();
  });

  it('refuses to write a seed image that no longer matches its manifest', async () => {
    const copy = join(work, 'tampered-out');
    (await import('node:fs')).cpSync(out, copy, { recursive: true });
    const img = join(copy, 'store-0412', 'nodes', 'cp-1', 'seed.img');
    const buf = readFileSync(img);
    buf[100] = buf[100]! ^ 1;
    writeFileSync(img, buf);
    const r = await run(['flash', '--site', 'store-0412', '--node', 'cp-1', '--out', copy, join(work, 'never.img')]);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/does not match its manifest .* not writing a damaged image/);
  });
});
