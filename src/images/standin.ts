// Stand-in class boot images: small ISOs built from Debian packages (images/standin/build.sh)
// that boot through real firmware like a class's Talos or Kairos image and then follow that OS's
// seed discovery, printing the verifier's transcript. Real Talos and Kairos images cannot be
// downloaded where edgeimg is tested, so `make standin-images` puts stand-ins into the image
// cache at the asset paths the example catalogue's classes need.
//
// A stand-in must never pass for a real image:
// - its pins live in the cache's own `standin.lock`, never in the catalogue's images.lock;
// - a pin in images.lock always wins: a stand-in at a pinned path is a mismatch, refused;
// - it carries a marker file (EDGEIMG-STANDIN.json) at the ISO root, and everything that uses
//   one says so (images list, build's boot media, the field sheet, verify);
// - build links or embeds one only with --allow-standin.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Arch } from '../catalogue/plan.js';
import { peekIso, readIsoRootFile } from '../media/iso9660/peek.js';
import { EnvironmentError, VerifyError } from '../util/diagnostics.js';
import type { ImageNeed } from './assets.js';
import { assetState, cachedFile, pinMismatch, readFileChunks, requireVerifiedAsset, storeAsset, type Digest } from './cache.js';
import { readLockAt, writePinsAt, type ImagesLock, type Pin } from './lock.js';

export const STANDIN_LOCK = 'standin.lock';
export const STANDIN_MARKER = 'EDGEIMG-STANDIN.json';
const STANDIN_COMMENT = 'sha256 pins of STAND-IN boot images (test images built by images/standin/build.sh, not Talos or Kairos); written by `edgeimg images standin`; never copy these pins into images.lock';

export type StandinKind = 'talos-like' | 'kairos-like';

/** A stand-in of a netboot asset (kernel, initrd, command line): no marker, pinned in standin.lock. */
export type StandinNetboot = 'netboot';

export interface StandinInfo {
  standin: StandinKind | StandinNetboot;
  arch: Arch;
  version: number;
}

/** The stand-in marker of an ISO image (or stick), or undefined for anything else. */
export function standinMarker(file: string): StandinInfo | undefined {
  let data: Buffer | undefined;
  try {
    data = readIsoRootFile(file, STANDIN_MARKER, 4096);
  } catch {
    return undefined;
  }
  if (!data) return undefined;
  try {
    const j = JSON.parse(data.toString('utf8')) as Partial<StandinInfo>;
    if ((j.standin === 'talos-like' || j.standin === 'kairos-like') && (j.arch === 'amd64' || j.arch === 'arm64') && typeof j.version === 'number') {
      return { standin: j.standin, arch: j.arch, version: j.version };
    }
  } catch {
    // not JSON: not a marker
  }
  return undefined;
}

export function standinLockPath(cacheDir: string): string {
  return join(cacheDir, STANDIN_LOCK);
}

export function readStandinLock(cacheDir: string): ImagesLock {
  return readLockAt(standinLockPath(cacheDir));
}

/** The class boot image a build or verify uses: cached, hashed now, matched against its pin. */
export interface ClassImage {
  file: string;
  digest: Digest;
  /** Set when the file is a stand-in (pinned in standin.lock, marker present). */
  standin?: StandinInfo;
}

/**
 * The verified cached file of a boot asset. A pin in images.lock decides when there is one.
 * Without one, a stand-in pinned in the cache's standin.lock is accepted when `allowStandin`.
 * Errors as requireVerifiedAsset(): mismatch/unpinned exit 1, missing exit 3.
 */
export async function resolveClassImage(cacheDir: string, lock: ImagesLock, assetPath: string, opts: { allowStandin?: boolean } = {}): Promise<ClassImage> {
  if (!lock.pins.has(assetPath) && !opts.allowStandin && existsSync(cachedFile(cacheDir, assetPath)) && standinMarker(cachedFile(cacheDir, assetPath))) {
    throw new VerifyError(`${cachedFile(cacheDir, assetPath)} is a test stand-in, not the real image (--allow-standin uses it; images.lock pins no real one)`);
  }
  if (lock.pins.has(assetPath) || !opts.allowStandin) {
    const r = await requireVerifiedAsset(cacheDir, lock, assetPath);
    const marker = standinMarker(r.file);
    return marker ? { ...r, standin: marker } : r;
  }
  const standins = readStandinLock(cacheDir);
  const pin = standins.pins.get(assetPath);
  if (!pin) return requireVerifiedAsset(cacheDir, lock, assetPath); // its usual unpinned/missing errors
  const s = await assetState(cacheDir, assetPath, pin);
  if (s.status === 'missing') throw new EnvironmentError(`${s.file}: stand-in boot image not in the cache (make standin-images)`);
  if (s.status !== 'ok') throw new VerifyError(`${s.file}: refused: ${s.problem ?? `does not match its stand-in pin in ${standins.path}: ${pinMismatch(pin, s.actual!)}`}`);
  const marker = standinMarker(s.file);
  if (marker) return { file: s.file, digest: s.actual!, standin: marker };
  // netboot stand-ins (a kernel, an initrd, a command line) carry no marker: the standin.lock
  // pin is what makes them one. A boot image (ISO9660) must carry the marker.
  if (isIso(s.file)) throw new VerifyError(`${s.file}: refused: pinned in ${standins.path} but it carries no ${STANDIN_MARKER}: not a stand-in`);
  return { file: s.file, digest: s.actual!, standin: { standin: 'netboot', arch: 'amd64', version: 1 } };
}

