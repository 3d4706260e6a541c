// The OCI pieces without a registry: references, WWW-Authenticate, where credentials come from,
// the artifact's manifest (deterministic, refusing escaping titles), and the client's guard
// rails against a hostile server (no Authorization across origins, bounded answers).

import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseReference, formatReference } from '../../src/oci/reference.js';
import { findCredentials, parseChallenges } from '../../src/oci/credentials.js';
import { ARTIFACT_TYPE, parseSiteArtifact, siteManifestBytes, type SiteContents } from '../../src/oci/artifact.js';
import { RegistryClient } from '../../src/oci/client.js';
import { parseChunkSize } from '../../src/cli/oci.js';
import { EnvironmentError, UsageError, VerifyError } from '../../src/util/diagnostics.js';
import type { Manifest } from '../../src/manifest/manifest.js';

const work = mkdtempSync(join(tmpdir(), 'edgeimg-oci-units-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('references', () => {
  it.each([
    ['127.0.0.1:5000/fleet/store-0412:v1', { registry: '127.0.0.1:5000', repository: 'fleet/store-0412', tag: 'v1' }],
    ['ghcr.io/acme/edge-sites', { registry: 'ghcr.io', repository: 'acme/edge-sites' }],
    [`registry.example/a/b@sha256:${'a'.repeat(64)}`, { registry: 'registry.example', repository: 'a/b', digest: `sha256:${'a'.repeat(64)}` }],
    ['docker.io/busybox:1', { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/busybox', tag: '1' }],
    ['[::1]:5000/x_y__z.w-v:t', { registry: '[::1]:5000', repository: 'x_y__z.w-v', tag: 't' }],
  ])('%s', (text, want) => {
    const r = parseReference(text, '--to');
    expect(r).toMatchObject(want);
  });

  it.each(['store-0412', '/x', 'host/UPPER', 'host/a//b', 'host/a:bad tag', 'host/a@sha256:short', 'ho st/a', 'host/-a', `host/a:${'t'.repeat(129)}`])('refuses %s', (text) => {
    expect(() => parseReference(text, '--to')).toThrow(UsageError);
  });

  it('formats back', () => {
    expect(formatReference({ registry: 'r:1', repository: 'a/b', tag: 't' })).toBe('r:1/a/b:t');
  });
});

describe('WWW-Authenticate', () => {
  it('reads Bearer with quoted parameters (commas inside quotes) and Basic', () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' } },
    ]);
    expect(parseChallenges('Basic realm="Registry Realm"')).toEqual([{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  });

  it('reads several challenges and escaped quotes, and survives garbage', () => {
    expect(parseChallenges('Basic realm="a\\"b", Bearer realm=https://x/t, error=insufficient_scope')).toEqual([
      { scheme: 'basic', params: { realm: 'a"b' } },
      { scheme: 'bearer', params: { realm: 'https://x/t', error: 'insufficient_scope' } },
    ]);
    for (const g of ['', '===', '"', 'Bearer realm="unterminated', 'Negotiate abc==']) expect(() => parseChallenges(g)).not.toThrow();
  });
});

describe('credentials', () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');

  it('takes EDGEIMG_REGISTRY_USERNAME/PASSWORD first', async () => {
    const r = await findCredentials('r.example', 'a/b', { EDGEIMG_REGISTRY_USERNAME: 'u', EDGEIMG_REGISTRY_PASSWORD: 'p', HOME: work });
    expect(r.credentials).toEqual({ username: 'u', password: 'p', source: 'EDGEIMG_REGISTRY_USERNAME/EDGEIMG_REGISTRY_PASSWORD' });
  });

  it('reads auths in order: REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json', async () => {
    const dir = join(work, 'creds');
    mkdirSync(join(dir, 'xdg', 'containers'), { recursive: true });
    mkdirSync(join(dir, 'home', '.docker'), { recursive: true });
    writeFileSync(join(dir, 'xdg', 'containers', 'auth.json'), JSON.stringify({ auths: { 'r.example/a': { auth: b64('podman:pw:with:colons') } } }));
    writeFileSync(join(dir, 'home', '.docker', 'config.json'), JSON.stringify({ auths: { 'https://r.example/v1/': { auth: b64('docker:pw2') }, 'other.example': { auth: b64('x:y') } }, credsStore: 'desktop' }));
    const env = { XDG_RUNTIME_DIR: join(dir, 'xdg'), HOME: join(dir, 'home') };
    expect((await findCredentials('r.example', 'a/b', env)).credentials).toMatchObject({ username: 'podman', password: 'pw:with:colons' });
    expect((await findCredentials('r.example', 'c/d', env)).credentials).toMatchObject({ username: 'docker', password: 'pw2' });
    const none = await findCredentials('nowhere.example', 'a', env);
    expect(none.credentials).toBeUndefined();
    expect(none.notes.join('\n')).toContain('does not run credential helpers');
    writeFileSync(join(dir, 'explicit.json'), JSON.stringify({ auths: { 'r.example': { auth: b64('explicit:pw3') } } }));
    expect((await findCredentials('r.example', 'a/b', { ...env, REGISTRY_AUTH_FILE: join(dir, 'explicit.json') })).credentials).toMatchObject({ username: 'explicit' });
    // notes never quote a password
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ auths: { 'bad.example': { auth: b64('no-colon-SECRET') } } }));
    const bad = await findCredentials('bad.example', 'a', { HOME: join(dir, 'nohome'), REGISTRY_AUTH_FILE: join(dir, 'bad.json') });
    expect(bad.credentials).toBeUndefined();
    expect(bad.notes.join('\n')).not.toContain('SECRET');
  });
});

