// A real OCI registry for the publish/pull tests: Debian's docker-registry (distribution
// v2.8) on 127.0.0.1, a free port, filesystem storage in a temp directory. Each registry runs in
// its own process group (under `setpriv --pdeathsig KILL` when there is one, so it dies with the
// test worker), has a hard timeout, and is killed and reaped by stop(). Also here: a logging
// proxy (which requests reached the registry, with their headers and body sizes) and a token
// server for Bearer auth (distribution's registry/auth/token: a JWT signed RS256 whose header
// carries the signing certificate as x5c, verified against the registry's rootcertbundle; iss,
// aud = service, exp/nbf within 60 s leeway, access = [{type, name, actions}]).

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createPrivateKey, createSign, randomBytes } from 'node:crypto';
import { mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { toolPath } from '../helpers/tools.js';

export const REGISTRY_BIN = 'docker-registry';
const HARD_TIMEOUT_MS = 15 * 60_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export type RegistryAuth =
  | { kind: 'none' }
  | { kind: 'htpasswd'; users: Array<{ user: string; password: string }> }
  | { kind: 'token'; realm: string; service: string; issuer: string; rootCertBundle: string };

export interface RunningRegistry {
  /** 127.0.0.1:PORT */
  host: string;
  port: number;
  dataDir: string;
  log: () => string;
  stop: () => Promise<void>;
}

export async function startRegistry(dir: string, auth: RegistryAuth = { kind: 'none' }, opts: { relativeUrls?: boolean } = {}): Promise<RunningRegistry> {
  mkdirSync(dir, { recursive: true });
  const dataDir = join(dir, 'data');
  const port = await freePort();
  let authYaml = '';
  if (auth.kind === 'htpasswd') {
    const file = join(dir, 'htpasswd');
    // bcrypt (-B): the only scheme distribution's htpasswd reader accepts
    writeFileSync(file, auth.users.map((u) => execFileSync('htpasswd', ['-Bbn', u.user, u.password], { encoding: 'utf8' }).trim()).join('\n') + '\n');
    authYaml = `auth:\n  htpasswd:\n    realm: edgeimg-test\n    path: ${file}\n`;
  } else if (auth.kind === 'token') {
    authYaml = `auth:\n  token:\n    realm: ${auth.realm}\n    service: ${auth.service}\n    issuer: ${auth.issuer}\n    rootcertbundle: ${auth.rootCertBundle}\n`;
  }
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: debug\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: ${dataDir}\n  delete:\n    enabled: true\n` +
      `http:\n  addr: 127.0.0.1:${port}\n${opts.relativeUrls ? '  relativeurls: true\n' : ''}${authYaml}`,
  );
  const logFile = join(dir, 'registry.log');
  const fd = openSync(logFile, 'a');
  const bin = toolPath(REGISTRY_BIN)!;
  const setpriv = toolPath('setpriv');
  const argv = setpriv ? [setpriv, '--pdeathsig', 'KILL', '--', bin, 'serve', config] : [bin, 'serve', config];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // gone
    }
  };
  const hard = setTimeout(() => kill('SIGKILL'), HARD_TIMEOUT_MS);
  hard.unref();
  const log = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const stop = async (): Promise<void> => {
    clearTimeout(hard);
    if (child.exitCode !== null || child.signalCode !== null) return;
    kill('SIGTERM');
    const t = setTimeout(() => kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
    kill('SIGKILL'); // anything left in the group
  };
  // ready when /v2/ answers at all (200, or 401 with auth)
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited at start:\n${log().slice(-2000)}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(1000) });
      await r.body?.cancel();
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`docker-registry did not answer on 127.0.0.1:${port} within 20 s:\n${log().slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { host: `127.0.0.1:${port}`, port, dataDir, log, stop };
}

export interface LoggedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  bodyBytes: number;
  /** The registry's answer: status and Location header. */
  status?: number;
  location?: string;
}

export interface RunningServer {
  host: string;
  port: number;
  close: () => Promise<void>;
}

async function listen(server: Server): Promise<{ port: number; close: () => Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An HTTP proxy in front of `target` (host:port) that records every request. */
export async function startLoggingProxy(target: string, requests: LoggedRequest[]): Promise<RunningServer> {
  const [thost, tport] = target.split(':');
  const server = createServer((req, res) => {
    const entry: LoggedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes: 0 };
    requests.push(entry);
    req.on('data', (c: Buffer) => (entry.bodyBytes += c.length));
    const up = httpRequest({ host: thost, port: Number(tport), method: req.method, path: req.url, headers: req.headers }, (ur) => {
      entry.status = ur.statusCode;
      if (typeof ur.headers.location === 'string') entry.location = ur.headers.location;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  const l = await listen(server);
  return { host: `127.0.0.1:${l.port}`, port: l.port, close: l.close };
}

export interface TokenServer extends RunningServer {
  realm: string;
  certFile: string;
  /** Every token request: its query and whether it carried Basic credentials (user only). */
  requests: Array<{ scope: string | null; service: string | null; user?: string }>;
  /** Every token issued, to check none is ever printed. */
  issued: string[];
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/**
 * A token server for distribution's `auth: token`: Basic `user`/`password` get every action
 * they ask for; anyone else gets 401. RS256 JWTs with the self-signed certificate in x5c.
 */
export async function startTokenServer(dir: string, opts: { service: string; issuer: string; user: string; password: string }): Promise<TokenServer> {
  mkdirSync(dir, { recursive: true });
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=edgeimg-test-token-issuer'], { stdio: 'ignore' });
  const key = createPrivateKey(readFileSync(keyFile));
  const certDer = readFileSync(certFile, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----')).join('');
  const requests: TokenServer['requests'] = [];
  const issued: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const authz = req.headers.authorization ?? '';
    let user: string | undefined;
    let ok = false;
    if (authz.startsWith('Basic ')) {
      const [u, ...p] = Buffer.from(authz.slice(6), 'base64').toString('utf8').split(':');
      user = u;
      ok = u === opts.user && p.join(':') === opts.password;
    }
    const scope = url.searchParams.get('scope');
    requests.push({ scope, service: url.searchParams.get('service'), ...(user !== undefined ? { user } : {}) });
    if (!ok) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    const access = (scope ?? '')
      .split(' ')
      .filter(Boolean)
      .map((s) => {
        const [type, ...rest] = s.split(':');
        const actions = rest.pop()!.split(',');
        return { type, name: rest.join(':'), actions };
      });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer] };
    const claims = { iss: opts.issuer, sub: user, aud: opts.service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(signing).sign(key);
    const token = `${signing}.${b64url(sig)}`;
    issued.push(token);
    res.writeHead(200, { 'content-type': 'application/json' });
    // both names, as Docker Hub answers
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
  });
  const l = await listen(server);
  return { host: `127.0.0.1:${l.port}`, port: l.port, close: l.close, realm: `http://127.0.0.1:${l.port}/token`, certFile, requests, issued };
}

/** A server that accepts connections and never answers: a hung registry. */
export async function startSilentServer(): Promise<RunningServer> {
  const server = createServer(() => {
    // never respond
  });
  const l = await listen(server);
  return { host: `127.0.0.1:${l.port}`, port: l.port, close: l.close };
}
