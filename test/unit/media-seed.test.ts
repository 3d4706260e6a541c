import { describe, expect, it } from 'vitest';
import {
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

  it('builds a CIDATA FAT image with the three NoCloud files', () => {
    const r = readFatImage(buildSeedImg(files, 1700000000));
    expect(r.label).toBe('CIDATA');
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