describe('the artifact manifest', () => {
  const site = {
    schemaVersion: 1,
    site: 'store-0412',
    os: 'talos',
    osVersion: 'v1.13.9',
    generator: { name: 'edgeimg', version: '0.1.0' },
    inputDigest: `sha256:${'1'.repeat(64)}`,
    artifacts: [],
    nodes: [],
  } as unknown as Manifest;
  const contents = (paths: string[]): SiteContents => ({
    manifest: site,
    files: paths.map((p) => ({ path: p, abs: `/x/${p}`, digest: `sha256:${createHash('sha256').update(p).digest('hex')}`, size: p.length, secret: p.endsWith('user-data') })),
    excluded: ['talosconfig'],
  });

  it('is the same bytes for the same site, with no time stamp', () => {
    const a = siteManifestBytes(contents(['manifest.json', 'nodes/cp-1/meta-data', 'nodes/cp-1/user-data']), true);
    const b = siteManifestBytes(contents(['manifest.json', 'nodes/cp-1/meta-data', 'nodes/cp-1/user-data']), true);
    expect(a.equals(b)).toBe(true);
    const m = JSON.parse(a.toString('utf8'));
    expect(m.artifactType).toBe(ARTIFACT_TYPE);
    expect(m.annotations['dev.edgeimg.excluded']).toBe('talosconfig');
    expect(m.layers[2].annotations).toEqual({ 'org.opencontainers.image.title': 'nodes/cp-1/user-data', 'dev.edgeimg.secret': 'true' });
    expect(a.toString('utf8')).not.toMatch(/created|\d{4}-\d{2}-\d{2}T/);
    expect(parseSiteArtifact(a, 'x').layers.map((l) => l.title)).toEqual(['manifest.json', 'nodes/cp-1/meta-data', 'nodes/cp-1/user-data']);
  });

  const withTitles = (titles: string[]): Buffer => {
    const m = JSON.parse(siteManifestBytes(contents(titles.map((_, i) => `f${i}`)), false).toString('utf8'));
    titles.forEach((t, i) => (m.layers[i].annotations['org.opencontainers.image.title'] = t));
    return Buffer.from(JSON.stringify(m));
  };

  it.each([['../x'], ['/etc/passwd'], ['a\\b'], ['a/../../b'], ['./a'], ['a//b'], [''], ['a\nb'], ['C:/x'.replace('C:', '')], ['x', 'x'], ['nodes', 'nodes/cp-1/meta-data']])('refuses titles %j', (...titles) => {
    expect(() => parseSiteArtifact(withTitles(titles), 'ref')).toThrow(VerifyError);
  });

  it('refuses another artifactType, a missing site, bad digests and sizes', () => {
    const good = JSON.parse(siteManifestBytes(contents(['a']), false).toString('utf8'));
    const variants: Array<(m: typeof good) => void> = [
      (m) => (m.artifactType = 'application/vnd.other'),
      (m) => delete m.artifactType,
      (m) => (m.annotations['dev.edgeimg.site'] = '../x'),
      (m) => (m.layers[0].digest = 'md5:abc'),
      (m) => (m.layers[0].size = -1),
      (m) => (m.layers[0].size = 2 ** 60),
      (m) => (m.schemaVersion = 1),
      (m) => (m.mediaType = 'application/vnd.oci.image.index.v1+json'),
    ];
    for (const v of variants) {
      const m = structuredClone(good);
      v(m);
      expect(() => parseSiteArtifact(Buffer.from(JSON.stringify(m)), 'ref')).toThrow(VerifyError);
    }
    expect(() => parseSiteArtifact(Buffer.from('not json'), 'ref')).toThrow(VerifyError);
  });
});

