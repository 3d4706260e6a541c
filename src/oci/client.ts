// A client for one repository of an OCI registry, over the distribution HTTP API with Node's
// fetch (OCI distribution-spec v1.1, spec.md):
//   GET  /v2/                                   ping; a 401 says how to authenticate
//   HEAD /v2/<name>/blobs/<digest>              200: already there, not uploaded again
//   POST /v2/<name>/blobs/uploads/              202 + Location: an upload session
//   PATCH <location>  Content-Range: s-e        202 + Location (the next URL to use; may be relative)
//   PUT  <location>?digest=<digest>             201: the blob is committed (with or without a body)
//   GET  /v2/<name>/blobs/<digest>              the blob (307 to storage elsewhere is followed)
//   GET|PUT /v2/<name>/manifests/<reference>    the manifest; Docker-Content-Digest names its digest
// Authentication (distribution docs/spec/auth/token.md): a 401 with WWW-Authenticate Basic is
// answered with the user's credentials; Bearer realm=...,service=... with a token from the realm,
// GET ?service=...&scope=repository:<name>:pull[,push], sent with Basic credentials when there
// are any, answer {"token"|"access_token"}. A request that gets a 401 is authenticated and sent
// once more (bodies are re-read from disk), so an expired token is renewed mid-upload.
//
// Every request has a hard limit: the answer's headers, and then each pause in a body (sent or
// received), must come within `timeoutMs`. Bodies read into memory are bounded (manifests 4 MiB,
// token and error answers 1 MiB); blobs stream between disk and socket in 256 KiB pieces.
// The Authorization header goes only to the registry's own origin (never along a redirect to
// storage elsewhere), and no message ever holds a password or token.

import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { EnvironmentError, VerifyError } from '../util/diagnostics.js';
import { networkProblem } from '../images/pull.js';
import { authFiles, findCredentials, parseChallenges, ENV_PASSWORD, ENV_USERNAME, type Challenge, type Credentials } from './credentials.js';
import type { OciReference } from './reference.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_SMALL_ANSWER = 1024 * 1024;
const PIECE = 256 * 1024;
const MAX_REDIRECTS = 5;

export interface ClientOptions {
  ref: OciReference;
  /** http:// instead of https:// (--plain-http). */
  plainHttp: boolean;
  timeoutMs: number;
  /** What the token must allow: pull, or pull and push. */
  access: 'pull' | 'push';
  credentials?: Credentials;
  /** Where credentials were looked for, for the message when a registry wants some. */
  credentialsLookedIn?: string;
  fetch?: typeof fetch;
}

/** A blob to push: its bytes, or `size` bytes of an open file. */
export type BlobSource = { digest: string; size: number } & ({ bytes: Uint8Array } | { file: FileHandle });

/** Aborts a request when nothing happened on it for `ms`; `touch` on every piece of a body. */
class Deadline {
  readonly controller = new AbortController();
  expired = false;
  private timer: NodeJS.Timeout;
  constructor(private readonly ms: number) {
    this.timer = this.arm();
  }
  private arm(): NodeJS.Timeout {
    return setTimeout(() => {
      this.expired = true;
      this.controller.abort(new Error('timeout'));
    }, this.ms);
  }
  touch(): void {
    clearTimeout(this.timer);
    this.timer = this.arm();
  }
  clear(): void {
    clearTimeout(this.timer);
  }
}

interface Request {
  method: 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'PUT';
  url: string;
  headers?: Record<string, string>;
  /** Called for each attempt: a body can be sent again after a 401. */
  body?: (deadline: Deadline) => ReadableStream<Uint8Array> | Uint8Array;
  /** Status codes that are success; anything else is an error naming `what`. */
  ok: number[];
  what: string;
}

interface Answer {
  res: Response;
  url: string;
  deadline: Deadline;
}

