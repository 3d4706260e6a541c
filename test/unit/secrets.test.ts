import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { parse } from 'yaml';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkKairosPki,
  checkTalosPki,
  generateKairosSecrets,
  generateTalosSecrets,
  generateToken,
  loadOrCreateSiteSecrets,
  parseSiteSecrets,
  renderTalosconfig,
  serializeSiteSecrets,
  siteSecretsPath,
  TOKEN_RE,
  type KairosSecrets,
  type TalosSecrets,
} from '../../src/secrets/index.js';
import { randomTokenString } from '../../src/secrets/generate.js';

const STRICT_TOKEN = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;
const STD_B64 = /^[A-Za-z0-9+/]{43}=$/; // 32 bytes -> 44 chars with one '=' of padding

let talos: TalosSecrets;
let talos2: TalosSecrets;
let kairos: KairosSecrets;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'edgeimg-secrets-'));
  [talos, talos2, kairos] = await Promise.all([generateTalosSecrets(), generateTalosSecrets(), generateKairosSecrets()]);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let n = 0;
const freshDir = async (): Promise<string> => {
  const d = join(root, `case-${n++}`);
  await mkdir(d);
  return d;
};

/** Write a secrets file by hand (bypassing generation), 0600, in a 0700 site dir. */
async function plant(secretsDir: string, siteId: string, text: string, mode = 0o600): Promise<string> {
  const file = siteSecretsPath(secretsDir, siteId);
  await mkdir(join(secretsDir, siteId), { recursive: true, mode: 0o700 });
  await writeFile(file, text, { mode });
  await chmod(file, mode);
  return file;
}

/** Every secret-bearing string of a Talos site, in the forms that could leak into a message. */
function secretStrings(s: TalosSecrets): string[] {
  const out = [s.clusterId, s.clusterSecret, s.secretboxEncryptionSecret, s.bootstrapToken, s.trustdToken];
  out.push(s.bootstrapToken.split('.')[1]!, s.trustdToken.split('.')[1]!);
  const keys = [s.certs.os.key, s.certs.k8s.key, s.certs.k8sAggregator.key, s.certs.etcd.key, s.certs.k8sServiceAccount.key, s.admin.key];
  for (const k of keys) {
    out.push(Buffer.from(k).toString('base64').slice(0, 40));
    for (const line of k.split('\n')) if (line && !line.startsWith('-----')) out.push(line);
  }
  return out;
}

async function errorOf(p: Promise<unknown>, what = ''): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error(`expected a rejection${what ? ` for ${what}` : ''}`);
}

