// A built site as one OCI artifact (image-spec v1.1 manifest with artifactType), and back.
//
//   config       the OCI empty descriptor ({}); everything about the site is in manifest.json
//   layers       one per file, sorted by path in byte order, media type FILE_MEDIA_TYPE,
//                annotation org.opencontainers.image.title = the path inside OUT/<site>/
//                (what `oras pull` names the file), dev.edgeimg.secret = "true" on secret files
//   files        every artifact manifest.json lists (secret ones only with --include-secrets),
//                manifest.json, manifest.json.sig and SHA256SUMS when built; nothing else
//   annotations  the site, OS, OS version, input digest and generator from manifest.json, and
//                whether secrets are included; no time stamps, so the same site always gives
//                the same manifest bytes and digest
//
// Serialised by hand (fixed key order, compact JSON): the digest is a function of the site.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hashFile as hashCachedFile } from '../images/cache.js';
import { join } from 'node:path';
import { readManifest, type Manifest, MAX_MANIFEST_BYTES as MAX_SITE_MANIFEST } from '../manifest/manifest.js';
import { artifactPathProblem, confinedArtifactProblem, shownPath } from '../verify/artifact-read.js';
import { MANIFEST_SIG_NAME, SHA256SUMS_NAME, sha256sums } from '../trust/sums.js';
import { EnvironmentError, VerifyError, excerpt } from '../util/diagnostics.js';
import { readRegularFile } from '../util/safe-read.js';
import { OCI_MANIFEST } from './client.js';
import { DIGEST } from './reference.js';

export const ARTIFACT_TYPE = 'application/vnd.edgeimg.site.v1+json';
export const FILE_MEDIA_TYPE = 'application/vnd.edgeimg.site.file.v1';
export const EMPTY_CONFIG = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
  data: 'e30=',
} as const;
export const EMPTY_CONFIG_BYTES = Buffer.from('{}');

export const ANNOTATION = {
  title: 'org.opencontainers.image.title',
  secret: 'dev.edgeimg.secret',
  site: 'dev.edgeimg.site',
  os: 'dev.edgeimg.os',
  osVersion: 'dev.edgeimg.os-version',
  inputDigest: 'dev.edgeimg.input-digest',
  generator: 'dev.edgeimg.generator',
  secrets: 'dev.edgeimg.secrets',
  excluded: 'dev.edgeimg.excluded',
} as const;

/** Site ids as the catalogue schema allows them. */
export const SITE_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_SIG_BYTES = 64 * 1024;
/** Largest file pull accepts (a Kairos one-stick is about 1.5 GB). */
export const MAX_LAYER_BYTES = 16 * 1024 ** 3;
const MAX_LAYERS = 10_000;

export interface SiteFile {
  /** Relative to OUT/<site>/. */
  path: string;
  abs: string;
  digest: string;
  size: number;
  secret: boolean;
}

export interface SiteContents {
  manifest: Manifest;
  files: SiteFile[];
  /** Secret artifacts left out (no --include-secrets). */
  excluded: string[];
}

export const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** sha256 and size of a regular file (no symlink as its last component), read in pieces. */
export async function hashFile(abs: string): Promise<{ digest: string; size: number } | { problem: string }> {
  const d = await hashCachedFile(abs);
  if ('problem' in d) return { problem: d.code === 'ENOENT' ? 'missing' : d.code === 'ELOOP' || d.code === 'EMLINK' ? 'is a symbolic link' : d.problem };
  return { digest: `sha256:${d.sha256}`, size: d.size };
}

/**
 * The files of OUT/<site> to publish, each checked against manifest.json (sha256 and size), and
 * SHA256SUMS against the manifest. A site that does not match fails (VerifyError) before
 * anything is sent.
 */
