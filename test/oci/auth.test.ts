// Registry authentication against real registries: HTTP Basic (docker-registry with a bcrypt
// htpasswd file, relative upload Locations) and Bearer tokens (docker-registry with `auth:
// token`, a token server here signing RS256 JWTs). Credentials from the environment or an auth
// file; refused credentials are exit 3 with the URL, and no password or token ever reaches
// stdout, stderr or the JSON result.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTools } from '../helpers/tools.js';
import { startLoggingProxy, startRegistry, startTokenServer, type LoggedRequest, type RunningRegistry, type RunningServer, type TokenServer } from './registry.js';
import { buildSite, run, SITE, tree, type Run } from './site.js';

const has = requireTools('docker-registry', 'htpasswd', 'openssl');
const work = mkdtempSync(join(tmpdir(), 'edgeimg-oci-auth-'));
const USER = 'fleet-ci';
const PASSWORD = 'Pw-CANARY-7f3a9c1e-do-not-print';
const WRONG = 'Wrong-CANARY-0b5d2e88-do-not-print';
let site: { out: string; secrets: string; dir: string };
const stops: Array<() => Promise<void>> = [];

/** No credentials anywhere but what a test passes. */
const isolated = (): Record<string, string | undefined> => {
  const home = join(work, 'home');
  mkdirSync(home, { recursive: true });
  return { HOME: home, XDG_RUNTIME_DIR: join(work, 'xdg'), REGISTRY_AUTH_FILE: undefined, EDGEIMG_REGISTRY_USERNAME: undefined, EDGEIMG_REGISTRY_PASSWORD: undefined };
};
const withPassword = (password: string): Record<string, string | undefined> => ({ ...isolated(), EDGEIMG_REGISTRY_USERNAME: USER, EDGEIMG_REGISTRY_PASSWORD: password });
const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** Neither password, nor its Basic header form, nor any token appears in what was printed. */
function expectNoSecrets(r: Run, tokens: string[] = []): void {
  const printed = r.out + r.err;
  for (const s of [PASSWORD, WRONG, b64(`${USER}:${PASSWORD}`), b64(`${USER}:${WRONG}`), ...tokens]) expect(printed).not.toContain(s);
  for (const t of tokens) for (const part of t.split('.')) if (part.length > 20) expect(printed).not.toContain(part);
}

beforeAll(async () => {
  if (!has) return;
  site = await buildSite(work, 'iso');
}, 180_000);

