import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { writeIso9660, compareIdentifiers, isoIdentifiers } from '../../src/media/iso9660/writer.js';
import { readIso9660, IsoFormatError } from '../../src/media/iso9660/reader.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const EPOCH = 1700000000; // 2023-11-14T22:13:20Z
const SECTOR = 2048;

const seedFiles = [
  { name: 'user-data', data: enc('#cloud-config\nhostname: node-1\n') },
  { name: 'meta-data', data: enc('instance-id: node-1\nlocal-hostname: node-1\n') },
  { name: 'network-config', data: enc('version: 2\nethernets: {}\n') },
];

function ascii(b: Uint8Array, off: number, len: number): string {
  return Buffer.from(b.subarray(off, off + len)).toString('latin1');
}

describe('writeIso9660', () => {
  const iso = writeIso9660(seedFiles, { volumeId: 'cidata', epochSeconds: EPOCH });

  it('round-trips through our reader with real names', () => {
    const r = readIso9660(iso);
    expect(r.volumeId).toBe('cidata');
    expect(r.jolietVolumeId).toBe('cidata');
    expect(r.files.map((f) => f.name).sort()).toEqual(['meta-data', 'network-config', 'user-data']);
    for (const f of seedFiles) {
      expect(Buffer.from(r.files.find((x) => x.name === f.name)!.data).equals(Buffer.from(f.data))).toBe(true);
    }
  });

  it('has the descriptor set at 16/17/18 and a size that is a whole number of sectors', () => {
    expect(iso.length % SECTOR).toBe(0);
    expect(iso.subarray(0, 16 * SECTOR).every((x) => x === 0)).toBe(true);
    expect(iso[16 * SECTOR]).toBe(1);
    expect(ascii(iso, 16 * SECTOR + 1, 5)).toBe('CD001');
    expect(iso[17 * SECTOR]).toBe(2);
    expect(ascii(iso, 17 * SECTOR + 88, 3)).toBe('%/E');
    expect(iso[18 * SECTOR]).toBe(255);
    // volume space size (both-endian) matches the image
    const dv = new DataView(iso.buffer, iso.byteOffset);
    expect(dv.getUint32(16 * SECTOR + 80, true)).toBe(iso.length / SECTOR);
    expect(dv.getUint32(16 * SECTOR + 84, false)).toBe(iso.length / SECTOR);
    // small: 3 tiny files fit in 29 sectors (no 300 KiB mkisofs padding)
    expect(iso.length).toBe(29 * SECTOR);
  });

  it('pads the volume label with spaces in the PVD and UCS-2 spaces in the Joliet SVD', () => {
    expect(ascii(iso, 16 * SECTOR + 40, 32)).toBe('cidata' + ' '.repeat(26));
    const j = iso.subarray(17 * SECTOR + 40, 17 * SECTOR + 72);
    const expected = Buffer.alloc(32);
    'cidata'.padEnd(16, ' ').split('').forEach((c, i) => expected.writeUInt16BE(c.charCodeAt(0), 2 * i));
    expect(Buffer.from(j).equals(expected)).toBe(true);
    expect(j.includes(0x00, 12) && [...j.subarray(12)].every((x, i) => x === (i % 2 === 0 ? 0x00 : 0x20))).toBe(true);
  });

  it('takes every date from epochSeconds', () => {
    for (const off of [813, 830]) expect(ascii(iso, 16 * SECTOR + off, 16)).toBe('2023111422132000');
    expect(iso[16 * SECTOR + 829]).toBe(0);
    expect(ascii(iso, 16 * SECTOR + 847, 16)).toBe('0000000000000000');
    // root directory record date in the PVD: 7-byte form
    expect([...iso.subarray(16 * SECTOR + 156 + 18, 16 * SECTOR + 156 + 25)]).toEqual([123, 11, 14, 22, 13, 20, 0]);
  });

  it('writes Rock Ridge SP, ER (via CE), PX, NM and TF in the primary tree', () => {
    const dv = new DataView(iso.buffer, iso.byteOffset);
    const rootLba = dv.getUint32(16 * SECTOR + 156 + 2, true);
    const root = iso.subarray(rootLba * SECTOR, (rootLba + 1) * SECTOR);
    // '.' record: SU starts at 34 with SP
    expect(ascii(root, 34, 2)).toBe('SP');
    expect([root[38], root[39]]).toEqual([0xbe, 0xef]);
    const text = ascii(root, 0, SECTOR);
    expect(text).toContain('CE');
    expect(text).toContain('NMuser-data'.slice(0, 2));
    expect(text).toContain('user-data');
    expect(text).toContain('USER_DATA.;1');
    expect(text).toContain('NETWORK_CONFIG.;1');
    expect(text.match(/PX\$/g)?.length).toBe(5); // '.', '..' and three files, 36-byte PX
    expect(text.match(/TF\x1a/g)?.length).toBe(5);
    expect(ascii(iso, 0, iso.length)).toContain('RRIP_1991A');
  });

  it('is deterministic and independent of input order', () => {
    const again = writeIso9660([...seedFiles].reverse(), { volumeId: 'cidata', epochSeconds: EPOCH });
    expect(Buffer.from(again).equals(Buffer.from(iso))).toBe(true);
    const other = writeIso9660(seedFiles, { volumeId: 'cidata', epochSeconds: EPOCH + 2 });
    expect(Buffer.from(other).equals(Buffer.from(iso))).toBe(false);
    expect(other.length).toBe(iso.length);
  });

  it('handles empty files, an empty file set and multi-sector files', () => {
    const big = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 31 + 7) & 0xff);
    const files = [
      { name: 'zero', data: new Uint8Array(0) },
      { name: 'big.bin', data: big },
      { name: 'one-sector', data: new Uint8Array(SECTOR).fill(1) },
      { name: 'z-last-empty', data: new Uint8Array(0) },
    ];
    const img = writeIso9660(files, { volumeId: 'X', epochSeconds: 0 });
    const r = readIso9660(img);
    for (const f of files) expect(Buffer.from(r.files.find((x) => x.name === f.name)!.data).equals(Buffer.from(f.data))).toBe(true);
    const empty = writeIso9660([], { volumeId: 'EMPTY', epochSeconds: 0 });
    expect(readIso9660(empty).files).toEqual([]);
  });

  it('rejects bad names and options with clear errors', () => {
    const f = (name: string) => [{ name, data: new Uint8Array(1) }];
    const o = { volumeId: 'cidata', epochSeconds: EPOCH };
    expect(() => writeIso9660(f(''), o)).toThrow(/empty name/);
    expect(() => writeIso9660(f('a/b'), o)).toThrow(/'\/' is not allowed/);
    expect(() => writeIso9660(f('x'.repeat(65)), o)).toThrow(/longer than 64/);
    expect(() => writeIso9660(f('naïve'), o)).toThrow(/printable ASCII/);
    expect(() => writeIso9660(f('a\nb'), o)).toThrow(/printable ASCII/);
    expect(() => writeIso9660(f('..'), o)).toThrow(/reserved/);
    expect(() => writeIso9660(f('end.'), o)).toThrow(/trailing dot/);
    expect(() => writeIso9660([...f('dup'), ...f('dup')], o)).toThrow(/duplicate file name "dup"/);
    expect(() => writeIso9660(f('ok'), { volumeId: 'x'.repeat(17), epochSeconds: EPOCH })).toThrow(/volume id/);
    expect(() => writeIso9660(f('ok'), { volumeId: 'cidata', epochSeconds: -1 })).toThrow(/epochSeconds/);
    expect(() => writeIso9660(f('ok'), { volumeId: 'cidata', epochSeconds: 1.5 })).toThrow(/epochSeconds/);
    expect(() => writeIso9660(f('ok'), { volumeId: 'cidata', epochSeconds: Date.UTC(2156, 0, 1) / 1000 })).toThrow(/2155/);
  });

  it('makes unique d-character identifiers and sorts them ISO-style', () => {
    expect(isoIdentifiers(['user-data', 'meta-data', 'a.b.c', '.hidden', 'USER_DATA'])).toEqual([
      'USER_DATA.;1',
      'META_DATA.;1',
      'A_B.C;1',
      '.HIDDEN;1',
      'USER_DATA_1.;1',
    ]);
    const long = isoIdentifiers(['x'.repeat(64) + '.extension-long']);
    // ECMA-119 level 2: name + extension <= 30 characters (separator and version extra)
    expect(long[0]!.replace(/[.;]|1$/g, '').length).toBeLessThanOrEqual(30);
    expect(long[0]).toBe('X'.repeat(22) + '.EXTENSIO;1');
    expect(['B.;1', 'A.Z;1', 'A.;1', 'AB.;1'].sort(compareIdentifiers)).toEqual(['A.;1', 'A.Z;1', 'AB.;1', 'B.;1']);
  });

  it('spreads a large directory over several sectors without straddling records', () => {
    const files = Array.from({ length: 120 }, (_, i) => ({ name: `file-number-${String(i).padStart(3, '0')}-with-a-long-name`, data: enc(String(i)) }));
    const img = writeIso9660(files, { volumeId: 'MANY', epochSeconds: EPOCH });
    const r = readIso9660(img);
    expect(r.files.length).toBe(120);
    expect(r.files.map((f) => f.name).sort()).toEqual(files.map((f) => f.name).sort());
  });
});