describe('--chunk-size', () => {
  it.each([['8388608', 8388608], ['8MiB', 8 * 1024 * 1024], ['512k', 512 * 1024], ['64MiB', 64 * 1024 ** 2]])('%s', (t, n) => expect(parseChunkSize(t)).toBe(n));
  it.each(['0', '100', '65MiB', '1GiB', '1.5MiB', 'lots', '-1'])('refuses %s', (t) => expect(() => parseChunkSize(t)).toThrow(UsageError));
});

/** A throwaway HTTP server; `handler` sees every request. */
async function server(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ host: string; close: () => Promise<void> }> {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${(s.address() as { port: number }).port}`,
    close: () =>
      new Promise<void>((r) => {
        s.closeAllConnections();
        s.close(() => r());
      }),
  };
}

describe('the client against a hostile or odd server', () => {
  it('never sends the Authorization header along a redirect to another origin', async () => {
    const blob = Buffer.from('blob bytes');
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const seen: Array<string | undefined> = [];
    const storage = await server((req, res) => {
      seen.push(req.headers.authorization);
      res.end(blob);
    });
    const registry = await server((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from('u:CANARY-pw').toString('base64')}`) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' }).end();
        return;
      }
      res.writeHead(307, { location: `http://${storage.host}/bucket/blob?sig=1` }).end();
    });
    try {
      const c = new RegistryClient({ ref: parseReference(`${registry.host}/a/b:t`, 'x'), plainHttp: true, timeoutMs: 5000, access: 'pull', credentials: { username: 'u', password: 'CANARY-pw', source: 'test' } });
      const fh = await open(join(work, 'blob'), 'w+');
      try {
        await c.downloadBlob(digest, blob.length, fh);
      } finally {
        await fh.close();
      }
      expect(seen).toEqual([undefined]);
    } finally {
      await registry.close();
      await storage.close();
    }
  });

  it('bounds what it reads: an endless manifest, a blob longer than its descriptor', async () => {
    const s = await server((req, res) => {
      if (req.url === '/v2/') {
        res.end('{}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = (): void => {
        while (res.write(chunk));
        res.once('drain', pump);
      };
      pump();
      req.on('close', () => res.destroy());
    });
    try {
      const c = new RegistryClient({ ref: parseReference(`${s.host}/a/b:t`, 'x'), plainHttp: true, timeoutMs: 5000, access: 'pull' });
      await expect(c.getManifest('t', ['application/vnd.oci.image.manifest.v1+json'])).rejects.toThrow(/answer larger than 4194304 bytes/);
      const fh = await open(join(work, 'long'), 'w+');
      try {
        await expect(c.downloadBlob(`sha256:${'0'.repeat(64)}`, 1000, fh)).rejects.toThrow(/longer than its descriptor's 1000 bytes/);
      } finally {
        await fh.close();
      }
    } finally {
      await s.close();
    }
  });

  it('refuses a token answer without a token, and never quotes the password in any message', async () => {
    const s = await server((req, res) => {
      if (req.url?.startsWith('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ nothing: 'here', echo: req.headers.authorization }));
        return;
      }
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="s"` }).end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: `echo ${req.headers.authorization ?? ''}` }] }));
    });
    try {
      const c = new RegistryClient({ ref: parseReference(`${s.host}/a/b:t`, 'x'), plainHttp: true, timeoutMs: 5000, access: 'push', credentials: { username: 'u', password: 'CANARY-pw', source: 'test' } });
      const err = await c.ping().then(() => undefined, (e: unknown) => e as Error);
      expect(err).toBeInstanceOf(EnvironmentError);
      expect(err!.message).toContain('holds no usable "token" or "access_token"');
      expect(err!.message).not.toContain('CANARY-pw');
      expect(c.redact(`x ${Buffer.from('u:CANARY-pw').toString('base64')} CANARY-pw`)).toBe('x [redacted] [redacted]');
      // upload sessions and storage redirects carry signatures in their query
      expect(c.redact('https://bucket.example/blob?X-Amz-Signature=abc: HTTP 500')).toBe('https://bucket.example/blob?…: HTTP 500');
    } finally {
      await s.close();
    }
  });
});
