// The boot image cache: import offline (hash, pin on first import, refuse a mismatch), list what
// is cached and whether it matches its pin, refuse mismatching files when they are used.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { main } from '../../src/cli/main.js';
import { readLock, requireVerifiedAsset, resolveCacheDir, serializeLock, writePins } from '../../src/images/index.js';
import { EnvironmentError, VerifyError } from '../../src/util/diagnostics.js';
import { copyCatalogue, repoRoot, type CatalogueCopy } from '../helpers/catalogue.js';

const NUC = 'fb79be8885b2ec0c41fb38a6867e28b8e76fd73df9eadbb3bd39adb0a1eb306d'; // nuc12-amd64's schematic
const ISO = `talos/v1.13.9/${NUC}/nocloud-amd64.iso`;
const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

const work = mkdtempSync(join(tmpdir(), 'edgeimg-images-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let cat: CatalogueCopy;
let cache: string;
let n = 0;
beforeEach(() => {
  cat?.cleanup();
  cat = copyCatalogue();
  cache = join(work, `cache-${n++}`);
});
afterAll(() => cat?.cleanup());

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['images', ...args], { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

function file(name: string, content: string): string {
  const dir = join(work, `src-${n++}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), content);
  return join(dir, name);
}

/** Every file under the cache, temporary files included. */
function cacheFiles(): string[] {
  return existsSync(cache) ? readdirSync(cache, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort() : [];
}

describe('images import', () => {
  it('copies the file to its asset path, and pins its sha256 and size when the asset had no pin', async () => {
    const src = file('nocloud-amd64.iso', 'talos iso bytes');
    const r = await run('import', '--class', 'nuc12-amd64', '--catalogue', cat.catalogue, '--cache', cache, src);
    expect(r.err).toContain('pin new');
    expect(r.code).toBe(0);
    expect(readFileSync(join(cache, ...ISO.split('/')), 'utf8')).toBe('talos iso bytes');
    expect(readLock(cat.catalogue).pins.get(ISO)).toEqual({ sha256: sha('talos iso bytes'), size: 15 });
  });

  it('accepts a file that matches its pin and leaves the lock as it was', async () => {
    writePins(cat.catalogue, new Map([[ISO, { sha256: sha('good'), size: 4 }]]));
    const before = readFileSync(join(cat.catalogue, 'images.lock'));
    const r = await run('import', '--class', 'nuc12-amd64', '--catalogue', cat.catalogue, '--cache', cache, file('nocloud-amd64.iso', 'good'));
    expect(r.code).toBe(0);
    expect(r.err).toContain('matches its pin');
    expect(readFileSync(join(cat.catalogue, 'images.lock'))).toEqual(before);
  });

  it('refuses a file that does not match its pin: exit 1 naming the file, expected and actual digests, nothing cached', async () => {
    writePins(cat.catalogue, new Map([[ISO, { sha256: sha('good'), size: 4 }]]));
    const src = file('nocloud-amd64.iso', 'tampered');
    const r = await run('import', '--class', 'nuc12-amd64', '--catalogue', cat.catalogue, '--cache', cache, src);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${src}: refused`);
    expect(r.err).toContain(`expected sha256 ${sha('good')} (4 bytes), got ${sha('tampered')} (8 bytes)`);
    expect(cacheFiles()).toEqual([]);
    expect(readLock(cat.catalogue).pins.get(ISO)).toEqual({ sha256: sha('good'), size: 4 });
  });

  it('with --pin replaces the pin the file does not match', async () => {
    writePins(cat.catalogue, new Map([[ISO, { sha256: sha('old'), size: 3 }]]));
    const r = await run('import', '--class', 'nuc12-amd64', '--pin', '--catalogue', cat.catalogue, '--cache', cache, file('nocloud-amd64.iso', 'new'));
    expect(r.code).toBe(0);
    expect(r.err).toContain('pin replaced');
    expect(readLock(cat.catalogue).pins.get(ISO)).toEqual({ sha256: sha('new'), size: 3 });
  });

  it('with --locked refuses an asset that has no pin, and pins nothing', async () => {
    const r = await run('import', '--class', 'nuc12-amd64', '--locked', '--catalogue', cat.catalogue, '--cache', cache, file('nocloud-amd64.iso', 'x'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('not pinned');
    expect(cacheFiles()).toEqual([]);
    expect(readLock(cat.catalogue).pins.size).toBe(0);
  });

  it('matches Kairos files by their release name, and --as renames one file', async () => {
    const stem = 'kairos-ubuntu-24.04-standard-amd64-generic-v3.5.1-k3sv1.33.4+k3s1';
    const r = await run('import', '--class', 'ipc-amd64', '--catalogue', cat.catalogue, '--cache', cache, file(`${stem}-kernel`, 'k'), file(`${stem}-initrd`, 'i'));
    expect(r.code).toBe(0);
    const img = 'kairos-ubuntu-24.04-standard-arm64-rpi4-v3.5.1-k0sv1.33.4+k0s.0.img';
    const r2 = await run('import', '--class', 'rpi4-arm64', '--as', img, '--catalogue', cat.catalogue, '--cache', cache, file('build.img', 'rpi'));
    expect(r2.code).toBe(0);
    expect([...readLock(cat.catalogue).pins.keys()]).toEqual([`kairos/v3.5.1/${stem}-initrd`, `kairos/v3.5.1/${stem}-kernel`, `kairos/v3.5.1/${img}`]);
  });

  it('refuses a file whose name is no asset of the class with a usage error listing the expected names, copying nothing', async () => {
    const good = file('kernel-amd64', 'k');
    const r = await run('import', '--class', 'nuc12-amd64', '--catalogue', cat.catalogue, '--cache', cache, good, file('talos.iso', 'x'));
    expect(r.code).toBe(2);
    expect(r.err).toContain('"talos.iso" is not an asset of the selection');
    expect(r.err).toContain('expected one of: cmdline-nocloud-amd64, initramfs-amd64.xz, kernel-amd64, nocloud-amd64.iso');
    expect(cacheFiles()).toEqual([]);
  });

  it('names unknown and unused classes, and an OS or version no site runs, as usage errors', async () => {
    cat.write('catalogue/hardware/spare.yaml', readFileSync(cat.path('catalogue/hardware/nuc12-amd64.yaml'), 'utf8').replace('name: nuc12-amd64', 'name: spare-amd64'));
    const f = file('kernel-amd64', 'k');
    const common = ['--catalogue', cat.catalogue, '--cache', cache, f];
    expect((await run('import', '--class', 'nuc13', ...common)).err).toMatch(/unknown hardware class "nuc13" \(known: .*nuc12-amd64/);
    expect((await run('import', '--class', 'spare-amd64', ...common)).err).toContain('hardware class spare-amd64 is used by no site');
    const r = await run('import', '--class', 'nuc12-amd64', '--os', 'talos', '--version', 'v1.14.0', ...common);
    expect(r.code).toBe(2);
    expect(r.err).toContain('in use: nuc12-amd64 talos v1.13.9');
    expect((await run('import', ...common)).err).toContain('give --class NAME');
  });

  it('says which file is missing, as an environment problem (exit 3)', async () => {
    const missing = join(work, 'nowhere', 'nocloud-amd64.iso');
    const r = await run('import', '--class', 'nuc12-amd64', '--catalogue', cat.catalogue, '--cache', cache, missing);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`${missing}: not found`);
    expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('says which path of the cache it cannot write (exit 3)', async () => {
    const blocker = join(work, `blocker-${n++}`);
    writeFileSync(blocker, 'a file where the cache directory should be');
    const r = await run('import', '--class', 'nuc12-amd64', '--catalogue', cat.catalogue, '--cache', join(blocker, 'cache'), file('nocloud-amd64.iso', 'x'));
    expect(r.code).toBe(3);
    expect(r.err).toContain(`cannot write to the image cache: ${join(blocker, 'cache')}`);
    expect(readLock(cat.catalogue).pins.size).toBe(0);
  });
});

describe('images list', () => {
  it('shows every asset as not pinned on a fresh clone, and --check fails', async () => {
    const r = await run('list', '--json', '--catalogue', cat.catalogue, '--cache', cache);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.counts).toEqual({ ok: 0, mismatch: 0, 'cached-unpinned': 0, missing: 0, 'not-pinned': 13 });
    expect(report.needs.map((x: { hardwareClass: string }) => x.hardwareClass)).toEqual(['ipc-amd64', 'legacy-amd64', 'nuc12-amd64', 'rpi4-arm64']);
    const check = await run('list', '--check', '--catalogue', cat.catalogue, '--cache', cache);
    expect(check.code).toBe(1);
    expect(check.out).toContain('not pinned');
  });

  it('shows an imported asset as ok, a pinned one not in the cache as missing', async () => {
    await run('import', '--class', 'nuc12-amd64', '--catalogue', cat.catalogue, '--cache', cache, file('nocloud-amd64.iso', 'iso'));
    writePins(cat.catalogue, new Map([[`talos/v1.13.9/${NUC}/kernel-amd64`, { sha256: sha('k'), size: 1 }]]));
    const r = await run('list', '--json', '--class', 'nuc12-amd64', '--catalogue', cat.catalogue, '--cache', cache);
    expect(r.code).toBe(0);
    const assets = JSON.parse(r.out).needs[0].assets;
    expect(assets.map((a: { name: string; status: string }) => [a.name, a.status])).toEqual([
      ['nocloud-amd64.iso', 'ok'],
      ['kernel-amd64', 'missing'],
      ['initramfs-amd64.xz', 'not-pinned'],
      ['cmdline-nocloud-amd64', 'not-pinned'],
    ]);
  });

  it('shows a cached file whose hash differs from its pin as MISMATCH, with both digests, and exits 1', async () => {
    await run('import', '--class', 'nuc12-amd64', '--catalogue', cat.catalogue, '--cache', cache, file('nocloud-amd64.iso', 'iso'));
    writeFileSync(join(cache, ...ISO.split('/')), 'isO'); // one byte changed in the cache
    const r = await run('list', '--class', 'nuc12-amd64', '--catalogue', cat.catalogue, '--cache', cache);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/MISMATCH\s+boot\s+nocloud-amd64\.iso/);
    expect(r.out).toContain(`expected sha256 ${sha('iso')} (3 bytes), cached file has ${sha('isO')} (3 bytes)`);
    expect(r.err).toContain('1 cached file refused');
  });

  it('refuses a symlink in the cache instead of following it', async () => {
    const target = file('elsewhere.iso', 'iso');
    writePins(cat.catalogue, new Map([[ISO, { sha256: sha('iso'), size: 3 }]]));
    mkdirSync(join(cache, 'talos', 'v1.13.9', NUC), { recursive: true });
    symlinkSync(target, join(cache, ...ISO.split('/')));
    const r = await run('list', '--json', '--class', 'nuc12-amd64', '--catalogue', cat.catalogue, '--cache', cache);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).needs[0].assets[0]).toMatchObject({ status: 'mismatch', problem: expect.stringContaining('symbolic link') });
  });

  it('mentions pins no site needs', async () => {
    writeFileSync(join(cat.catalogue, 'images.lock'), serializeLock(new Map([['talos/v1.12.0/x/kernel-amd64', { sha256: sha(''), size: 0 }]])));
    const r = await run('list', '--catalogue', cat.catalogue, '--cache', cache);
    expect(r.out).toContain('1 pin in');
    expect(r.out).toContain('no site needs: talos/v1.12.0/x/kernel-amd64');
  });

  it('reports a malformed images.lock as FILE:LINE:COL (exit 1)', async () => {
    writeFileSync(join(cat.catalogue, 'images.lock'), '{\n  "lockVersion": 1,\n  "assets": { "talos/v1/x/k": { "sha256": "no", "size": 1 } }\n}\n');
    const r = await run('list', '--catalogue', cat.catalogue, '--cache', cache);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/images\.lock:3:\d+: asset "talos\/v1\/x\/k": sha256 must be 64 lower-case hex digits/);
  });
});

