// `edgeimg flash --site ID --node NAME DEVICE`: write a node's seed stick image to a USB stick (or
// an image file), read it back and compare. It refuses what is easy to regret: a mounted
// device, the disk holding the running system, and devices larger than a stick usually is.

import { closeSync, constants, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { readManifest } from '../manifest/manifest.js';
import { readArtifact } from '../verify/artifact-read.js';
import { requireVerifiedAsset } from '../images/cache.js';
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
  const manifest = await siteManifest(o.outDir, o.site);
  const art = manifest.artifacts.find((a) => a.node === o.node && a.kind === 'seed-img');
  if (!manifest.nodes.some((n) => n.name === o.node)) throw new UsageError(`site ${o.site} has no node ${o.node} (nodes: ${manifest.nodes.map((n) => n.name).join(', ')})`);
  if (!art) throw new EnvironmentError(`site ${o.site} was built without seed sticks: rebuild with --media iso,img`);
  const read = await readArtifact(join(o.outDir, o.site), art.path);
  if ('problem' in read) throw new EnvironmentError(`${join(o.outDir, o.site, art.path)} ${read.problem}`);
  const sha = createHash('sha256').update(read.data).digest('hex');
  if (sha !== art.sha256) throw new EnvironmentError(`${join(o.outDir, o.site, art.path)} does not match its manifest (sha256 ${sha}, expected ${art.sha256}); not writing a damaged image`);
  return writeVerified({ source: join(o.outDir, o.site, art.path), sha256: art.sha256, bytes: art.bytes }, o);
}

export interface FlashClassOptions extends Omit<FlashOptions, 'node'> {
  hardwareClass: string;
  cacheDir: string;
}

/**
 * `flash --site ID --class NAME DEVICE`: the class boot stick the site's nodes of that class take,
 * from the image cache, checked against the pin in the site's manifest before and after writing.
 */
export async function flashClassStick(o: FlashClassOptions): Promise<FlashResult & { name: string }> {
  const manifest = await siteManifest(o.outDir, o.site);
  const classes = [...new Set(manifest.nodes.map((n) => n.hardwareClass))];
  if (!classes.includes(o.hardwareClass)) throw new UsageError(`no node of site ${o.site} is of hardware class ${o.hardwareClass} (its classes: ${classes.join(', ')})`);
  const medium = manifest.bootMedia?.find((b) => b.hardwareClass === o.hardwareClass);
  if (!medium) throw new EnvironmentError(`the manifest of ${o.site} names no class boot stick (built by an older edgeimg): rebuild the site`);
  if (!medium.sha256 || medium.bytes === undefined) {
    throw new EnvironmentError(`the class boot stick ${medium.name} of ${o.hardwareClass} was not pinned when ${o.site} was built: edgeimg images pull (or import), then rebuild`);
  }
  const lock = { path: `${join(o.outDir, o.site, 'manifest.json')}`, pins: new Map([[medium.asset, { sha256: medium.sha256, size: medium.bytes }]]) };
  const { file } = await requireVerifiedAsset(o.cacheDir, lock, medium.asset);
  const r = await writeVerified({ source: file, sha256: medium.sha256, bytes: medium.bytes }, o);
  return { ...r, name: medium.name };
}

async function siteManifest(outDir: string, site: string) {
  return readManifest(join(outDir, site)).catch(() => {
    throw new EnvironmentError(`no built site ${site} in ${outDir}: run edgeimg build --site ${site} --media iso,img first`);
  });
}

/**
 * Stream `source` to the device (or file), checking its sha256 on the way (a source that changed
 * since it was verified is caught before the final sync), then read the device back and compare.
 */
async function writeVerified(src: { source: string; sha256: string; bytes: number }, o: Pick<FlashOptions, 'device' | 'force' | 'progress'>): Promise<FlashResult> {
  const target = describeTarget(o.device, { mayNotExist: true });
  const refused = flashRefusal(target, target.kind === 'block' ? mountedDisks() : { mounted: new Map() }, src.bytes, o.force === true);
  if (refused) throw new UsageError(refused);

  const sfd = openSync(src.source, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  const flags = target.kind === 'block' ? constants.O_WRONLY : constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC;
  let fd: number | undefined;
  const inHash = createHash('sha256');
  try {
    fd = openSync(o.device, flags | (constants.O_NOFOLLOW ?? 0), 0o600);
    const st = fstatSync(fd);
    if (!st.isFile() && !st.isBlockDevice()) throw new EnvironmentError(`${o.device} is neither a block device nor an image file`);
    const buf = Buffer.alloc(CHUNK);
    let off = 0;
    while (off < src.bytes) {
      const n = readSync(sfd, buf, 0, Math.min(CHUNK, src.bytes - off), off);
      if (n === 0) break;
      inHash.update(buf.subarray(0, n));
      let w = 0;
      while (w < n) w += writeSync(fd, buf, w, n - w, off + w);
      off += n;
      o.progress?.('write', off, src.bytes);
    }
    if (off < src.bytes) throw new EnvironmentError(`${src.source}: only ${off} of ${src.bytes} bytes could be read`);
    fsyncSync(fd);
  } finally {
    closeSync(sfd);
    if (fd !== undefined) closeSync(fd);
  }
  const wrote = inHash.digest('hex');
  if (wrote !== src.sha256) throw new EnvironmentError(`${src.source} does not match its manifest (sha256 ${wrote}, expected ${src.sha256}); the written device does not hold a good image: write it again from a good source`);

  // read back what the device now holds and compare
  const rfd = openSync(o.device, constants.O_RDONLY);
  const hash = createHash('sha256');
  try {
    const buf = Buffer.alloc(CHUNK);
    let off = 0;
    while (off < src.bytes) {
      const n = readSync(rfd, buf, 0, Math.min(CHUNK, src.bytes - off), off);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      off += n;
      o.progress?.('verify', off, src.bytes);
    }
    if (off < src.bytes) throw new EnvironmentError(`${o.device}: only ${off} of ${src.bytes} bytes could be read back`);
  } finally {
    closeSync(rfd);
  }
  const back = hash.digest('hex');
  if (back !== wrote) throw new VerifyError(`${o.device}: read back sha256 ${back}, wrote ${wrote}: the stick is faulty or was changed while writing`);
  return { device: o.device, bytes: src.bytes, sha256: wrote };
}
