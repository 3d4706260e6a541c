// Site secrets at rest with age (src/secrets/age.ts, store.ts) and the lifecycle operations
// (lifecycle.ts), without external tools; test/integration/secrets-lifecycle.test.ts checks
// the same against the real age and openssl CLIs.
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ageRecipientProblem } from '../../src/secrets/age.js';
import { checkTalosPki } from '../../src/secrets/check.js';
import { generateTalosSecrets } from '../../src/secrets/generate.js';
import { reissueAdmin, adoptTalosBundle } from '../../src/secrets/lifecycle.js';
import {
  loadOrCreateSiteSecrets,
  parseTalosctlBundle,
  readSiteStore,
  serializeSiteSecrets,
  siteSecretsAgePath,
  siteSecretsPath,
  writeSiteStore,
} from '../../src/secrets/store.js';
import { EnvironmentError } from '../../src/util/diagnostics.js';
import { copyCatalogue, type CatalogueCopy } from '../helpers/catalogue.js';
import { planFleet } from '../../src/catalogue/index.js';
import { CatalogueError } from '../../src/util/diagnostics.js';

async function newKey(dir: string, name: string): Promise<{ file: string; recipient: string }> {
  const id = await generateIdentity();
  const file = join(dir, name);
  await writeFile(file, `# created: test\n# public key: ${await identityToRecipient(id)}\n${id}\n`, { mode: 0o600 });
  return { file, recipient: await identityToRecipient(id) };
}

describe('age recipient shape', () => {
  it('accepts what age-keygen makes and rejects typos with a reason', async () => {
    const r = await identityToRecipient(await generateIdentity());
    expect(ageRecipientProblem(r)).toBeUndefined();
    const typo = r.slice(0, -1) + (r.endsWith('q') ? 'p' : 'q');
    expect(ageRecipientProblem(typo)).toMatch(/checksum/);
    expect(ageRecipientProblem('ssh-ed25519 AAAA')).toMatch(/age1/);
    expect(ageRecipientProblem('age1short')).toMatch(/58/);
  });
});

describe('catalogue spec.secrets.ageRecipients', () => {
  let cat: CatalogueCopy;
  beforeEach(() => {
    cat = copyCatalogue();
  });
  afterEach(() => cat.cleanup());

  it('reaches every site plan', async () => {
    const r = await identityToRecipient(await generateIdentity());
    cat.edit('catalogue/fleet.yaml', (t) => t.replace(/^ {2}ntp:/m, `  secrets:\n    ageRecipients: [${r}]\n  ntp:`));
    const fleet = await planFleet(cat.catalogue);
    expect(fleet.plans.length).toBeGreaterThan(0);
    for (const p of fleet.plans) expect(p.secrets?.ageRecipients).toEqual([r]);
  });

  it('a bad checksum is a positioned error', async () => {
    const r = await identityToRecipient(await generateIdentity());
    const typo = r.slice(0, -1) + (r.endsWith('q') ? 'p' : 'q');
    cat.edit('catalogue/fleet.yaml', (t) => t.replace(/^ {2}ntp:/m, `  secrets:\n    ageRecipients:\n      - ${typo}\n  ntp:`));
    const err = await planFleet(cat.catalogue).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CatalogueError);
    const d = (err as CatalogueError).diagnostics.find((x) => /age recipient/.test(x.message));
    expect(d?.message).toMatch(/checksum/);
    const lines = (await readFile(cat.path('catalogue/fleet.yaml'), 'utf8')).split('\n');
    expect(lines[d!.line - 1]).toContain(typo);
    expect(d!.col).toBe(lines[d!.line - 1]!.indexOf(typo) + 1);
  });

  it('a value that is not age1… fails the schema with a position', async () => {
    cat.edit('catalogue/fleet.yaml', (t) => t.replace(/^ {2}ntp:/m, `  secrets:\n    ageRecipients: [ssh-ed25519]\n  ntp:`));
    const err = (await planFleet(cat.catalogue).catch((e: unknown) => e)) as CatalogueError;
    expect(err).toBeInstanceOf(CatalogueError);
    expect(err.diagnostics.some((d) => d.file.endsWith('fleet.yaml') && d.line > 1)).toBe(true);
  });
});

