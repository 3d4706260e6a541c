// `edgeimg publish` and `edgeimg pull` against a real registry (Debian's docker-registry,
// distribution v2.8.2) with skopeo as an independent reader: round trips byte for byte, the same
// digest on every push (also into a fresh registry), secrets only with --include-secrets,
// chunked uploads of big files, and pulls that refuse tampered blobs, escaping titles and
// foreign artifact types while leaving OUT as it was.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { requireTools } from '../helpers/tools.js';
import { generateKey, publicKeyLine } from '../../src/trust/sshsig.js';
import { startLoggingProxy, startRegistry, startSilentServer, freePort, type LoggedRequest, type RunningRegistry, type RunningServer } from './registry.js';
import { addBigArtifact, buildSite, listing, run, SITE, tree } from './site.js';
import { repoRoot } from '../helpers/catalogue.js';

const has = requireTools('docker-registry', 'skopeo');
const work = mkdtempSync(join(tmpdir(), 'edgeimg-oci-'));
let site: { out: string; secrets: string; dir: string };
let reg: RunningRegistry;
const servers: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];
/** Files in a built site that are not part of what it publishes. */
const LOCAL_ONLY = ['.edgeimg-build.json'];

interface SiteManifest {
  site: string;
  os: string;
  osVersion: string;
  inputDigest: string;
  generator: { name: string; version: string };
  artifacts: Array<{ path: string; sha256: string; bytes: number; secret: boolean }>;
}
const siteManifest = (dir: string): SiteManifest => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as SiteManifest;
const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

beforeAll(async () => {
  if (!has) return;
  site = await buildSite(work);
  reg = await startRegistry(join(work, 'registry'));
}, 180_000);

afterAll(async () => {
  for (const s of servers) await (s.stop ?? s.close)?.();
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

const publish = (to: string, ...extra: string[]) => run(['publish', '--site', SITE, '--out', site.out, '--to', to, '--plain-http', '--json', ...extra]);
const pull = (ref: string, out: string, ...extra: string[]) => run(['pull', ref, '--out', out, '--secrets', site.secrets, '--catalogue', join(work, 'no-catalogue'), '--plain-http', '--json', ...extra]);

async function rawManifest(host: string, repo: string, ref: string): Promise<Buffer> {
  const r = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  expect(r.status).toBe(200);
  return Buffer.from(await r.arrayBuffer());
}

async function putRawManifest(host: string, repo: string, tag: string, body: Buffer): Promise<void> {
  const r = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: new Uint8Array(body) });
  expect(r.status, await r.text()).toBe(201);
}

