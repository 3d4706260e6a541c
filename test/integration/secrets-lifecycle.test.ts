// `edgeimg secrets …` end to end, cross-checked with the real age CLI (age, age-keygen: Debian
// package `age`) and openssl: encryption at rest, conversion, recipient changes, status,
// reissue-admin and import of a talosctl-layout bundle.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse as parseYaml } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { ADMIN_VALIDITY_MS, generateTalosSecrets } from '../../src/secrets/generate.js';
import { serializeSiteSecrets, siteSecretsAgePath, siteSecretsPath, writeSiteStore } from '../../src/secrets/store.js';
import { copyCatalogue, type CatalogueCopy } from '../helpers/catalogue.js';
import { requireTools } from '../helpers/tools.js';

const haveTools = requireTools('age', 'age-keygen', 'openssl');
const DAY_MS = 86_400_000;

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

async function keygen(file: string): Promise<string> {
  const r = await execa('age-keygen', ['-o', file]);
  const m = /age1[0-9a-z]+/.exec(r.stderr + r.stdout);
  if (!m) throw new Error('age-keygen printed no recipient');
  return m[0];
}

async function ageDecryptCli(identity: string, file: string): Promise<string> {
  return (await execa('age', ['-d', '-i', identity, file], { stripFinalNewline: false })).stdout;
}

async function grepPrivate(dir: string): Promise<string[]> {
  // the fleet's manifest signing key (SECRETS/_signing, src/trust) is not site secrets: see docs/secrets.md
  const r = await execa('grep', ['-rl', '--exclude-dir=_signing', 'PRIVATE', dir], { reject: false });
  return r.stdout.split('\n').filter(Boolean);
}

