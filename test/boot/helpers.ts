// Shared helpers for the boot tests: host-tool checks, the probe image (built in CI when it is
// missing, a loud skip elsewhere), test seeds made with genisoimage / mkfs.vfat + mcopy, and
// pgrep for "no QEMU left behind" assertions.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { locateProbeImage, type ProbeArch, type ProbeImage } from '../../src/verify/probe-image.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const IN_CI = Boolean(process.env.CI);

export function haveTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v "$1" >/dev/null 2>&1`, 'sh', name]).status === 0;
}

export function missingTools(names: readonly string[]): string[] {
  return names.filter((n) => !haveTool(n));
}

export const SEED_TOOLS = ['genisoimage', 'mkfs.vfat', 'mcopy'] as const;

/**
 * Whether the boot tests of `arches` can run. Outside CI a missing probe image or tool is a loud
 * skip; in CI it is not a skip: the probe image is built by ensureProbeImages() (beforeAll),
 * and missing tools make the tests fail.
 */
export function bootPrereqs(arches: readonly ProbeArch[], what: string): { run: boolean; reason?: string } {
  const tools = [...SEED_TOOLS, ...arches.map((a) => (a === 'amd64' ? 'qemu-system-x86_64' : 'qemu-system-aarch64'))];
  const missing = missingTools(tools);
  const images = arches.filter((a) => !locateProbeImage(REPO_ROOT, a));
  if (IN_CI) return { run: true };
  const why: string[] = [];
  if (missing.length) why.push(`missing host tools: ${missing.join(', ')}`);
  if (images.length) why.push(`no probe image for ${images.join(', ')} (run \`make probe-image\`)`);
  if (why.length) {
    const reason = `SKIPPING ${what}: ${why.join('; ')}`;
    console.warn(`\n*** ${reason} ***\n`);
    return { run: false, reason };
  }
  return { run: true };
}

/** Returns the probe images, building them first when missing (CI). Throws with a clear message. */
export function ensureProbeImages(arches: readonly ProbeArch[]): Record<ProbeArch, ProbeImage> {
  const missingTools_ = missingTools([...SEED_TOOLS, 'qemu-system-x86_64', 'qemu-system-aarch64']);
  if (missingTools_.length) throw new Error(`boot tests need these host tools: ${missingTools_.join(', ')}`);
  const missing = arches.filter((a) => !locateProbeImage(REPO_ROOT, a));
  if (missing.length) {
    const r = spawnSync('bash', [join(REPO_ROOT, 'images/probe/build.sh'), ...(missing.length === 1 ? ['--arch', missing[0]!] : [])], {
      encoding: 'utf8',
      stdio: ['ignore', 'inherit', 'pipe'],
      timeout: 15 * 60_000,
    });
    if (r.status !== 0) {
      throw new Error(`building the probe image failed (images/probe/build.sh, exit ${r.status}):\n${r.stderr}`);
    }
  }
  const out = {} as Record<ProbeArch, ProbeImage>;
  for (const a of arches) {
    const img = locateProbeImage(REPO_ROOT, a);
    if (!img) throw new Error(`no ${a} probe image after building it: run \`make probe-image\``);
    out[a] = img;
  }
  return out;
}

export type SeedFiles = Record<string, string | Buffer>;

function writeTree(dir: string, files: SeedFiles): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
}

/** An ISO9660 seed with Joliet and Rock Ridge (what cloud-init's docs prescribe). */
export function makeIso(outDir: string, name: string, files: SeedFiles, label = 'cidata'): string {
  const src = join(outDir, `${name}.d`);
  writeTree(src, files);
  const iso = join(outDir, name);
  execFileSync('genisoimage', ['-quiet', '-V', label, '-J', '-R', '-o', iso, src]);
  return iso;
}

/** A FAT seed (no partition table, like a superfloppy USB stick). */
export function makeFat(outDir: string, name: string, files: SeedFiles, label = 'CIDATA', sizeKiB = 1024): string {
  const src = join(outDir, `${name}.d`);
  writeTree(src, files);
  const img = join(outDir, name);
  execFileSync('mkfs.vfat', ['-n', label, '-C', img, String(sizeKiB)], { stdio: 'ignore' });
  execFileSync('mcopy', ['-i', img, ...Object.keys(files).map((f) => join(src, f)), '::/']);
  return img;
}

/** An MBR-partitioned disk whose first partition (at 1 MiB) is a FAT seed. */
export function makePartitionedFat(outDir: string, name: string, files: SeedFiles, label = 'CIDATA'): string {
  const src = join(outDir, `${name}.d`);
  writeTree(src, files);
  const img = join(outDir, name);
  const sizeMiB = 8;
  writeFileSync(img, Buffer.alloc(0));
  execFileSync('truncate', ['-s', `${sizeMiB}M`, img]);
  // MBR with one FAT16 partition starting at sector 2048 (written by hand: no sfdisk needed)
  const mbr = Buffer.alloc(512);
  const start = 2048;
  const sectors = sizeMiB * 2048 - start;
  const e = 446;
  mbr[e] = 0x00;
  mbr.writeUInt8(0xfe, e + 1); mbr.writeUInt8(0xff, e + 2); mbr.writeUInt8(0xff, e + 3); // CHS: LBA only
  mbr[e + 4] = 0x0e; // FAT16 LBA
  mbr.writeUInt8(0xfe, e + 5); mbr.writeUInt8(0xff, e + 6); mbr.writeUInt8(0xff, e + 7);
  mbr.writeUInt32LE(start, e + 8);
  mbr.writeUInt32LE(sectors, e + 12);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const part = join(outDir, `${name}.part`);
  execFileSync('mkfs.vfat', ['-n', label, '-C', part, String((sectors * 512) / 1024)], { stdio: 'ignore' });
  execFileSync('mcopy', ['-i', part, ...Object.keys(files).map((f) => join(src, f)), '::/']);
  execFileSync('dd', [`if=${part}`, `of=${img}`, 'bs=512', `seek=${start}`, 'conv=notrunc'], { stdio: 'ignore' });
  execFileSync('dd', [`of=${img}`, 'bs=512', 'count=1', 'conv=notrunc'], { input: mbr, stdio: ['pipe', 'ignore', 'ignore'] });
  return img;
}

/** pids whose command line contains `marker` (pgrep -f). */
export function pgrep(marker: string): number[] {
  const r = spawnSync('pgrep', ['-f', marker], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}