export async function collectSite(siteDir: string, site: string, includeSecrets: boolean): Promise<SiteContents> {
  if (!existsSync(join(siteDir, 'manifest.json'))) {
    throw new EnvironmentError(`site ${site} was never built into ${join(siteDir, '..')} (no ${join(siteDir, 'manifest.json')}); run edgeimg build --site ${site} first`);
  }
  let manifest: Manifest;
  try {
    manifest = await readManifest(siteDir);
  } catch (err) {
    throw new VerifyError(`cannot publish ${site}: ${(err as Error).message}`);
  }
  if (manifest.site !== site) throw new VerifyError(`${join(siteDir, 'manifest.json')} is the manifest of site ${excerpt(manifest.site)}, not ${site}`);
  const problems: string[] = [];
  const files: SiteFile[] = [];
  const excluded: string[] = [];
  for (const a of manifest.artifacts) {
    const bad = await confinedArtifactProblem(siteDir, a.path);
    if (bad) {
      problems.push(`${shownPath(a.path)}: ${bad}`);
      continue;
    }
    const h = await hashFile(join(siteDir, a.path));
    if ('problem' in h) problems.push(`${a.path}: ${h.problem}`);
    else if (h.size !== a.bytes) problems.push(`${a.path}: ${h.size} bytes, manifest.json says ${a.bytes}`);
    else if (h.digest !== `sha256:${a.sha256}`) problems.push(`${a.path}: sha256 ${h.digest.slice(7)}, manifest.json says ${a.sha256}`);
    else if (a.secret && !includeSecrets) excluded.push(a.path);
    else files.push({ path: a.path, abs: join(siteDir, a.path), digest: h.digest, size: h.size, secret: a.secret === true });
  }
  const manifestBytes = await readRegularFile(join(siteDir, 'manifest.json'), MAX_SITE_MANIFEST, 'manifest.json');
  if ('problem' in manifestBytes) throw new VerifyError(`${join(siteDir, 'manifest.json')}: ${manifestBytes.problem}`);
  const extra = [{ path: 'manifest.json', data: manifestBytes.data }];
  const sig = await readRegularFile(join(siteDir, MANIFEST_SIG_NAME), MAX_SIG_BYTES, MANIFEST_SIG_NAME);
  if ('data' in sig) extra.push({ path: MANIFEST_SIG_NAME, data: sig.data });
  else if (sig.code !== 'ENOENT') problems.push(`${MANIFEST_SIG_NAME}: ${sig.problem}`);
  const sums = await readRegularFile(join(siteDir, SHA256SUMS_NAME), MAX_SITE_MANIFEST, SHA256SUMS_NAME);
  if ('data' in sums) {
    if (sums.data.toString('utf8') !== sha256sums(manifest.artifacts, manifestBytes.data)) problems.push(`${SHA256SUMS_NAME} does not match manifest.json`);
    else extra.push({ path: SHA256SUMS_NAME, data: sums.data });
  } else if (sums.code !== 'ENOENT') problems.push(`${SHA256SUMS_NAME}: ${sums.problem}`);
  if (problems.length > 0) {
    const shown = problems.slice(0, 20).join('\n  ');
    throw new VerifyError(
      `${siteDir} does not match its manifest.json; nothing was pushed:\n  ${shown}${problems.length > 20 ? `\n  … and ${problems.length - 20} more` : ''}\n` +
        `rebuild it (edgeimg build --site ${site}) and check it (edgeimg verify --site ${site})`,
    );
  }
  for (const e of extra) {
    files.push({ path: e.path, abs: join(siteDir, e.path), digest: `sha256:${createHash('sha256').update(e.data).digest('hex')}`, size: e.data.byteLength, secret: false });
  }
  files.sort((a, b) => byteOrder(a.path, b.path));
  return { manifest, files, excluded: excluded.sort(byteOrder) };
}

export interface LayerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

/** The OCI manifest for a site's files: deterministic bytes. */
export function siteManifestBytes(contents: SiteContents, includeSecrets: boolean): Buffer {
  const m = contents.manifest;
  const layers: LayerDescriptor[] = contents.files.map((f) => ({
    mediaType: FILE_MEDIA_TYPE,
    digest: f.digest,
    size: f.size,
    annotations: { [ANNOTATION.title]: f.path, ...(f.secret ? { [ANNOTATION.secret]: 'true' } : {}) },
  }));
  const annotations: Record<string, string> = {
    [ANNOTATION.excluded]: contents.excluded.join(','),
    [ANNOTATION.generator]: `${m.generator.name} ${m.generator.version}`,
    [ANNOTATION.inputDigest]: m.inputDigest,
    [ANNOTATION.os]: m.os,
    [ANNOTATION.osVersion]: m.osVersion,
    [ANNOTATION.secrets]: includeSecrets ? 'included' : 'excluded',
    [ANNOTATION.site]: m.site,
  };
  if (contents.excluded.length === 0) delete annotations[ANNOTATION.excluded];
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: ARTIFACT_TYPE,
    config: EMPTY_CONFIG,
    layers,
    annotations,
  };
  return Buffer.from(JSON.stringify(manifest));
}

