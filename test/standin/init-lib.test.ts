// Host-side tests of the probe init's stand-in modes (images/probe/init sourced in library mode,
// edgeimg.standin=talos|kairos), run with the busybox of the amd64 probe initramfs against a fake
// /sys (EDGEIMG_PROBE_SYSFS) whose /dev entries (EDGEIMG_PROBE_DEV) are image files:
// - Talos (v1.13 nocloud + blockutils.VolumeMatch): filesystem label cidata/CIDATA on iso9660 or
//   vfat of any FAT size, or GPT partition name cidata/CIDATA;
// - Kairos (yip v1.16.5 FindCIs + go-diskfs v1.7.0): label as go-diskfs reads it, FAT32 and
//   ISO9660 only (FAT12/16 cidata volumes are passed over with a SKIP line), FAT32 label from the
//   root directory only;
// - both: the boot medium (ISO9660 volume id = edgeimg.live), disk and partitions, is never the
//   seed.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSeedImg } from '../../src/media/seed.js';
import { IN_CI, REPO_ROOT, bootPrereqs, ensureProbeImages, makeFat, makeIso, missingTools } from '../boot/helpers.js';

const INIT = join(REPO_ROOT, 'images/probe/init');
const FILES = { 'user-data': '#cloud-config\n', 'meta-data': 'instance-id: x\n' };

const pre = arch() === 'x64' ? bootPrereqs(['amd64'], 'stand-in init host tests') : { run: false };
const tools = missingTools(['genisoimage', 'mkfs.vfat', 'mcopy', 'cpio']);
if (!IN_CI && tools.length) console.warn(`*** SKIPPING stand-in init host tests: missing ${tools.join(', ')} ***`);

interface Part {
  name: string;
  img: string;
  /** GPT partition name (PARTNAME in the uevent). */
  partname?: string;
}
interface Disk {
  name: string;
  /** Image of the whole disk; default: 1 MiB of zeros (no filesystem, like a partitioned disk). */
  img?: string;
  parts?: Part[];
}

