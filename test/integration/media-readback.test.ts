// Seed media read back by independent implementations: isoinfo (cdrkit), xorriso
// (libisofs), bsdtar (libarchive), blkid (util-linux), mtools, fsck.fat (dosfstools) and
// file(1). The FAT images are written sparsely, as the build writes seed.img.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSeedImg, buildSeedIso, readFatImage, writeFatImage, writeIso9660, writeSparseFileSync } from '../../src/media/index.js';
import { requireTool, toolPath } from '../helpers/tools.js';

const EPOCH = 1700000000;
const seed = {
  userData: '#cloud-config\nhostname: node-1\nusers: []\n',
  metaData: 'instance-id: node-1\nlocal-hostname: node-1\n',
  networkConfig: 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n',
};
const expected: Record<string, Buffer> = {
  'user-data': Buffer.from(seed.userData),
  'meta-data': Buffer.from(seed.metaData),
  'network-config': Buffer.from(seed.networkConfig),
};

// A harder set: empty files, exact/inexact sector and cluster sizes, a multi-MiB file.
const pattern = (n: number, k: number): Uint8Array => new Uint8Array(n).map((_, i) => (i * k + (i >> 11)) & 0xff);
const mixed = [
  { name: 'empty', data: new Uint8Array(0) },
  { name: 'one-sector.bin', data: pattern(2048, 3) },
  { name: 'sector-plus-one', data: pattern(2049, 5) },
  { name: 'cluster-minus-one', data: pattern(511, 7) },
  { name: 'big multi MiB.raw', data: pattern(3 * 1024 * 1024 + 17, 11) },
  { name: 'zz-trailing-empty', data: new Uint8Array(0) },
];

const has = {
  isoinfo: requireTool('isoinfo'),
  xorriso: requireTool('xorriso'),
  bsdtar: requireTool('bsdtar'),
  blkid: requireTool('blkid'),
  mdir: requireTool('mdir'),
  mcopy: requireTool('mcopy'),
  fsck: requireTool('fsck.fat'),
  mkfs: requireTool('mkfs.fat'),
  file: toolPath('file') !== undefined, // optional: file(1) is not on every machine
};

let dir = '';
let isoPath = '';
let imgPath = '';
let mixedIsoPath = '';
let mixedImgPath = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgeimg-media-'));
  isoPath = join(dir, 'seed.iso');
  imgPath = join(dir, 'seed.img');
  mixedIsoPath = join(dir, 'mixed.iso');
  mixedImgPath = join(dir, 'mixed.img');
  await writeFile(isoPath, buildSeedIso(seed, EPOCH));
  writeSparseFileSync(imgPath, buildSeedImg(seed, EPOCH));
  await writeFile(mixedIsoPath, writeIso9660(mixed, { volumeId: 'MIXED', epochSeconds: EPOCH }));
  writeSparseFileSync(mixedImgPath, writeFatImage(mixed, { label: 'MIXED', epochSeconds: EPOCH }));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function run(tool: string, args: string[]): Promise<string> {
  const r = await execa(toolPath(tool) ?? tool, args, { env: { LC_ALL: 'C' } });
  return r.stdout;
}

async function runBytes(tool: string, args: string[]): Promise<Buffer> {
  const r = await execa(toolPath(tool) ?? tool, args, { encoding: 'buffer', stripFinalNewline: false, env: { LC_ALL: 'C' } });
  return Buffer.from(r.stdout);
}

function parseExport(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).replace(/\\(.)/g, '$1')]), // blkid escapes spaces
  );
}

async function readTree(root: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const e of await readdir(root, { withFileTypes: true })) {
    if (e.isFile()) out[e.name] = await readFile(join(root, e.name));
  }
  return out;
}

function expectSame(got: Record<string, Buffer>, want: Record<string, Buffer | Uint8Array>): void {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [k, v] of Object.entries(want)) expect(got[k]?.equals(Buffer.from(v)), k).toBe(true);
}

const mixedWant = Object.fromEntries(mixed.map((f) => [f.name, f.data]));

