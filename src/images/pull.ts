// `images pull`: register each Talos schematic with Image Factory and download the assets the
// selected classes need into the cache, checked against images.lock.
//
// Image Factory API (siderolabs/image-factory docs/api.md):
//   POST /schematics   body: the schematic as YAML ("Clients should send Content-Type:
//                      application/yaml"); answer 201 Created, JSON {"id": "<sha256 hex>", ...}.
//                      Only a registered schematic's images are served, and the installer image
//                      nodes pull during install (factory.talos.dev/nocloud-installer/<id>:<v>)
//                      exists only for a registered schematic too, so pull always registers.
//   GET /image/<id>/<version>/<path>
//                      200 with the asset, or 302 to object storage/CDN (redirects are followed).
// We compute the ID offline (src/render/talos/schematic.ts); a factory answering a different ID
// hashes a different schematic than the one our installer image references name, so that class
// is refused (exit 1) and none of its assets are downloaded.
//
// Network problems (DNS, refused or reset connections, timeouts, HTTP errors) are environment
// problems (exit 3) naming the URL; a download whose sha256 differs from its pin is a failed
// check (exit 1) and leaves nothing in the cache.

import { EnvironmentError } from '../util/diagnostics.js';
import type { AssetUse, BootAsset, ImageNeed } from './assets.js';
import { assetState, pinMismatch, storeAsset, TooLargeError, type Digest } from './cache.js';
import type { ImagesLock, Pin } from './lock.js';

/** Largest download accepted for an asset that has no pin yet (a Kairos ISO is ~1.5 GB). */
export const MAX_UNPINNED_BYTES = 16 * 1024 ** 3;
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface HttpOptions {
  /** Limit for connecting and receiving response headers, and for each pause between body chunks. */
  timeoutMs: number;
  /** Injected in tests; the global fetch otherwise. */
  fetch?: typeof fetch;
}

class Timeout {
  constructor(readonly phase: string) {}
}

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA']);
const UNREACHABLE_CODES = new Set(['ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'EADDRNOTAVAIL']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown[] } | undefined;
  if (typeof e?.code === 'string') return e.code;
  if (e?.cause !== undefined && e.cause !== err) {
    const c = errorCode(e.cause);
    if (c) return c;
  }
  if (Array.isArray(e?.errors)) for (const x of e.errors) if (errorCode(x)) return errorCode(x);
  return undefined;
}

/** A network failure as an exit-3 sentence naming the URL and saying what to check. */
export function networkProblem(err: unknown, url: string, timeoutMs?: number): EnvironmentError {
  if (err instanceof EnvironmentError) return err;
  const reason = (err as { cause?: unknown })?.cause;
  if (err instanceof Timeout || reason instanceof Timeout) {
    const t = (err instanceof Timeout ? err : (reason as Timeout)).phase;
    return new EnvironmentError(`${url}: no ${t} within ${(timeoutMs ?? 0) / 1000} s (network down or server stalled?; raise --timeout for slow links)`);
  }
  const code = errorCode(err);
  let host = url;
  try {
    host = new URL(url).host;
  } catch {
    // keep the URL
  }
  let what: string;
  if (code && DNS_CODES.has(code)) what = `cannot resolve ${host} (${code}): no network or no DNS`;
  else if (code === 'ECONNREFUSED') what = `connection to ${host} refused (${code})`;
  else if (code && UNREACHABLE_CODES.has(code)) what = `${host} is unreachable (${code}): no network`;
  else if (code && RESET_CODES.has(code)) what = `connection to ${host} was cut (${code})`;
  else if (code && TIMEOUT_CODES.has(code)) what = `connection to ${host} timed out (${code})`;
  else if (code && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) what = `TLS with ${host} failed (${code})`;
  else what = `cannot reach ${host} (${code ?? (err as Error)?.message ?? String(err)})`;
  return new EnvironmentError(`${url}: ${what}`);
}

async function bodyExcerpt(res: Response): Promise<string> {
  try {
    const reader = res.body?.getReader();
    if (!reader) return '';
    const { value } = await reader.read();
    await reader.cancel().catch(() => {});
    const text = Buffer.from(value ?? new Uint8Array()).toString('utf8', 0, 200);
    const line = text.split('\n')[0]!.trim().replace(/[^\x20-\x7e]/g, '?');
    return line ? `: ${line}` : '';
  } catch {
    return '';
  }
}

interface Opened {
  res: Response;
  chunks: AsyncIterable<Uint8Array>;
}

/** Send a request; headers within the timeout, then the body chunk by chunk, each within the timeout. */
async function request(url: string, init: RequestInit, http: HttpOptions): Promise<Opened> {
  const controller = new AbortController();
  const doFetch = http.fetch ?? fetch;
  let timer = setTimeout(() => controller.abort(new Timeout('response')), http.timeoutMs);
  let res: Response;
  try {
    res = await doFetch(url, { ...init, redirect: 'follow', signal: controller.signal });
  } catch (err) {
    throw networkProblem(controller.signal.aborted ? controller.signal.reason : err, url, http.timeoutMs);
  } finally {
    clearTimeout(timer);
  }
  if (!res.ok) {
    const excerpt = await bodyExcerpt(res);
    throw new EnvironmentError(`${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${excerpt}`);
  }
  async function* chunks(): AsyncIterable<Uint8Array> {
    const reader = res.body?.getReader();
    if (!reader) return;
    let finished = false;
    try {
      for (;;) {
        timer = setTimeout(() => controller.abort(new Timeout('data')), http.timeoutMs);
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (err) {
          throw networkProblem(controller.signal.aborted ? controller.signal.reason : err, url, http.timeoutMs);
        } finally {
          clearTimeout(timer);
        }
        if (r.done) {
          finished = true;
          return;
        }
        yield r.value;
      }
    } finally {
      if (!finished) await reader.cancel().catch(() => {});
    }
  }
  return { res, chunks: chunks() };
}

async function readAllBounded(chunks: AsyncIterable<Uint8Array>, max: number, url: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of chunks) {
    n += c.byteLength;
    if (n > max) throw new EnvironmentError(`${url}: answer larger than ${max} bytes; is this an Image Factory?`);
    parts.push(Buffer.from(c));
  }
  return Buffer.concat(parts);
}

