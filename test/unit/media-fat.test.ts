import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { writeFatImage, shortNames, shortNameChecksum, planFatGeometry } from '../../src/media/fat/writer.js';
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
    expect(r.fatType).toBe(12);
    expect(r.files.map((f) => f.name).sort()).toEqual(['meta-data', 'network-config', 'user-data']);
    for (const f of seedFiles) expect(Buffer.from(r.files.find((x) => x.name === f.name)!.data).equals(Buffer.from(f.data))).toBe(true);
  });

  it('writes a 1 MiB FAT12 volume with an extended BPB and a label entry', () => {
    expect(img.length).toBe(MIB);
    expect([img[0], img[510], img[511]]).toEqual([0xeb, 0x55, 0xaa]);
    expect(img[38]).toBe(0x29);
    expect(ascii(img, 43, 11)).toBe('CIDATA     ');
    expect(ascii(img, 54, 8)).toBe('FAT12   ');
    const dv = new DataView(img.buffer, img.byteOffset);
    const rootOff = (dv.getUint16(14, true) + img[16]! * dv.getUint16(22, true)) * 512;
    expect(ascii(img, rootOff, 11)).toBe('CIDATA     ');
    expect(img[rootOff + 11]).toBe(0x08); // ATTR_VOLUME_ID
    // write date/time of the label entry: 2023-11-14 22:13:20 (UTC)
    expect(dv.getUint16(rootOff + 24, true)).toBe(((2023 - 1980) << 9) | (11 << 5) | 14);
    expect(dv.getUint16(rootOff + 22, true)).toBe((22 << 11) | (13 << 5) | 10);
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
    // only the serial (hashed from the epoch) differs
    expect(a.length).toBe(b.length);
    const diff = [...a].flatMap((x, i) => (x !== b[i] ? [i] : []));
    expect(diff.every((i) => i >= 39 && i < 43)).toBe(true);
  });

  it('scales to FAT16 for multi-MiB content', () => {
    const big = new Uint8Array(20 * MIB + 3).map((_, i) => i & 0xff);
    const r = readFatImage(writeFatImage([{ name: 'big.bin', data: big }, ...seedFiles], { label: 'CIDATA', epochSeconds: EPOCH }));
    expect(r.fatType).toBe(16);
    expect(Buffer.from(r.files.find((f) => f.name === 'big.bin')!.data).equals(Buffer.from(big))).toBe(true);
  });

  it('keeps cluster counts away from the FAT12/16 boundary', () => {
    for (let mib = 1; mib <= 70; mib++) {
      const g = planFatGeometry([mib * MIB - 300 * 1024], 512);
      expect(g.clusterCount <= 4000 || g.clusterCount >= 4200, `${mib} MiB`).toBe(true);
      expect(g.fatType === 12 ? g.clusterCount <= 4000 : g.clusterCount >= 4200 && g.clusterCount <= 65000).toBe(true);
    }
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
    const meta = 512 * 40; // boot sector, FATs and root directory
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(meta - 1), fc.nat(255)), { minLength: 1, maxLength: 40 }), (edits) => {
        const b = Uint8Array.from(img);
        for (const [pos, val] of edits) b[pos] = val;
        try {
          readFatImage(b);
        } catch (e) {
          if (!(e instanceof FatFormatError)) throw e;
        }
      }),
      { numRuns: 300 },
    );
  });
});
