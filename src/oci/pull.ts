// `edgeimg pull`: an edgeimg site artifact from a registry into OUT/<site>, all or nothing.
//
// 1. The manifest: our artifactType, sha256 descriptors, titles that are plain relative paths
//    (artifact.ts); pulled by digest, its bytes must hash to that digest.
// 2. manifest.json, its signature and SHA256SUMS first (small): every other layer must be an
//    artifact manifest.json lists, with the same sha256 and size; the signature must verify
//    against the fleet key (as `verify` requires: no key found is a failure); SHA256SUMS must
//    match manifest.json. Only then are the big files fetched.
// 3. Every layer streams into a staging directory inside OUT, hashed as it arrives, and is read
//    back and hashed again; secret files get mode 0600, the rest 0644.
// 4. The staged site replaces OUT/<site> with renames, only when OUT/<site> is absent or edgeimg
//    output for that site, under OUT's build lock. Any failure removes the staging directory:
//    OUT is left as it was.
// Secret artifacts the publisher left out are reported (`missing`), not an error.

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { readManifest, MAX_MANIFEST_BYTES as MAX_SITE_MANIFEST, type Manifest } from '../manifest/manifest.js';
import { checkManifestSignature, type SignatureCheck } from '../trust/manifest-sig.js';
import { anchorPlaces, resolveTrustAnchor } from '../trust/signing-key.js';
import { MANIFEST_SIG_NAME, SHA256SUMS_NAME, sha256sums } from '../trust/sums.js';
import { VerifyError } from '../util/diagnostics.js';
import { readRegularFile } from '../util/safe-read.js';
import { foreignOutput, lockOut, OutputError, swapDir } from '../build/output.js';
import { ARTIFACT_TYPE, byteOrder, hashFile, parseSiteArtifact, type PulledLayer } from './artifact.js';
import { connectRegistry, OCI_MANIFEST } from './client.js';
import { DEFAULT_TAG, formatReference, parseReference } from './reference.js';

export interface PullOptions {
  /** REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:… (tag defaults to "latest"). */
  ref: string;
  outDir: string;
  /** Where the fleet's public key is: CATALOGUE/signing.pub, else SECRETS/_signing/id_ed25519.pub. */
  catalogueDir?: string;
  secretsDir?: string;
  plainHttp?: boolean;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  fetch?: typeof fetch;
}

export interface PullResult {
  ok: true;
  ref: string;
  digest: string;
  pinned: string;
  mediaType: string;
  artifactType: string;
  site: string;
  /** OUT/<site> */
  dir: string;
  files: Array<{ path: string; digest: string; size: number; secret: boolean }>;
  /** Secret artifacts manifest.json lists that the artifact does not carry (published without --include-secrets). */
  missing: string[];
  signature: SignatureCheck;
}

const SMALL = new Set(['manifest.json', MANIFEST_SIG_NAME, SHA256SUMS_NAME]);
const MAX_SMALL_LAYER = MAX_SITE_MANIFEST;

