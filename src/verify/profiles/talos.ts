// Talos real-image profile: boot the class's Image Factory nocloud ISO with the node's seed
// attached, and judge the serial console. Control planes additionally have to bring up apid with
// a server certificate issued by the site's OS CA (checked over a QEMU host forward).
//
// Console facts (siderolabs/talos, see docs/decisions-real-images.md):
//   - config.AcquireController logs `machine config loaded successfully` with a zap string
//     array field `sources` (e.g. ["nocloud"], ["state"], ["maintenance"]); machined forwards its
//     logs to the kernel log with a `[talos]` prefix, so the console line looks like
//     `[   9.1] [talos] machine config loaded successfully {"component": "controller-runtime",
//     "controller": "config.AcquireController", "sources": ["nocloud"]}`.
//   - no usable config => `entering maintenance service`; a bad one => an error naming
//     `failed to load config via platform nocloud` / `failed to validate config acquired via
//     platform nocloud` / `error acquiring via platform nocloud`.
//   - the nocloud platform logs `found config disk (cidata) at <dev>` and
//     `fetching machine config from: cidata/user-data` while reading the seed.

import { redactedExcerpt } from '../../util/diagnostics.js';
import { X509Certificate } from 'node:crypto';
import { connect, type TLSSocket } from 'node:tls';
import type { QemuUserNetwork } from '../qemu.js';
import { cleanLine, createScratchDisk, freeLoopbackPort, installerGuestOptions, judgeLines, onFirstVerdict, startGuest, tail, type ProfileBootOptions, type ProfileResult, type Verdict } from './common.js';
export type { ProfileBootOptions, ProfileResult } from './common.js';

export const APID_PORT = 50000;

const CONFIG_LOADED = 'machine config loaded successfully';

/** Failure markers, checked before a config-load line settles the verdict. */
const TALOS_FAILURES: ReadonlyArray<{ re: RegExp; why: string }> = [
  { re: /entering maintenance service/i, why: 'Talos entered maintenance mode (no complete machine config from the seed)' },
  { re: /failed to load config via platform nocloud/i, why: 'Talos could not parse the user-data from the nocloud seed' },
  { re: /failed to validate config acquired via platform nocloud/i, why: 'Talos rejected the user-data from the nocloud seed' },
  { re: /error acquiring via platform nocloud/i, why: 'Talos failed reading the nocloud seed' },
  { re: /Kernel panic - not syncing/, why: 'kernel panic' },
];

/**
 * The `sources` of a config-load line: JSON-ish (`"sources": ["nocloud"]`), logfmt-ish
 * (`sources=[nocloud]`, `sources=nocloud,state`) or YAML-ish (`sources: [nocloud]`).
 * null when the line names none.
 */
