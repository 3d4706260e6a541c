// Conformance: the FAT seed (seed.img) must be found by Kairos.
//
// Upstream rule (facts from the sources; no upstream code is copied here):
//
// * mudler/yip v1.16.5, pkg/plugins/datasourceProviders/provider_cdrom.go, ListCDROMs, calls
//   FindCIs("cidata") in pkg/plugins/datasourceProviders/cdrom_shared.go. FindCIs globs
//   /sys/class/block/* (whole disks and partitions alike; names starting "loop" or "ram" are
//   skipped), opens each /dev/<name> read-only with diskfs.Open, sets DefaultBlocks = true,
//   calls GetFilesystem(0) (the whole device, offset 0) and accepts the device when
//   strings.TrimSpace(fs.Label()) equals "CIDATA" or "cidata" exactly (no other case mix).
//   NewProviderCDROM then mounts the device with the kernel (iso9660, else vfat) and reads
//   user-data (or config).
// * diskfs/go-diskfs v1.7.0, disk/disk.go, (*Disk).GetFilesystem: for partition 0 it uses start
//   0 and the whole device size, then tries fat32.Read, iso9660.Read, squashfs.Read and
//   ext4.Read in that order. There is no FAT12/FAT16 reader in this version (fat12/fat16 were
//   added to GetFilesystem in v1.9.0), so a FAT12/16 volume is never recognised.
// * diskfs/go-diskfs v1.7.0, filesystem/fat32/fat32.go, Read:
//   - the device's logical block size must be 512 (or 0); size <= Fat32MaxSize (util.go) and
//     >= 4 blocks;
//   - the first 512 bytes are parsed by msDosBootSectorFromBytes (msdosbootsector.go): bytes
//     11..89 go to dos71EBPBFromBytes (dos71bpb.go), which requires bytes-per-sector == 512
//     (dos20BPBFromBytes, dos20bpb.go), the FAT32 version word at boot-sector offset 42 == 0,
//     and the extended boot signature at offset 66 == 0x28 or 0x29; the last two bytes must be
//     0x55 0xAA;
//   - the FSInfo sector (BPB_FSInfo at offset 48, times the block size) is parsed by
//     fsInformationSectorFromBytes (fsinfosector.go): lead signature "RRaA" at 0, structure
//     signature "rrAa" at 484, trail signature 00 00 55 AA at 508;
//   - FAT 1 is read at reservedSectors*512, BPB_FATSz32*512 bytes long, FAT 2 right after it;
//     tableFromBytes/equal (table.go) must find them equal; the data area is taken to start
//     after exactly two FATs, and a cluster is sectorsPerCluster*512 bytes.
// * diskfs/go-diskfs v1.7.0, filesystem/fat32/fat32.go, (*FileSystem).Label: reads the root
//   directory via readDirWithMkdir/readDirectory/getClusterList starting at the table's
//   rootDirCluster, which tableFromBytes fixes at 2 (BPB_RootClus is not consulted); the start
//   cluster's FAT entry must be non-zero and the chain ends at an entry with
//   (v & 0x0FFFFFF8) == 0x0FFFFFF8. Entries are parsed by parseDirEntries (directoryentry.go):
//   stop at a first byte 0x00, skip 0xE5, treat attribute == 0x0F as LFN, and mark
//   attribute & 0x08 as a volume label. Label() returns the LAST volume-label entry's name and
//   extension with trailing spaces removed, or "" when there is none. The BPB label
//   (BS_VolLab) is NOT used.
// * Versions: yip v1.16.5's own go.mod requires go-diskfs v1.5.2; kairos-io/kairos-agent
//   v2.24.2's go.mod requires yip v1.16.5 together with go-diskfs v1.7.0, so Go's minimal version
//   selection builds yip against v1.7.0. GetFilesystem and fat32.Read behave the same in v1.5.2.
//   (kairos-agent moved to go-diskfs v1.9.1, which has FAT12/16 readers, only in v2.27.1.)
//
// Also required, for the technician's laptop: the Microsoft FAT specification decides the FAT
// type by cluster count alone, and a volume is FAT32 only with >= 65525 clusters.
//
// The checks below are our own code, run on the bytes buildSeedImg produces.

import { describe, expect, it } from 'vitest';
import { buildSeedImg } from '../../src/media/seed.js';

const seed = {
  userData: '#cloud-config\nhostname: node-1\nusers: []\n',
  metaData: 'instance-id: node-1\nlocal-hostname: node-1\n',
  networkConfig: 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n',
};
const EPOCH = 1700000000;