function isIso(file: string): boolean {
  try {
    return peekIso(file) !== null;
  } catch {
    return false;
  }
}

/** Which stand-in a need takes: the OS decides the kind, the class's arch the build. */
export function standinFor(need: Pick<ImageNeed, 'os' | 'arch'>): { kind: StandinKind; arch: Arch } {
  return { kind: need.os === 'talos' ? 'talos-like' : 'kairos-like', arch: need.arch };
}

export interface InstallStandinsOptions {
  catalogueDir: string;
  cacheDir: string;
  /** Where images/standin/build.sh wrote <arch>/<kind>.iso. */
  from: string;
  /** The probe image (kernel, initrd) whose files stand in for netboot assets; default <from>/../probe. */
  probeDir?: string;
  needs: ImageNeed[];
  log?: (line: string) => void;
}

export interface InstalledStandin {
  hardwareClass: string;
  os: string;
  version: string;
  path: string;
  kind: StandinKind;
  arch: Arch;
  status: 'installed' | 'kept' | 'skipped';
  reason?: string;
  sha256?: string;
}

/**
 * Put the stand-in of every class boot asset the catalogue needs into the cache, pinned in
 * standin.lock. An asset images.lock pins is left alone (the real image's place), and so is a
 * cached file that is no stand-in.
 */
export async function installStandins(o: InstallStandinsOptions): Promise<InstalledStandin[]> {
  const needs = o.needs;
  const catalogueLock = readLockAt(join(o.catalogueDir, 'images.lock'));
  const out: InstalledStandin[] = [];
  const pins = new Map<string, Pin>();
  try {
    for (const need of needs) {
      const boot = need.assets.find((a) => a.use === 'boot');
      if (!boot) continue;
      const { kind, arch } = standinFor(need);
      const row = { hardwareClass: need.hardwareClass, os: need.os, version: need.version, path: boot.path, kind, arch };
      if (catalogueLock.pins.has(boot.path)) {
        out.push({ ...row, status: 'skipped', reason: `pinned in ${catalogueLock.path}: the real image's place` });
        continue;
      }
      const src = join(o.from, arch, `${kind}.iso`);
      if (!existsSync(src)) throw new EnvironmentError(`${src}: stand-in image not built (make standin-images, or bash images/standin/build.sh)`);
      const dest = cachedFile(o.cacheDir, boot.path);
      if (existsSync(dest) && !standinMarker(dest)) {
        out.push({ ...row, status: 'skipped', reason: `${dest} is in the cache and is no stand-in: left alone` });
        continue;
      }
      const stored = await storeAsset(o.cacheDir, boot.path, readFileChunks(src), () => undefined);
      if (!stored.stored) continue;
      pins.set(boot.path, { sha256: stored.digest.sha256, size: stored.digest.size });
      o.log?.(`${need.hardwareClass} (${need.os} ${need.version}): ${kind} ${arch} -> ${stored.file}`);
      out.push({ ...row, status: 'installed', sha256: stored.digest.sha256 });
      // netboot: the probe's kernel and initrd (the same init, which fetches the config URL of
      // its command line), a command line naming the stand-in, and for Kairos a placeholder
      // root filesystem (the stand-in never mounts one)
      const probe = join(o.probeDir ?? join(o.from, '..', 'probe'), arch);
      const haveProbe = existsSync(join(probe, 'vmlinuz')) && existsSync(join(probe, 'initrd.img'));
      if (!haveProbe && need.assets.some((x) => x.use === 'netboot')) {
        o.log?.(`${need.hardwareClass} (${need.os} ${need.version}): no netboot stand-ins: no probe image in ${probe} (make probe-image)`);
      }
      for (const a of haveProbe ? need.assets.filter((x) => x.use === 'netboot') : []) {
        if (catalogueLock.pins.has(a.path)) continue;
        let chunks: AsyncIterable<Uint8Array>;
        if (a.kind === 'kernel' || a.kind === 'initramfs') {
          chunks = readFileChunks(join(probe, a.kind === 'kernel' ? 'vmlinuz' : 'initrd.img'));
        } else if (a.kind === 'cmdline') {
          const console = arch === 'arm64' ? 'console=ttyAMA0' : 'console=ttyS0';
          chunks = once(`${console} quiet panic=-1 cryptomgr.notests edgeimg.standin=${kind === 'talos-like' ? 'talos' : 'kairos'} talos.platform=nocloud\n`);
        } else {
          chunks = once('edgeimg stand-in: placeholder root filesystem (the stand-in never mounts one)\n');
        }
        const dest = cachedFile(o.cacheDir, a.path);
        if (existsSync(dest) && !standins(o.cacheDir).pins.has(a.path) && !pins.has(a.path)) continue; // someone else's file: left alone
        const st = await storeAsset(o.cacheDir, a.path, chunks, () => undefined);
        if (st.stored) pins.set(a.path, { sha256: st.digest.sha256, size: st.digest.size });
      }
    }
  } finally {
    if (pins.size > 0) writePinsAt(standinLockPath(o.cacheDir), pins, STANDIN_COMMENT);
  }
  return out;
}

async function* once(text: string): AsyncIterable<Uint8Array> {
  yield Buffer.from(text, 'utf8');
}

const standins = (cacheDir: string): ImagesLock => readStandinLock(cacheDir);
