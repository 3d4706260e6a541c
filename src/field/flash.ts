// `edgeimg flash --site ID --node NAME DEVICE`: write a node's seed stick image to a USB stick (or
// an image file), read it back and compare. It refuses what is easy to regret: a mounted
// device, the disk holding the running system, and devices larger than a stick usually is.

import { closeSync, constants, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { readManifest } from '../manifest/manifest.js';
import { readArtifact } from '../verify/artifact-read.js';
import { EnvironmentError, UsageError, VerifyError } from '../util/diagnostics.js';
import { describeTarget, mountedDisks, type Target } from './device.js';

/** Larger than any USB stick a technician should be writing a 33 MiB seed to. */
export const MAX_DEVICE_BYTES = 256 * 1024 ** 3;
const CHUNK = 4 << 20;

export interface FlashOptions {
  outDir: string;
  site: string;
  node: string;
  device: string;
  /** Write even to a device over MAX_DEVICE_BYTES. Never overrides mounted/root refusals. */
  force?: boolean;
  /** Called as bytes are written and read back (for a progress bar). */
  progress?: (phase: 'write' | 'verify', done: number, total: number) => void;
}

export interface FlashResult {
  device: string;
  bytes: number;
  sha256: string;
}

/**
 * Why writing `bytes` to `target` is refused, if it is: the disk holding /, a mounted disk, a
 * device larger than MAX_DEVICE_BYTES without `force`, or one too small. Pure, for testing.
 */
export function flashRefusal(target: Target, mounts: { mounted: Map<string, string>; root?: string }, bytes: number, force: boolean): string | undefined {
  if (target.kind !== 'block') return undefined;
  const disk = target.name ?? '';
  if (mounts.root !== undefined && disk === mounts.root) return `${target.path} holds the running system (/): refusing to write to it`;
  if (mounts.mounted.has(disk)) return `${target.path} is mounted (at ${mounts.mounted.get(disk)}): unmount it first`;
  if (target.size > MAX_DEVICE_BYTES && !force) {
    return `${target.path} is ${(target.size / 1024 ** 3).toFixed(0)} GiB, larger than a USB stick usually is: check it is the right device, then add --force`;
  }
  if (target.size > 0 && target.size < bytes) return `${target.path} holds ${target.size} bytes, the seed needs ${bytes}`;
  return undefined;
}

export async function flashSeed(o: FlashOptions): Promise<FlashResult> {
  const manifest = await readManifest(join(o.outDir, o.site)).catch(() => {
    throw new EnvironmentError(`no built site ${o.site} in ${o.outDir}: run edgeimg build --site ${o.site} --media iso,img first`);
  });
  const art = manifest.artifacts.find((a) => a.node === o.node && a.kind === 'seed-img');
  if (!manifest.nodes.some((n) => n.name === o.node)) throw new UsageError(`site ${o.site} has no node ${o.node} (nodes: ${manifest.nodes.map((n) => n.name).join(', ')})`);
  if (!art) throw new EnvironmentError(`site ${o.site} was built without seed sticks: rebuild with --media iso,img`);
  const read = await readArtifact(join(o.outDir, o.site), art.path);
  if ('problem' in read) throw new EnvironmentError(`${join(o.outDir, o.site, art.path)} ${read.problem}`);
  const image = read.data;
  const sha = createHash('sha256').update(image).digest('hex');
  if (sha !== art.sha256) throw new EnvironmentError(`${join(o.outDir, o.site, art.path)} does not match its manifest (sha256 ${sha}, expected ${art.sha256}); not writing a damaged image`);

  const target = describeTarget(o.device, { mayNotExist: true });
  const refused = flashRefusal(target, target.kind === 'block' ? mountedDisks() : { mounted: new Map() }, image.length, o.force === true);
  if (refused) throw new UsageError(refused);

  const flags = target.kind === 'block' ? constants.O_WRONLY : constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC;
  const fd = openSync(o.device, flags | (constants.O_NOFOLLOW ?? 0), 0o600);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() && !st.isBlockDevice()) throw new EnvironmentError(`${o.device} is neither a block device nor an image file`);
    for (let off = 0; off < image.length; off += CHUNK) {
      const end = Math.min(image.length, off + CHUNK);
      let w = off;
      while (w < end) w += writeSync(fd, image, w, end - w, w);
      o.progress?.('write', end, image.length);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }

  // read back what the device now holds and compare
  const rfd = openSync(o.device, constants.O_RDONLY);
  const hash = createHash('sha256');
  try {
    const buf = Buffer.alloc(CHUNK);
    let off = 0;
    while (off < image.length) {
      const n = readSync(rfd, buf, 0, Math.min(CHUNK, image.length - off), off);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      off += n;
      o.progress?.('verify', off, image.length);
    }
    if (off < image.length) throw new EnvironmentError(`${o.device}: only ${off} of ${image.length} bytes could be read back`);
  } finally {
    closeSync(rfd);
  }
  const back = hash.digest('hex');
  if (back !== sha) throw new VerifyError(`${o.device}: read back sha256 ${back}, wrote ${sha}: the stick is faulty or was changed while writing`);
  return { device: o.device, bytes: image.length, sha256: sha };
}
