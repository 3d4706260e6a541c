// `edgeimg publish`: one built site (OUT/<site>) pushed as one OCI artifact (artifact.ts).
// The site is checked against its manifest.json first; blobs the repository already has are not
// sent again; the manifest goes last, and the registry's digest for it must be ours.

import { open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UsageError, VerifyError } from '../util/diagnostics.js';
import { ARTIFACT_TYPE, EMPTY_CONFIG, EMPTY_CONFIG_BYTES, SITE_ID, collectSite, siteManifestBytes } from './artifact.js';
import { connectRegistry, OCI_MANIFEST } from './client.js';
import { DEFAULT_TAG, formatReference, parseReference } from './reference.js';
import { createHash } from 'node:crypto';

export const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;
export { DEFAULT_TIMEOUT_MS } from './client.js';

export interface PublishOptions {
  site: string;
  /** REGISTRY/REPO[:TAG]; the tag defaults to "latest". */
  to: string;
  outDir: string;
  includeSecrets?: boolean;
  plainHttp?: boolean;
  chunkBytes?: number;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  fetch?: typeof fetch;
}

export interface PublishResult {
  ok: true;
  /** registry/repository:tag */
  ref: string;
  /** registry/repository@digest: the immutable name of what was pushed. */
  pinned: string;
  digest: string;
  mediaType: string;
  artifactType: string;
  site: string;
  secrets: 'included' | 'excluded';
  layers: Array<{ path: string; digest: string; size: number; secret: boolean }>;
  /** Secret artifacts left out (no --include-secrets). */
  excluded: string[];
  /** Blobs sent, and blobs the repository already had. */
  uploaded: number;
  present: number;
  /** PATCH requests of chunked uploads. */
  chunks: number;
}

export async function publishSite(opts: PublishOptions): Promise<PublishResult> {
  const log = opts.log ?? (() => {});
  const env = opts.env ?? process.env;
  if (!SITE_ID.test(opts.site)) throw new UsageError(`--site ${JSON.stringify(opts.site.slice(0, 80))} is not a site id`);
  const ref = parseReference(opts.to, '--to');
  if (ref.digest !== undefined) throw new UsageError('--to names a tag, not a digest: the digest is what the push computes');
  const tag = ref.tag ?? DEFAULT_TAG;
  const includeSecrets = opts.includeSecrets === true;
  const siteDir = join(resolve(opts.outDir), opts.site);

  const contents = await collectSite(siteDir, opts.site, includeSecrets);
  const manifestBytes = siteManifestBytes(contents, includeSecrets);
  const digest = `sha256:${createHash('sha256').update(manifestBytes).digest('hex')}`;
  if (contents.excluded.length > 0) log(`${opts.site}: leaving out ${contents.excluded.length} secret artifacts (${contents.excluded.join(', ')}); --include-secrets publishes them`);
  else if (includeSecrets) log(`${opts.site}: INCLUDING SECRET ARTIFACTS (cluster keys): anyone who can pull ${ref.registry}/${ref.repository} gets them`);

  const client = await connectRegistry(ref, 'push', opts, env, log);

  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  let uploaded = 0;
  let present = 0;
  let chunks = 0;
  const count = (r: number | 'present'): void => {
    if (r === 'present') present++;
    else {
      uploaded++;
      chunks += r;
    }
  };
  count(await client.pushBlob({ digest: EMPTY_CONFIG.digest, size: EMPTY_CONFIG.size, bytes: EMPTY_CONFIG_BYTES }, chunkBytes));
  for (const f of contents.files) {
    const file = await open(f.abs, 'r');
    try {
      const r = await client.pushBlob({ digest: f.digest, size: f.size, file }, chunkBytes);
      count(r);
      log(`${f.path}: ${r === 'present' ? 'already in the repository' : `${f.size} bytes sent${r > 0 ? ` in ${r} chunks` : ''}`}`);
    } finally {
      await file.close();
    }
  }
  const said = await client.putManifest(tag, manifestBytes, OCI_MANIFEST);
  if (said !== undefined && said !== digest) {
    throw new VerifyError(`${formatReference({ ...ref, tag })}: the registry stored the manifest as ${said.slice(0, 80)}, but its bytes are ${digest}: it changed them`);
  }
  return {
    ok: true,
    ref: formatReference({ registry: ref.registry, repository: ref.repository, tag }),
    pinned: formatReference({ registry: ref.registry, repository: ref.repository, digest }),
    digest,
    mediaType: OCI_MANIFEST,
    artifactType: ARTIFACT_TYPE,
    site: opts.site,
    secrets: includeSecrets ? 'included' : 'excluded',
    layers: contents.files.map((f) => ({ path: f.path, digest: f.digest, size: f.size, secret: f.secret })),
    excluded: contents.excluded,
    uploaded,
    present,
    chunks,
  };
}
