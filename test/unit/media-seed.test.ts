import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  nonZeroExtents,
  writeSparseFileSync,
  buildSeedImg,
  buildSeedIso,
  epochFromDigest,
  resolveEpoch,
  readFatImage,
  readIso9660,
  DIGEST_EPOCH_BASE,
  DIGEST_EPOCH_SPAN,
} from '../../src/media/index.js';
import { UsageError } from '../../src/util/diagnostics.js';

const files = {
  userData: '#cloud-config\nhostname: node-1\n',
  metaData: 'instance-id: node-1\n',
  networkConfig: new TextEncoder().encode('version: 2\n'),
};
const DIGEST = 'a3f1c09e'.padEnd(64, '0');

describe('seed media', () => {
  it('builds a cidata ISO with the three NoCloud files', () => {
    const r = readIso9660(buildSeedIso(files, 1700000000));
    expect(r.volumeId).toBe('cidata');
    expect(r.jolietVolumeId).toBe('cidata');
    const byName = Object.fromEntries(r.files.map((f) => [f.name, Buffer.from(f.data).toString('utf8')]));
    expect(byName).toEqual({
      'meta-data': 'instance-id: node-1\n',
      'network-config': 'version: 2\n',
      'user-data': '#cloud-config\nhostname: node-1\n',
    });
  });

  it('builds a CIDATA FAT32 image with the three NoCloud files', () => {
    const r = readFatImage(buildSeedImg(files, 1700000000));
    expect(r.label).toBe('CIDATA');
    expect(r.fatType).toBe(32);
    expect(r.clusterCount).toBeGreaterThanOrEqual(65525);
    expect(r.files.map((f) => f.name).sort()).toEqual(['meta-data', 'network-config', 'user-data']);
  });

  it('is byte-identical for identical input, different for a different epoch', () => {
    expect(Buffer.from(buildSeedIso(files, 1700000000)).equals(Buffer.from(buildSeedIso({ ...files }, 1700000000)))).toBe(true);
    expect(Buffer.from(buildSeedImg(files, 1700000000)).equals(Buffer.from(buildSeedImg({ ...files }, 1700000000)))).toBe(true);
    expect(Buffer.from(buildSeedIso(files, 1700000000)).equals(Buffer.from(buildSeedIso(files, 1700000002)))).toBe(false);
    expect(Buffer.from(buildSeedImg(files, 1700000000)).equals(Buffer.from(buildSeedImg(files, 1700000002)))).toBe(false);
  });
});

describe('epochFromDigest / resolveEpoch', () => {
  it('maps a digest to a fixed, even timestamp in 2020-2023', () => {
    const e = epochFromDigest(DIGEST);
    expect(e).toBe(epochFromDigest(DIGEST.toUpperCase()));
    expect(e % 2).toBe(0);
    expect(e).toBeGreaterThanOrEqual(DIGEST_EPOCH_BASE);
    expect(e).toBeLessThan(DIGEST_EPOCH_BASE + DIGEST_EPOCH_SPAN);
    expect(epochFromDigest('00000000')).toBe(DIGEST_EPOCH_BASE);
    expect(epochFromDigest('ffffffff' + '0'.repeat(56))).not.toBe(e);
    expect(() => epochFromDigest('xyz')).toThrow(/hex digest/);
  });

  it('honours SOURCE_DATE_EPOCH, treats empty as unset and rejects junk', () => {
    expect(resolveEpoch({ SOURCE_DATE_EPOCH: '1700000000' }, DIGEST)).toBe(1700000000);
    expect(resolveEpoch({ SOURCE_DATE_EPOCH: '0' }, DIGEST)).toBe(0);
    expect(resolveEpoch({}, DIGEST)).toBe(epochFromDigest(DIGEST));
    expect(resolveEpoch({ SOURCE_DATE_EPOCH: '' }, DIGEST)).toBe(epochFromDigest(DIGEST));
    expect(() => resolveEpoch({ SOURCE_DATE_EPOCH: '17e8' }, DIGEST)).toThrow(UsageError);
    expect(() => resolveEpoch({ SOURCE_DATE_EPOCH: '-5' }, DIGEST)).toThrow(/SOURCE_DATE_EPOCH/);
    expect(() => resolveEpoch({ SOURCE_DATE_EPOCH: '99999999999' }, DIGEST)).toThrow(/2155/);
  });

  it('SOURCE_DATE_EPOCH=0 still produces valid media (FAT clamps to 1980)', () => {
    expect(readIso9660(buildSeedIso(files, 0)).files.length).toBe(3);
    expect(readFatImage(buildSeedImg(files, 0)).files.length).toBe(3);
  });
});

describe('sparse seed files', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'edgeimg-sparse-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('nonZeroExtents finds 4 KiB-aligned non-zero blocks and merges neighbours', () => {
    const b = new Uint8Array(1024 * 1024);
    expect(nonZeroExtents(b)).toEqual([]);
    b[0] = 1;
    b[4096] = 1; // adjacent block: merged
    b[200_000] = 1;
    b[b.length - 1] = 1;
    expect(nonZeroExtents(b)).toEqual([
      [0, 8192],
      [196608, 200704],
      [b.length - 4096, b.length],
    ]);
    const odd = new Uint8Array(5000);
    odd[4999] = 9;
    expect(nonZeroExtents(odd)).toEqual([[4096, 5000]]);
    expect(nonZeroExtents(odd, 512)).toEqual([[4608, 5000]]);
  });

  it('writeSparseFileSync writes the exact bytes of a seed, with holes where it is zero', () => {
    const img = buildSeedImg(files, 1700000000);
    const path = join(dir, 'seed.img');
    writeSparseFileSync(path, img, { mode: 0o600, flag: 'wx' });
    expect(Buffer.from(readFileSync(path)).equals(Buffer.from(img))).toBe(true);
    const st = statSync(path);
    expect(st.size).toBe(img.length);
    expect(st.mode & 0o777).toBe(0o600);
    // on filesystems with holes (tmpfs, ext4, xfs, btrfs) the seed occupies a few blocks only
    if (st.blocks * 512 < img.length) expect(st.blocks * 512).toBeLessThan(256 * 1024);
    else console.warn(`the filesystem of ${dir} does not keep holes: sparse size not checked`);
    expect(() => writeSparseFileSync(path, img, { flag: 'wx' })).toThrow(/EEXIST/);
  });

  it('overwriting with flag w leaves no old bytes in the holes', () => {
    const path = join(dir, 'old.bin');
    writeFileSync(path, Buffer.alloc(64 * 1024, 0xaa));
    const data = new Uint8Array(32 * 1024);
    data[10] = 1;
    writeSparseFileSync(path, data);
    expect(Buffer.from(readFileSync(path)).equals(Buffer.from(data))).toBe(true);
  });
});