describe.skipIf(!haveTools)('edgeimg secrets with the real age and openssl', () => {
  let cat: CatalogueCopy;
  let dir: string;
  let secrets: string;
  let key1: string;
  let rcp1: string;
  let key2: string;
  let rcp2: string;
  const common = (): string[] => ['--catalogue', cat.catalogue, '--secrets', secrets];
  const setRecipients = (rs: string[]): void => {
    cat.write(
      'catalogue/fleet.yaml',
      baseFleet.replace(/^ {2}ntp:/m, rs.length ? `  secrets:\n    ageRecipients: [${rs.join(', ')}]\n  ntp:` : '  ntp:'),
    );
  };
  let baseFleet: string;

  beforeAll(async () => {
    cat = copyCatalogue();
    baseFleet = await readFile(cat.path('catalogue/fleet.yaml'), 'utf8');
    dir = await mkdtemp(join(tmpdir(), 'edgeimg-secrets-cli-'));
    secrets = join(dir, 'secrets');
    key1 = join(dir, 'key1.txt');
    key2 = join(dir, 'key2.txt');
    rcp1 = await keygen(key1);
    rcp2 = await keygen(key2);
  });
  afterAll(async () => {
    cat.cleanup();
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    delete process.env['EDGEIMG_AGE_IDENTITY'];
    delete process.env['SOPS_AGE_KEY_FILE'];
    setRecipients([]);
  });

  it('encrypt: age -d gives back the exact YAML; a recipient change re-encrypts without changing a value; decrypt restores it', async () => {
    // plaintext secrets as today, from a build without recipients
    const b = await run('build', '--site', 'store-0007', ...common(), '--out', join(dir, 'out0'));
    expect(b.code, b.err).toBe(0);
    const plain = await readFile(siteSecretsPath(secrets, 'store-0007'), 'utf8');

    setRecipients([rcp1]);
    const e = await run('secrets', 'encrypt', '--site', 'store-0007', ...common());
    expect(e.code, e.err).toBe(0);
    const enc = siteSecretsAgePath(secrets, 'store-0007');
    expect((await stat(enc)).mode & 0o777).toBe(0o600);
    await expect(stat(siteSecretsPath(secrets, 'store-0007'))).rejects.toThrow();
    expect(await ageDecryptCli(key1, enc)).toBe(plain);
    expect(await grepPrivate(secrets)).toEqual([]);

    // add a recipient: needs the identity to read the store, then either key decrypts
    setRecipients([rcp1, rcp2]);
    const noId = await run('secrets', 'encrypt', '--site', 'store-0007', ...common());
    expect(noId.code).toBe(3);
    expect(noId.err).toMatch(/EDGEIMG_AGE_IDENTITY/);
    process.env['EDGEIMG_AGE_IDENTITY'] = key1;
    expect((await run('secrets', 'encrypt', '--site', 'store-0007', ...common())).code).toBe(0);
    expect(await ageDecryptCli(key2, enc)).toBe(plain);
    // remove the first: its key no longer decrypts
    setRecipients([rcp2]);
    expect((await run('secrets', 'encrypt', '--site', 'store-0007', ...common())).code).toBe(0);
    expect(await ageDecryptCli(key2, enc)).toBe(plain);
    const r = await execa('age', ['-d', '-i', key1, enc], { reject: false });
    expect(r.exitCode).not.toBe(0);

    // wrong identity: exit 3 naming the variable and path; a build does not mint new secrets
    const wrong = await run('secrets', 'status', '--site', 'store-0007', ...common());
    expect(wrong.code).toBe(3);
    expect(wrong.err).toContain(`EDGEIMG_AGE_IDENTITY=${key1}`);
    const before = await readFile(enc);
    const wb = await run('build', '--site', 'store-0007', ...common(), '--out', join(dir, 'out-wrong'));
    expect(wb.code).toBe(3);
    expect(await readFile(enc)).toEqual(before);
    expect((await readdir(join(secrets, 'store-0007'))).filter((f) => !f.startsWith('.'))).toEqual(['secrets.yaml.age']);

    // talhelper's variable works too; the build reads the encrypted store, writes no plaintext
    delete process.env['EDGEIMG_AGE_IDENTITY'];
    process.env['SOPS_AGE_KEY_FILE'] = key2;
    const ok = await run('build', '--site', 'store-0007', ...common(), '--out', join(dir, 'out1'));
    expect(ok.code, ok.err).toBe(0);
    expect(await grepPrivate(secrets)).toEqual([]);
    expect(await readFile(join(dir, 'out1/store-0007/talosconfig'), 'utf8')).toBe(await readFile(join(dir, 'out0/store-0007/talosconfig'), 'utf8'));

    const d = await run('secrets', 'decrypt', '--site', 'store-0007', ...common());
    expect(d.code, d.err).toBe(0);
    expect(await readFile(siteSecretsPath(secrets, 'store-0007'), 'utf8')).toBe(plain);
    await expect(stat(enc)).rejects.toThrow();
  });

  it('build creates a brand-new site encrypted when the Fleet has recipients: no plaintext secret on disk', async () => {
    setRecipients([rcp1]);
    process.env['EDGEIMG_AGE_IDENTITY'] = key1;
    const fresh = join(dir, 'secrets-fresh');
    const b = await run('build', '--site', 'store-0412', '--catalogue', cat.catalogue, '--secrets', fresh, '--out', join(dir, 'out-fresh'));
    expect(b.code, b.err).toBe(0);
    expect((await readdir(join(fresh, 'store-0412'))).filter((f) => !f.startsWith('.'))).toEqual(['secrets.yaml.age']);
    // nothing in the secrets directory holds a PRIVATE key in plaintext: the site secrets and
    // the fleet signing key made by this build are both age-encrypted
    expect((await execa('grep', ['-rl', 'PRIVATE', fresh], { reject: false })).stdout).toBe('');
    expect((await readdir(join(fresh, '_signing'))).sort()).toEqual(['id_ed25519.age', 'id_ed25519.pub']);
    expect(await ageDecryptCli(key1, join(fresh, '_signing', 'id_ed25519.age'))).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    // and the next build reads the encrypted key: same signature anchor, no new key
    const again = await run('build', '--site', 'store-0412', '--catalogue', cat.catalogue, '--secrets', fresh, '--out', join(dir, 'out-fresh2'));
    expect(again.code, again.err).toBe(0);
    expect(await readFile(join(dir, 'out-fresh2/store-0412/manifest.json.sig'), 'utf8')).toBe(await readFile(join(dir, 'out-fresh/store-0412/manifest.json.sig'), 'utf8'));
    const yaml = await ageDecryptCli(key1, siteSecretsAgePath(fresh, 'store-0412'));
    expect(yaml).toMatch(/PRIVATE KEY|key:/);
  });

  it('reads what `age -r … -o secrets.yaml.age` wrote', async () => {
    const s = await generateTalosSecrets();
    const yaml = serializeSiteSecrets(s);
    const src = join(dir, 'in.yaml');
    await writeFile(src, yaml, { mode: 0o600 });
    await execa('mkdir', ['-p', '-m', '700', join(secrets, 'store-0412')]);
    await execa('age', ['-r', rcp1, '-o', siteSecretsAgePath(secrets, 'store-0412'), src]);
    await rm(src);
    process.env['EDGEIMG_AGE_IDENTITY'] = key1;
    const st = await run('secrets', 'status', '--site', 'store-0412', '--json', ...common());
    expect(st.code, st.err).toBe(0);
    const j = JSON.parse(st.out) as { sites: Array<{ store: string; certificates: Array<{ name: string; notAfter: string }> }> };
    expect(j.sites[0]!.store).toBe('encrypted');
    const admin = j.sites[0]!.certificates.find((c) => /admin/.test(c.name))!;
    expect(admin.notAfter).toBe(new Date(new X509Certificate(s.admin.crt).validTo).toISOString());
  });

  it('status: warns under 30 days, exits 1 under 7', async () => {
    const now = Date.now();
    const soon = await generateTalosSecrets({ now: new Date(now - ADMIN_VALIDITY_MS + 5 * DAY_MS) });
    await writeSiteStore(secrets, 'store-0412', serializeSiteSecrets(soon), { recipients: [] });
    const r1 = await run('secrets', 'status', '--site', 'store-0412', ...common());
    expect(r1.code).toBe(1);
    expect(r1.err).toMatch(/admin client certificate .*expires in [45] days.*under 7 days/);
    const later = await generateTalosSecrets({ now: new Date(now - ADMIN_VALIDITY_MS + 20 * DAY_MS) });
    await writeSiteStore(secrets, 'store-0412', serializeSiteSecrets(later), { recipients: [] });
    const r2 = await run('secrets', 'status', '--site', 'store-0412', '--json', ...common());
    expect(r2.code).toBe(0);
    expect(r2.err).toMatch(/warning: store-0412: admin client certificate \(talosconfig\) expires in 1[89] days/);
    expect(JSON.parse(r2.out).ok).toBe(true);

    // reissue-admin: same CA, new serial, a year from now, openssl verifies the chain
    const before = new X509Certificate(later.admin.crt);
    const ri = await run('secrets', 'reissue-admin', '--site', 'store-0412', ...common());
    expect(ri.code, ri.err).toBe(0);
    const stored = parseYaml(await readFile(siteSecretsPath(secrets, 'store-0412'), 'utf8')) as Record<string, any>;
    const b64 = (x: string): string => Buffer.from(x, 'base64').toString('utf8');
    expect(b64(stored['certs']['os']['crt'])).toBe(later.certs.os.crt);
    const adminPem = b64(stored['edgeimg']['admin']['crt']);
    const after = new X509Certificate(adminPem);
    expect(after.serialNumber).not.toBe(before.serialNumber);
    expect(after.issuer).toBe(before.issuer);
    expect(Math.abs(new Date(after.validTo).getTime() - (Date.now() + ADMIN_VALIDITY_MS))).toBeLessThan(120_000);
    await writeFile(join(dir, 'ca.crt'), later.certs.os.crt);
    await writeFile(join(dir, 'admin.crt'), adminPem);
    const v = await execa('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), join(dir, 'admin.crt')], { reject: false, all: true });
    expect(v.exitCode, v.all).toBe(0);
    const r3 = await run('secrets', 'status', '--site', 'store-0412', ...common());
    expect(r3.code).toBe(0);
    expect(r3.err).toBe('');
  });

  it('import: a talosctl bundle made with openssl; the build uses exactly its CAs; refuses to overwrite without --force', async () => {
    const f = (n: string): string => join(dir, `imp-${n}`);
    const ssl = (...a: string[]): Promise<unknown> => execa('openssl', a);
    const randSki = (): string => [...Array(20)].map(() => Math.floor(Math.random() * 256).toString(16).padStart(2, '0')).join(':');
    await ssl('genpkey', '-algorithm', 'ed25519', '-out', f('os.key'));
    const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,digitalSignature,keyCertSign', '-addext', 'extendedKeyUsage=serverAuth,clientAuth', '-addext', 'authorityKeyIdentifier=keyid'];
    // a random SKI as Talos makes (not the key hash): the reissued admin cert must carry it as AKI
    await ssl('req', '-x509', '-new', '-key', f('os.key'), '-subj', '/O=talos', '-days', '3650', ...caExt, '-addext', `subjectKeyIdentifier=${randSki()}`, '-out', f('os.crt'));
    for (const [n, subj] of [['k8s', '/O=kubernetes'], ['etcd', '/O=etcd'], ['agg', '/CN=front-proxy']] as const) {
      await ssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f(`${n}.key`));
      await ssl('req', '-x509', '-new', '-key', f(`${n}.key`), '-subj', subj, '-days', '3650', ...caExt, '-addext', `subjectKeyIdentifier=${randSki()}`, '-out', f(`${n}.crt`));
    }
    await ssl('genrsa', '-traditional', '-out', f('sa.key'), '2048');
    const pem = async (n: string): Promise<string> => readFile(f(n), 'utf8');
    // talosctl writes Ed25519 keys as "ED25519 PRIVATE KEY" around the PKCS#8 body
    const osKey = (await pem('os.key')).replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '-----$1 ED25519 PRIVATE KEY-----');
    const b = (s: string): string => Buffer.from(s).toString('base64');
    const bundle =
      'cluster:\n' +
      `    id: ${Buffer.alloc(32, 7).toString('base64')}\n` +
      `    secret: ${Buffer.alloc(32, 9).toString('base64')}\n` +
      'secrets:\n    bootstraptoken: abcdef.0123456789abcdef\n' +
      `    secretboxencryptionsecret: ${Buffer.alloc(32, 3).toString('base64')}\n` +
      'trustdinfo:\n    token: ghijkl.0123456789abcdef\n' +
      'certs:\n' +
      `    etcd:\n        crt: ${b(await pem('etcd.crt'))}\n        key: ${b(await pem('etcd.key'))}\n` +
      `    k8s:\n        crt: ${b(await pem('k8s.crt'))}\n        key: ${b(await pem('k8s.key'))}\n` +
      `    k8saggregator:\n        crt: ${b(await pem('agg.crt'))}\n        key: ${b(await pem('agg.key'))}\n` +
      `    k8sserviceaccount:\n        key: ${b(await pem('sa.key'))}\n` +
      `    os:\n        crt: ${b(await pem('os.crt'))}\n        key: ${b(osKey)}\n`;
    await writeFile(f('secrets.yaml'), bundle, { mode: 0o600 });

    setRecipients([rcp1]);
    process.env['EDGEIMG_AGE_IDENTITY'] = key1;
    const i = await run('secrets', 'import', '--site', 'store-0007', f('secrets.yaml'), '--force', ...common());
    expect(i.code, i.err).toBe(0);
    const again = await run('secrets', 'import', '--site', 'store-0007', f('secrets.yaml'), ...common());
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/--force/);
    expect(await grepPrivate(secrets)).toEqual([]);

    const bo = await run('build', '--site', 'store-0007', ...common(), '--out', join(dir, 'out-imp'));
    expect(bo.code, bo.err).toBe(0);
    const tc = parseYaml(await readFile(join(dir, 'out-imp/store-0007/talosconfig'), 'utf8')) as { contexts: Record<string, { ca: string; crt: string }> };
    const ctx = Object.values(tc.contexts)[0]!;
    const ca = new X509Certificate(Buffer.from(ctx.ca, 'base64').toString('utf8'));
    expect(ca.fingerprint256).toBe(new X509Certificate(await pem('os.crt')).fingerprint256);
    await writeFile(f('admin.crt'), Buffer.from(ctx.crt, 'base64').toString('utf8'));
    const v = await execa('openssl', ['verify', '-CAfile', f('os.crt'), f('admin.crt')], { reject: false, all: true });
    expect(v.exitCode, v.all).toBe(0);
    const mc = await readFile(join(dir, 'out-imp/store-0007/nodes', (await readdir(join(dir, 'out-imp/store-0007/nodes')))[0]!, 'user-data'), 'utf8');
    expect(mc).toContain(b(await pem('k8s.crt')));
  });

  it('import: a Kairos site takes an existing join token', async () => {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'k3stok.0123456789abcdef\n', { mode: 0o600 });
    const r = await run('secrets', 'import', '--site', 'plant-0031', '--token-file', tokenFile, '--force', ...common());
    expect(r.code, r.err).toBe(0);
    const y = parseYaml(await readFile(siteSecretsPath(secrets, 'plant-0031'), 'utf8')) as { token: string };
    expect(y.token).toBe('k3stok.0123456789abcdef');
    const bad = await run('secrets', 'import', '--site', 'plant-0031', '--token', 'nope', '--force', ...common());
    expect(bad.code).toBe(2);
    expect(bad.err).not.toContain('nope"');
  });
});
