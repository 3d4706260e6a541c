// Host-side tests of the probe init's superblock parsing (images/probe/init sourced in library
// mode), run with the very busybox that goes into the amd64 initramfs: labels are read from the
// medium -- ISO9660 PVD, FAT root-directory label entry (preferred) or boot-sector label.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_CI, REPO_ROOT, bootPrereqs, ensureProbeImages, makeFat, makeIso, missingTools } from '../boot/helpers.js';

const INIT = join(REPO_ROOT, 'images/probe/init');
const FILES = { 'user-data': '#cloud-config\n', 'meta-data': 'instance-id: x\n' };

const pre = arch() === 'x64' ? bootPrereqs(['amd64'], 'probe init host tests') : { run: false };
const tools = missingTools(['genisoimage', 'mkfs.vfat', 'mcopy', 'cpio']);
if (!IN_CI && tools.length) console.warn(`*** SKIPPING probe init host tests: missing ${tools.join(', ')} ***`);

describe.skipIf(!pre.run || (!IN_CI && tools.length > 0))('probe init: label detection on the medium', () => {
  let dir: string;
  let bin: string;

  beforeAll(() => {
    const img = ensureProbeImages(['amd64']).amd64;
    dir = mkdtempSync(join(tmpdir(), 'edgeimg-probeinit-'));
    bin = join(dir, 'bin');
    mkdirSync(bin);
    // the initramfs' own busybox, with its applets as the only commands on PATH
    const bb = execFileSync('sh', ['-c', 'gzip -dc "$1" | cpio -i --quiet --to-stdout bin/busybox', 'sh', img.initrd], {
      maxBuffer: 64 * 1024 * 1024,
    });
    writeFileSync(join(bin, 'busybox'), bb, { mode: 0o755 });
    execFileSync(join(bin, 'busybox'), ['--install', '-s', bin]);
  }, 20 * 60_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function sh(script: string, ...args: string[]): { status: number | null; out: string } {
    const r = spawnSync(join(bin, 'sh'), ['-c', `EDGEIMG_PROBE_LIB=1 . "${INIT}"; ${script}`, 'probe', ...args], {
      encoding: 'utf8',
      env: { PATH: bin, TMPDIR: dir, LC_ALL: 'C' },
    });
    return { status: r.status, out: r.stdout.trim() };
  }

  function probe(path: string): string | null {
    const r = sh('probe_dev "$1" && echo "$FSTYPE|$LABEL|$DECLARED"', path);
    return r.status === 0 ? r.out : null;
  }

  /** Byte offset of the FAT12/16 root-directory volume-label entry of a mkfs.vfat image. */
  function fatRootLabelEntry(img: Buffer): number {
    const bps = img.readUInt16LE(11);
    const root = (img.readUInt16LE(14) + img[16]! * img.readUInt16LE(22)) * bps;
    for (let o = root; o < root + img.readUInt16LE(17) * 32; o += 32) {
      if (img[o] === 0) break;
      if (img[o + 11] === 0x08) return o;
    }
    throw new Error('no volume-label entry');
  }

  it('ISO9660: label from the primary volume descriptor, size declared by the volume', () => {
    const iso = makeIso(dir, 'a.iso', FILES);
    const size = readFileSync(iso).length;
    expect(probe(iso)).toBe(`iso9660|cidata|${size}`);
    expect(probe(makeIso(dir, 'b.iso', FILES, 'CIDATA'))).toMatch(/^iso9660\|CIDATA\|/);
    expect(probe(makeIso(dir, 'c.iso', FILES, 'notcidata'))).toMatch(/^iso9660\|notcidata\|/);
  });

  it('ISO9660 cut in half still shows its label but declares more than is there', () => {
    const whole = readFileSync(makeIso(dir, 'd.iso', FILES));
    const cut = join(dir, 'd-cut.iso');
    writeFileSync(cut, whole.subarray(0, whole.length / 2));
    expect(probe(cut)).toBe(`iso9660|cidata|${whole.length}`);
  });

  it('FAT12, FAT16 and FAT32 labels', () => {
    expect(probe(makeFat(dir, 'f12.img', FILES, 'CIDATA', 1024))).toBe(`vfat|CIDATA|${1024 * 1024}`);
    expect(probe(makeFat(dir, 'f16.img', FILES, 'cidata', 20_000))).toBe(`vfat|cidata|${20_000 * 1024}`);
    const f32 = join(dir, 'f32.img');
    execFileSync('mkfs.vfat', ['-F', '32', '-n', 'CIDATA', '-C', f32, '40000'], { stdio: 'ignore' });
    expect(probe(f32)).toBe(`vfat|CIDATA|${40_000 * 1024}`);
  });

  it('FAT: the root-directory label wins over the boot sector; either alone is enough', () => {
    const base = readFileSync(makeFat(dir, 'g.img', FILES, 'CIDATA'));
    const entry = fatRootLabelEntry(base);

    const rootOnly = Buffer.from(base);
    rootOnly.write('NO NAME    ', 43, 'latin1');
    writeFileSync(join(dir, 'root-only.img'), rootOnly);
    expect(probe(join(dir, 'root-only.img'))).toMatch(/^vfat\|CIDATA\|/);

    const bootOnly = Buffer.from(base);
    bootOnly[entry] = 0xe5; // deleted entry
    writeFileSync(join(dir, 'boot-only.img'), bootOnly);
    expect(probe(join(dir, 'boot-only.img'))).toMatch(/^vfat\|CIDATA\|/);

    const disagree = Buffer.from(base);
    disagree.write('NOTCIDATA  ', entry, 'latin1');
    writeFileSync(join(dir, 'disagree.img'), disagree);
    expect(probe(join(dir, 'disagree.img'))).toMatch(/^vfat\|NOTCIDATA\|/);

    const none = join(dir, 'nolabel.img');
    execFileSync('mkfs.vfat', ['-C', none, '1024'], { stdio: 'ignore' });
    expect(probe(none)).toBe(`vfat||${1024 * 1024}`);
  });

  it('anything else is not recognised', () => {
    writeFileSync(join(dir, 'zero.img'), Buffer.alloc(1024 * 1024));
    expect(probe(join(dir, 'zero.img'))).toBeNull();
    writeFileSync(join(dir, 'tiny'), 'hello');
    expect(probe(join(dir, 'tiny'))).toBeNull();
    // an MBR (55AA, but no BPB) is not a FAT filesystem
    const mbr = Buffer.alloc(1024 * 1024);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    writeFileSync(join(dir, 'mbr.img'), mbr);
    expect(probe(join(dir, 'mbr.img'))).toBeNull();
  });

  it('only cidata and CIDATA match', () => {
    for (const [label, ok] of [['cidata', true], ['CIDATA', true], ['CiData', false], ['notcidata', false], ['cidata2', false], ['', false]] as const) {
      expect(sh('is_cidata "$1"', label).status, label).toBe(ok ? 0 : 1);
    }
  });

  it('percent-encodes values', () => {
    expect(sh('enc "$1"', 'a b/é%_~.x-1').out).toBe('a%20b/%C3%A9%25_~.x-1');
  });
});
