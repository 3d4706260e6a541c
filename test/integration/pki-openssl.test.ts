// Cross-checks the generated site PKI with an independent implementation: the openssl CLI.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKairosSecrets, generateTalosSecrets, toStandardPem, type KairosSecrets, type TalosSecrets } from '../../src/secrets/index.js';

const probe = await execa('openssl', ['version'], { reject: false });
const haveOpenssl = probe.exitCode === 0;
if (!haveOpenssl) {
  if (process.env['CI']) throw new Error('openssl is required for test/integration/pki-openssl.test.ts in CI but was not found');
  console.warn('\n!!!!! openssl not found: SKIPPING test/integration/pki-openssl.test.ts (install openssl to run it) !!!!!\n');
}

const DAY_MS = 86_400_000;

async function openssl(...args: string[]): Promise<string> {
  const r = await execa('openssl', args, { reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.exitCode}):\n${r.all}`);
  return r.stdout;
}

/** notAfter - notBefore in days, from `openssl x509 -dates`. */
async function validityDays(crtFile: string): Promise<number> {
  const out = await openssl('x509', '-in', crtFile, '-noout', '-dates');
  const nb = /notBefore=(.+)/.exec(out)?.[1];
  const na = /notAfter=(.+)/.exec(out)?.[1];
  if (!nb || !na) throw new Error(`cannot read dates:\n${out}`);
  return (Date.parse(na) - Date.parse(nb)) / DAY_MS;
}

describe.skipIf(!haveOpenssl)('site PKI as seen by openssl', () => {
  let dir: string;
  let talos: TalosSecrets;
  let kairos: KairosSecrets;
  const f = (name: string): string => join(dir, name);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgeimg-pki-openssl-'));
    [talos, kairos] = await Promise.all([generateTalosSecrets(), generateKairosSecrets()]);
    const files: Record<string, string> = {
      'os-ca.crt': talos.certs.os.crt,
      'os-ca.key': toStandardPem(talos.certs.os.key), // openssl does not know the ED25519 PEM label
      'k8s-ca.crt': talos.certs.k8s.crt,
      'k8s-ca.key': talos.certs.k8s.key,
      'etcd-ca.crt': talos.certs.etcd.crt,
      'etcd-ca.key': talos.certs.etcd.key,
      'aggregator-ca.crt': talos.certs.k8sAggregator.crt,
      'aggregator-ca.key': talos.certs.k8sAggregator.key,
      'sa.key': talos.certs.k8sServiceAccount.key,
      'admin.crt': talos.admin.crt,
      'admin.key': toStandardPem(talos.admin.key),
      'kairos-ca.crt': kairos.ca.crt,
      'kairos-ca.key': kairos.ca.key,
    };
    for (const [name, pem] of Object.entries(files)) await writeFile(f(name), pem, { mode: 0o600 });
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('OS CA is Ed25519, O=talos, a critical CA:TRUE certSign CA valid 10 years', async () => {
    const text = await openssl('x509', '-in', f('os-ca.crt'), '-noout', '-text');
    expect(text).toMatch(/Public Key Algorithm: ED25519/);
    expect(text).toMatch(/Signature Algorithm: ED25519/);
    expect(text).toMatch(/Subject: O = talos\n/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature, Certificate Sign, CRL Sign/);
    expect(text).toMatch(/X509v3 Subject Key Identifier/);
    expect(await validityDays(f('os-ca.crt'))).toBeCloseTo(3650, 0);
    const key = await openssl('pkey', '-in', f('os-ca.key'), '-noout', '-text');
    expect(key).toMatch(/ED25519 Private-Key/);
  });

  for (const [file, subject] of [
    ['k8s-ca', 'O = kubernetes'],
    ['etcd-ca', 'O = etcd'],
    ['aggregator-ca', 'CN = front-proxy'],
    ['kairos-ca', 'O = kubernetes, CN = kubernetes-ca'],
  ] as const) {
    it(`${file} is ECDSA P-256 (${subject}), CA:TRUE, valid 10 years, key matches`, async () => {
      const text = await openssl('x509', '-in', f(`${file}.crt`), '-noout', '-text');
      expect(text).toMatch(/Public Key Algorithm: id-ecPublicKey/);
      expect(text).toMatch(/ASN1 OID: prime256v1/);
      expect(text).toMatch(/NIST CURVE: P-256/);
      expect(text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
      expect(text).toContain(`Subject: ${subject}\n`);
      expect(text).toContain(`Issuer: ${subject}\n`);
      expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE/);
      expect(await validityDays(f(`${file}.crt`))).toBeCloseTo(3650, 0);
      // self-signed chain verifies, and the private key is the certificate's
      expect(await openssl('verify', '-CAfile', f(`${file}.crt`), f(`${file}.crt`))).toMatch(/: OK$/m);
      const certPub = await openssl('x509', '-in', f(`${file}.crt`), '-noout', '-pubkey');
      const keyPub = await openssl('pkey', '-in', f(`${file}.key`), '-pubout');
      expect(keyPub.trim()).toBe(certPub.trim());
      expect(await openssl('ec', '-in', f(`${file}.key`), '-noout', '-check')).toBe('');
    });
  }

  it('service-account key is RSA 4096 (PKCS#1)', async () => {
    const text = await openssl('rsa', '-in', f('sa.key'), '-noout', '-text', '-check');
    expect(text).toMatch(/Private-Key: \(4096 bit/);
    expect(text).toMatch(/RSA key ok/);
  });

  it('admin client certificate chains to the OS CA, is O=os:admin, clientAuth, 1 year', async () => {
    expect(await openssl('verify', '-CAfile', f('os-ca.crt'), f('admin.crt'))).toMatch(/admin\.crt: OK/);
    expect(await openssl('verify', '-purpose', 'sslclient', '-CAfile', f('os-ca.crt'), f('admin.crt'))).toMatch(/: OK/);
    const text = await openssl('x509', '-in', f('admin.crt'), '-noout', '-text');
    expect(text).toMatch(/Subject: O = os:admin, CN = admin\n/);
    expect(text).toMatch(/Issuer: O = talos\n/);
    expect(text).toMatch(/Public Key Algorithm: ED25519/);
    expect(text).toMatch(/X509v3 Extended Key Usage: \n\s+TLS Web Client Authentication\n/);
    expect(text).not.toMatch(/CA:TRUE/);
    expect(await validityDays(f('admin.crt'))).toBeCloseTo(365, 0);
    const certPub = await openssl('x509', '-in', f('admin.crt'), '-noout', '-pubkey');
    const keyPub = await openssl('pkey', '-in', f('admin.key'), '-pubout');
    expect(keyPub.trim()).toBe(certPub.trim());
  });

  it('admin certificate does not verify against a different CA', async () => {
    const r = await execa('openssl', ['verify', '-CAfile', f('k8s-ca.crt'), f('admin.crt')], { reject: false, all: true });
    expect(r.exitCode).not.toBe(0);
  });
});
