import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { writeFatImage, shortNames, shortNameChecksum, planFatGeometry, fat32SectorsPerCluster, FAT32_MIN_CLUSTERS } from '../../src/media/fat/writer.js';
import { readFatImage, FatFormatError } from '../../src/media/fat/reader.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const EPOCH = 1700000000; // 2023-11-14T22:13:20Z
const MIB = 1024 * 1024;

const seedFiles = [
  { name: 'user-data', data: enc('#cloud-config\nhostname: node-1\n') },
  { name: 'meta-data', data: enc('instance-id: node-1\n') },
  { name: 'network-config', data: enc('version: 2\n') },
];

const ascii = (b: Uint8Array, off: number, len: number): string => Buffer.from(b.subarray(off, off + len)).toString('latin1');

describe('writeFatImage', () => {
  const img = writeFatImage(seedFiles, { label: 'CIDATA', epochSeconds: EPOCH });

  it('round-trips through our reader with long names and the label', () => {
    const r = readFatImage(img);
    expect(r.label).toBe('CIDATA');
    expect(r.bootSectorLabel).toBe('CIDATA');
    expect(r.fatType).toBe(32);
    expect(r.clusterCount).toBe(66504);
    expect(r.files.map((f) => f.name).sort()).toEqual(['meta-data', 'network-config', 'user-data']);
    for (const f of seedFiles) expect(Buffer.from(r.files.find((x) => x.name === f.name)!.data).equals(Buffer.from(f.data))).toBe(true);
  });

  it('writes a 33 MiB FAT32 volume: BPB, FSInfo, backups, FATs and a label entry at cluster 2', () => {
    expect(img.length).toBe(33 * MIB);
    const dv = new DataView(img.buffer, img.byteOffset);
    expect([img[0], img[1], img[2], img[510], img[511]]).toEqual([0xeb, 0x58, 0x90, 0x55, 0xaa]);
    expect(ascii(img, 3, 8)).toBe('MSWIN4.1');
    expect(dv.getUint16(11, true)).toBe(512);
    expect(img[13]).toBe(1); // 512-byte clusters
    expect(dv.getUint16(14, true)).toBe(32); // reserved sectors
    expect(img[16]).toBe(2);
    expect([dv.getUint16(17, true), dv.getUint16(19, true), dv.getUint16(22, true)]).toEqual([0, 0, 0]);
    expect(img[21]).toBe(0xf8);
    expect(dv.getUint32(32, true)).toBe(67584);
    expect(dv.getUint32(36, true)).toBe(524); // the specification's FATSz for 67584 sectors
    expect([dv.getUint16(40, true), dv.getUint16(42, true), dv.getUint32(44, true)]).toEqual([0, 0, 2]);
    expect([dv.getUint16(48, true), dv.getUint16(50, true)]).toEqual([1, 6]);
    expect([img[64], img[66]]).toEqual([0x80, 0x29]);
    expect(ascii(img, 71, 11)).toBe('CIDATA     ');
    expect(ascii(img, 82, 8)).toBe('FAT32   ');
    // FSInfo: signatures, exact free count (root dir + one cluster per small file used), next-free hint
    expect(ascii(img, 512, 4)).toBe('RRaA');
    expect(ascii(img, 512 + 484, 4)).toBe('rrAa');
    expect(dv.getUint32(512 + 488, true)).toBe(66504 - 4);
    expect(dv.getUint32(512 + 492, true)).toBe(6);
    expect(dv.getUint32(512 + 508, true)).toBe(0xaa550000);
    // backups
    expect(Buffer.from(img.subarray(6 * 512, 7 * 512)).equals(Buffer.from(img.subarray(0, 512)))).toBe(true);
    expect(Buffer.from(img.subarray(7 * 512, 8 * 512)).equals(Buffer.from(img.subarray(512, 1024)))).toBe(true);
    // FATs: media entry, clean/no-error entry 1, root directory chain at 2, identical copies
    const fat = 32 * 512;
    expect([dv.getUint32(fat, true), dv.getUint32(fat + 4, true), dv.getUint32(fat + 8, true)]).toEqual([0x0ffffff8, 0x0fffffff, 0x0fffffff]);
    expect(Buffer.from(img.subarray(fat, fat + 524 * 512)).equals(Buffer.from(img.subarray(fat + 524 * 512, fat + 2 * 524 * 512)))).toBe(true);
    // root directory (cluster 2, sector 1080): label entry first
    const rootOff = 1080 * 512;
    expect(ascii(img, rootOff, 11)).toBe('CIDATA     ');
    expect(img[rootOff + 11]).toBe(0x08); // ATTR_VOLUME_ID
    // write date/time of the label entry: 2023-11-14 22:13:20 (UTC)
    expect(dv.getUint16(rootOff + 24, true)).toBe(((2023 - 1980) << 9) | (11 << 5) | 14);
    expect(dv.getUint16(rootOff + 22, true)).toBe((22 << 11) | (13 << 5) | 10);
    // nothing after the last file's data: the rest of the image is zeros
    const tail = Buffer.from(img.subarray(rootOff + 6 * 512));
    expect(tail.equals(Buffer.alloc(tail.length))).toBe(true);
  });

  it('derives the serial from the content: deterministic, order-independent, content-sensitive', () => {
    const again = writeFatImage([...seedFiles].reverse(), { label: 'CIDATA', epochSeconds: EPOCH });
    expect(Buffer.from(again).equals(Buffer.from(img))).toBe(true);
    const serial = readFatImage(img).serial;
    const changed = writeFatImage([{ ...seedFiles[0]!, data: enc('#cloud-config\n') }, ...seedFiles.slice(1)], { label: 'CIDATA', epochSeconds: EPOCH });
    expect(readFatImage(changed).serial).not.toBe(serial);
    const later = writeFatImage(seedFiles, { label: 'CIDATA', epochSeconds: EPOCH + 2 });
    expect(Buffer.from(later).equals(Buffer.from(img))).toBe(false);
  });

  it('clamps pre-1980 epochs to 1980-01-01 (FAT cannot go earlier)', () => {
    const a = writeFatImage(seedFiles, { label: 'CIDATA', epochSeconds: 0 });
    const b = writeFatImage(seedFiles, { label: 'CIDATA', epochSeconds: 315532800 });
    // only the serial (hashed from the epoch; boot sector and its backup at sector 6) differs
    expect(a.length).toBe(b.length);
    const unserial = (x: Uint8Array): Buffer => {
      const c = Buffer.from(x);
      c.fill(0, 67, 71);
      c.fill(0, 6 * 512 + 67, 6 * 512 + 71);
      return c;
    };
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    expect(unserial(a).equals(unserial(b))).toBe(true);
  });

  it('holds multi-MiB content, growing past 33 MiB only when needed', () => {
    const big = new Uint8Array(20 * MIB + 3).map((_, i) => i & 0xff);
    const withBig = writeFatImage([{ name: 'big.bin', data: big }, ...seedFiles], { label: 'CIDATA', epochSeconds: EPOCH });
    expect(withBig.length).toBe(33 * MIB);
    const r = readFatImage(withBig);
    expect(r.fatType).toBe(32);
    expect(Buffer.from(r.files.find((f) => f.name === 'big.bin')!.data).equals(Buffer.from(big))).toBe(true);
    const huge = new Uint8Array(40 * MIB).fill(7);
    const withHuge = writeFatImage([{ name: 'huge.bin', data: huge }], { label: 'CIDATA', epochSeconds: EPOCH });
    expect(withHuge.length).toBeGreaterThan(40 * MIB);
    expect(withHuge.length % MIB).toBe(0);
    expect(readFatImage(withHuge).files[0]!.data.length).toBe(huge.length);
  });

  it('geometry: FAT32 cluster counts always >= 65525, cluster size from the specification table', () => {
    for (const mib of [0, 1, 20, 32, 33, 100, 250, 259, 260, 261, 300, 1000]) {
      const g = planFatGeometry([mib * MIB], 16);
      expect(g.clusterCount, `${mib} MiB`).toBeGreaterThanOrEqual(FAT32_MIN_CLUSTERS);
      expect(g.totalSectors).toBeGreaterThan(66600);
      expect(g.sectorsPerCluster).toBe(fat32SectorsPerCluster(g.totalSectors));
      expect((g.sectorsPerFat * 512) / 4).toBeGreaterThanOrEqual(g.clusterCount + 2);
      expect(g.firstDataSector).toBe(32 + 2 * g.sectorsPerFat);
      expect(g.rootDirClusters + Math.ceil((mib * MIB) / (g.sectorsPerCluster * 512))).toBeLessThanOrEqual(g.clusterCount);
    }
    expect(planFatGeometry([], 1)).toMatchObject({ totalSectors: 67584, sectorsPerCluster: 1, sectorsPerFat: 524, clusterCount: 66504 });
    expect(() => fat32SectorsPerCluster(66600)).toThrow(/too small/);
    expect([66601, 532480, 532481, 16777216, 16777217, 33554433, 67108865].map(fat32SectorsPerCluster)).toEqual([1, 1, 8, 8, 16, 32, 64]);
  });

  it('root directory grows past one cluster for many long names', () => {
    const many = Array.from({ length: 40 }, (_, i) => ({ name: `a-rather-long-file-name-${String(i).padStart(3, '0')}.yaml`, data: enc(`file ${i}\n`) }));
    const big = writeFatImage(many, { label: 'CIDATA', epochSeconds: EPOCH });
    const r = readFatImage(big);
    expect(r.files.map((f) => f.name)).toEqual(many.map((f) => f.name));
    expect(r.files.every((f, i) => Buffer.from(f.data).toString() === `file ${i}\n`)).toBe(true);
  });

  it('makes Windows-style short names and LFN checksums', () => {
    const s = shortNames(['user-data', 'meta-data', 'network-config', 'README.TXT', 'readme.txt2', 'a b.c', '.hidden', 'x+y']);
    expect(s.map((x) => x.packed)).toEqual([
      'USER-D~1   ',
      'META-D~1   ',
      'NETWOR~1   ',
      'README  TXT',
      'README~1TXT',
      'AB~1    C  ',
      'HIDDEN~1   ',
      'X_Y~1      ',
    ]);
    expect(s.map((x) => x.needsLfn)).toEqual([true, true, true, false, true, true, true, true]);
    expect(shortNames(['network-config', 'network-data'])[1]!.packed).toBe('NETWOR~2   ');
    expect(shortNameChecksum(Uint8Array.from('USER-D~1   ', (c) => c.charCodeAt(0)))).toBeTypeOf('number');
  });

  it('rejects bad names, case-insensitive duplicates and bad labels', () => {
    const o = { label: 'CIDATA', epochSeconds: EPOCH };
    expect(() => writeFatImage([{ name: 'a:b', data: new Uint8Array(0) }], o)).toThrow(/':' is not allowed/);
    expect(() =>
      writeFatImage(
        [
          { name: 'User-Data', data: new Uint8Array(0) },
          { name: 'user-data', data: new Uint8Array(0) },
        ],
        o,
      ),
    ).toThrow(/ignoring case/);
    expect(() => writeFatImage(seedFiles, { label: 'TWELVECHARS!', epochSeconds: EPOCH })).toThrow(/FAT label/);
    expect(() => writeFatImage(seedFiles, { label: 'a/b', epochSeconds: EPOCH })).toThrow(/FAT label/);
  });
});

