// Locates the boot-verification probe image (kernel + initramfs built by images/probe/build.sh,
// `make probe-image`) and builds its kernel command line.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { EnvironmentError } from '../util/diagnostics.js';

export type ProbeArch = 'amd64' | 'arm64';

export interface ProbeImage {
  arch: ProbeArch;
  /** The file to pass to `-kernel`. */
  kernel: string;
  initrd: string;
  /** How qemu boots `kernel`: PVH ELF entry (amd64 vmlinux), bzImage, or raw arm64 Image. */
  kernelFormat: 'pvh-elf' | 'bzimage' | 'arm64-image';
  dir: string;
  manifest?: ProbeManifest;
}

export interface ProbeManifest {
  schema: number;
  key: string;
  arch: string;
  kernelRelease: string;
  packages: Array<{ name: string; architecture: string; version: string; sha256: string }>;
  modules: string[];
  outputs: Record<string, { size: number; sha256: string }>;
}

/** The repository (or installed package) root: the nearest ancestor with images/probe/. */
export function defaultProbeRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'images', 'probe'))) return dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return process.cwd();
}

/**
 * The directory holding <arch>/{vmlinuz,initrd.img}. `root` may be the repository root, its
 * images/ directory, or the probe cache directory itself; `EDGEIMG_PROBE_DIR` overrides.
 */
export function probeImageDir(root?: string): string {
  const env = process.env.EDGEIMG_PROBE_DIR;
  if (env) return resolve(env);
  const base = resolve(root ?? defaultProbeRoot());
  for (const cand of [join(base, 'images', 'cache', 'probe'), join(base, 'cache', 'probe')]) {
    if (existsSync(cand)) return cand;
  }
  if (existsSync(join(base, 'amd64')) || existsSync(join(base, 'arm64'))) return base;
  return join(base, 'images', 'cache', 'probe');
}

/** The probe image for `arch`, or null when it has not been built (or is incomplete). */
export function locateProbeImage(root: string | undefined, arch: ProbeArch): ProbeImage | null {
  const dir = join(probeImageDir(root), arch);
  const initrd = join(dir, 'initrd.img');
  const manifestPath = join(dir, 'manifest.json');
  // manifest.json is written last by build.sh: without it the build did not complete
  if (!existsSync(initrd) || !existsSync(manifestPath)) return null;
  let manifest: ProbeManifest | undefined;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as ProbeManifest;
  } catch {
    return null;
  }
  const vmlinux = join(dir, 'vmlinux');
  const vmlinuz = join(dir, 'vmlinuz');
  if (arch === 'amd64' && existsSync(vmlinux)) {
    return { arch, kernel: vmlinux, initrd, kernelFormat: 'pvh-elf', dir, manifest };
  }
  if (!existsSync(vmlinuz)) return null;
  return { arch, kernel: vmlinuz, initrd, kernelFormat: arch === 'amd64' ? 'bzimage' : 'arm64-image', dir, manifest };
}

export function probeImageMissingMessage(arch: ProbeArch, root?: string): string {
  return `no ${arch} probe image in ${join(probeImageDir(root), arch)}: run \`make probe-image\` (images/probe/build.sh) first`;
}

/** Like locateProbeImage, but throws an EnvironmentError (exit code 3) when it is missing. */
export function requireProbeImage(root: string | undefined, arch: ProbeArch): ProbeImage {
  const img = locateProbeImage(root, arch);
  if (!img) throw new EnvironmentError(probeImageMissingMessage(arch, root));
  return img;
}

/** A fresh random nonce for `edgeimg.nonce=`. */
export function newNonce(): string {
  return randomBytes(8).toString('hex');
}

export interface ProbeAppendOptions {
  nonce?: string;
  /** Number of media attached: the probe stops waiting for devices once that many exist. */
  media?: number;
  /** Upper bound (seconds) the probe waits for the cidata volume to appear. */
  waitSeconds?: number;
  /** Test hook: the probe prints BEGIN and then hangs. */
  hang?: boolean;
  /** The probe adds LOG lines (timings, dmesg). */
  debug?: boolean;
}

/** The probe-specific kernel arguments (the console and base arguments come from runQemu). */
export function probeAppend(opts: ProbeAppendOptions): string {
  const args: string[] = [];
  if (opts.nonce !== undefined) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(opts.nonce)) throw new Error(`invalid probe nonce: ${opts.nonce}`);
    args.push(`edgeimg.nonce=${opts.nonce}`);
  }
  if (opts.media !== undefined) args.push(`edgeimg.media=${opts.media}`);
  if (opts.waitSeconds !== undefined) args.push(`edgeimg.wait=${Math.max(1, Math.ceil(opts.waitSeconds))}`);
  if (opts.hang) args.push('edgeimg.hang=1');
  if (opts.debug) args.push('edgeimg.debug=1');
  return args.join(' ');
}