const FAT32_MAX_SIZE = 2198754099200; // go-diskfs v1.7.0 filesystem/fat32/util.go Fat32MaxSize
const SECTOR = 512;

const u16 = (b: Uint8Array, o: number): number => (b[o] ?? 0) | ((b[o + 1] ?? 0) << 8);
const u32 = (b: Uint8Array, o: number): number => u16(b, o) + u16(b, o + 2) * 0x10000;
const ascii = (b: Uint8Array, o: number, n: number): string => Buffer.from(b.subarray(o, o + n)).toString('latin1');
const sector = (b: Uint8Array, n: number): Buffer => Buffer.from(b.subarray(n * SECTOR, (n + 1) * SECTOR));

interface Layout {
  reserved: number;
  fatBytes: number;
  clusterBytes: number;
  dataStart: number;
  maxCluster: number;
}

/** The layout go-diskfs v1.7.0 fat32.Read derives (two FATs, 512-byte sectors). */
function layout(img: Uint8Array): Layout {
  const reserved = u16(img, 14);
  const fatBytes = u32(img, 36) * SECTOR;
  return {
    reserved,
    fatBytes,
    clusterBytes: (img[13] ?? 0) * SECTOR,
    dataStart: reserved * SECTOR + 2 * fatBytes,
    maxCluster: fatBytes / 4,
  };
}

/** FAT 1 entry `c` (28 bits are meaningful, go-diskfs keeps the whole 32-bit value). */
function fatEntry(img: Uint8Array, l: Layout, c: number): number {
  return u32(img, l.reserved * SECTOR + c * 4);
}

/** Cluster chain as go-diskfs getClusterList walks it; throws where go-diskfs returns an error. */
function chain(img: Uint8Array, l: Layout, first: number): number[] {
  if (first > l.maxCluster || fatEntry(img, l, first) === 0) throw new Error(`invalid start cluster ${first}`);
  const out: number[] = [];
  let c = first;
  for (let guard = 0; guard <= l.maxCluster; guard++) {
    out.push(c);
    const next = fatEntry(img, l, c);
    if ((next & 0x0ffffff8) === 0x0ffffff8) return out;
    if (next > l.maxCluster || c < 2) throw new Error(`invalid cluster chain at ${next}`);
    c = next;
  }
  throw new Error('cluster chain loops');
}

function readClusters(img: Uint8Array, l: Layout, clusters: number[]): Uint8Array {
  const out = new Uint8Array(clusters.length * l.clusterBytes);
  clusters.forEach((c, i) => {
    const off = l.dataStart + (c - 2) * l.clusterBytes;
    out.set(img.subarray(off, off + l.clusterBytes), i * l.clusterBytes);
  });
  return out;
}

interface Entry {
  longName: string;
  short: string;
  ext: string;
  attr: number;
  cluster: number;
  size: number;
}

/** Root-directory entries in the manner of go-diskfs parseDirEntries. */
function rootEntries(img: Uint8Array, l: Layout): Entry[] {
  const dir = readClusters(img, l, chain(img, l, 2));
  const out: Entry[] = [];
  let lfn = '';
  for (let i = 0; i + 32 <= dir.length; i += 32) {
    if (dir[i] === 0x00) break;
    if (dir[i] === 0xe5) continue;
    if (dir[i + 11] === 0x0f) {
      if (((dir[i] ?? 0) & 0x40) === 0x40) lfn = '';
      let part = '';
      for (const o of [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]) {
        const v = u16(dir, i + o);
        if (v === 0) break;
        part += String.fromCharCode(v);
      }
      lfn = part + lfn;
      continue;
    }
    out.push({
      longName: lfn,
      short: ascii(dir, i, 8).replace(/ +$/, ''),
      ext: ascii(dir, i + 8, 3).replace(/ +$/, ''),
      attr: dir[i + 11] ?? 0,
      cluster: u16(dir, i + 26) + u16(dir, i + 20) * 0x10000,
      size: u32(dir, i + 28),
    });
    lfn = '';
  }
  return out;
}

/** What go-diskfs (*FileSystem).Label returns: the last volume-label entry, or "". */
function diskfsLabel(img: Uint8Array): string {
  let label = '';
  for (const e of rootEntries(img, layout(img))) if (e.attr & 0x08) label = e.short + e.ext;
  return label;
}