/** Printable ASCII, at most `max` characters: safe to put in a message. */
function printable(s: string, max = 200): string {
  const t = s.replace(/[^\x20-\x7e]/g, '?').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

export class RegistryClient {
  readonly base: string;
  readonly origin: string;
  readonly name: string;
  private authorization: string | undefined;
  private readonly secrets = new Set<string>();
  private readonly doFetch: typeof fetch;

  constructor(private readonly opts: ClientOptions) {
    this.base = `${opts.plainHttp ? 'http' : 'https'}://${opts.ref.apiHost}`;
    this.origin = new URL(this.base).origin;
    this.name = opts.ref.repository;
    this.doFetch = opts.fetch ?? fetch;
    const c = opts.credentials;
    if (c) {
      // never quoted: not the password, not the header made from it
      this.remember(c.password);
      this.remember(Buffer.from(`${c.username}:${c.password}`).toString('base64'));
    }
  }

  private remember(secret: string): void {
    if (secret.length >= 4) this.secrets.add(secret);
  }

  /**
   * A message with every password and token this client knows replaced, and URLs cut before
   * their query (upload sessions and storage redirects carry signatures there).
   */
  redact(message: string): string {
    let m = message;
    for (const s of this.secrets) m = m.split(s).join('[redacted]');
    return m.replace(/(https?:\/\/[^\s?#]+)[?#][^\s)]*?(?=:?(?:\s|\)|$))/g, '$1?…');
  }

  private environment(message: string): EnvironmentError {
    return new EnvironmentError(this.redact(message));
  }

  private failed(message: string): VerifyError {
    return new VerifyError(this.redact(message));
  }

  private scope(): string {
    return `repository:${this.name}:${this.opts.access === 'push' ? 'pull,push' : 'pull'}`;
  }

  /** One HTTP exchange, within the deadline; follows redirects for GET and HEAD. */
  private async exchange(req: Request, url: string, deadline: Deadline): Promise<{ res: Response; url: string }> {
    let current = url;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': 'edgeimg', ...req.headers };
      if (this.authorization !== undefined && new URL(current).origin === this.origin) headers.authorization = this.authorization;
      const body = req.body?.(deadline);
      let res: Response;
      try {
        res = await this.doFetch(current, {
          method: req.method,
          headers,
          redirect: 'manual',
          signal: deadline.controller.signal,
          ...(body !== undefined ? { body, duplex: 'half' } : {}),
        } as RequestInit);
      } catch (err) {
        const cause = (err as { cause?: unknown }).cause;
        if (cause instanceof VerifyError) throw cause; // the file being sent changed
        throw this.networkError(err, current, deadline);
      }
      const location = res.headers.get('location');
      if ((req.method === 'GET' || req.method === 'HEAD') && [301, 302, 303, 307, 308].includes(res.status) && location) {
        await res.body?.cancel().catch(() => {});
        if (hop >= MAX_REDIRECTS) throw this.environment(`${current}: more than ${MAX_REDIRECTS} redirects`);
        const next = new URL(location, current);
        if (next.protocol !== 'https:' && next.protocol !== 'http:') throw this.environment(`${current}: redirect to a ${next.protocol} URL`);
        current = next.toString();
        deadline.touch();
        continue;
      }
      return { res, url: current };
    }
  }

  private networkError(err: unknown, url: string, deadline: Deadline): EnvironmentError {
    if (deadline.expired) {
      return this.environment(`${url}: no answer within ${this.opts.timeoutMs / 1000} s (registry stalled or network down?; raise --timeout for slow links)`);
    }
    const e = networkProblem(err, url);
    const tlsHint = !this.opts.plainHttp && /TLS with|SSL|EPROTO/.test(e.message) ? '; a registry that speaks plain HTTP needs --plain-http' : '';
    return this.environment(`${e.message}${tlsHint}`);
  }

  /**
   * Sends `req`; on a 401, authenticates as the answer asks and sends it once more. Returns the
   * answer with its body unread (the caller reads or cancels it, then clears the deadline).
   */
  private async request(req: Request): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      const deadline = new Deadline(this.opts.timeoutMs);
      let res: Response;
      let url: string;
      try {
        ({ res, url } = await this.exchange(req, req.url, deadline));
      } catch (err) {
        deadline.clear();
        throw err;
      }
      if (res.status === 401 && attempt === 0) {
        const reason = await this.errorReason(res, deadline);
        deadline.clear();
        await this.authenticate(res.headers.get('www-authenticate') ?? '', url, reason);
        continue;
      }
      if (req.ok.includes(res.status)) return { res, url, deadline };
      const reason = await this.errorReason(res, deadline);
      deadline.clear();
      if (res.status === 401) throw this.environment(`${url}: authentication refused (HTTP 401${reason}) ${this.whose()} for ${req.what}`);
      if (res.status === 403) throw this.environment(`${url}: access denied (HTTP 403${reason}) ${this.whose()} for ${req.what}; the account needs ${this.opts.access === 'push' ? 'push' : 'pull'} access to ${this.name}`);
      throw this.unexpected(res.status, reason, url, req.what);
    }
  }

  private unexpected(status: number, reason: string, url: string, what: string): Error {
    return this.environment(`${url}: HTTP ${status}${reason} for ${what}`);
  }

  private whose(): string {
    return this.opts.credentials ? `with the credentials from ${this.opts.credentials.source}` : 'without credentials';
  }

  /** ": CODE: message" from a registry error body (distribution-spec error codes), else its first line. */
  private async errorReason(res: Response, deadline: Deadline): Promise<string> {
    let text: string;
    try {
      text = (await this.readBounded(res, 64 * 1024, deadline, res.url || this.base, true)).toString('utf8');
    } catch {
      return '';
    }
    try {
      const j = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> };
      const e = j.errors?.[0];
      if (e && (typeof e.code === 'string' || typeof e.message === 'string')) {
        return `: ${printable([e.code, e.message].filter((x) => typeof x === 'string').join(': '))}`;
      }
    } catch {
      // not JSON
    }
    const line = printable(text.split('\n')[0] ?? '');
    return line ? `: ${line}` : '';
  }

  /** A body of at most `max` bytes; `lenient`: cut there instead of failing. */
  private async readBounded(res: Response, max: number, deadline: Deadline, url: string, lenient = false): Promise<Buffer> {
    const reader = res.body?.getReader();
    if (!reader) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    let n = 0;
    try {
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (err) {
          throw this.networkError(err, url, deadline);
        }
        if (r.done) break;
        deadline.touch();
        n += r.value.byteLength;
        if (n > max) {
          if (lenient) {
            parts.push(Buffer.from(r.value));
            break;
          }
          throw this.environment(`${url}: answer larger than ${max} bytes`);
        }
        parts.push(Buffer.from(r.value));
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
    return Buffer.concat(parts);
  }

  private async authenticate(header: string, url: string, reason: string): Promise<void> {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    const basic = challenges.find((c) => c.scheme === 'basic');
    const creds = this.opts.credentials;
    if (bearer) {
      this.authorization = `Bearer ${await this.fetchToken(bearer, url)}`;
      return;
    }
    if (basic) {
      if (!creds) {
        throw this.environment(
          `${url}: the registry wants a user name and password (HTTP 401${reason}) and none were found: set ${ENV_USERNAME} and ${ENV_PASSWORD}, or log in with podman login / docker login${this.opts.credentialsLookedIn ? ` (looked in ${this.opts.credentialsLookedIn})` : ''}`,
        );
      }
      if (this.authorization?.startsWith('Basic ')) throw this.environment(`${url}: authentication refused (HTTP 401${reason}) with the credentials from ${creds.source}`);
      this.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
      return;
    }
    const schemes = challenges.map((c) => c.scheme).join(', ');
    throw this.environment(`${url}: HTTP 401${reason} and no authentication edgeimg can do (WWW-Authenticate: ${schemes ? printable(schemes, 80) : 'none'}; edgeimg does Basic and Bearer tokens)`);
  }

  /** A Bearer token from the challenge's realm for this repository's scope. */
  private async fetchToken(c: Challenge, registryUrl: string): Promise<string> {
    let realm: URL;
    try {
      realm = new URL(c.params.realm!);
    } catch {
      throw this.environment(`${registryUrl}: the registry's token realm ${JSON.stringify(printable(c.params.realm!, 100))} is not a URL`);
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw this.environment(`${registryUrl}: the registry's token realm is a ${realm.protocol} URL`);
    if (c.params.service !== undefined) realm.searchParams.set('service', c.params.service);
    realm.searchParams.set('scope', this.scope());
    const where = `${realm.origin}${realm.pathname}`;
    const creds = this.opts.credentials;
    // credentials travel in the clear only where the user chose plain HTTP
    const sendCreds = creds !== undefined && (realm.protocol === 'https:' || this.opts.plainHttp);
    const headers: Record<string, string> = { 'user-agent': 'edgeimg', accept: 'application/json' };
    if (sendCreds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    const deadline = new Deadline(this.opts.timeoutMs);
    try {
      let res: Response;
      try {
        res = await this.doFetch(realm.toString(), { method: 'GET', headers, redirect: 'error', signal: deadline.controller.signal });
      } catch (err) {
        throw this.networkError(err, where, deadline);
      }
      if (res.status !== 200) {
        const reason = await this.errorReason(res, deadline);
        const who = sendCreds ? `the credentials from ${creds.source}` : creds ? 'anonymous access (credentials are not sent to a plain-HTTP token server without --plain-http)' : 'anonymous access';
        if (res.status === 401 || res.status === 403) throw this.environment(`${where}: the token server refused ${who} for ${this.scope()} (HTTP ${res.status}${reason})`);
        throw this.environment(`${where}: HTTP ${res.status}${reason} when asking for a token for ${this.scope()}`);
      }
      const body = await this.readBounded(res, MAX_SMALL_ANSWER, deadline, where);
      let j: { token?: unknown; access_token?: unknown };
      try {
        j = JSON.parse(body.toString('utf8')) as typeof j;
      } catch {
        throw this.environment(`${where}: the token answer is not JSON`);
      }
      const token = typeof j?.token === 'string' && j.token !== '' ? j.token : typeof j?.access_token === 'string' ? j.access_token : '';
      if (!/^[\x21-\x7e]+$/.test(token)) throw this.environment(`${where}: the token answer holds no usable "token" or "access_token"`);
      this.remember(token);
      return token;
    } finally {
      deadline.clear();
    }
  }

  /** GET /v2/: the registry answers, speaks the distribution API, and lets us in. */
  async ping(): Promise<void> {
    const { res, deadline } = await this.request({ method: 'GET', url: `${this.base}/v2/`, ok: [200], what: 'the API version check (GET /v2/)' }).catch((err: unknown) => {
      if (err instanceof EnvironmentError && / HTTP 404/.test(err.message)) {
        throw this.environment(`${this.base}/v2/: HTTP 404: not an OCI registry (no distribution API at /v2/)`);
      }
      throw err;
    });
    await res.body?.cancel().catch(() => {});
    deadline.clear();
  }

  private blobUrl(digest: string): string {
    return `${this.base}/v2/${this.name}/blobs/${digest}`;
  }

  async blobExists(digest: string): Promise<boolean> {
    const { res, deadline } = await this.request({ method: 'HEAD', url: this.blobUrl(digest), ok: [200, 404], what: `blob ${digest}` });
    await res.body?.cancel().catch(() => {});
    deadline.clear();
    return res.status === 200;
  }

  /**
   * Uploads a blob unless the repository has it. Blobs up to `chunkSize` go in one PUT; larger
   * ones in PATCH requests of `chunkSize` bytes (at least the registry's OCI-Chunk-Min-Length).
   * Returns the number of PATCH requests (0 for a single PUT), or 'present'.
   */
  async pushBlob(blob: BlobSource, chunkSize: number): Promise<number | 'present'> {
    if (await this.blobExists(blob.digest)) return 'present';
    const what = `the upload of blob ${blob.digest}`;
    const started = await this.request({ method: 'POST', url: `${this.base}/v2/${this.name}/blobs/uploads/`, headers: { 'content-length': '0' }, ok: [202], what });
    await started.res.body?.cancel().catch(() => {});
    started.deadline.clear();
    let location = this.location(started, what);
    const minChunk = Number(started.res.headers.get('oci-chunk-min-length') ?? 0);
    const chunk = Number.isSafeInteger(minChunk) && minChunk > chunkSize ? minChunk : chunkSize;
    const body = (start: number, length: number) => (deadline: Deadline) => this.bodyOf(blob, start, length, deadline);
    const octets = { 'content-type': 'application/octet-stream' };
    let patches = 0;
    let finalBody: Request['body'];
    let finalLength = 0;
    if (blob.size <= chunk) {
      finalBody = body(0, blob.size);
      finalLength = blob.size;
    } else {
      for (let start = 0; start < blob.size; start += chunk) {
        const length = Math.min(chunk, blob.size - start);
        const end = start + length - 1;
        const a = await this.request({
          method: 'PATCH',
          url: location,
          headers: { ...octets, 'content-length': String(length), 'content-range': `${start}-${end}` },
          body: body(start, length),
          ok: [202],
          what: `${what} (bytes ${start}-${end})`,
        });
        await a.res.body?.cancel().catch(() => {});
        a.deadline.clear();
        patches++;
        const range = a.res.headers.get('range');
        if (range !== null && range !== `0-${end}` && range !== `bytes=0-${end}`) {
          throw this.environment(`${a.url}: the registry has bytes ${printable(range, 40)} of blob ${blob.digest}, expected 0-${end}`);
        }
        location = this.location(a, what);
      }
    }
    const done = await this.request({
      method: 'PUT',
      url: `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(blob.digest)}`,
      headers: { ...octets, 'content-length': String(finalLength) },
      ...(finalBody !== undefined ? { body: finalBody } : {}),
      ok: [201, 204],
      what,
    }).catch((err: unknown) => {
      if (err instanceof EnvironmentError && /DIGEST_INVALID|SIZE_INVALID/.test(err.message)) throw this.failed(`${err.message} (did the file change while it was uploaded?)`);
      throw err;
    });
    await done.res.body?.cancel().catch(() => {});
    done.deadline.clear();
    const said = done.res.headers.get('docker-content-digest');
    if (said !== null && said !== blob.digest) throw this.failed(`${done.url}: the registry committed blob ${printable(said, 80)}, not ${blob.digest}`);
    return patches;
  }

  /** The Location of an answer, resolved against the URL asked (it may be relative). */
  private location(a: Answer, what: string): string {
    const loc = a.res.headers.get('location');
    if (!loc) throw this.environment(`${a.url}: no Location header in the answer to ${what}`);
    const url = new URL(loc, a.url);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw this.environment(`${a.url}: the upload Location is a ${url.protocol} URL`);
    return url.toString();
  }

  /** `length` bytes of the blob from `start`, read from disk piece by piece as the socket takes them. */
  private bodyOf(blob: BlobSource, start: number, length: number, deadline: Deadline): ReadableStream<Uint8Array> | Uint8Array {
    if ('bytes' in blob) return blob.bytes.subarray(start, start + length);
    const file = blob.file;
    let pos = start;
    const end = start + length;
    return new ReadableStream<Uint8Array>(
      {
        async pull(ctrl) {
          const n = Math.min(PIECE, end - pos);
          if (n <= 0) {
            ctrl.close();
            return;
          }
          const buf = Buffer.allocUnsafe(n);
          const { bytesRead } = await file.read(buf, 0, n, pos);
          if (bytesRead === 0) {
            ctrl.error(new VerifyError(`blob ${blob.digest}: the file became shorter while it was uploaded`));
            return;
          }
          pos += bytesRead;
          deadline.touch();
          ctrl.enqueue(bytesRead === n ? buf : buf.subarray(0, bytesRead));
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** PUT the manifest under `reference` (a tag); returns the digest the registry says it stored. */
  async putManifest(reference: string, bytes: Uint8Array, mediaType: string): Promise<string | undefined> {
    const a = await this.request({
      method: 'PUT',
      url: `${this.base}/v2/${this.name}/manifests/${reference}`,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.byteLength) },
      body: () => bytes,
      ok: [201, 200, 204],
      what: `the manifest ${this.name}:${reference}`,
    });
    await a.res.body?.cancel().catch(() => {});
    a.deadline.clear();
    return a.res.headers.get('docker-content-digest') ?? undefined;
  }

  /** GET the manifest `reference` (tag or digest): its bytes, media type and sha256 digest. */
  async getManifest(reference: string, accept: string[]): Promise<{ bytes: Buffer; mediaType: string; digest: string; said?: string; url: string }> {
    const what = `the manifest ${this.name}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
    const a = await this.request({ method: 'GET', url: `${this.base}/v2/${this.name}/manifests/${reference}`, headers: { accept: accept.join(', ') }, ok: [200, 404], what });
    if (a.res.status === 404) {
      const reason = await this.errorReason(a.res, a.deadline);
      a.deadline.clear();
      throw this.environment(`${a.url}: ${what} does not exist (HTTP 404${reason})`);
    }
    try {
      const bytes = await this.readBounded(a.res, MAX_MANIFEST_BYTES, a.deadline, a.url);
      const said = a.res.headers.get('docker-content-digest') ?? undefined;
      return { bytes, mediaType: (a.res.headers.get('content-type') ?? '').split(';')[0]!.trim(), digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, ...(said !== undefined ? { said } : {}), url: a.url };
    } finally {
      a.deadline.clear();
    }
  }

  /**
   * Streams blob `digest` into `file` (written from its start), checking size and sha256 as it
   * arrives: more than `size` bytes stop the download at once.
   */
  async downloadBlob(digest: string, size: number, file: FileHandle): Promise<void> {
    const a = await this.request({ method: 'GET', url: this.blobUrl(digest), ok: [200], what: `blob ${digest}` });
    const hash = createHash('sha256');
    let n = 0;
    const reader = a.res.body?.getReader();
    try {
      while (reader) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (err) {
          throw this.networkError(err, a.url, a.deadline);
        }
        if (r.done) break;
        a.deadline.touch();
        n += r.value.byteLength;
        if (n > size) throw this.failed(`${a.url}: blob ${digest} is longer than its descriptor's ${size} bytes`);
        hash.update(r.value);
        await file.write(r.value, 0, r.value.byteLength, n - r.value.byteLength);
      }
    } finally {
      a.deadline.clear();
      await reader?.cancel().catch(() => {});
    }
    if (n !== size) throw this.failed(`${a.url}: blob ${digest} is ${n} bytes, its descriptor says ${size}`);
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== digest) throw this.failed(`${a.url}: blob ${digest} arrived with sha256 ${got.slice(7)}: changed in the registry or on the way`);
  }
}

/** How publish and pull reach a registry: reference, transport and limits. */
export interface ConnectOptions {
  plainHttp?: boolean;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * A client for `ref` with the credentials found for it (environment, then auth files), pinged:
 * an unreachable registry or refused credentials fail here, naming the URL and where
 * credentials were looked for, never their values.
 */
export async function connectRegistry(ref: OciReference, access: 'pull' | 'push', opts: ConnectOptions, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<RegistryClient> {
  const lookup = await findCredentials(ref.registry, ref.repository, env);
  for (const n of lookup.notes) log(n);
  const client = new RegistryClient({
    ref,
    plainHttp: opts.plainHttp === true,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    access,
    ...(lookup.credentials ? { credentials: lookup.credentials } : {}),
    credentialsLookedIn: [`${ENV_USERNAME}/${ENV_PASSWORD}`, ...authFiles(env)].join(', '),
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
  await client.ping();
  return client;
}
