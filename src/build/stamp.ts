// Incremental builds. Each built site has a stamp, OUT/.edgeimg-state/<site>.json (beside the
// site, so that the site directory holds artifacts only and stays byte-identical): the input digest
// it was built from, the media selection, the digest of the stored secrets file (so the next
// build need not parse or decrypt it to know they are the same), SOURCE_DATE_EPOCH, and the size
// and mtime of every file written. A later build keeps the site as it is ("unchanged") only when
// all of these still hold and the recomputed input digest is the same; anything else rebuilds
// it. `build --force` rebuilds regardless. `verify` is what checks the bytes.

import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SitePlan } from '../catalogue/plan.js';
import type { ManifestArtifact } from '../manifest/manifest.js';
import { siteStoreFingerprintSync } from '../secrets/index.js';
import { MANIFEST_SIG_NAME, SHA256SUMS_NAME } from '../trust/sums.js';
import { generator } from '../version.js';
import { inputDigest, type DigestInputs } from './inputs.js';
import type { MediaKind, SiteBuilt } from './site.js';

export const STATE_DIR_NAME = '.edgeimg-state';
export const stampPath = (outDir: string, site: string): string => join(outDir, STATE_DIR_NAME, `${site}.json`);
const MAX_STAMP_BYTES = 4 << 20;

export interface BuildStamp {
  schemaVersion: 1;
  generator: string;
  inputDigest: string;
  /** The per-node media this site was built with (onestick dropped for Talos sites). */
  media: MediaKind[];
  /** sha256 (hex) of the stored secrets file's bytes (secrets.yaml or secrets.yaml.age). */
  secretsStore: string;
  /** sha256 of the secrets as loaded: the digest's secrets line. */
  secretsSha256: string;
  epoch: string | null;
  /** Every file the build wrote, relative to the site directory: [bytes, mtime ms]. */
  files: Record<string, [number, number]>;
  /** What the build reported (nodes, artifacts as in manifest.json), for a kept site's result. */
  nodes: string[];
  artifacts: ManifestArtifact[];
}

/** The media that make artifacts for this site: a Talos site takes no one-stick. */
export function effectiveMedia(plan: Pick<SitePlan, 'os'>, media: readonly MediaKind[]): MediaKind[] {
  return [...new Set(media)].filter((m) => m !== 'onestick' || plan.os === 'kairos').sort();
}

/** Every regular file under `dir`, relative, sorted. */
function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(rel ? join(dir, rel) : dir).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(dir, r));
    if (st.isDirectory()) out.push(...listFiles(dir, r));
    else if (st.isFile()) out.push(r);
  }
  return out;
}

/** The stamp of a staged site directory, made after every artifact is written. */
export function makeBuildStamp(dir: string, s: Omit<BuildStamp, 'schemaVersion' | 'generator' | 'files'>): BuildStamp {
  const files: BuildStamp['files'] = {};
  for (const rel of listFiles(dir)) {
    const st = lstatSync(join(dir, rel));
    files[rel] = [st.size, st.mtimeMs];
  }
  return { schemaVersion: 1, generator: generator().version, ...s, files };
}

/**
 * Record the stamps of sites just moved into place (rename keeps sizes and mtimes). Written
 * after the swap: a crash in between only costs a rebuild of those sites next time.
 */
export function writeBuildStamps(outDir: string, stamps: ReadonlyArray<{ site: string; stamp: BuildStamp }>): void {
  if (stamps.length === 0) return;
  mkdirSync(join(outDir, STATE_DIR_NAME), { recursive: true });
  for (const { site, stamp } of stamps) {
    const path = stampPath(outDir, site);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(stamp)}\n`, { mode: 0o644 });
    renameSync(tmp, path);
  }
}

function readJson(path: string, max: number): unknown {
  const st = lstatSync(path);
  if (!st.isFile() || st.size > max) return undefined;
  return JSON.parse(readFileSync(path, 'utf8'));
}

export interface UnchangedCheck {
  outDir: string;
  siteDir: string;
  plan: SitePlan;
  media: readonly MediaKind[];
  secretsDir: string;
  digestInputs: DigestInputs;
  /** The digest's extra lines (class boot stick pins). */
  extra: readonly string[];
  signer?: string;
  epoch: string | null;
}

/**
 * The site as it is in OUT when it was built from exactly these inputs and every file it wrote
 * is still there, same size and mtime; otherwise why it must be rebuilt. Never throws for a
 * missing, old or damaged stamp or manifest: those rebuild.
 */
export function unchangedSite(c: UnchangedCheck): SiteBuilt | { rebuild: string } {
  const why = (rebuild: string): { rebuild: string } => ({ rebuild });
  try {
    const stamp = readJson(stampPath(c.outDir, c.plan.id), MAX_STAMP_BYTES) as BuildStamp | undefined;
    if (!stamp || stamp.schemaVersion !== 1 || !stamp.files || typeof stamp.files !== 'object') return why('no previous build');
    if (stamp.generator !== generator().version) return why('edgeimg version changed');
    if (JSON.stringify(stamp.media) !== JSON.stringify(effectiveMedia(c.plan, c.media))) return why('media selection changed');
    if (stamp.epoch !== c.epoch) return why('SOURCE_DATE_EPOCH changed');
    if (siteStoreFingerprintSync(c.secretsDir, c.plan.id) !== stamp.secretsStore) return why('site secrets changed');
    const digest = inputDigest(c.digestInputs, c.plan, { secretsSha256: stamp.secretsSha256, ...(c.signer ? { signer: c.signer } : {}) }, c.extra);
    if (digest !== stamp.inputDigest) return why('inputs changed');
    for (const [rel, [bytes, mtime]] of Object.entries(stamp.files)) {
      const st = lstatSync(join(c.siteDir, rel), { throwIfNoEntry: false });
      if (!st?.isFile() || st.size !== bytes || st.mtimeMs !== mtime) return why('output changed since the last build');
    }
    // manifest.json is among the files: same size and mtime as the build wrote it, so it still
    // says what the stamp says (it is not read again: 3,400 reads cost more than the check)
    const required = ['manifest.json', SHA256SUMS_NAME, ...(c.signer ? [MANIFEST_SIG_NAME] : [])];
    if (required.some((r) => !stamp.files[r])) return why('output incomplete');
    if (!Array.isArray(stamp.artifacts) || !Array.isArray(stamp.nodes)) return why('no previous build');
    if (stamp.artifacts.some((a) => stamp.files[a.path]?.[0] !== a.bytes)) return why('output incomplete');
    return {
      site: c.plan.id,
      os: c.plan.os,
      nodes: stamp.nodes,
      secretsCreated: false,
      inputDigest: digest,
      artifacts: stamp.artifacts,
      status: 'unchanged',
    };
  } catch {
    return why('no previous build');
  }
}