describe('seed.img conformance: Kairos (yip v1.16.5 FindCIs -> go-diskfs v1.7.0 fat32.Read + Label)', () => {
  const img = buildSeedImg(seed, EPOCH);

  it('fits fat32.Read size limits for a 512-byte-sector device', () => {
    expect(img.length % SECTOR).toBe(0);
    expect(img.length).toBeGreaterThanOrEqual(4 * SECTOR);
    expect(img.length).toBeLessThanOrEqual(FAT32_MAX_SIZE);
  });

  it('boot sector passes msDosBootSectorFromBytes / dos71EBPBFromBytes', () => {
    expect(u16(img, 11)).toBe(512); // bytes per sector
    expect(u16(img, 42)).toBe(0); // FAT32 version 0.0
    expect([0x28, 0x29]).toContain(img[66]); // extended boot signature
    expect(img[66]).toBe(0x29); // and the long form, which carries BS_VolLab
    expect([img[510], img[511]]).toEqual([0x55, 0xaa]);
  });

  it('FSInfo sector passes fsInformationSectorFromBytes', () => {
    const fsinfo = sector(img, u16(img, 48));
    expect(u16(img, 48)).toBeGreaterThan(0);
    expect(fsinfo.subarray(0, 4).toString('latin1')).toBe('RRaA');
    expect(fsinfo.subarray(484, 488).toString('latin1')).toBe('rrAa');
    expect([...fsinfo.subarray(508, 512)]).toEqual([0x00, 0x00, 0x55, 0xaa]);
  });

  it('has exactly two identical FATs (go-diskfs compares them and assumes two)', () => {
    const l = layout(img);
    expect(img[16]).toBe(2);
    expect(l.fatBytes).toBeGreaterThan(0);
    const fat1 = Buffer.from(img.subarray(l.reserved * SECTOR, l.reserved * SECTOR + l.fatBytes));
    const fat2 = Buffer.from(img.subarray(l.reserved * SECTOR + l.fatBytes, l.reserved * SECTOR + 2 * l.fatBytes));
    expect(fat1.equals(fat2)).toBe(true);
  });

  it('root directory is the chain at cluster 2 (go-diskfs ignores BPB_RootClus)', () => {
    expect(u32(img, 44)).toBe(2); // BPB_RootClus agrees, so spec readers see the same directory
    const l = layout(img);
    expect(fatEntry(img, l, 2)).not.toBe(0);
    expect(chain(img, l, 2).length).toBeGreaterThanOrEqual(1);
  });

  it('Label() from the root-directory volume-label entry is CIDATA, as FindCIs requires', () => {
    const label = diskfsLabel(img).trim();
    expect(label === 'CIDATA' || label === 'cidata').toBe(true);
    expect(label).toBe('CIDATA');
    // the boot-sector copy agrees (go-diskfs ignores it; blkid, Talos and Windows show it)
    expect(ascii(img, 71, 11)).toBe('CIDATA     ');
  });

  it('user-data reads back through the go-diskfs layout (data area after two FATs)', () => {
    const l = layout(img);
    const entry = rootEntries(img, l).find((e) => e.longName === 'user-data');
    expect(entry).toBeDefined();
    const data = readClusters(img, l, chain(img, l, entry!.cluster)).subarray(0, entry!.size);
    expect(Buffer.from(data).toString('utf8')).toBe(seed.userData);
  });

  it('is FAT32 by the Microsoft specification too: FAT32 fields and >= 65525 clusters', () => {
    expect(u16(img, 17)).toBe(0); // BPB_RootEntCnt
    expect(u16(img, 19)).toBe(0); // BPB_TotSec16
    expect(u16(img, 22)).toBe(0); // BPB_FATSz16
    expect(u32(img, 32)).toBe(img.length / SECTOR); // BPB_TotSec32 covers the whole image
    expect(ascii(img, 82, 8)).toBe('FAT32   ');
    const clusters = Math.floor((u32(img, 32) - (u16(img, 14) + img[16]! * u32(img, 36))) / img[13]!);
    expect(clusters).toBeGreaterThanOrEqual(65525);
    expect(layout(img).maxCluster).toBeGreaterThanOrEqual(clusters + 2); // the FAT covers every cluster
  });

  it('keeps a backup boot sector (sector 6) and FSInfo copy (sector 7)', () => {
    expect(u16(img, 50)).toBe(6);
    expect(sector(img, 6).equals(sector(img, 0))).toBe(true);
    expect(sector(img, 7).equals(sector(img, u16(img, 48)))).toBe(true);
  });

  it('is reproducible: same inputs give the same bytes; another epoch does not', () => {
    expect(Buffer.from(buildSeedImg({ ...seed }, EPOCH)).equals(Buffer.from(img))).toBe(true);
    expect(Buffer.from(buildSeedImg(seed, EPOCH + 2)).equals(Buffer.from(img))).toBe(false);
  });
});
