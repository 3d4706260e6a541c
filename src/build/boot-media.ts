// Class boot sticks in a build: the boot image each (hardware class, OS version) takes lives
// once in the image cache; build names it in each site's manifest (`bootMedia`, with its pin)
// and links it once into OUT/_boot/<class>/<os>-<version>/<name>, whatever the number of sites.
// A hard link costs no copy; across filesystems the file is cloned or copied, once per class.
// OUT/_boot/index.json records what edgeimg put there: a file it does not list is never
// replaced or removed.

import { copyFileSync, constants, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { SitePlan } from '../catalogue/plan.js';
import { imageNeeds, type ImageNeed } from '../images/assets.js';
import { readLock, type ImagesLock } from '../images/lock.js';
import { readStandinLock, resolveClassImage, type ClassImage } from '../images/standin.js';
import { bootMediumPath, type ManifestBootMedium } from '../manifest/manifest.js';
import { OutputError } from './output.js';

/** Key of the class boot stick a node takes: its hardware class at its site's OS version. */
export function classStickKey(hardwareClass: string, os: string, version: string): string {
  return `${hardwareClass}@${os}:${version}`;
}

export interface ClassStick {
  medium: ManifestBootMedium;
  /** The verified cached file (absolute), when it is in the cache and matches its pin. */
  file?: string;
  /** Why it is not usable, when it is not (not cached, mismatch, a stand-in without --allow-standin). */
  problem?: string;
}

/**
 * The class boot stick of every (class, OS version) the sites use: from images.lock (or, with
 * allowStandin and no real pin, the cache's standin.lock); cached files are hashed now.
 */
export async function resolveClassSticks(plans: SitePlan[], catalogueDir: string, cacheDir: string, allowStandin: boolean): Promise<Record<string, ClassStick>> {
  const lock = readLock(catalogueDir);
  const standins = allowStandin ? readStandinLock(cacheDir) : undefined;
  const out: Record<string, ClassStick> = {};
  const byAsset = new Map<string, Promise<ClassImage | { problem: string }>>();
  for (const need of imageNeeds(plans)) {
    const boot = need.assets.find((a) => a.use === 'boot');
    if (!boot) continue;
    const medium = mediumOf(need, boot.name, boot.path, lock, standins);
    let image = byAsset.get(boot.path);
    if (!image) {
      image = resolveClassImage(cacheDir, lock, boot.path, { allowStandin }).catch((err: Error) => ({ problem: err.message }));
      byAsset.set(boot.path, image);
    }
    const r = await image;
    const key = classStickKey(need.hardwareClass, need.os, need.version);
    if ('problem' in r) out[key] = { medium, problem: r.problem };
    else if (r.standin && !allowStandin) out[key] = { medium, problem: `${r.file} is a test stand-in, not the real image (build --allow-standin to use it)` };
    else if (r.standin?.standin === 'netboot') out[key] = { medium, problem: `${r.file} is a netboot stand-in, not a boot image` };
    else out[key] = { medium: r.standin ? { ...medium, standin: r.standin.standin } : medium, file: r.file };
  }
  return out;
}

/**
 * The class boot sticks as images.lock pins them, without looking at any cache: what a
 * site's input digest says about boot images when nothing is downloaded (`edgeimg affected`).
 */
export function pinnedClassSticks(plans: SitePlan[], catalogueDir: string): Record<string, ClassStick> {
  const lock = readLock(catalogueDir);
  const out: Record<string, ClassStick> = {};
  for (const need of imageNeeds(plans)) {
    const boot = need.assets.find((a) => a.use === 'boot');
    if (boot) out[classStickKey(need.hardwareClass, need.os, need.version)] = { medium: mediumOf(need, boot.name, boot.path, lock, undefined) };
  }
  return out;
}

function mediumOf(need: ImageNeed, name: string, asset: string, lock: ImagesLock, standins: ImagesLock | undefined): ManifestBootMedium {
  const pin = lock.pins.get(asset) ?? standins?.pins.get(asset);
  return {
    hardwareClass: need.hardwareClass,
    os: need.os,
    version: need.version,
    name,
    asset,
    ...(pin ? { sha256: pin.sha256, bytes: pin.size } : {}),
  };
}

/** Lines for a site's input digest: the pins of the class sticks its nodes take. */
export function bootDigestLines(plan: SitePlan, sticks: Record<string, ClassStick>, keyOf: (n: SitePlan['nodes'][number]) => string): string[] {
  const keys = [...new Set(plan.nodes.map(keyOf))].sort();
  return keys.flatMap((k) => {
    const s = sticks[k];
    return s ? [`boot ${s.medium.asset} ${s.medium.sha256 ?? 'unpinned'}${s.medium.standin ? ` standin ${s.medium.standin}` : ''}`] : [];
  });
}

const INDEX = 'index.json';

interface BootIndex {
  generator: 'edgeimg';
  files: Record<string, { sha256: string; bytes: number; standin?: string }>;
}

function readIndex(bootDir: string): BootIndex | null {
  const p = join(bootDir, INDEX);
  if (!existsSync(bootDir)) return { generator: 'edgeimg', files: {} };
  try {
    const j = JSON.parse(readFileSync(p, 'utf8')) as BootIndex;
    return j && j.generator === 'edgeimg' && typeof j.files === 'object' ? j : null;
  } catch {
    return null;
  }
}

/** Problems with OUT/_boot (it exists and is not edgeimg's), for the pre-build output check. */
export function foreignBootDir(outDir: string): string[] {
  const dir = join(outDir, '_boot');
  if (!existsSync(dir)) return [];
  const st = lstatSync(dir);
  if (!st.isDirectory()) return [`${dir}: is in the way of the class boot media and was not written by edgeimg; move it away`];
  return readIndex(dir) ? [] : [`${dir}: has no edgeimg ${INDEX}, so edgeimg did not write it; move it away (build links class boot media there)`];
}

/**
 * Link every usable stick into OUT/_boot (skipping those already there with the same content).
 * Returns what was placed and how, for the build log.
 */
export function linkClassSticks(outDir: string, sticks: ClassStick[]): Array<{ path: string; how: 'linked' | 'copied' | 'kept' }> {
  const bootDir = join(outDir, '_boot');
  const index = readIndex(bootDir);
  if (!index) throw new OutputError(foreignBootDir(outDir).join('\n'));
  const done: Array<{ path: string; how: 'linked' | 'copied' | 'kept' }> = [];
  const seen = new Set<string>();
  for (const s of sticks) {
    if (!s.file || !s.medium.sha256) continue;
    const rel = bootMediumPath(s.medium);
    if (seen.has(rel)) continue;
    seen.add(rel);
    const dest = join(outDir, ...rel.split('/'));
    const listed = index.files[rel.slice('_boot/'.length)];
    if (existsSync(dest) || isLink(dest)) {
      if (!listed) throw new OutputError(`${dest}: is in the way of a class boot stick and was not written by edgeimg; move it away`);
      const a = statSync(dest);
      const b = statSync(s.file);
      // the very file just verified in the cache; a copy is replaced (it may have been changed)
      if (listed.sha256 === s.medium.sha256 && a.ino === b.ino && a.dev === b.dev) {
        done.push({ path: rel, how: 'kept' });
        continue;
      }
    }
    mkdirSync(dirname(dest), { recursive: true });
    const tmp = `${dest}.edgeimg-tmp-${randomBytes(4).toString('hex')}`;
    let how: 'linked' | 'copied' = 'linked';
    try {
      try {
        linkSync(s.file, tmp);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw err;
        copyFileSync(s.file, tmp, constants.COPYFILE_FICLONE);
        how = 'copied';
      }
      renameSync(tmp, dest);
    } finally {
      rmSync(tmp, { force: true });
    }
    index.files[rel.slice('_boot/'.length)] = { sha256: s.medium.sha256, bytes: s.medium.bytes ?? 0, ...(s.medium.standin ? { standin: s.medium.standin } : {}) };
    done.push({ path: rel, how });
  }
  if (done.some((d) => d.how !== 'kept')) {
    mkdirSync(bootDir, { recursive: true });
    const sorted: BootIndex = { generator: 'edgeimg', files: Object.fromEntries(Object.entries(index.files).sort(([a], [b]) => (a < b ? -1 : 1))) };
    const tmp = join(bootDir, `.${INDEX}.edgeimg-tmp-${randomBytes(4).toString('hex')}`);
    writeFileSync(tmp, `${JSON.stringify(sorted, null, 2)}\n`, { mode: 0o644 });
    renameSync(tmp, join(bootDir, INDEX));
  }
  return done;
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