/** POST the schematic; the factory's ID (which may differ from ours: the caller compares). */
export async function registerSchematic(factory: string, schematic: string, http: HttpOptions): Promise<{ id: string; url: string }> {
  const url = `${factory.replace(/\/+$/, '')}/schematics`;
  const { chunks } = await request(url, { method: 'POST', headers: { 'content-type': 'application/yaml', accept: 'application/json' }, body: schematic }, http);
  const body = await readAllBounded(chunks, 1024 * 1024, url);
  let id: unknown;
  try {
    id = (JSON.parse(body.toString('utf8')) as { id?: unknown }).id;
  } catch {
    id = undefined;
  }
  if (typeof id !== 'string' || !/^[0-9a-f]{64}$/.test(id)) {
    throw new EnvironmentError(`${url}: the answer is not an Image Factory schematic ID ({"id": "<64 hex digits>"}); is --factory an Image Factory?`);
  }
  return { id, url };
}

export interface PullSelection {
  needs: ImageNeed[];
  /** Only boot or only netboot assets; both when unset. */
  only?: AssetUse;
}

export interface PullOptions {
  cacheDir: string;
  lock: ImagesLock;
  factory: string;
  http: HttpOptions;
  /** Refuse to download an asset that has no pin (CI: the lock is the only trust). */
  locked?: boolean;
  /** Replace a pin the download does not match (the upstream rebuilt an asset on purpose). */
  repin?: boolean;
  log?: (line: string) => void;
}

export interface SchematicResult {
  classes: string[];
  id: string;
  url: string;
  status: 'registered' | 'id-mismatch';
  returnedId?: string;
}

export type AssetOutcome = 'cached' | 'downloaded' | 'refused' | 'import-only' | 'skipped';

export interface PulledAsset {
  path: string;
  url?: string;
  status: AssetOutcome;
  sha256?: string;
  size?: number;
  pinned?: 'new' | 'kept' | 'replaced';
  message?: string;
}

export interface PullResult {
  ok: boolean;
  schematics: SchematicResult[];
  assets: PulledAsset[];
  /** Pins to add or replace in images.lock (also when the pull stopped half way). */
  pins: Map<string, Pin>;
}

function acceptDownload(pin: Pin | undefined, repin: boolean, url: string) {
  return (d: Digest): string | undefined => {
    if (!pin || repin) return undefined;
    const diff = pinMismatch(pin, d);
    return diff === undefined ? undefined : `${url}: refused, does not match its pin: ${diff}; nothing was cached`;
  };
}