describe('tokens and random values', () => {
  it('tokens have the [a-z0-9]{6}.[a-z0-9]{16} shape', () => {
    expect(TOKEN_RE.source).toBe(STRICT_TOKEN.source);
    for (let i = 0; i < 500; i++) expect(generateToken()).toMatch(STRICT_TOKEN);
    expect(talos.bootstrapToken).toMatch(STRICT_TOKEN);
    expect(talos.trustdToken).toMatch(STRICT_TOKEN);
    expect(kairos.token).toMatch(STRICT_TOKEN);
    expect(talos.bootstrapToken).not.toBe(talos.trustdToken);
  });

  it('token characters are unbiased (modulo bias would favour 0-3 by ~14%)', () => {
    const counts = new Map<string, number>();
    for (const c of randomTokenString(110_000)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(36);
    const firstFour = ['0', '1', '2', '3'].reduce((a, c) => a + counts.get(c)!, 0) / 4;
    const rest = [...counts.entries()].filter(([c]) => !'0123'.includes(c)).reduce((a, [, v]) => a + v, 0) / 32;
    expect(firstFour / rest).toBeLessThan(1.07);
    expect(firstFour / rest).toBeGreaterThan(0.93);
  });

  it('cluster id, cluster secret and secretbox secret are 32 random bytes in standard base64', () => {
    const values = [talos.clusterId, talos.clusterSecret, talos.secretboxEncryptionSecret];
    for (const v of values) {
      expect(v).toMatch(STD_B64);
      expect(Buffer.from(v, 'base64')).toHaveLength(32);
    }
    expect(new Set([...values, talos2.clusterId, talos2.clusterSecret, talos2.secretboxEncryptionSecret]).size).toBe(6);
  });
});

describe('certificates', () => {
  it('CAs have the Talos key types, subjects and CA:TRUE; admin is O=os:admin under the OS CA', () => {
    const os = new X509Certificate(talos.certs.os.crt);
    expect(os.publicKey.asymmetricKeyType).toBe('ed25519');
    expect(os.subject).toBe('O=talos');
    for (const [pair, subject] of [
      [talos.certs.k8s, 'O=kubernetes'],
      [talos.certs.etcd, 'O=etcd'],
      [talos.certs.k8sAggregator, 'CN=front-proxy'],
    ] as const) {
      const c = new X509Certificate(pair.crt);
      expect(c.publicKey.asymmetricKeyType).toBe('ec');
      expect(c.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      expect(c.subject).toBe(subject);
      expect(c.ca).toBe(true);
      expect(pair.key).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
    }
    expect(talos.certs.os.key).toMatch(/^-----BEGIN ED25519 PRIVATE KEY-----\n/);
    expect(talos.certs.k8sServiceAccount.key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    const admin = new X509Certificate(talos.admin.crt);
    expect(admin.subject.split('\n')).toContain('O=os:admin');
    expect(admin.ca).toBe(false);
    expect(admin.verify(os.publicKey)).toBe(true);
    expect(admin.publicKey.asymmetricKeyType).toBe('ed25519');
  });

  it('checkTalosPki passes on generated secrets', () => {
    expect(checkTalosPki(talos)).toEqual([]);
    expect(checkKairosPki(kairos)).toEqual([]);
  });

  it('checkTalosPki fails when CA keys are swapped', () => {
    const swapped: TalosSecrets = structuredClone(talos);
    swapped.certs.k8s.key = talos.certs.etcd.key;
    swapped.certs.etcd.key = talos.certs.k8s.key;
    const problems = checkTalosPki(swapped);
    expect(problems).toContain('certs.k8s: certificate does not match its private key');
    expect(problems).toContain('certs.etcd: certificate does not match its private key');
  });

  it('checkTalosPki fails when the OS CA key belongs to another site', () => {
    const bad: TalosSecrets = structuredClone(talos);
    bad.certs.os.key = talos2.certs.os.key;
    expect(checkTalosPki(bad)).toContain('certs.os: certificate does not match its private key');
  });

  it('checkTalosPki fails when the admin cert was issued by another OS CA', () => {
    const bad: TalosSecrets = structuredClone(talos);
    bad.admin = talos2.admin;
    expect(checkTalosPki(bad).join('\n')).toMatch(/edgeimg\.admin\.crt: signature does not verify with the OS CA/);
  });

  it('checkTalosPki flags a non-CA certificate used as a CA, and expiry', () => {
    const bad: TalosSecrets = structuredClone(talos);
    bad.certs.os = { crt: talos.admin.crt, key: talos.admin.key };
    expect(checkTalosPki(bad)).toContain('certs.os.crt: basicConstraints is not CA:TRUE');
    const later = new Date(Date.now() + 400 * 86_400_000);
    expect(checkTalosPki(talos, { at: later }).join('\n')).toMatch(/edgeimg\.admin\.crt: expired/);
  });
});

describe('talosconfig', () => {
  it('decodes to the OS CA and admin PEMs and is deterministic', () => {
    const args = { context: 'site-a', endpoints: ['10.0.0.10', '10.0.0.11'], nodes: ['10.0.0.10'], secrets: talos };
    const text = renderTalosconfig(args);
    expect(renderTalosconfig(structuredClone(args))).toBe(text);
    const doc = parse(text) as { context: string; contexts: Record<string, Record<string, unknown>> };
    expect(doc.context).toBe('site-a');
    expect(Object.keys(doc.contexts)).toEqual(['site-a']);
    const ctx = doc.contexts['site-a']!;
    expect(ctx['endpoints']).toEqual(['10.0.0.10', '10.0.0.11']);
    expect(ctx['nodes']).toEqual(['10.0.0.10']);
    const dec = (k: string): string => Buffer.from(ctx[k] as string, 'base64').toString('utf8');
    expect(dec('ca')).toBe(talos.certs.os.crt);
    expect(dec('crt')).toBe(talos.admin.crt);
    expect(dec('key')).toBe(talos.admin.key);
    expect(text).not.toContain(talos.certs.os.key.split('\n')[1]!);
  });

  it('omits empty nodes and rejects an empty context name', () => {
    const text = renderTalosconfig({ context: 'c', endpoints: ['e'], nodes: [], secrets: talos });
    expect((parse(text) as { contexts: { c: Record<string, unknown> } }).contexts.c).not.toHaveProperty('nodes');
    expect(() => renderTalosconfig({ context: '', endpoints: ['e'], nodes: [], secrets: talos })).toThrow(/context/);
  });
});

describe('secrets file format', () => {
  it('uses the talosctl gen secrets layout plus an edgeimg block, and round-trips', () => {
    const text = serializeSiteSecrets(talos);
    const doc = parse(text) as Record<string, Record<string, unknown>>;
    expect(Object.keys(doc)).toEqual(['cluster', 'secrets', 'trustdinfo', 'certs', 'edgeimg']);
    expect(Object.keys(doc['certs']!)).toEqual(['etcd', 'k8s', 'k8saggregator', 'k8sserviceaccount', 'os']);
    expect(doc['secrets']!['bootstraptoken']).toBe(talos.bootstrapToken);
    const osCrt = (doc['certs']!['os'] as { crt: string }).crt;
    expect(Buffer.from(osCrt, 'base64').toString('utf8')).toBe(talos.certs.os.crt);
    expect(doc['edgeimg']).toMatchObject({ version: 1, kind: 'talos' });
    for (const line of text.split('\n')) expect(line.length).toBeLessThan(5000); // not folded
    expect(parseSiteSecrets(text, 'f', 'talos')).toEqual(talos);
    expect(parseSiteSecrets(serializeSiteSecrets(kairos), 'f', 'kairos')).toEqual(kairos);
  });
});

describe('loadOrCreateSiteSecrets', () => {
  it('creates once and never rotates: the second call loads the byte-identical file', async () => {
    const dir = await freshDir();
    const first = await loadOrCreateSiteSecrets(dir, 'site-a', 'talos');
    expect(first.created).toBe(true);
    const file = join(dir, 'site-a', 'secrets.yaml');
    const bytes1 = await readFile(file);
    const second = await loadOrCreateSiteSecrets(dir, 'site-a', 'talos');
    expect(second.created).toBe(false);
    expect(second.secrets).toEqual(first.secrets);
    expect((await readFile(file)).equals(bytes1)).toBe(true);
    expect(checkTalosPki(second.secrets as TalosSecrets)).toEqual([]);
  });

  it('loads an existing file as is rather than generating', async () => {
    const dir = await freshDir();
    const file = await plant(dir, 'planted', serializeSiteSecrets(talos));
    const r = await loadOrCreateSiteSecrets(dir, 'planted', 'talos');
    expect(r.created).toBe(false);
    expect(r.secrets).toEqual(talos);
    expect(await readFile(file, 'utf8')).toBe(serializeSiteSecrets(talos));
  });

  it('creates the file 0600 and the site directory 0700 even with a permissive umask', async () => {
    const dir = await freshDir();
    const old = process.umask(0);
    try {
      await loadOrCreateSiteSecrets(dir, 'k', 'kairos');
    } finally {
      process.umask(old);
    }
    expect((await stat(join(dir, 'k'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'k', 'secrets.yaml'))).mode & 0o777).toBe(0o600);
    expect(await readdir(join(dir, 'k'))).toEqual(['.pki-checked', 'secrets.yaml']);
  });

  it('tightens a pre-existing site directory and keeps 0600 under a restrictive umask', async () => {
    const dir = await freshDir();
    await mkdir(join(dir, 'pre'), { mode: 0o755 });
    await chmod(join(dir, 'pre'), 0o755);
    const old = process.umask(0o277);
    try {
      await loadOrCreateSiteSecrets(dir, 'pre', 'kairos');
    } finally {
      process.umask(old);
    }
    expect((await stat(join(dir, 'pre'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'pre', 'secrets.yaml'))).mode & 0o777).toBe(0o600);
    expect((await loadOrCreateSiteSecrets(dir, 'pre', 'kairos')).created).toBe(false);
  });

  it('refuses a secrets file readable by others, naming the file and the fix', async () => {
    const dir = await freshDir();
    const file = await plant(dir, 'open', serializeSiteSecrets(kairos), 0o644);
    const err = await errorOf(loadOrCreateSiteSecrets(dir, 'open', 'kairos'));
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/too open/);
    expect(err.message).toContain('chmod 600');
    expect(err.message).not.toContain(kairos.token);
    expect(await readFile(file, 'utf8')).toBe(serializeSiteSecrets(kairos)); // untouched
  });

  it('two concurrent creations of the same site end with one set of secrets', async () => {
    const dir = await freshDir();
    const [a, b] = await Promise.all([
      loadOrCreateSiteSecrets(dir, 'race', 'talos'),
      loadOrCreateSiteSecrets(dir, 'race', 'talos'),
    ]);
    expect(a.secrets).toEqual(b.secrets);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    const onDisk = await loadOrCreateSiteSecrets(dir, 'race', 'talos');
    expect(onDisk.secrets).toEqual(a.secrets);
    expect((await readdir(join(dir, 'race'))).sort()).toEqual(['.pki-checked', 'secrets.yaml']); // no temp files left
  });

  it('separate processes racing on the same site end with one set of secrets', async () => {
    const dir = await freshDir();
    const store = new URL('../../src/secrets/store.ts', import.meta.url).pathname;
    const script =
      `import { loadOrCreateSiteSecrets } from ${JSON.stringify(store)};` +
      `const r = await loadOrCreateSiteSecrets(${JSON.stringify(dir)}, 'xproc', 'talos');` +
      `process.stdout.write(JSON.stringify({ created: r.created, id: r.secrets.clusterId }));`;
    const runs = await Promise.all(
      [0, 1, 2].map(() => execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script])),
    );
    const out = runs.map((r) => JSON.parse(r.stdout) as { created: boolean; id: string });
    expect(out.filter((o) => o.created)).toHaveLength(1);
    expect(new Set(out.map((o) => o.id)).size).toBe(1);
    const onDisk = await loadOrCreateSiteSecrets(dir, 'xproc', 'talos');
    expect((onDisk.secrets as TalosSecrets).clusterId).toBe(out[0]!.id);
    expect((await readdir(join(dir, 'xproc'))).sort()).toEqual(['.pki-checked', 'secrets.yaml']);
  });

  it('many concurrent kairos creations agree as well', async () => {
    const dir = await freshDir();
    const rs = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateSiteSecrets(dir, 'many', 'kairos')));
    expect(rs.filter((r) => r.created)).toHaveLength(1);
    for (const r of rs) expect(r.secrets).toEqual(rs[0]!.secrets);
  });

  it('rejects a file of the other OS kind without touching it', async () => {
    const dir = await freshDir();
    const file = await plant(dir, 'k', serializeSiteSecrets(kairos));
    const err = await errorOf(loadOrCreateSiteSecrets(dir, 'k', 'talos'));
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/holds kairos secrets/);
    expect(await readFile(file, 'utf8')).toBe(serializeSiteSecrets(kairos));

    const file2 = await plant(dir, 't', serializeSiteSecrets(talos));
    const err2 = await errorOf(loadOrCreateSiteSecrets(dir, 't', 'kairos'));
    expect(err2.message).toContain(file2);
    expect(err2.message).toMatch(/holds talos secrets/);
  });

  it('rejects malformed files without ever quoting a secret value', async () => {
    const dir = await freshDir();
    const good = serializeSiteSecrets(talos);
    const secretish = secretStrings(talos);
    const badToken = good.replace(talos.bootstrapToken, 'NOT-A-TOKEN-but-still-secret-xyz');
    const cases: Array<[string, string, RegExp]> = [
      ['yaml', good.replace(`secret: ${talos.clusterSecret}`, `secret: ${talos.clusterSecret}: [oops`), /not valid YAML/],
      ['token', badToken, /secrets\.bootstraptoken/],
      ['missing', good.replace(/ {4}secretboxencryptionsecret: .*\n/, ''), /secrets\.secretboxencryptionsecret/],
      ['pem', good.replace(/( {8}key: )LS0t/, '$1AAAA'), /certs\.etcd\.key/],
      ['plain-talosctl', good.replace(/edgeimg:\n(?: {4}.*\n)+/, ''), /plain 'talosctl gen secrets' bundle/],
      ['not-a-map', '- a\n- b\n', /top level is not a mapping/],
    ];
    for (const [site, text, re] of cases) {
      const file = await plant(dir, site, text);
      const err = await errorOf(loadOrCreateSiteSecrets(dir, site, "talos"), site);
      expect(err.message, site).toMatch(re);
      expect(err.message, site).toContain(file);
      for (const s of secretish) expect(err.message.includes(s), `${site} leaks a secret`).toBe(false);
      expect(err.message).not.toContain('still-secret');
      expect(await readFile(file, 'utf8')).toBe(text); // never regenerated over
    }
  });

  it('finds a swapped CA key when asked to check the PKI (as verify does), without quoting secrets', () => {
    const text = serializeSiteSecrets({ ...talos, certs: { ...talos.certs, k8s: { crt: talos.certs.k8s.crt, key: talos.certs.etcd.key } } });
    // a plain load skips the full PKI parse (it costs ~8 ms per site on every build)
    expect(() => parseSiteSecrets(text, '/x/secrets.yaml', 'talos')).not.toThrow();
    let msg = '';
    try {
      parseSiteSecrets(text, '/x/secrets.yaml', 'talos', { checkPki: true });
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toMatch(/certs\.k8s: certificate does not match its private key/);
    for (const s of secretStrings(talos)) expect(msg.includes(s)).toBe(false);
  });

  it('rejects site ids that would escape the secrets directory', async () => {
    const dir = await freshDir();
    await expect(loadOrCreateSiteSecrets(dir, '../escape', 'kairos')).rejects.toThrow(/invalid site id/);
    await expect(loadOrCreateSiteSecrets(dir, '', 'kairos')).rejects.toThrow(/invalid site id/);
  });
});