export function parseTalosSources(line: string): string[] | null {
  const at = line.indexOf(CONFIG_LOADED);
  const rest = at >= 0 ? line.slice(at + CONFIG_LOADED.length) : line;
  const m = /["']?sources["']?\s*[:=]\s*(\[[^\]]*\]?|[^\s,}]+(?:,[^\s,}]+)*)/.exec(rest);
  if (!m) return null;
  return m[1]!
    .replace(/[[\]]/g, ' ')
    .split(/[\s,"']+/)
    .filter((s) => s !== '');
}

/** Incremental judge of a Talos console transcript: the first decisive line wins. */
export class TalosTranscriptJudge {
  private verdict: Verdict = { status: 'pending', reason: 'no machine config loaded yet' };
  private seedDevice: string | undefined;
  private readUserData = false;

  push(raw: string): Verdict {
    if (this.verdict.status !== 'pending') return this.verdict;
    const line = cleanLine(raw);
    const seed = /found config disk \(cidata\) at (\S+)/.exec(line);
    if (seed) this.seedDevice = seed[1];
    if (/fetching machine config from:\s*"?cidata\/user-data/.test(line)) this.readUserData = true;

    if (line.includes(CONFIG_LOADED)) {
      const sources = parseTalosSources(line);
      if (sources === null) {
        this.verdict = { status: 'fail', reason: 'Talos loaded a machine config but the console line names no sources, so the nocloud seed cannot be confirmed' };
      } else if (sources.includes('nocloud')) {
        this.verdict = { status: 'pass', reason: `Talos loaded its machine config from the nocloud seed (sources: ${sources.join(', ')})` };
      } else {
        this.verdict = { status: 'fail', reason: `Talos loaded its machine config from ${sources.join(', ') || 'no source'}, not from the nocloud seed` };
      }
      return this.verdict;
    }
    for (const f of TALOS_FAILURES) {
      if (f.re.test(line)) {
        this.verdict = { status: 'fail', reason: `${f.why}: ${redactedExcerpt(line, 240)}` };
        return this.verdict;
      }
    }
    this.verdict = { status: 'pending', reason: this.progress() };
    return this.verdict;
  }

  current(): Verdict {
    return this.verdict;
  }

  private progress(): string {
    if (this.readUserData) return `Talos read user-data from the seed${this.seedDevice ? ` at ${this.seedDevice}` : ''} but has not loaded a machine config yet`;
    if (this.seedDevice) return `Talos found the seed at ${this.seedDevice} but has not read user-data yet`;
    return 'Talos has not loaded a machine config yet (no seed activity on the console)';
  }
}

/** Judges a whole transcript (pure): pass only for a config load whose sources include nocloud. */
export function judgeTalosTranscript(lines: string[]): Verdict {
  return judgeLines(new TalosTranscriptJudge(), lines);
}

// ------------------------------------------------------------------------------------------
// apid certificate check
// ------------------------------------------------------------------------------------------

export interface ApidCheckOptions {
  /** Pause between attempts; default 2000 ms. */
  retryDelayMs?: number;
  /** Per attempt; default 10 s (capped by the time left). */
  attemptTimeoutMs?: number;
  signal?: AbortSignal;
}

type Attempt = { cert: X509Certificate } | { error: string };

function attemptHandshake(host: string, port: number, timeoutMs: number): Promise<Attempt> {
  return new Promise((resolveAttempt) => {
    let settled = false;
    let sock: TLSSocket | undefined;
    const finish = (a: Attempt): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock?.destroy();
      resolveAttempt(a);
    };
    const peer = (): X509Certificate | undefined => {
      try {
        return sock?.getPeerX509Certificate();
      } catch {
        return undefined;
      }
    };
    const timer = setTimeout(() => finish({ error: `no TLS handshake within ${timeoutMs} ms` }), timeoutMs);
    try {
      // No client certificate: apid lets the handshake proceed far enough to present its own
      // (in TLS 1.3 the client's handshake completes before the server checks the client).
      sock = connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'], minVersion: 'TLSv1.2' });
    } catch (err) {
      finish({ error: (err as Error).message });
      return;
    }
    sock.once('secureConnect', () => {
      const cert = peer();
      finish(cert ? { cert } : { error: 'the server presented no certificate' });
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      // a server that insists on a client certificate (TLS 1.2) fails the handshake only after
      // sending its own: keep it if we got it
      const cert = peer();
      finish(cert ? { cert } : { error: err.code ? `${err.code}: ${err.message}` : err.message });
    });
    sock.once('close', () => finish({ error: 'connection closed before the TLS handshake completed' }));
  });
}

function describeCert(c: X509Certificate): string {
  const san = c.subjectAltName ? `, SAN ${c.subjectAltName}` : '';
  return `subject "${c.subject.replace(/\n/g, ', ') || '(empty)'}"${san}`;
}

/**
 * Connects to apid (TLS, no client certificate) until it presents a certificate or `timeoutMs`
 * passes. ok only when that certificate's issuer DN is the OS CA's subject and its signature
 * verifies with the OS CA's public key. A certificate from any other issuer fails at once.
 */
export async function checkApidCertificate(host: string, port: number, caPem: string, timeoutMs: number, opts: ApidCheckOptions = {}): Promise<{ ok: boolean; reason: string }> {
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(caPem);
  } catch (err) {
    return { ok: false, reason: `the site OS CA is not a readable certificate: ${(err as Error).message}` };
  }
  const t0 = Date.now();
  const deadline = t0 + timeoutMs;
  const delay = opts.retryDelayMs ?? 2000;
  let attempts = 0;
  let lastError = 'no attempt made';
  while (!opts.signal?.aborted) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    attempts++;
    const a = await attemptHandshake(host, port, Math.max(1, Math.min(left, opts.attemptTimeoutMs ?? 10_000)));
    if ('cert' in a) {
      const leaf = a.cert;
      const issuer = leaf.issuer.replace(/\n/g, ', ') || '(empty)';
      const caSubject = ca.subject.replace(/\n/g, ', ');
      if (leaf.issuer !== ca.subject) {
        return { ok: false, reason: `apid at ${host}:${port} presented a certificate (${describeCert(leaf)}) issued by "${issuer}", not by the site OS CA "${caSubject}"` };
      }
      let signed = false;
      try {
        signed = leaf.verify(ca.publicKey);
      } catch {
        signed = false;
      }
      if (!signed) {
        return { ok: false, reason: `apid at ${host}:${port} presented a certificate naming issuer "${issuer}" whose signature does not verify with the site OS CA's key (a different CA with the same name)` };
      }
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      return { ok: true, reason: `apid at ${host}:${port} presented a certificate (${describeCert(leaf)}) signed by the site OS CA "${caSubject}" (after ${attempts} attempt${attempts === 1 ? '' : 's'}, ${secs} s)` };
    }
    lastError = a.error;
    const wait = Math.min(delay, deadline - Date.now());
    if (wait > 0 && !opts.signal?.aborted) {
      await new Promise<void>((res) => {
        const t = setTimeout(done, wait);
        function done(): void {
          clearTimeout(t);
          opts.signal?.removeEventListener('abort', done);
          res();
        }
        opts.signal?.addEventListener('abort', done, { once: true });
      });
    }
  }
  const why = opts.signal?.aborted ? 'stopped (the guest exited)' : `within ${(timeoutMs / 1000).toFixed(1)} s`;
  return { ok: false, reason: `apid at ${host}:${port} presented no certificate ${why} (${attempts} attempt${attempts === 1 ? '' : 's'}; last error: ${lastError})` };
}

// ------------------------------------------------------------------------------------------
// Boot
// ------------------------------------------------------------------------------------------


export interface TalosBootOptions extends ProfileBootOptions {
  /** The site OS CA (PEM); required to check apid on control planes. */
  osCaPem?: string;
  /** Skip the apid check even on control planes. */
  skipApid?: boolean;
  apidRetryDelayMs?: number;
}


const HOSTFWD_CLASH = /hostfwd|host forwarding|Could not set up host forwarding/i;

export async function bootTalos(o: TalosBootOptions): Promise<ProfileResult> {
  const needApid = o.role === 'controlplane' && !o.skipApid;
  if (needApid && !o.osCaPem) return { ok: false, message: 'cannot check apid: the site OS CA (talosconfig) was not found', durationMs: 0 };
  const t0 = Date.now();
  for (let attempt = 1; ; attempt++) {
    const port = needApid ? await freeLoopbackPort() : undefined;
    const r = await bootTalosOnce(o, port, t0);
    if (r.retryPort && attempt < 3) {
      o.log(`port ${port} was taken before QEMU could bind it; retrying with another`);
      continue;
    }
    return r.result;
  }
}

async function bootTalosOnce(o: TalosBootOptions, port: number | undefined, t0: number): Promise<{ result: ProfileResult; retryPort?: boolean }> {
  const scratch = createScratchDisk(o.scratch.bytes, 'talos-install.raw');
  const judge = new TalosTranscriptJudge();
  const apidAbort = new AbortController();
  let apid: Promise<{ ok: boolean; reason: string }> | undefined;
  const deadline = t0 + o.timeoutMs;
  const network: QemuUserNetwork | undefined =
    port !== undefined ? { ...(o.network ?? {}), hostForwards: [{ hostPort: port, guestPort: APID_PORT }] } : o.network;
  try {
    const run = startGuest(
      installerGuestOptions(o, scratch.path, { network: network, memoryMiB: 2048, timeoutMs: Math.max(1, deadline - Date.now()) }),
      o.signal,
      onFirstVerdict(judge, o.log, (g) => {
        if (port === undefined) return g.stop('pass');
        o.log(`checking apid's certificate via 127.0.0.1:${port}`);
        apid = checkApidCertificate('127.0.0.1', port, o.osCaPem!, Math.max(1, deadline - Date.now()), {
          signal: apidAbort.signal,
          retryDelayMs: o.apidRetryDelayMs,
        }).then((r) => {
          g.stop('apid checked');
          return r;
        });
      }),
    );
    const res = await run.done;
    apidAbort.abort();
    const apidResult = apid ? await apid : undefined;
    const durationMs = Date.now() - t0;
    const fail = (message: string): { result: ProfileResult } => ({ result: { ok: false, message, durationMs, qemu: res } });
    if (res.spawnError) return fail(`cannot run QEMU: ${res.spawnError}`);
    if (port !== undefined && run.lines.length === 0 && res.exitCode !== 0 && !res.timedOut && !res.aborted && HOSTFWD_CLASH.test(res.stderr)) {
      return { ...fail(`QEMU could not forward 127.0.0.1:${port}: ${res.stderr.trim()}`), retryPort: true };
    }
    if (run.callerAborted()) return fail('interrupted');
    const v = judge.current();
    if (v.status === 'fail') return fail(v.reason);
    if (v.status === 'pending') {
      const secs = Math.round(o.timeoutMs / 1000);
      const how = res.timedOut
        ? `no decision within ${secs} s`
        : `the guest exited (${res.exitCode !== null ? `exit code ${res.exitCode}` : `signal ${res.signal ?? '?'}`}) before Talos loaded a machine config`;
      const err = res.stderr.trim() ? `; QEMU: ${res.stderr.trim().split('\n')[0]}` : '';
      return fail(`${how}: ${v.reason}${err}; last console lines: ${tail(run.lines) || '(none)'}`);
    }
    if (port === undefined) return { result: { ok: true, message: v.reason, durationMs, qemu: res } };
    if (!apidResult) return fail(`${v.reason}, but apid was not checked`);
    if (!apidResult.ok) return fail(`${v.reason}, but ${apidResult.reason}; last console lines: ${tail(run.lines) || '(none)'}`);
    return { result: { ok: true, message: `${v.reason}; ${apidResult.reason}`, durationMs, qemu: res } };
  } finally {
    apidAbort.abort();
    scratch.cleanup();
  }
}