describe('readFatImage on damaged input', () => {
  const img = writeFatImage([{ name: 'data.bin', data: new Uint8Array(100_000).fill(9) }, ...seedFiles], { label: 'CIDATA', epochSeconds: EPOCH });

  it('rejects truncated images', () => {
    for (const len of [0, 100, 511, 4096, img.length - 1]) {
      expect(() => readFatImage(img.subarray(0, len)), `length ${len}`).toThrow(/truncated FAT image|invalid FAT image/);
    }
    expect(() => readFatImage(img.subarray(0, img.length / 2))).toThrow(/^truncated FAT image: /);
  });

  it('never throws anything but FatFormatError on random corruption', () => {
    // boot sector + FSInfo, the used start of FAT #1, and the root directory + first data
    const regions: Array<[number, number]> = [
      [0, 1024],
      [32 * 512, 32 * 512 + 512],
      [1080 * 512, 1080 * 512 + 4096],
    ];
    const posArb = fc.tuple(fc.nat(regions.length - 1), fc.nat(4095)).map(([r, k]) => {
      const [a, b] = regions[r]!;
      return a + (k % (b - a));
    });
    const work = img.slice();
    fc.assert(
      fc.property(fc.array(fc.tuple(posArb, fc.nat(255)), { minLength: 1, maxLength: 40 }), (edits) => {
        // edit a working copy in place and undo afterwards (copying 33 MiB per run is slow)
        const saved = edits.map(([pos]) => [pos, work[pos]!] as const);
        for (const [pos, val] of edits) work[pos] = val;
        try {
          readFatImage(work);
        } catch (e) {
          if (!(e instanceof FatFormatError)) throw e;
        } finally {
          for (const [pos, val] of saved.reverse()) work[pos] = val;
        }
      }),
      { numRuns: 300 },
    );
    expect(Buffer.from(work).equals(Buffer.from(img))).toBe(true);
  });

  it('still reads FAT12 and FAT16 volumes (older seeds, other tools)', () => {
    // A minimal FAT12 volume built by hand: 1 MiB, 1 reserved sector, 2 FATs of 3 sectors,
    // 512 root entries, one file HELLO.TXT at cluster 2.
    const v = new Uint8Array(MIB);
    const dv = new DataView(v.buffer);
    v.set([0xeb, 0x3c, 0x90], 0);
    dv.setUint16(11, 512, true);
    v[13] = 1;
    dv.setUint16(14, 1, true);
    v[16] = 2;
    dv.setUint16(17, 512, true);
    dv.setUint16(19, 2048, true);
    v[21] = 0xf8;
    dv.setUint16(22, 6, true);
    v[38] = 0x29;
    v.set(enc('OLDSEED    '), 43);
    v[510] = 0x55;
    v[511] = 0xaa;
    for (const fat of [512, 512 + 6 * 512]) v.set([0xf8, 0xff, 0xff, 0xff, 0x0f], fat); // entries 0, 1, 2 (EOC)
    const root = (1 + 12) * 512;
    v.set(enc('HELLO   TXT'), root);
    v[root + 11] = 0x20;
    dv.setUint16(root + 26, 2, true);
    dv.setUint32(root + 28, 5, true);
    v.set(enc('hello'), root + 32 * 512);
    const r = readFatImage(v);
    expect(r.fatType).toBe(12);
    expect(r.label).toBe('OLDSEED');
    expect(r.files).toEqual([{ name: 'HELLO.TXT', data: enc('hello') }]);
  });
});