describe('using a cached asset', () => {
  it('refuses a file that differs from its pin, one without a pin, and a missing one', async () => {
    await run('import', '--class', 'nuc12-amd64', '--catalogue', cat.catalogue, '--cache', cache, file('nocloud-amd64.iso', 'iso'));
    const lock = readLock(cat.catalogue);
    await expect(requireVerifiedAsset(cache, lock, ISO)).resolves.toMatchObject({ digest: { sha256: sha('iso'), size: 3 } });
    writeFileSync(join(cache, ...ISO.split('/')), 'evil');
    await expect(requireVerifiedAsset(cache, lock, ISO)).rejects.toThrow(VerifyError);
    await expect(requireVerifiedAsset(cache, lock, ISO)).rejects.toThrow(/does not match its pin/);
    const kernel = `talos/v1.13.9/${NUC}/kernel-amd64`;
    mkdirSync(join(cache, 'talos', 'v1.13.9', NUC), { recursive: true });
    writeFileSync(join(cache, ...kernel.split('/')), 'k');
    await expect(requireVerifiedAsset(cache, lock, kernel)).rejects.toThrow(/not pinned/);
    await expect(requireVerifiedAsset(cache, lock, `talos/v1.13.9/${NUC}/initramfs-amd64.xz`)).rejects.toThrow(EnvironmentError);
  });
});

describe('the cache directory', () => {
  it('is --cache, else $EDGEIMG_IMAGE_CACHE, else ./images/cache/boot', () => {
    expect(resolveCacheDir('/x/flag', { EDGEIMG_IMAGE_CACHE: '/x/env' })).toBe('/x/flag');
    expect(resolveCacheDir(undefined, { EDGEIMG_IMAGE_CACHE: '/x/env' })).toBe('/x/env');
    expect(resolveCacheDir(undefined, {})).toBe(join(process.cwd(), 'images', 'cache', 'boot'));
  });

  it('is ignored by git', async () => {
    const r = await execa('git', ['check-ignore', '--no-index', 'images/cache/boot/talos/v1.13.9/x/nocloud-amd64.iso'], { cwd: repoRoot, reject: false });
    expect(r.exitCode).toBe(0);
  });
});