describe.skipIf(!pre.run || (!IN_CI && tools.length > 0))('probe init: stand-in seed discovery', () => {
  let dir: string;
  let bin: string;
  let img: Record<'zero' | 'f32' | 'f32boot' | 'seed' | 'f12' | 'f16' | 'f16other' | 'iso' | 'live' | 'talos', string>;
  let n = 0;

  beforeAll(() => {
    const probe = ensureProbeImages(['amd64']).amd64;
    dir = mkdtempSync(join(tmpdir(), 'edgeimg-standin-init-'));
    bin = join(dir, 'bin');
    mkdirSync(bin);
    const bb = execFileSync('sh', ['-c', 'gzip -dc "$1" | cpio -i --quiet --to-stdout bin/busybox', 'sh', probe.initrd], {
      maxBuffer: 64 * 1024 * 1024,
    });
    writeFileSync(join(bin, 'busybox'), bb, { mode: 0o755 });
    execFileSync(join(bin, 'busybox'), ['--install', '-s', bin]);

    const zero = join(dir, 'zero.img');
    writeFileSync(zero, Buffer.alloc(1024 * 1024));
    const f32 = join(dir, 'f32.img');
    execFileSync('mkfs.vfat', ['-F', '32', '-n', 'CIDATA', '-C', f32, '40000'], { stdio: 'ignore' });
    // FAT32 whose label is only in the boot sector: its root-directory label entry deleted
    const f32boot = Buffer.from(readFileSync(f32));
    const bps = f32boot.readUInt16LE(11);
    const root = (f32boot.readUInt16LE(14) + f32boot[16]! * f32boot.readUInt32LE(36) + (f32boot.readUInt32LE(44) - 2) * f32boot[13]!) * bps;
    let entry = -1;
    for (let o = root; o < root + 4096; o += 32) if (f32boot[o + 11] === 0x08) { entry = o; break; }
    if (entry < 0) throw new Error('mkfs.vfat wrote no root-directory label entry');
    f32boot[entry] = 0xe5;
    writeFileSync(join(dir, 'f32-bootlabel.img'), f32boot);
    // the project's own FAT32 seed writer
    writeFileSync(join(dir, 'seed.img'), buildSeedImg({ userData: '#cloud-config\n', metaData: 'instance-id: x\n', networkConfig: 'version: 2\n' }, 1700000000));
    img = {
      zero,
      f32,
      f32boot: join(dir, 'f32-bootlabel.img'),
      seed: join(dir, 'seed.img'),
      f12: makeFat(dir, 'f12.img', FILES, 'CIDATA', 1024),
      f16: makeFat(dir, 'f16.img', FILES, 'cidata', 20_000),
      f16other: makeFat(dir, 'f16-other.img', FILES, 'SEED', 20_000),
      iso: makeIso(dir, 'seed.iso', FILES),
      live: makeIso(dir, 'live.iso', FILES, 'COS_LIVE'),
      talos: makeIso(dir, 'talos.iso', FILES, 'EDGEIMG_TALOS_LIKE'),
    };
  }, 20 * 60_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A fake /sys/class/block + /dev for these disks. */
  function machine(disks: Disk[]): { sys: string; dev: string; tmp: string } {
    const m = join(dir, `m${n++}`);
    const sys = join(m, 'sys');
    const dev = join(m, 'dev');
    const tmp = join(m, 'tmp');
    mkdirSync(join(sys, 'class/block'), { recursive: true });
    mkdirSync(dev);
    mkdirSync(tmp);
    const sectors = (f: string): string => String(Math.ceil(statSync(f).size / 512));
    for (const d of disks) {
      const dimg = d.img ?? img.zero;
      const ddir = join(sys, 'devices/virtual/block', d.name);
      mkdirSync(ddir, { recursive: true });
      writeFileSync(join(ddir, 'size'), `${sectors(dimg)}\n`);
      writeFileSync(join(ddir, 'uevent'), `MAJOR=8\nMINOR=0\nDEVNAME=${d.name}\nDEVTYPE=disk\n`);
      symlinkSync(`../../devices/virtual/block/${d.name}`, join(sys, 'class/block', d.name));
      symlinkSync(dimg, join(dev, d.name));
      (d.parts ?? []).forEach((p, i) => {
        const pdir = join(ddir, p.name);
        mkdirSync(pdir);
        writeFileSync(join(pdir, 'size'), `${sectors(p.img)}\n`);
        writeFileSync(join(pdir, 'partition'), `${i + 1}\n`);
        writeFileSync(join(pdir, 'uevent'), `MAJOR=8\nMINOR=${i + 1}\nDEVNAME=${p.name}\nDEVTYPE=partition\nPARTN=${i + 1}\n${p.partname ? `PARTNAME=${p.partname}\n` : ''}`);
        symlinkSync(`../../devices/virtual/block/${d.name}/${p.name}`, join(sys, 'class/block', p.name));
        symlinkSync(p.img, join(dev, p.name));
      });
    }
    return { sys, dev, tmp };
  }

  /** Runs scan() in a mode; returns the boot device, the chosen volumes and the SKIP lines. */
  function scan(mode: '' | 'talos' | 'kairos', disks: Disk[], live = 'COS_LIVE'): { boot: string; matches: string[]; skips: string[]; devices: string[] } {
    const m = machine(disks);
    const r = spawnSync(join(bin, 'sh'), ['-c', `EDGEIMG_PROBE_LIB=1 . "${INIT}"; standin=$1; live=$2; scan; echo "BOOT=$BOOTDEV"; echo "MATCHES=$MATCHES"; cat "$TMP/skips" "$TMP/devices"`, 'probe', mode, live], {
      encoding: 'utf8',
      env: { PATH: bin, TMPDIR: m.tmp, LC_ALL: 'C', EDGEIMG_PROBE_SYSFS: m.sys, EDGEIMG_PROBE_DEV: m.dev },
    });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    return {
      boot: lines.find((l) => l.startsWith('BOOT='))!.slice(5),
      matches: lines.find((l) => l.startsWith('MATCHES='))!.slice(8).trim().split(/\s+/).filter(Boolean),
      skips: lines.filter((l) => l.startsWith('SKIP ')),
      devices: lines.filter((l) => l.startsWith('DEVICE ')),
    };
  }

  function fatInfo(path: string): string {
    const r = spawnSync(join(bin, 'sh'), ['-c', `EDGEIMG_PROBE_LIB=1 . "${INIT}"; probe_dev "$1" && echo "$FSTYPE $FATBITS $FATBPS"; diskfs_label "$1"; echo "rc=$?"`, 'probe', path], {
      encoding: 'utf8',
      env: { PATH: bin, TMPDIR: dir, LC_ALL: 'C' },
    });
    return r.stdout.trim().replace(/\n/g, '|');
  }

  it('probe_dev tells FAT12, FAT16 and FAT32 apart; diskfs_label reads FAT32 and ISO9660 only', () => {
    expect(fatInfo(img.f12)).toBe('vfat 12 512|go-diskfs-reads-only-fat32-and-iso9660|rc=1');
    expect(fatInfo(img.f16)).toBe('vfat 16 512|go-diskfs-reads-only-fat32-and-iso9660|rc=1');
    expect(fatInfo(img.f32)).toBe('vfat 32 512|CIDATA|rc=0');
    expect(fatInfo(img.seed)).toBe('vfat 32 512|CIDATA|rc=0');
    // go-diskfs's fat32 Label() reads the root-directory entry, never the boot sector
    expect(fatInfo(img.f32boot)).toBe('vfat 32 512||rc=0');
  });

  it('FAT32 cidata stick: found in both modes (and by the plain probe)', () => {
    for (const stick of [img.f32, img.seed]) {
      const disks = [{ name: 'sda', img: img.live }, { name: 'sdb', img: stick }];
      for (const mode of ['talos', 'kairos'] as const) {
        const r = scan(mode, disks);
        expect(r, `${mode} ${stick}`).toMatchObject({ boot: 'sda', matches: ['sdb'], skips: [] });
      }
      expect(scan('', disks).matches).toEqual(['sdb']);
    }
  });

  it('FAT16 and FAT12 cidata: found by Talos, passed over by Kairos with a SKIP line', () => {
    for (const [stick, bits] of [[img.f16, 16], [img.f12, 12]] as const) {
      const disks = [{ name: 'sda', img: img.live }, { name: 'sdb', img: stick }];
      expect(scan('talos', disks)).toMatchObject({ boot: 'sda', matches: ['sdb'], skips: [] });
      const k = scan('kairos', disks);
      expect(k.boot).toBe('sda');
      expect(k.matches).toEqual([]);
      expect(k.skips).toEqual([`SKIP device=/dev/sdb fstype=vfat fat=${bits} label=${bits === 16 ? 'cidata' : 'CIDATA'} reason=go-diskfs-reads-only-fat32-and-iso9660`]);
    }
  });

  it('FAT32 labelled only in the boot sector: Talos (libblkid-like) finds it, Kairos (go-diskfs) does not', () => {
    const disks = [{ name: 'sda', img: img.live }, { name: 'sdb', img: img.f32boot }];
    expect(scan('talos', disks).matches).toEqual(['sdb']);
    expect(scan('kairos', disks)).toMatchObject({ matches: [], skips: [] });
  });

  it('GPT partition name cidata: Talos takes the partition whatever its filesystem label; Kairos does not', () => {
    const disks = [
      { name: 'sda', img: img.talos },
      { name: 'sdb', parts: [{ name: 'sdb1', img: img.zero, partname: 'EFI' }, { name: 'sdb2', img: img.f16other, partname: 'cidata' }] },
    ];
    expect(scan('talos', disks, 'EDGEIMG_TALOS_LIKE')).toMatchObject({ boot: 'sda', matches: ['sdb2'] });
    expect(scan('kairos', disks, 'EDGEIMG_TALOS_LIKE').matches).toEqual([]);
    // a partition name other than cidata/CIDATA is no match
    const other = [{ name: 'sda', img: img.talos }, { name: 'sdb', parts: [{ name: 'sdb1', img: img.f16other, partname: 'notcidata' }] }];
    expect(scan('talos', other, 'EDGEIMG_TALOS_LIKE').matches).toEqual([]);
    // the plain probe matches filesystem labels only
    expect(scan('', disks).matches).toEqual([]);
  });

  it('ISO9660 cidata: found in both modes; partitions of a seed disk are found too', () => {
    const disks = [{ name: 'sr0', img: img.iso }, { name: 'sda', img: img.live }, { name: 'sdc', parts: [{ name: 'sdc1', img: img.f32 }] }];
    for (const mode of ['talos', 'kairos'] as const) {
      expect(scan(mode, disks)).toMatchObject({ boot: 'sda', matches: ['sdc1', 'sr0'] });
    }
  });

  it('the boot medium is never the seed, even with a cidata partition; the whole disk is the boot device', () => {
    const disks = [
      { name: 'sda', img: img.live, parts: [{ name: 'sda1', img: img.live }, { name: 'sda2', img: img.f32, partname: 'cidata' }] },
      { name: 'sdb', img: img.f16 },
    ];
    const t = scan('talos', disks);
    expect(t.boot).toBe('sda');
    expect(t.matches).toEqual(['sdb']);
    const k = scan('kairos', disks);
    expect(k.boot).toBe('sda');
    expect(k.matches).toEqual([]);
    // the FAT16 stick is reported; nothing on the boot disk is
    expect(k.skips).toEqual(['SKIP device=/dev/sdb fstype=vfat fat=16 label=cidata reason=go-diskfs-reads-only-fat32-and-iso9660']);
  });

  it('no boot medium with the live volume id: nothing is excluded, BOOTDEV is empty', () => {
    const disks = [{ name: 'sda', img: img.talos }, { name: 'sdb', img: img.f32 }];
    expect(scan('kairos', disks, 'COS_LIVE')).toMatchObject({ boot: '', matches: ['sdb'] });
  });

  it('plain probe mode: DEVICE lines unchanged, no SKIP lines, FAT16 cidata found', () => {
    const disks = [{ name: 'sda', img: img.live }, { name: 'sdb', img: img.f16 }];
    const r = scan('', disks);
    expect(r.boot).toBe('');
    expect(r.matches).toEqual(['sdb']);
    expect(r.skips).toEqual([]);
    expect(r.devices).toEqual([
      `DEVICE device=/dev/sda size=${statSync(img.live).size} fstype=iso9660 label=COS_LIVE`,
      `DEVICE device=/dev/sdb size=${20_000 * 1024} fstype=vfat label=cidata`,
    ]);
  });
});