async function blobStatus(host: string, repo: string, digest: string): Promise<number> {
  const r = await fetch(`http://${host}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  return r.status;
}

describe.skipIf(!has)('edgeimg publish / pull with a real registry', () => {
  let first: { digest: string; ref: string; layers: Array<{ path: string; digest: string; size: number }> };

  it('pulls back every file byte for byte, and the same site always gets the same manifest digest', async () => {
    const to = `${reg.host}/fleet/store-0412:v1`;
    const a = await publish(to, '--include-secrets');
    expect(a.code, a.err).toBe(0);
    first = JSON.parse(a.out);
    expect(first).toMatchObject({ ok: true, ref: to, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.edgeimg.site.v1+json', excluded: [] });
    expect(first.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const again = await publish(to, '--include-secrets');
    expect(again.code, again.err).toBe(0);
    expect(JSON.parse(again.out)).toMatchObject({ digest: first.digest, uploaded: 0 });

    const into = join(work, 'pulled');
    const p = await pull(to, into);
    expect(p.code, p.err).toBe(0);
    expect(JSON.parse(p.out)).toMatchObject({ ok: true, site: SITE, digest: first.digest, missing: [], signature: { ok: true } });
    const want = tree(site.dir, LOCAL_ONLY);
    expect(Object.keys(want).length).toBeGreaterThan(15);
    expect(tree(join(into, SITE))).toEqual(want);
    for (const a of siteManifest(site.dir).artifacts) expect(statSync(join(into, SITE, a.path)).mode & 0o777, a.path).toBe(a.secret ? 0o600 : 0o644);
    expect(listing(into).filter((e) => e.startsWith('.'))).toEqual([]); // no staging, no lock left

    // by digest, and verify accepts what was pulled
    const byDigest = join(work, 'pulled-by-digest');
    const d = await pull(`${reg.host}/fleet/store-0412@${first.digest}`, byDigest);
    expect(d.code, d.err).toBe(0);
    expect(tree(join(byDigest, SITE))).toEqual(want);
    const v = await run(['verify', '--site', SITE, '--out', byDigest, '--secrets', site.secrets, '--catalogue', join(work, 'no-catalogue')]);
    expect(v.code, v.err).toBe(0);

    // a fresh registry (its own, empty storage): the same digest again, every blob sent anew
    const fresh = await startRegistry(join(work, 'registry-fresh'));
    servers.push(fresh);
    const f = await run(['publish', '--site', SITE, '--out', site.out, '--to', `${fresh.host}/other/name:v1`, '--plain-http', '--json', '--include-secrets']);
    expect(f.code, f.err).toBe(0);
    expect(JSON.parse(f.out)).toMatchObject({ digest: first.digest, present: 0 });
    await fresh.stop();
  }, 180_000);

  it('is read by skopeo as the bytes we pushed, with artifactType, titles and annotations and no time stamps', async () => {
    const r = await execa('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/fleet/store-0412:v1`], { encoding: 'buffer', timeout: 60_000 });
    const bytes = Buffer.from(r.stdout);
    expect(sha256(bytes)).toBe(first.digest);
    const m = JSON.parse(bytes.toString('utf8'));
    const sm = siteManifest(site.dir);
    expect(m.artifactType).toBe('application/vnd.edgeimg.site.v1+json');
    expect(m.config).toEqual({ mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2, data: 'e30=' });
    const titles = m.layers.map((l: { annotations: Record<string, string> }) => l.annotations['org.opencontainers.image.title']);
    const expected = [...sm.artifacts.map((a) => a.path), 'manifest.json', 'manifest.json.sig', 'SHA256SUMS'].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(titles).toEqual(expected);
    for (const l of m.layers) {
      const a = sm.artifacts.find((x) => x.path === l.annotations['org.opencontainers.image.title']);
      if (a) expect(l.digest).toBe(`sha256:${a.sha256}`);
      if (a) expect(l.size).toBe(a.bytes);
      expect(l.annotations['dev.edgeimg.secret']).toBe(a?.secret ? 'true' : undefined);
    }
    expect(m.annotations).toEqual({
      'dev.edgeimg.generator': `${sm.generator.name} ${sm.generator.version}`,
      'dev.edgeimg.input-digest': sm.inputDigest,
      'dev.edgeimg.os': sm.os,
      'dev.edgeimg.os-version': sm.osVersion,
      'dev.edgeimg.secrets': 'included',
      'dev.edgeimg.site': SITE,
    });
    const text = bytes.toString('utf8');
    expect(text).not.toContain('org.opencontainers.image.created');
    expect(text).not.toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/);
  });

  it('leaves every secret artifact out of the registry without --include-secrets, and says which', async () => {
    const sm = siteManifest(site.dir);
    const secret = sm.artifacts.filter((a) => a.secret).map((a) => a.path).sort();
    expect(secret.length).toBeGreaterThanOrEqual(10); // user-data, seed.iso, seed.img per node, talosconfig
    const r = await publish(`${reg.host}/fleet/public:v1`);
    expect(r.code, r.err).toBe(0);
    const res = JSON.parse(r.out);
    expect(res.excluded).toEqual(secret);
    expect(res.secrets).toBe('excluded');
    expect(r.err).toContain('leaving out 10 secret artifacts');
    for (const a of sm.artifacts) expect(await blobStatus(reg.host, 'fleet/public', `sha256:${a.sha256}`), a.path).toBe(a.secret ? 404 : 200);
    // the same blobs are in the repository published with --include-secrets
    for (const a of sm.artifacts.filter((x) => x.secret)) expect(await blobStatus(reg.host, 'fleet/store-0412', `sha256:${a.sha256}`), a.path).toBe(200);
    const m = JSON.parse((await rawManifest(reg.host, 'fleet/public', 'v1')).toString('utf8'));
    expect(m.annotations['dev.edgeimg.secrets']).toBe('excluded');
    expect(m.annotations['dev.edgeimg.excluded']).toBe(secret.join(','));
    expect(JSON.stringify(m.layers)).not.toMatch(/user-data|seed\.i|talosconfig/);

    // pulled: the public files, the secret ones reported missing, not an error
    const into = join(work, 'pulled-public');
    const p = await pull(`${reg.host}/fleet/public:v1`, into);
    expect(p.code, p.err).toBe(0);
    expect(JSON.parse(p.out).missing).toEqual(secret);
    const want = Object.fromEntries(Object.entries(tree(site.dir, LOCAL_ONLY)).filter(([k]) => !secret.includes(k)));
    expect(tree(join(into, SITE))).toEqual(want);
  }, 120_000);

  describe('big files', () => {
    const requests: LoggedRequest[] = [];
    let proxy: RunningServer;
    const bigOut = join(work, 'big-out');
    const BIG = 'nodes/cp-1/big.img';
    const BIG_BYTES = 41 * 1024 * 1024;
    const goodPull = join(work, 'pulled-big');

    it('uploads a 41 MiB file in 1 MiB PATCH chunks, streamed, and pulls it back intact', async () => {
      proxy = await startLoggingProxy(reg.host, requests);
      servers.push(proxy);
      cpSync(site.out, bigOut, { recursive: true });
      addBigArtifact(join(bigOut, SITE), site.secrets, BIG, BIG_BYTES);
      const r = await run(['publish', '--site', SITE, '--out', bigOut, '--to', `${proxy.host}/fleet/big:v1`, '--plain-http', '--json', '--chunk-size', '1MiB']);
      expect(r.code, r.err).toBe(0);
      const res = JSON.parse(r.out);
      expect(res.chunks).toBe(41);
      const patches = requests.filter((q) => q.method === 'PATCH');
      expect(patches).toHaveLength(41);
      let next = 0;
      for (const q of patches) {
        const [s, e] = String(q.headers['content-range']).split('-').map(Number);
        expect(s).toBe(next);
        expect(q.bodyBytes).toBe(e! - s! + 1);
        expect(Number(q.headers['content-length'])).toBe(q.bodyBytes);
        expect(q.bodyBytes).toBeLessThanOrEqual(1024 * 1024);
        next = e! + 1;
      }
      expect(next).toBe(BIG_BYTES);
      const commit = requests.filter((q) => q.method === 'PUT' && q.url.includes('digest=')).find((q) => q.bodyBytes === 0);
      expect(commit, 'the chunked upload ends with a PUT ?digest= without a body').toBeDefined();
      // each PATCH went to the Location the previous answer gave: absolute URLs here
      // (distribution's default; relative ones in auth.test.ts), a new _state each time
      expect(new Set(patches.map((q) => q.url)).size).toBe(41);
      const locations = requests.filter((q) => q.status === 202).map((q) => q.location!);
      expect(locations.every((l) => l.startsWith(`http://${proxy.host}/v2/fleet/big/blobs/uploads/`))).toBe(true);
      for (const q of patches) expect(locations).toContain(`http://${proxy.host}${q.url}`);

      const p = await run(['pull', `${proxy.host}/fleet/big:v1`, '--out', goodPull, '--secrets', site.secrets, '--plain-http', '--json']);
      expect(p.code, p.err).toBe(0);
      expect(tree(join(goodPull, SITE))[BIG]).toBe(tree(join(bigOut, SITE))[BIG]);
      expect(statSync(join(goodPull, SITE, BIG)).size).toBe(BIG_BYTES);
    }, 180_000);

    it('pushes and pulls a 300 MiB file holding far less than that in memory', async () => {
      const hugeOut = join(work, 'huge-out');
      cpSync(site.out, hugeOut, { recursive: true });
      const HUGE = 300 * 1024 * 1024;
      addBigArtifact(join(hugeOut, SITE), site.secrets, 'nodes/cp-2/huge.img', HUGE, { sparse: true });
      const child = (args: string[]) => execa('node', ['--import', 'tsx', join(repoRoot, 'test/oci/rss-child.ts'), ...args], { cwd: repoRoot, reject: false, timeout: 300_000 });
      const peakMiB = (stderr: string): number => Number(/MAX_RSS_KB (\d+)\s*$/.exec(stderr)?.[1]) / 1024;
      const pushed = await child(['publish', '--site', SITE, '--out', hugeOut, '--to', `${reg.host}/fleet/huge:v1`, '--plain-http']);
      expect(pushed.exitCode, pushed.stderr).toBe(0);
      const into = join(work, 'pulled-huge');
      const pulled = await child(['pull', `${reg.host}/fleet/huge:v1`, '--out', into, '--secrets', site.secrets, '--plain-http']);
      expect(pulled.exitCode, pulled.stderr).toBe(0);
      expect(statSync(join(into, SITE, 'nodes/cp-2/huge.img')).size).toBe(HUGE);
      // node and the CLI alone take about 100 MiB; holding the file would add 300
      expect(peakMiB(pushed.stderr)).toBeLessThan(250);
      expect(peakMiB(pulled.stderr)).toBeLessThan(250);
    }, 300_000);

    it('refuses a blob changed in the registry and leaves OUT as it was', async () => {
      const digest = JSON.parse(readFileSync(join(bigOut, SITE, 'manifest.json'), 'utf8')).artifacts.find((a: { path: string }) => a.path === BIG).sha256 as string;
      const data = join(reg.dataDir, 'docker/registry/v2/blobs/sha256', digest.slice(0, 2), digest, 'data');
      expect(existsSync(data)).toBe(true);
      const fd = openSync(data, 'r+');
      writeSync(fd, Buffer.from('tampered'), 0, 8, 20 * 1024 * 1024);
      closeSync(fd);
      const before = listing(goodPull);
      const p = await run(['pull', `${reg.host}/fleet/big:v1`, '--out', goodPull, '--secrets', site.secrets, '--plain-http']);
      expect(p.code, p.err).toBe(1);
      expect(p.err).toContain(`blob sha256:${digest} arrived with sha256`);
      expect(p.err).not.toMatch(/\n\s+at /); // no stack trace
      expect(listing(goodPull)).toEqual(before);
    }, 120_000);
  });

  describe('refuses what is not an intact edgeimg site, writing nothing', () => {
    const out = join(work, 'refusals');
    let good: Buffer;
    let before: string[];

    beforeAll(async () => {
      if (!has) return;
      good = await rawManifest(reg.host, 'fleet/store-0412', 'v1');
      const p = await pull(`${reg.host}/fleet/store-0412:v1`, out);
      expect(p.code, p.err).toBe(0);
      before = listing(out);
    }, 120_000);

    const crafted = async (tag: string, edit: (m: { artifactType?: string; layers: Array<{ digest: string; annotations: Record<string, string> }> }) => void): Promise<string> => {
      const m = JSON.parse(good.toString('utf8'));
      edit(m);
      await putRawManifest(reg.host, 'fleet/store-0412', tag, Buffer.from(JSON.stringify(m)));
      return `${reg.host}/fleet/store-0412:${tag}`;
    };

    it.each([
      ['dotdot', '../escaped'],
      ['deepdotdot', 'nodes/../../escaped'],
      ['absolute', '/tmp/edgeimg-escaped'],
      ['backslash', 'nodes\\..\\escaped'],
    ])('a layer titled like %s (%s)', async (tag, title) => {
      const ref = await crafted(tag, (m) => {
        m.layers.find((l) => l.annotations['org.opencontainers.image.title'] === 'nodes/cp-1/meta-data')!.annotations['org.opencontainers.image.title'] = title;
      });
      const p = await pull(ref, out);
      expect(p.code, p.err).toBe(1);
      expect(p.err).toContain('refusing to write it');
      expect(listing(out)).toEqual(before);
      expect(existsSync(join(out, '..', 'escaped'))).toBe(false);
      expect(existsSync('/tmp/edgeimg-escaped')).toBe(false);
    });

    it('another artifactType', async () => {
      const ref = await crafted('other-type', (m) => {
        m.artifactType = 'application/vnd.example.other.v1+json';
      });
      const p = await pull(ref, out);
      expect(p.code, p.err).toBe(1);
      expect(p.err).toContain('not an edgeimg site: artifactType "application/vnd.example.other.v1+json"');
      expect(listing(out)).toEqual(before);
    });

    it("a layer holding another file's bytes than manifest.json lists", async () => {
      const ref = await crafted('swapped', (m) => {
        const t = (p: string) => m.layers.find((l) => l.annotations['org.opencontainers.image.title'] === p)!;
        t('nodes/cp-1/network-config').digest = t('nodes/cp-2/network-config').digest;
      });
      const p = await pull(ref, out);
      expect(p.code, p.err).toBe(1);
      expect(p.err).toContain('nodes/cp-1/network-config: the layer is sha256:');
      expect(listing(out)).toEqual(before);
    });

    it('a manifest signed by another key than the fleet key', async () => {
      const other = join(work, 'other-secrets');
      mkdirSync(join(other, '_signing'), { recursive: true });
      writeFileSync(join(other, '_signing', 'id_ed25519.pub'), `${publicKeyLine(generateKey('someone-else').publicKey, 'someone-else')}\n`);
      const p = await run(['pull', `${reg.host}/fleet/store-0412:v1`, '--out', out, '--secrets', other, '--catalogue', join(work, 'no-catalogue'), '--plain-http']);
      expect(p.code, p.err).toBe(1);
      expect(p.err).toMatch(/is signed by SHA256:\S+, not the fleet key/);
      expect(listing(out)).toEqual(before);
    });

    it('a directory in OUT that edgeimg did not write', async () => {
      const foreign = join(work, 'foreign-out');
      mkdirSync(join(foreign, SITE), { recursive: true });
      writeFileSync(join(foreign, SITE, 'notes.txt'), 'mine\n');
      const was = listing(foreign);
      const p = await pull(`${reg.host}/fleet/store-0412:v1`, foreign);
      expect(p.code, p.err).toBe(1);
      expect(p.err).toContain('is not edgeimg output');
      expect(listing(foreign)).toEqual(was);
    });
  });

  describe('refuses to publish a site that does not match its manifest', () => {
    it('a changed byte: exit 1, nothing pushed', async () => {
      const out = join(work, 'changed-out');
      cpSync(site.out, out, { recursive: true });
      writeFileSync(join(out, SITE, 'nodes/cp-2/network-config'), `${readFileSync(join(out, SITE, 'nodes/cp-2/network-config'), 'utf8')}# changed\n`);
      const r = await run(['publish', '--site', SITE, '--out', out, '--to', `${reg.host}/fleet/changed:v1`, '--plain-http']);
      expect(r.code, r.err).toBe(1);
      expect(r.err).toContain('does not match its manifest.json; nothing was pushed');
      expect(r.err).toContain('nodes/cp-2/network-config:');
      expect((await fetch(`http://${reg.host}/v2/fleet/changed/manifests/v1`)).status).toBe(404);
    });

    it('a site never built: exit 3', async () => {
      const r = await run(['publish', '--site', 'store-0007', '--out', site.out, '--to', `${reg.host}/fleet/x:v1`, '--plain-http']);
      expect(r.code, r.err).toBe(3);
      expect(r.err).toContain('site store-0007 was never built');
    });
  });

  describe('environment and usage', () => {
    it('an unreachable registry: exit 3 naming the URL', async () => {
      const port = await freePort();
      const r = await publish(`127.0.0.1:${port}/fleet/x:v1`);
      expect(r.code, r.err).toBe(3);
      expect(r.err).toContain(`http://127.0.0.1:${port}/v2/`);
      expect(r.err).toContain('refused');
    });

    it('a registry that never answers: exit 3 after --timeout', async () => {
      const silent = await startSilentServer();
      servers.push(silent);
      const t0 = Date.now();
      const r = await run(['pull', `${silent.host}/fleet/x:v1`, '--out', join(work, 'never'), '--plain-http', '--timeout', '1']);
      expect(r.code, r.err).toBe(3);
      expect(r.err).toContain('no answer within 1 s');
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(existsSync(join(work, 'never'))).toBe(false);
    });

    it('an HTTPS client against a plain-HTTP registry says to use --plain-http', async () => {
      const r = await run(['publish', '--site', SITE, '--out', site.out, '--to', `${reg.host}/fleet/x:v1`, '--timeout', '10']);
      expect(r.code, r.err).toBe(3);
      expect(r.err).toContain('--plain-http');
    });

    it.each([
      [['publish', '--site', SITE], 'give --to'],
      [['publish', '--to', '127.0.0.1:5000/x'], 'give --site'],
      [['publish', '--site', SITE, '--to', 'no-registry'], 'no registry host'],
      [['publish', '--site', SITE, '--to', '127.0.0.1:5000/Upper/Case'], 'lowercase path components'],
      [['publish', '--site', SITE, '--to', '127.0.0.1:5000/x@sha256:' + '0'.repeat(64)], 'names a tag, not a digest'],
      [['publish', '--site', SITE, '--to', '127.0.0.1:5000/x', '--chunk-size', '10'], '--chunk-size'],
      [['pull'], 'give exactly one'],
      [['pull', '127.0.0.1:5000/x@sha256:abc'], 'the digest must be'],
    ])('%j: exit 2', async (args, message) => {
      const r = await run(args);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(message);
    });

    it.each(['publish', 'pull'])('%s --help', async (cmd) => {
      const r = await run([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.out).toContain(`edgeimg ${cmd}`);
      expect(r.out).toContain('docs/oci.md');
    });
  });
});