export interface PulledLayer {
  title: string;
  digest: string;
  size: number;
}

export interface SiteArtifact {
  site: string;
  layers: PulledLayer[];
  annotations: Record<string, string>;
}

/**
 * Reads an OCI manifest as an edgeimg site artifact. Refuses (VerifyError) another artifact
 * type, a descriptor that is not sha256 or too large, and a title that is not a plain relative
 * path inside the site directory (absolute, `..`, backslashes, control characters, duplicates,
 * or a file where another title needs a directory).
 */
export function parseSiteArtifact(bytes: Buffer, where: string): SiteArtifact {
  const fail = (why: string): VerifyError => new VerifyError(`${where}: ${why}; nothing was written`);
  let m: { schemaVersion?: unknown; mediaType?: unknown; artifactType?: unknown; config?: { mediaType?: unknown }; layers?: unknown; annotations?: unknown };
  try {
    m = JSON.parse(bytes.toString('utf8')) as typeof m;
  } catch {
    throw fail('the manifest is not JSON');
  }
  if (m === null || typeof m !== 'object' || m.schemaVersion !== 2) throw fail('not an OCI image manifest (schemaVersion 2)');
  if (m.mediaType !== undefined && m.mediaType !== OCI_MANIFEST) throw fail(`the manifest's mediaType is ${excerpt(m.mediaType)}, not ${OCI_MANIFEST}`);
  if (m.artifactType !== ARTIFACT_TYPE) {
    throw fail(`not an edgeimg site: artifactType ${m.artifactType === undefined ? 'missing' : excerpt(m.artifactType)}, expected ${ARTIFACT_TYPE}`);
  }
  const annotations = (m.annotations !== null && typeof m.annotations === 'object' ? m.annotations : {}) as Record<string, unknown>;
  const site = annotations[ANNOTATION.site];
  if (typeof site !== 'string' || !SITE_ID.test(site)) throw fail(`annotation ${ANNOTATION.site} ${site === undefined ? 'is missing' : `${excerpt(site)} is not a site id`}`);
  if (!Array.isArray(m.layers)) throw fail('the manifest has no layers');
  if (m.layers.length > MAX_LAYERS) throw fail(`${m.layers.length} layers, more than ${MAX_LAYERS}`);
  const layers: PulledLayer[] = [];
  const titles = new Set<string>();
  for (const [i, l] of (m.layers as unknown[]).entries()) {
    const d = l as { digest?: unknown; size?: unknown; annotations?: Record<string, unknown> } | null;
    const title = d?.annotations?.[ANNOTATION.title];
    if (typeof title !== 'string') throw fail(`layer ${i} has no ${ANNOTATION.title}`);
    const bad = artifactPathProblem(title);
    if (bad) throw fail(`layer ${i} title ${excerpt(title)} ${bad}: refusing to write it`);
    if (titles.has(title)) throw fail(`two layers are titled ${title}`);
    titles.add(title);
    if (typeof d!.digest !== 'string' || !DIGEST.test(d!.digest)) throw fail(`layer ${title}: digest ${excerpt(d!.digest)} is not sha256:<64 hex digits>`);
    if (typeof d!.size !== 'number' || !Number.isSafeInteger(d!.size) || d!.size < 0 || d!.size > MAX_LAYER_BYTES) throw fail(`layer ${title}: size ${excerpt(d!.size)} is not a byte count up to 16 GiB`);
    layers.push({ title, digest: d!.digest, size: d!.size });
  }
  for (const t of titles) {
    const segs = t.split('/');
    for (let n = 1; n < segs.length; n++) {
      if (titles.has(segs.slice(0, n).join('/'))) throw fail(`layer ${segs.slice(0, n).join('/')} is a file where layer ${t} needs a directory`);
    }
  }
  const strings = Object.fromEntries(Object.entries(annotations).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return { site, layers, annotations: strings };
}