afterAll(async () => {
  for (const s of stops.reverse()) await s();
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!has)('HTTP Basic (htpasswd registry)', () => {
  let reg: RunningRegistry;
  let proxy: RunningServer;
  const requests: LoggedRequest[] = [];
  let to: string;

  beforeAll(async () => {
    if (!has) return;
    reg = await startRegistry(join(work, 'basic'), { kind: 'htpasswd', users: [{ user: USER, password: PASSWORD }] }, { relativeUrls: true });
    stops.push(reg.stop);
    proxy = await startLoggingProxy(reg.host, requests);
    stops.push(proxy.close);
    to = `${proxy.host}/fleet/store-0412:v1`;
  }, 60_000);

  it('without credentials: exit 3, saying the registry wants them and where edgeimg looked', async () => {
    const r = await run(['publish', '--site', SITE, '--out', site.out, '--to', to, '--plain-http'], isolated());
    expect(r.code, r.err).toBe(3);
    expect(r.err).toContain(`http://${proxy.host}/v2/`);
    expect(r.err).toContain('wants a user name and password');
    expect(r.err).toContain('EDGEIMG_REGISTRY_USERNAME');
  });

  it('with EDGEIMG_REGISTRY_USERNAME/PASSWORD: publishes (following relative upload Locations) and pulls back', async () => {
    const r = await run(['publish', '--site', SITE, '--out', site.out, '--to', to, '--plain-http', '--include-secrets', '--json', '--chunk-size', '16384'], withPassword(PASSWORD));
    expect(r.code, r.err).toBe(0);
    expectNoSecrets(r);
    expect(JSON.parse(r.out).chunks).toBeGreaterThan(1);
    // the registry answered relative Locations (relativeurls: true), and each was followed
    const patches = requests.filter((q) => q.method === 'PATCH');
    expect(patches.length).toBeGreaterThan(1);
    const locations = requests.filter((q) => q.status === 202).map((q) => q.location!);
    expect(locations.length).toBeGreaterThan(patches.length);
    expect(locations.every((l) => l.startsWith('/v2/fleet/store-0412/blobs/uploads/'))).toBe(true);
    for (const q of patches) expect(locations).toContain(q.url);
    expect(requests.filter((q) => q.method !== 'GET' || q.url !== '/v2/').every((q) => q.headers.authorization === `Basic ${b64(`${USER}:${PASSWORD}`)}`)).toBe(true);

    const into = join(work, 'pulled-basic');
    const p = await run(['pull', to, '--out', into, '--secrets', site.secrets, '--plain-http', '--json'], withPassword(PASSWORD));
    expect(p.code, p.err).toBe(0);
    expectNoSecrets(p);
    expect(tree(join(into, SITE))).toEqual(tree(site.dir, ['.edgeimg-build.json']));
  }, 120_000);

  it('with an auths entry in $REGISTRY_AUTH_FILE (base64 user:password)', async () => {
    const file = join(work, 'auth.json');
    writeFileSync(file, JSON.stringify({ auths: { [proxy.host]: { auth: b64(`${USER}:${PASSWORD}`) } } }));
    const into = join(work, 'pulled-authfile');
    const p = await run(['pull', to, '--out', into, '--secrets', site.secrets, '--plain-http'], { ...isolated(), REGISTRY_AUTH_FILE: file });
    expect(p.code, p.err).toBe(0);
    expectNoSecrets(p);
  }, 60_000);

  it('with ~/.docker/config.json', async () => {
    const env = isolated();
    mkdirSync(join(env.HOME!, '.docker'), { recursive: true });
    writeFileSync(join(env.HOME!, '.docker', 'config.json'), JSON.stringify({ auths: { [`http://${proxy.host}`]: { auth: b64(`${USER}:${PASSWORD}`) } } }));
    const p = await run(['pull', to, '--out', join(work, 'pulled-docker'), '--secrets', site.secrets, '--plain-http'], env);
    rmSync(join(env.HOME!, '.docker'), { recursive: true });
    expect(p.code, p.err).toBe(0);
  }, 60_000);

  it('a wrong password: exit 3 with the URL, and the password is never printed', async () => {
    for (const args of [
      ['publish', '--site', SITE, '--out', site.out, '--to', to, '--plain-http', '--json'],
      ['pull', to, '--out', join(work, 'never'), '--secrets', site.secrets, '--plain-http', '--json'],
    ]) {
      const r = await run(args, withPassword(WRONG));
      expect(r.code, r.err).toBe(3);
      expect(r.err).toContain(`http://${proxy.host}/v2/`);
      expect(r.err).toContain('authentication refused');
      expect(r.err).toContain('EDGEIMG_REGISTRY_USERNAME/EDGEIMG_REGISTRY_PASSWORD');
      expect(r.out).toBe('');
      expectNoSecrets(r);
    }
  }, 60_000);
});

describe.skipIf(!has)('Bearer tokens (token-auth registry)', () => {
  let reg: RunningRegistry;
  let tokens: TokenServer;
  let to: string;

  beforeAll(async () => {
    if (!has) return;
    const service = 'edgeimg-test-registry';
    const issuer = 'edgeimg-test-issuer';
    tokens = await startTokenServer(join(work, 'token'), { service, issuer, user: USER, password: PASSWORD });
    stops.push(tokens.close);
    reg = await startRegistry(join(work, 'bearer'), { kind: 'token', realm: tokens.realm, service, issuer, rootCertBundle: tokens.certFile });
    stops.push(reg.stop);
    to = `${reg.host}/fleet/store-0412:v1`;
  }, 60_000);

  it('gets a token for pull,push with the credentials, publishes, and pulls with a pull-only token', async () => {
    const r = await run(['publish', '--site', SITE, '--out', site.out, '--to', to, '--plain-http', '--include-secrets', '--json'], withPassword(PASSWORD));
    expect(r.code, r.err).toBe(0);
    expect(tokens.requests.length).toBeGreaterThan(0);
    expect(tokens.requests.every((q) => q.scope === 'repository:fleet/store-0412:pull,push' && q.service === 'edgeimg-test-registry' && q.user === USER)).toBe(true);
    expectNoSecrets(r, tokens.issued);
    // the registry really checks tokens: one it did not sign is refused
    const forged = await fetch(`http://${reg.host}/v2/fleet/store-0412/manifests/v1`, { headers: { authorization: `Bearer ${tokens.issued[0]!.replace(/\.[^.]+$/, '.AAAA')}` } });
    expect(forged.status).toBe(401);

    const asked = tokens.requests.length;
    const into = join(work, 'pulled-bearer');
    const p = await run(['pull', to, '--out', into, '--secrets', site.secrets, '--plain-http', '--json'], withPassword(PASSWORD));
    expect(p.code, p.err).toBe(0);
    expect(tokens.requests.slice(asked).map((q) => q.scope)).toEqual(['repository:fleet/store-0412:pull']);
    expect(tree(join(into, SITE))).toEqual(tree(site.dir, ['.edgeimg-build.json']));
    expectNoSecrets(p, tokens.issued);
  }, 120_000);

  it('a wrong password: exit 3 naming the token server, nothing secret printed', async () => {
    const r = await run(['publish', '--site', SITE, '--out', site.out, '--to', to, '--plain-http', '--json'], withPassword(WRONG));
    expect(r.code, r.err).toBe(3);
    expect(r.err).toContain(`${tokens.realm}: the token server refused the credentials from EDGEIMG_REGISTRY_USERNAME/EDGEIMG_REGISTRY_PASSWORD`);
    expectNoSecrets(r, tokens.issued);
  });

  it('anonymous: exit 3', async () => {
    const r = await run(['pull', to, '--out', join(work, 'never'), '--secrets', site.secrets, '--plain-http'], isolated());
    expect(r.code, r.err).toBe(3);
    expect(r.err).toContain('refused anonymous access for repository:fleet/store-0412:pull');
  });
});