describe('seed ISO read back by independent readers', () => {
  it.skipIf(!has.isoinfo)('isoinfo -d: volume id cidata, Joliet level 3 and Rock Ridge detected', async () => {
    const out = await run('isoinfo', ['-d', '-i', isoPath]);
    expect(out).toMatch(/^Volume id: cidata$/m);
    expect(out).toMatch(/Joliet with UCS level 3 found/);
    expect(out).toMatch(/Rock Ridge signatures version 1 found/);
    expect(out).toMatch(/^Logical block size is: 2048$/m);
  });

  it.skipIf(!has.isoinfo)('isoinfo -J -l and -R -l list the exact names', async () => {
    for (const mode of ['-J', '-R']) {
      const out = await run('isoinfo', [mode, '-l', '-i', isoPath]);
      const names = out
        .split('\n')
        .filter((l) => /^[-d]/.test(l))
        .map((l) => l.replace(/^.*\]\s+/, '').trimEnd())
        .filter((n) => n !== '.' && n !== '..');
      expect(names.sort(), mode).toEqual(['meta-data', 'network-config', 'user-data']);
    }
    // Rock Ridge attributes: read-only regular files owned by root
    expect(await run('isoinfo', ['-R', '-l', '-i', isoPath])).toMatch(/^-r--r--r-- +1 +0 +0 +\d+ .*user-data/m);
  });

  it.skipIf(!has.isoinfo)('isoinfo -J -x / -R -x extract byte-identical files', async () => {
    for (const mode of ['-J', '-R']) {
      for (const [name, want] of Object.entries(expected)) {
        expect((await runBytes('isoinfo', [mode, '-x', `/${name}`, '-i', isoPath])).equals(want), `${mode} ${name}`).toBe(true);
      }
    }
    // and the multi-MiB / empty / boundary-sized files
    for (const f of mixed) {
      expect((await runBytes('isoinfo', ['-R', '-x', `/${f.name}`, '-i', mixedIsoPath])).equals(Buffer.from(f.data)), f.name).toBe(true);
    }
  });

  it.skipIf(!has.xorriso)('xorriso -find / -exec lsdl shows the names; -extract is byte-identical', async () => {
    const r = await execa(toolPath('xorriso')!, ['-indev', isoPath, '-find', '/', '-exec', 'lsdl'], { all: true, env: { LC_ALL: 'C' } });
    const names = [...r.stdout.matchAll(/'\/([^']+)'/g)].map((m) => m[1]).sort();
    expect(names).toEqual(['meta-data', 'network-config', 'user-data']);
    expect(r.all).toMatch(/Volume id\s*:\s*'cidata'/);
    expect(r.stdout).toMatch(/^-r--r--r-- .*'\/user-data'$/m);
    for (const [img, want] of [
      [isoPath, expected],
      [mixedIsoPath, mixedWant],
    ] as const) {
      const out = await mkdtemp(join(dir, 'xorriso-'));
      await execa(toolPath('xorriso')!, ['-osirrox', 'on', '-indev', img, '-extract', '/', out], { env: { LC_ALL: 'C' } });
      expectSame(await readTree(out), want);
    }
  });

  it.skipIf(!has.bsdtar)('bsdtar -xf extracts byte-identical files', async () => {
    for (const [img, want] of [
      [isoPath, expected],
      [mixedIsoPath, mixedWant],
    ] as const) {
      const out = await mkdtemp(join(dir, 'bsdtar-'));
      await execa(toolPath('bsdtar')!, ['-xf', img, '-C', out]);
      expectSame(await readTree(out), want);
    }
  });

  it.skipIf(!has.blkid)('blkid -p: LABEL=cidata (from the Joliet descriptor), TYPE=iso9660', async () => {
    const tags = parseExport(await run('blkid', ['-p', '-o', 'export', isoPath]));
    expect(tags['TYPE']).toBe('iso9660');
    // libblkid takes the label from the Joliet SVD when one is present, so this checks the
    // UCS-2 label (space padded) as well as the PVD one.
    expect(tags['LABEL']).toBe('cidata');
    expect(tags['VERSION']).toBe('Joliet Extension');
    expect(tags['UUID']).toBe('2023-11-14-22-13-20-00'); // from the creation date = epoch
  });

  it.skipIf(!has.blkid)('blkid really reads the label from Joliet (so LABEL=cidata above covers the UCS-2 label)', async () => {
    const iso = Buffer.from(buildSeedIso(seed, EPOCH));
    iso.writeUInt16BE('X'.charCodeAt(0), 17 * 2048 + 40); // Joliet label -> "Xidata"; PVD keeps "cidata"
    const patched = join(dir, 'patched.iso');
    await writeFile(patched, iso);
    expect(parseExport(await run('blkid', ['-p', '-o', 'export', patched]))['LABEL']).toBe('Xidata');
  });
});

