// Property test: random file sets written by our ISO9660 and FAT32 writers come back
// byte-identical through independent readers (bsdtar for ISO, mtools for FAT, fsck.fat
// for FAT consistency) and through our own readers. Also: the writers are deterministic.
// FAT images are written sparsely, as the build writes seed.img.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { execa } from 'execa';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFatImage, readIso9660, writeFatImage, writeIso9660, writeSparseFileSync } from '../../src/media/index.js';
import { requireTool, toolPath } from '../helpers/tools.js';

const hasBsdtar = requireTool('bsdtar');
const hasMcopy = requireTool('mcopy');
const hasFsck = requireTool('fsck.fat');

const NAME_CHARS = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', ...`-_.~!#$%&'()@^{}+,=[] `];

/** Legal names: 1-64 chars from NAME_CHARS, no leading/trailing space, no trailing dot. */
const nameArb = fc
  .array(fc.constantFrom(...NAME_CHARS), { minLength: 1, maxLength: 64 })
  .map((cs) => cs.join('').trim().replace(/\.+$/, ''))
  .map((n) => (n === '' || n === '.' ? 'x' : n));

const S = 2048; // ISO sector
const C = 512; // smallest FAT cluster
const sizeArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 4 }).map((k) => k * S) },
  { weight: 4, arbitrary: fc.tuple(fc.integer({ min: 1, max: 4 }), fc.constantFrom(-1, 1)).map(([k, d]) => k * S + d) },
  { weight: 4, arbitrary: fc.tuple(fc.integer({ min: 1, max: 9 }), fc.constantFrom(-1, 0, 1)).map(([k, d]) => k * C + d) },
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 20_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1024 * 1024, max: 4 * 1024 * 1024 + 3 }) },
);

/** Deterministic filler so that large files cost no fast-check shrinking effort. */
function fill(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (seed | 1) >>> 0;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const fileSetArb = fc
  .uniqueArray(fc.tuple(nameArb, sizeArb, fc.nat()), { minLength: 0, maxLength: 8, selector: ([n]) => n.toLowerCase() })
  .map((entries) => entries.map(([name, size, seed]) => ({ name, data: fill(size, seed) })));

const epochArb = fc.integer({ min: 315532800, max: 4102444800 }); // 1980 .. 2100

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgeimg-media-prop-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function readTree(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(root, { withFileTypes: true })) {
    if (e.isFile()) out.set(e.name, await readFile(join(root, e.name)));
  }
  return out;
}

function assertSame(what: string, got: Map<string, Uint8Array>, files: Array<{ name: string; data: Uint8Array }>): void {
  expect([...got.keys()].sort(), what).toEqual(files.map((f) => f.name).sort());
  for (const f of files) {
    const g = got.get(f.name);
    expect(g !== undefined && Buffer.from(g).equals(Buffer.from(f.data)), `${what}: ${JSON.stringify(f.name)} (${f.data.length} bytes)`).toBe(true);
  }
}

let counter = 0;

describe('media writers: random file sets read back byte-identical', () => {
  it('ISO9660: our reader + bsdtar, deterministic', async () => {
    await fc.assert(
      fc.asyncProperty(fileSetArb, epochArb, async (files, epoch) => {
        const iso = writeIso9660(files, { volumeId: 'cidata', epochSeconds: epoch });
        expect(iso.length % 2048).toBe(0);
        expect(Buffer.from(writeIso9660([...files].reverse(), { volumeId: 'cidata', epochSeconds: epoch })).equals(Buffer.from(iso))).toBe(true);
        const ours = readIso9660(iso);
        expect(ours.volumeId).toBe('cidata');
        assertSame('readIso9660', new Map(ours.files.map((f) => [f.name, f.data])), files);
        if (hasBsdtar) {
          const run = join(dir, `iso-${counter++}`);
          await mkdir(run);
          await writeFile(join(run, 'img.iso'), iso);
          await mkdir(join(run, 'out'));
          await execa(toolPath('bsdtar')!, ['-xf', join(run, 'img.iso'), '-C', join(run, 'out')]);
          assertSame('bsdtar', await readTree(join(run, 'out')), files);
          await rm(run, { recursive: true, force: true });
        }
      }),
      { numRuns: 60 },
    );
  });

  it('FAT: our reader + mcopy + fsck.fat, deterministic', async () => {
    await fc.assert(
      fc.asyncProperty(fileSetArb, epochArb, async (files, epoch) => {
        const img = writeFatImage(files, { label: 'CIDATA', epochSeconds: epoch });
        expect(Buffer.from(writeFatImage([...files].reverse(), { label: 'CIDATA', epochSeconds: epoch })).equals(Buffer.from(img))).toBe(true);
        const ours = readFatImage(img);
        expect(ours.label).toBe('CIDATA');
        expect(ours.fatType).toBe(32);
        expect(ours.clusterCount).toBeGreaterThanOrEqual(65525);
        assertSame('readFatImage', new Map(ours.files.map((f) => [f.name, f.data])), files);
        if (hasMcopy || hasFsck) {
          const run = join(dir, `fat-${counter++}`);
          await mkdir(join(run, 'out'), { recursive: true });
          const path = join(run, 'seed.img');
          writeSparseFileSync(path, img);
          if (hasMcopy && files.length > 0) {
            await execa(toolPath('mcopy')!, ['-s', '-n', '-i', path, '::/', join(run, 'out')], { env: { LC_ALL: 'C' } });
            assertSame('mcopy', await readTree(join(run, 'out')), files);
          }
          if (hasFsck) {
            const r = await execa(toolPath('fsck.fat')!, ['-n', path], { reject: false, all: true, env: { LC_ALL: 'C' } });
            expect(r.exitCode, r.all).toBe(0);
            expect(r.stderr, r.all).toBe(''); // no warnings
          }
          await rm(run, { recursive: true, force: true });
        }
      }),
      { numRuns: 60 },
    );
  });

  it.skipIf(!hasMcopy || !hasFsck)('content beyond 33 MiB grows the FAT32 volume; mtools, fsck.fat and blkid agree', async () => {
    const files = [
      { name: 'large.bin', data: fill(40 * 1024 * 1024 + 1, 42) },
      { name: 'user-data', data: fill(3000, 7) },
    ];
    const img = writeFatImage(files, { label: 'CIDATA', epochSeconds: 1700000000 });
    expect(img.length).toBeGreaterThan(40 * 1024 * 1024);
    expect(readFatImage(img).fatType).toBe(32);
    const path = join(dir, 'large.img');
    writeSparseFileSync(path, img);
    const fsck = await execa(toolPath('fsck.fat')!, ['-n', path], { reject: false, all: true, env: { LC_ALL: 'C' } });
    expect(fsck.exitCode, fsck.all).toBe(0);
    expect(fsck.stderr, fsck.all).toBe('');
    await mkdir(join(dir, 'large-out'));
    await execa(toolPath('mcopy')!, ['-s', '-n', '-i', path, '::/', join(dir, 'large-out')]);
    assertSame('mcopy', await readTree(join(dir, 'large-out')), files);
    if (requireTool('blkid')) {
      const r = await execa(toolPath('blkid')!, ['-p', '-o', 'export', path]);
      expect(r.stdout).toMatch(/^VERSION=FAT32$/m);
      expect(r.stdout).toMatch(/^LABEL=CIDATA$/m);
    }
  });
});