export async function pullSite(opts: PullOptions): Promise<PullResult> {
  const log = opts.log ?? (() => {});
  const env = opts.env ?? process.env;
  const ref = parseReference(opts.ref, 'pull');
  const reference = ref.digest ?? ref.tag ?? DEFAULT_TAG;
  const shown = formatReference({ ...ref, ...(ref.digest === undefined ? { tag: reference } : {}) });
  const outDir = resolve(opts.outDir);

  const client = await connectRegistry(ref, 'pull', opts, env, log);
  const got = await client.getManifest(reference, [OCI_MANIFEST]);
  if (ref.digest !== undefined && got.digest !== ref.digest) throw new VerifyError(`${shown}: the registry answered a manifest whose sha256 is ${got.digest}; nothing was written`);
  if (ref.digest === undefined && got.said !== undefined && got.said !== got.digest) {
    throw new VerifyError(`${shown}: the registry says the manifest is ${got.said.slice(0, 80)}, but its bytes are ${got.digest}; nothing was written`);
  }
  const artifact = parseSiteArtifact(got.bytes, shown);
  const site = artifact.site;
  const finalDir = join(outDir, site);

  const outExisted = existsSync(outDir);
  const foreign = foreignOutput(outDir, [site]);
  if (foreign.length > 0) throw new OutputError(foreign.join('\n'));
  const lock = await lockOut(outDir, log);
  const staging = join(outDir, `.edgeimg-staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  const staged = join(staging, site);
  let placed = false;
  try {
    await removeStaleStaging(outDir);
    await mkdir(staged, { recursive: true, mode: 0o700 });
    const fetchLayer = async (l: PulledLayer): Promise<void> => {
      const path = join(staged, l.title);
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const fh = await open(path, 'wx', 0o600);
      try {
        await client.downloadBlob(l.digest, l.size, fh);
      } finally {
        await fh.close();
      }
    };

    // manifest.json, its signature and SHA256SUMS decide whether the rest is worth fetching
    const small = artifact.layers.filter((l) => SMALL.has(l.title));
    const big = artifact.layers.filter((l) => !SMALL.has(l.title));
    if (!small.some((l) => l.title === 'manifest.json')) throw new VerifyError(`${shown}: no manifest.json layer; nothing was written`);
    for (const l of small) {
      if (l.size > MAX_SMALL_LAYER) throw new VerifyError(`${shown}: ${l.title} is ${l.size} bytes, more than any edgeimg ${l.title}; nothing was written`);
      await fetchLayer(l);
    }
    let manifest: Manifest;
    try {
      manifest = await readManifest(staged);
    } catch (err) {
      throw new VerifyError(`${shown}: ${(err as Error).message.replace(staged, 'manifest.json')}; nothing was written`);
    }
    const problems = matchLayers(manifest, artifact.layers, site);
    const where = { ...(opts.catalogueDir !== undefined ? { catalogueDir: opts.catalogueDir } : {}), ...(opts.secretsDir !== undefined ? { secretsDir: opts.secretsDir } : {}) };
    const signature = await checkManifestSignature(staged, await resolveTrustAnchor(where), anchorPlaces(where));
    if (!signature.ok) problems.push(signature.message);
    if (small.some((l) => l.title === SHA256SUMS_NAME)) {
      const sums = await readRegularFile(join(staged, SHA256SUMS_NAME), MAX_SITE_MANIFEST, SHA256SUMS_NAME);
      const mbytes = await readRegularFile(join(staged, 'manifest.json'), MAX_SITE_MANIFEST, 'manifest.json');
      if (!('data' in sums) || !('data' in mbytes) || sums.data.toString('utf8') !== sha256sums(manifest.artifacts, mbytes.data)) problems.push(`${SHA256SUMS_NAME} does not match manifest.json`);
    }
    if (problems.length > 0) throw new VerifyError(`${shown} (${got.digest}) is not an intact site ${site}; nothing was written:\n  ${problems.slice(0, 20).join('\n  ')}`);
    log(`${site}: ${signature.message}`);

    for (const l of big) {
      await fetchLayer(l);
      log(`${l.title}: ${l.size} bytes, sha256 ok`);
    }
    // read back from disk: what is in place is what was checked
    const secret = new Map(manifest.artifacts.map((a) => [a.path, a.secret === true]));
    for (const l of artifact.layers) {
      const onDisk = await hashFile(join(staged, l.title));
      if ('problem' in onDisk) throw new VerifyError(`${l.title}: ${onDisk.problem} after download; nothing was written`);
      if (onDisk.digest !== l.digest || onDisk.size !== l.size) throw new VerifyError(`${l.title}: reads back as ${onDisk.digest} (${onDisk.size} bytes), not ${l.digest}; nothing was written`);
      await chmod(join(staged, l.title), secret.get(l.title) ? 0o600 : 0o644);
    }
    const missing = manifest.artifacts.filter((a) => !artifact.layers.some((l) => l.title === a.path)).map((a) => a.path).sort(byteOrder);
    if (missing.length > 0) log(`${site}: ${missing.length} secret artifacts were not published (${missing.join(', ')}); build them from the site secrets where they are needed`);

    const foreignNow = foreignOutput(outDir, [site]);
    if (foreignNow.length > 0) throw new OutputError(foreignNow.join('\n'));
    await swapDir(staged, finalDir);
    placed = true;
    return {
      ok: true,
      ref: shown,
      digest: got.digest,
      pinned: formatReference({ registry: ref.registry, repository: ref.repository, digest: got.digest }),
      mediaType: OCI_MANIFEST,
      artifactType: ARTIFACT_TYPE,
      site,
      dir: finalDir,
      files: artifact.layers.map((l) => ({ path: l.title, digest: l.digest, size: l.size, secret: secret.get(l.title) === true })).sort((a, b) => byteOrder(a.path, b.path)),
      missing,
      signature,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
    lock.release();
    if (!placed && !outExisted) await rmdir(outDir).catch(() => {});
  }
}

/** Every layer but the three beside the manifest must be an artifact it lists, byte for byte; non-secret artifacts must all be there. */
function matchLayers(manifest: Manifest, layers: PulledLayer[], site: string): string[] {
  const problems: string[] = [];
  if (manifest.site !== site) problems.push(`manifest.json is site ${JSON.stringify(String(manifest.site).slice(0, 80))}'s, but the artifact says ${site}`);
  const listed = new Map(manifest.artifacts.map((a) => [a.path, a]));
  for (const l of layers) {
    if (SMALL.has(l.title)) continue;
    const a = listed.get(l.title);
    if (!a) problems.push(`${l.title}: not listed in manifest.json`);
    else if (`sha256:${a.sha256}` !== l.digest || a.bytes !== l.size) problems.push(`${l.title}: the layer is ${l.digest} (${l.size} bytes), manifest.json says sha256:${a.sha256} (${a.bytes} bytes)`);
  }
  const have = new Set(layers.map((l) => l.title));
  for (const a of manifest.artifacts) if (!a.secret && !have.has(a.path)) problems.push(`${a.path}: listed in manifest.json but not in the artifact`);
  return problems;
}


/** Staging directories of pulls or builds whose process is gone (same naming as build's). */
async function removeStaleStaging(outDir: string): Promise<void> {
  for (const name of await readdir(outDir).catch(() => [] as string[])) {
    const m = /^\.edgeimg-staging-(\d+)-[0-9a-f]+$/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // alive
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM') continue;
    }
    await rm(join(outDir, name), { recursive: true, force: true });
  }
}