describe('seed FAT image read back by independent readers', () => {
  it.skipIf(!has.blkid)('blkid -p: TYPE=vfat VERSION=FAT32 LABEL=CIDATA, boot-sector label too', async () => {
    const tags = parseExport(await run('blkid', ['-p', '-o', 'export', imgPath]));
    expect(tags['TYPE']).toBe('vfat');
    expect(tags['VERSION']).toBe('FAT32');
    expect(tags['LABEL']).toBe('CIDATA'); // from the root-directory volume-label entry
    expect(tags['LABEL_FATBOOT']).toBe('CIDATA');
    expect(tags['UUID']).toMatch(/^[0-9A-F]{4}-[0-9A-F]{4}$/);
    expect(tags['BLOCK_SIZE']).toBe('512');
  });

  it.skipIf(!has.blkid)('blkid really reads LABEL from the root directory (so LABEL=CIDATA covers the entry)', async () => {
    const img = Buffer.from(buildSeedImg(seed, EPOCH));
    const root = (img.readUInt16LE(14) + img[16]! * img.readUInt32LE(36)) * 512; // cluster 2
    expect(img.subarray(root, root + 11).toString('latin1')).toBe('CIDATA     ');
    img.write('X', root, 'latin1');
    const patched = join(dir, 'patched.img');
    await writeFile(patched, img);
    const tags = parseExport(await run('blkid', ['-p', '-o', 'export', patched]));
    expect(tags['LABEL']).toBe('XIDATA');
    expect(tags['LABEL_FATBOOT']).toBe('CIDATA');
  });

  it.skipIf(!has.mdir)('mdir lists the long names and the label', async () => {
    expect((await run('mdir', ['-b', '-i', imgPath, '::'])).split('\n').filter(Boolean).sort()).toEqual([
      '::/meta-data',
      '::/network-config',
      '::/user-data',
    ]);
    const long = await run('mdir', ['-i', imgPath, '::']);
    expect(long).toMatch(/Volume in drive : is CIDATA/);
    expect(long).toMatch(/USER-D~1 +\d+ 2023-11-14 +22:13 +user-data/);
    expect((await run('mdir', ['-b', '-i', mixedImgPath, '::'])).split('\n').filter(Boolean).sort()).toEqual(
      mixed.map((f) => `::/${f.name}`).sort(),
    );
  });

  it.skipIf(!has.mcopy)('mcopy extracts byte-identical files', async () => {
    for (const [name, want] of Object.entries(expected)) {
      expect((await runBytes('mcopy', ['-i', imgPath, `::${name}`, '-'])).equals(want), name).toBe(true);
    }
    for (const f of mixed) {
      expect((await runBytes('mcopy', ['-i', mixedImgPath, `::${f.name}`, '-'])).equals(Buffer.from(f.data)), f.name).toBe(true);
    }
  });

  it.skipIf(!has.fsck)('fsck.fat -n: FAT32 with >= 65525 clusters, clean, no warnings', async () => {
    for (const img of [imgPath, mixedImgPath]) {
      const v = await execa(toolPath('fsck.fat')!, ['-n', '-v', img], { reject: false, all: true, env: { LC_ALL: 'C' } });
      expect(v.exitCode, v.all).toBe(0);
      expect(v.all).toMatch(/2 FATs, 32 bit entries/);
      expect(v.all).toMatch(/Root directory start at cluster 2/);
      const clusters = Number(/(\d+) data clusters/.exec(v.all ?? '')?.[1]);
      expect(clusters).toBeGreaterThanOrEqual(65525);
      // without -v, fsck.fat prints only its banner and the summary line when all is well
      const r = await execa(toolPath('fsck.fat')!, ['-n', img], { reject: false, all: true, env: { LC_ALL: 'C' } });
      expect(r.exitCode, r.all).toBe(0);
      const lines = (r.all ?? '').split('\n').filter(Boolean);
      expect(lines[0]).toMatch(/^fsck\.fat \d/);
      expect(lines.slice(1), r.all).toEqual([expect.stringMatching(/^.*: \d+ files, \d+\/\d+ clusters$/)]);
      expect(r.all).not.toMatch(/warning|differ|Free cluster summary|Dirty bit|wrong|invalid|bad|FSINFO|backup|Label/i);
    }
  });

  it.skipIf(!has.file)('file(1) says FAT (32 bit) and shows the label', async () => {
    const out = await run('file', ['-b', imgPath]);
    expect(out).toMatch(/FAT \(32 bit\)/);
    expect(out).toMatch(/label: "CIDATA {5}"/);
  });

  it.skipIf(!has.mkfs || !has.mcopy)('our reader still reads FAT12 and FAT16 volumes made by mkfs.fat + mcopy', async () => {
    for (const [bits, kib] of [
      [12, 1024],
      [16, 20_000],
    ] as const) {
      const path = join(dir, `old-fat${bits}.img`);
      await execa(toolPath('mkfs.fat')!, ['-F', String(bits), '-n', 'CIDATA', '-i', '12345678', '-C', path, String(kib)]);
      const src = join(dir, `user-data-${bits}`);
      await writeFile(src, seed.userData);
      await execa(toolPath('mcopy')!, ['-i', path, src, '::user-data'], { env: { LC_ALL: 'C', MTOOLS_SKIP_CHECK: '1' } });
      const r = readFatImage(await readFile(path));
      expect(r.fatType).toBe(bits);
      expect(r.label).toBe('CIDATA');
      expect(r.files.map((f) => [f.name, Buffer.from(f.data).toString()])).toEqual([['user-data', seed.userData]]);
    }
  });
});