describe('encrypted site store', () => {
  let dir: string;
  let secretsDir: string;
  let key: { file: string; recipient: string };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgeimg-age-'));
    secretsDir = join(dir, 'secrets');
    key = await newKey(dir, 'key.txt');
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('creates secrets.yaml.age only (0600), readable with the identity', async () => {
    const env = { EDGEIMG_AGE_IDENTITY: key.file };
    const { secrets, created } = await loadOrCreateSiteSecrets(secretsDir, 's1', 'kairos', { ageRecipients: [key.recipient], env });
    expect(created).toBe(true);
    const files = await readdir(join(secretsDir, 's1'));
    expect(files.filter((f) => !f.startsWith('.'))).toEqual(['secrets.yaml.age']);
    expect((await stat(siteSecretsAgePath(secretsDir, 's1'))).mode & 0o777).toBe(0o600);
    const raw = await readFile(siteSecretsAgePath(secretsDir, 's1'));
    expect(raw.subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
    expect(raw.includes('PRIVATE')).toBe(false);
    const again = await loadOrCreateSiteSecrets(secretsDir, 's1', 'kairos', { ageRecipients: [key.recipient], env });
    expect(again).toEqual({ secrets, created: false, storeSha256: createHash('sha256').update(readFileSync(join(secretsDir, 's1', 'secrets.yaml.age'))).digest('hex') });
    // SOPS_AGE_KEY_FILE is honoured too
    const viaSops = await readSiteStore(secretsDir, 's1', { env: { SOPS_AGE_KEY_FILE: key.file } });
    expect(viaSops?.secrets).toEqual(secrets);
  });

  it('a missing or wrong identity is an environment error, never new secrets', async () => {
    await loadOrCreateSiteSecrets(secretsDir, 's1', 'kairos', { ageRecipients: [key.recipient], env: { EDGEIMG_AGE_IDENTITY: key.file } });
    const before = await readFile(siteSecretsAgePath(secretsDir, 's1'));
    const missing = await loadOrCreateSiteSecrets(secretsDir, 's1', 'kairos', { ageRecipients: [key.recipient], env: {} }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(EnvironmentError);
    expect((missing as Error).message).toMatch(/EDGEIMG_AGE_IDENTITY/);
    const other = await newKey(dir, 'other.txt');
    const wrong = await loadOrCreateSiteSecrets(secretsDir, 's1', 'kairos', { env: { EDGEIMG_AGE_IDENTITY: other.file } }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(EnvironmentError);
    expect((wrong as Error).message).toContain(`EDGEIMG_AGE_IDENTITY=${other.file}`);
    expect((wrong as Error).message).not.toMatch(/AGE-SECRET-KEY/);
    const nofile = await readSiteStore(secretsDir, 's1', { env: { SOPS_AGE_KEY_FILE: join(dir, 'nope.txt') } }).catch((e: unknown) => e);
    expect((nofile as Error).message).toContain(`SOPS_AGE_KEY_FILE=${join(dir, 'nope.txt')}`);
    expect(await readFile(siteSecretsAgePath(secretsDir, 's1'))).toEqual(before);
    await expect(stat(siteSecretsPath(secretsDir, 's1'))).rejects.toThrow();
  });

  it('converts both ways keeping the exact YAML bytes; both forms at once are refused', async () => {
    const env = { EDGEIMG_AGE_IDENTITY: key.file };
    await loadOrCreateSiteSecrets(secretsDir, 's1', 'talos');
    const plain = await readFile(siteSecretsPath(secretsDir, 's1'), 'utf8');
    const w = await writeSiteStore(secretsDir, 's1', plain, { recipients: [key.recipient] });
    expect(w).toEqual({ file: siteSecretsAgePath(secretsDir, 's1'), removed: siteSecretsPath(secretsDir, 's1') });
    const back = await readSiteStore(secretsDir, 's1', { env, checkPki: true });
    expect(back?.text).toBe(plain);
    expect(back?.encrypted).toBe(true);
    await writeFile(siteSecretsPath(secretsDir, 's1'), plain, { mode: 0o600 });
    await expect(readSiteStore(secretsDir, 's1', { env })).rejects.toThrow(/both/);
    await writeSiteStore(secretsDir, 's1', plain, { recipients: [] });
    expect(await readFile(siteSecretsPath(secretsDir, 's1'), 'utf8')).toBe(plain);
    await expect(stat(siteSecretsAgePath(secretsDir, 's1'))).rejects.toThrow();
  });
});

describe('lifecycle', () => {
  it('reissue-admin keeps every CA and value, new serial, same issuer, verifies with the OS CA', async () => {
    const s = await generateTalosSecrets();
    const n = await reissueAdmin(s);
    expect({ ...n, admin: undefined }).toEqual({ ...s, admin: undefined });
    const a = new X509Certificate(s.admin.crt);
    const b = new X509Certificate(n.admin.crt);
    expect(b.serialNumber).not.toBe(a.serialNumber);
    expect(b.issuer).toBe(a.issuer);
    expect(b.verify(new X509Certificate(s.certs.os.crt).publicKey)).toBe(true);
    expect(checkTalosPki(n)).toEqual([]);
  });

  it('a talosctl bundle (no edgeimg block) is adopted with a new admin certificate', async () => {
    const s = await generateTalosSecrets();
    const full = serializeSiteSecrets(s);
    const bundle = full.slice(0, full.indexOf('edgeimg:')).replace(/^#.*\n/gm, '');
    const adopted = await adoptTalosBundle(parseTalosctlBundle(bundle, 'b.yaml'));
    expect(adopted.certs).toEqual(s.certs);
    expect(adopted.clusterId).toBe(s.clusterId);
    expect(checkTalosPki(adopted)).toEqual([]);
    expect(() => parseTalosctlBundle(bundle.replace('secrets:\n', 'secrets:\n    aescbcencryptionsecret: x\n'), 'b.yaml')).toThrow(/aescbc/);
  });
});
