// `edgeimg publish` and `edgeimg pull`: argument parsing and output only (src/oci/).

import { parseArgs } from 'node:util';
import { UsageError } from '../util/diagnostics.js';
import { publishSite, DEFAULT_TIMEOUT_MS } from '../oci/publish.js';
import { pullSite } from '../oci/pull.js';
import { EXIT, parse, type Io } from './main.js';

const UNITS: Record<string, number> = { '': 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3 };
const MIN_CHUNK = 4096;
// fetch holds a streamed request body in memory until the request ends (undici #4058: it tees
// the body for a possible redirect), so one chunk is the most a push keeps in memory
const MAX_CHUNK = 64 * 1024 ** 2;

/** "8388608", "8MiB", "512k": bytes. */
export function parseChunkSize(text: string): number {
  const m = /^([0-9]+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  const n = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!Number.isSafeInteger(n) || n < MIN_CHUNK || n > MAX_CHUNK) throw new UsageError(`--chunk-size must be a byte count from 4096 to 64MiB (e.g. 8388608 or 8MiB), got "${text}"`);
  return n;
}

function parseTimeout(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TIMEOUT_MS;
  const s = Number(text);
  if (!(s > 0) || !Number.isFinite(s)) throw new UsageError(`--timeout must be a positive number of seconds, got "${text}"`);
  return Math.round(s * 1000);
}

const human = (n: number): string => (n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} bytes`);

export async function runPublish(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    site: { type: 'string' },
    to: { type: 'string' },
    out: { type: 'string', default: 'out' },
    'include-secrets': { type: 'boolean' },
    'plain-http': { type: 'boolean' },
    'chunk-size': { type: 'string' },
    timeout: { type: 'string' },
  });
  if (values.site === undefined) throw new UsageError('give --site ID: the built site to publish');
  if (values.to === undefined) throw new UsageError('give --to REGISTRY/REPOSITORY[:TAG]: where to push it');
  const r = await publishSite({
    site: values.site,
    to: values.to,
    outDir: values.out!,
    includeSecrets: values['include-secrets'] === true,
    plainHttp: values['plain-http'] === true,
    ...(values['chunk-size'] !== undefined ? { chunkBytes: parseChunkSize(values['chunk-size']) } : {}),
    timeoutMs: parseTimeout(values.timeout),
    log: (line) => io.err(`edgeimg: ${line}\n`),
  });
  if (values.json) io.out(`${JSON.stringify(r)}\n`);
  const bytes = r.layers.reduce((n, l) => n + l.size, 0);
  io.err(
    `edgeimg: published ${r.site} as ${r.ref}\n  ${r.pinned}\n  ${r.layers.length} files, ${human(bytes)}; ${r.uploaded} blobs uploaded, ${r.present} already there; secrets ${r.secrets}` +
      `${r.excluded.length > 0 ? ` (left out: ${r.excluded.length})` : ''}\n`,
  );
  return EXIT.ok;
}

export async function runPull(args: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        out: { type: 'string', default: 'out' },
        catalogue: { type: 'string', default: 'catalogue' },
        secrets: { type: 'string', default: process.env.EDGEIMG_SECRETS_DIR ?? 'secrets' },
        'plain-http': { type: 'boolean' },
        timeout: { type: 'string' },
        debug: { type: 'boolean' },
        json: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('give exactly one REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@sha256:DIGEST');
  const r = await pullSite({
    ref: positionals[0]!,
    outDir: values.out!,
    catalogueDir: values.catalogue!,
    secretsDir: values.secrets!,
    plainHttp: values['plain-http'] === true,
    timeoutMs: parseTimeout(values.timeout),
    log: (line) => io.err(`edgeimg: ${line}\n`),
  });
  if (values.json) io.out(`${JSON.stringify(r)}\n`);
  io.err(
    `edgeimg: pulled ${r.site} from ${r.ref} into ${r.dir}\n  ${r.pinned}\n  ${r.files.length} files, every one matching the signed manifest.json` +
      `${r.missing.length > 0 ? `; ${r.missing.length} secret artifacts were not published` : ''}\n`,
  );
  return EXIT.ok;
}