/**
 * Register schematics and download what the selection needs. Failed checks are collected in the
 * result; an environment problem throws, with `result.pins` (passed in) holding what was pinned
 * before it, so the caller can still record those pins.
 */
export async function pullAssets(sel: PullSelection, opts: PullOptions, result: PullResult = { ok: true, schematics: [], assets: [], pins: new Map() }): Promise<PullResult> {
  const log = opts.log ?? (() => {});
  const refusedSchematics = new Set<string>();
  const bySchematic = new Map<string, { classes: string[]; schematic: string }>();
  for (const n of sel.needs) {
    if (!n.talos) continue;
    const s = bySchematic.get(n.talos.schematicId) ?? { classes: [], schematic: n.talos.schematic };
    if (!s.classes.includes(n.hardwareClass)) s.classes.push(n.hardwareClass);
    bySchematic.set(n.talos.schematicId, s);
  }
  for (const [id, s] of bySchematic) {
    log(`registering schematic ${id} (${s.classes.join(', ')}) with ${opts.factory}`);
    const got = await registerSchematic(opts.factory, s.schematic, opts.http);
    if (got.id === id) {
      result.schematics.push({ classes: s.classes, id, url: got.url, status: 'registered' });
    } else {
      refusedSchematics.add(id);
      result.ok = false;
      result.schematics.push({ classes: s.classes, id, url: got.url, status: 'id-mismatch', returnedId: got.id });
    }
  }

  const seen = new Set<string>();
  const wanted: Array<{ asset: BootAsset; need: ImageNeed }> = [];
  for (const need of sel.needs) {
    for (const asset of need.assets) {
      if (sel.only && asset.use !== sel.only) continue;
      if (seen.has(asset.path)) continue;
      seen.add(asset.path);
      wanted.push({ asset, need });
    }
  }
  for (const { asset, need } of wanted) {
    const pin = opts.lock.pins.get(asset.path);
    const url = asset.url ? asset.url : undefined;
    const base = { path: asset.path, ...(url ? { url } : {}) };
    if (need.talos && refusedSchematics.has(need.talos.schematicId)) {
      result.assets.push({ ...base, status: 'skipped', message: `the factory's schematic ID differs from ours for ${need.hardwareClass}` });
      continue;
    }
    const state = await assetState(opts.cacheDir, asset.path, pin);
    if (state.status === 'ok') {
      result.assets.push({ ...base, status: 'cached', sha256: state.actual!.sha256, size: state.actual!.size, pinned: 'kept' });
      continue;
    }
    if (!url) {
      result.assets.push({ ...base, status: 'import-only', message: `import it: ${asset.source ?? 'no download URL'}` });
      continue;
    }
    if (!pin && opts.locked) {
      result.ok = false;
      result.assets.push({ ...base, status: 'refused', message: `${url}: not pinned in ${opts.lock.path}, and --locked allows no new pins` });
      continue;
    }
    log(`downloading ${url}`);
    const { chunks } = await request(url, { method: 'GET' }, opts.http);
    let stored;
    try {
      stored = await storeAsset(opts.cacheDir, asset.path, chunks, acceptDownload(pin, opts.repin ?? false, url), {
        maxBytes: pin && !opts.repin ? pin.size : MAX_UNPINNED_BYTES,
      });
    } catch (err) {
      if (!(err instanceof TooLargeError)) throw err;
      result.ok = false;
      const limit = pin && !opts.repin ? `its pinned size of ${pin.size} bytes` : `${MAX_UNPINNED_BYTES} bytes`;
      result.assets.push({ ...base, status: 'refused', message: `${url}: refused, the download is larger than ${limit}; nothing was cached` });
      continue;
    }
    if (!stored.stored) {
      result.ok = false;
      result.assets.push({ ...base, status: 'refused', sha256: stored.digest.sha256, size: stored.digest.size, message: stored.refused });
      continue;
    }
    const d = stored.digest;
    const pinned = !pin ? 'new' : pinMismatch(pin, d) === undefined ? 'kept' : 'replaced';
    if (pinned !== 'kept') result.pins.set(asset.path, { sha256: d.sha256, size: d.size });
    log(`  ${asset.path}: sha256 ${d.sha256}, ${d.size} bytes${pinned === 'kept' ? '' : `, pin ${pinned}`}`);
    result.assets.push({ ...base, status: 'downloaded', sha256: d.sha256, size: d.size, pinned });
  }
  return result;
}
