// Locates the reference NoCloud client image (images/cloudinit/build.sh, `make cloudinit-image`).

import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultProbeRoot } from '../probe-image.js';
import { EnvironmentError } from '../../util/diagnostics.js';

export interface CloudInitImageManifest {
  schema: number;
  key: string;
  suite: string;
  arch: string;
  kernelRelease: string;
  sourceDateEpoch: number;
  packages: Array<{ name: string; architecture: string; version: string; sha256: string }>;
  inputs: Record<string, string>;
  outputs: Record<string, { size: number; sha256: string; boot?: string }>;
}

export interface CloudInitImage {
  dir: string;
  /** `-kernel`: the ELF vmlinux (PVH entry, no in-guest decompression) when built, else the bzImage. */
  kernel: string;
  initrd: string;
  /** ext2 root filesystem; attached as a snapshot disk, never written. */
  rootfs: string;
  manifest: CloudInitImageManifest;
  /** Version of the cloud-init package in the image. */
  cloudInitVersion: string;
}

/** images/cache/cloudinit under the repository root; `EDGEIMG_CLOUDINIT_DIR` overrides. */
export function cloudInitImageDir(root?: string): string {
  const env = process.env.EDGEIMG_CLOUDINIT_DIR;
  if (env) return resolve(env);
  return join(resolve(root ?? defaultProbeRoot()), 'images', 'cache', 'cloudinit');
}

/** The amd64 client image, or null when it has not been built (manifest.json is written last). */
export function locateCloudInitImage(root?: string): CloudInitImage | null {
  const dir = join(cloudInitImageDir(root), 'amd64');
  const manifestPath = join(dir, 'manifest.json');
  const initrd = join(dir, 'initrd.img');
  const rootfs = join(dir, 'rootfs.img');
  if (!existsSync(manifestPath) || !existsSync(initrd) || !existsSync(rootfs)) return null;
  let manifest: CloudInitImageManifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as CloudInitImageManifest;
  } catch {
    return null;
  }
  const vmlinux = join(dir, 'vmlinux');
  const vmlinuz = join(dir, 'vmlinuz');
  const kernel = existsSync(vmlinux) ? vmlinux : vmlinuz;
  if (!existsSync(kernel)) return null;
  const cloudInitVersion = manifest.packages?.find((p) => p.name === 'cloud-init')?.version ?? 'unknown';
  return { dir, kernel, initrd, rootfs, manifest, cloudInitVersion };
}

export function cloudInitImageMissingMessage(root?: string): string {
  return `no reference NoCloud client image in ${join(cloudInitImageDir(root), 'amd64')}: run \`make cloudinit-image\` (images/cloudinit/build.sh, needs root, mmdebstrap and genext2fs) first`;
}

export function requireCloudInitImage(root?: string): CloudInitImage {
  const img = locateCloudInitImage(root);
  if (!img) throw new EnvironmentError(cloudInitImageMissingMessage(root));
  return img;
}