describe('readIso9660 on damaged input', () => {
  const iso = writeIso9660(seedFiles, { volumeId: 'cidata', epochSeconds: EPOCH });

  it('rejects truncated images with "truncated ISO"', () => {
    for (const len of [0, 100, 16 * SECTOR, 16 * SECTOR + 100, 18 * SECTOR, 24 * SECTOR, iso.length - SECTOR, iso.length - 1]) {
      expect(() => readIso9660(iso.subarray(0, len)), `length ${len}`).toThrow(/^truncated ISO: /);
    }
  });

  it('rejects garbage with IsoFormatError', () => {
    expect(() => readIso9660(new Uint8Array(40 * SECTOR).fill(0x41))).toThrow(IsoFormatError);
    expect(() => readIso9660(new Uint8Array(40 * SECTOR))).toThrow(/invalid ISO: volume descriptor 16 lacks/);
  });

  it('never throws anything but IsoFormatError on random corruption (and never hangs)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(iso.length - 1), fc.nat(255)), { minLength: 1, maxLength: 40 }), (edits) => {
        const b = Uint8Array.from(iso);
        // corrupt the metadata area mostly
        for (const [pos, val] of edits) b[16 * SECTOR + (pos % (b.length - 16 * SECTOR))] = val;
        try {
          readIso9660(b);
        } catch (e) {
          if (!(e instanceof IsoFormatError)) throw e;
        }
      }),
      { numRuns: 400 },
    );
  });
});
