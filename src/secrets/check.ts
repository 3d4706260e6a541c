// PKI consistency checks over stored site secrets. Each check returns a list of problems
// (empty = OK). Messages name fields, never secret values.

import { X509Certificate, type KeyObject } from 'node:crypto';
import { TOKEN_RE } from './generate.js';
import { parsePrivateKeyPem } from './pem.js';
import type { CertAndKey, KairosSecrets, TalosSecrets } from './types.js';

export interface CheckOptions {
  /**
   * Instant at which certificates must be valid. Defaults to now; `null` skips validity-period
   * checks (used when loading a file, so that an expired certificate does not make the
   * secrets unreadable).
   */
  at?: Date | null;
}

type ExpectedKey = { type: 'ed25519' } | { type: 'ec'; curve: 'prime256v1' } | { type: 'rsa'; minBits: number };

function describeExpected(e: ExpectedKey): string {
  if (e.type === 'ed25519') return 'Ed25519';
  if (e.type === 'ec') return 'ECDSA P-256';
  return `RSA >= ${e.minBits} bits`;
}

function keyMatches(key: KeyObject, e: ExpectedKey): boolean {
  if (key.asymmetricKeyType !== e.type) return false;
  const d = key.asymmetricKeyDetails ?? {};
  if (e.type === 'ec') return d.namedCurve === e.curve;
  if (e.type === 'rsa') return (d.modulusLength ?? 0) >= e.minBits;
  return true;
}

function parseCert(field: string, pem: string, problems: string[]): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    problems.push(`${field}.crt: not a parseable X.509 certificate`);
    return undefined;
  }
}

function parseKey(field: string, pem: string, problems: string[]): KeyObject | undefined {
  try {
    return parsePrivateKeyPem(pem);
  } catch {
    problems.push(`${field}.key: not a parseable private key`);
    return undefined;
  }
}

/** Subject attribute values, e.g. subjectValues(cert, 'O'). */
export function subjectValues(cert: X509Certificate, attr: string): string[] {
  return cert.subject
    .split('\n')
    .map((l) => l.split('='))
    .filter(([k]) => k === attr)
    .map(([, ...v]) => v.join('='));
}

function checkValidity(field: string, cert: X509Certificate, at: Date | null, problems: string[]): void {
  if (at === null) return;
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (at < from) problems.push(`${field}.crt: not valid before ${from.toISOString()}`);
  if (at > to) problems.push(`${field}.crt: expired at ${to.toISOString()}`);
}

/** Checks a self-signed CA: parseable, key matches certificate, CA:TRUE, self-signature, key type. */
function checkCA(field: string, ca: CertAndKey, expected: ExpectedKey, at: Date | null, problems: string[]): X509Certificate | undefined {
  const cert = parseCert(field, ca.crt, problems);
  const key = parseKey(field, ca.key, problems);
  if (!cert) return undefined;
  if (!cert.ca) problems.push(`${field}.crt: basicConstraints is not CA:TRUE`);
  if (!keyMatches(cert.publicKey, expected)) problems.push(`${field}.crt: public key is not ${describeExpected(expected)}`);
  if (!cert.verify(cert.publicKey)) problems.push(`${field}.crt: self-signature does not verify`);
  if (key && !cert.checkPrivateKey(key)) problems.push(`${field}: certificate does not match its private key`);
  checkValidity(field, cert, at, problems);
  return cert;
}

function checkBase64Bytes(field: string, value: string, n: number, problems: string[], urlSafe = false): void {
  const alphabet = urlSafe ? /^[A-Za-z0-9+/_-]*={0,2}$/ : /^[A-Za-z0-9+/]*={0,2}$/;
  const ok = alphabet.test(value) && value.length % 4 === 0 && Buffer.from(value, urlSafe ? 'base64url' : 'base64').length === n;
  if (!ok) problems.push(`${field}: not ${n} bytes of ${urlSafe ? 'base64' : 'standard base64'}`);
}

/** The cheap part of the Talos check: tokens and random values, no key parsing. */
export function checkTalosTokens(secrets: TalosSecrets): string[] {
  const problems: string[] = [];
  if (!TOKEN_RE.test(secrets.bootstrapToken)) problems.push('secrets.bootstraptoken: not of the form [a-z0-9]{6}.[a-z0-9]{16}');
  if (!TOKEN_RE.test(secrets.trustdToken)) problems.push('trustdinfo.token: not of the form [a-z0-9]{6}.[a-z0-9]{16}');
  // older talosctl releases wrote the cluster id URL-safe (Talos treats it as an opaque string)
  checkBase64Bytes('cluster.id', secrets.clusterId, 32, problems, /[-_]/.test(secrets.clusterId));
  checkBase64Bytes('cluster.secret', secrets.clusterSecret, 32, problems);
  checkBase64Bytes('secrets.secretboxencryptionsecret', secrets.secretboxEncryptionSecret, 32, problems);
  return problems;
}

export function checkTalosPki(secrets: TalosSecrets, opts: CheckOptions = {}): string[] {
  const at = opts.at === undefined ? new Date() : opts.at;
  const problems: string[] = checkTalosTokens(secrets);
  const ec: ExpectedKey = { type: 'ec', curve: 'prime256v1' };

  const osCa = checkCA('certs.os', secrets.certs.os, { type: 'ed25519' }, at, problems);
  checkCA('certs.k8s', secrets.certs.k8s, ec, at, problems);
  checkCA('certs.k8saggregator', secrets.certs.k8sAggregator, ec, at, problems);
  checkCA('certs.etcd', secrets.certs.etcd, ec, at, problems);

  const sa = parseKey('certs.k8sserviceaccount', secrets.certs.k8sServiceAccount.key, problems);
  if (sa && !keyMatches(sa, { type: 'rsa', minBits: 2048 }) && !keyMatches(sa, ec)) {
    problems.push('certs.k8sserviceaccount.key: not an RSA (>= 2048 bits) or ECDSA P-256 key');
  }

  const field = 'edgeimg.admin';
  const admin = parseCert(field, secrets.admin.crt, problems);
  const adminKey = parseKey(field, secrets.admin.key, problems);
  if (admin) {
    if (adminKey && !admin.checkPrivateKey(adminKey)) problems.push(`${field}: certificate does not match its private key`);
    if (admin.ca) problems.push(`${field}.crt: must not be a CA`);
    if (!subjectValues(admin, 'O').includes('os:admin')) problems.push(`${field}.crt: subject lacks O=os:admin`);
    // Node 20 exposes extended key usages as `keyUsage`; newer releases also as `extKeyUsage`.
    const eku = (admin as X509Certificate & { extKeyUsage?: string[] }).extKeyUsage ?? admin.keyUsage ?? [];
    if (!eku.includes('1.3.6.1.5.5.7.3.2')) problems.push(`${field}.crt: extKeyUsage lacks clientAuth`);
    if (osCa) {
      if (!admin.verify(osCa.publicKey)) problems.push(`${field}.crt: signature does not verify with the OS CA (certs.os)`);
      else if (!admin.checkIssued(osCa)) problems.push(`${field}.crt: issuer does not match the OS CA subject`);
    }
    checkValidity(field, admin, at, problems);
  }
  return problems;
}

export function checkKairosPki(secrets: KairosSecrets, opts: CheckOptions = {}): string[] {
  const at = opts.at === undefined ? new Date() : opts.at;
  const problems: string[] = [];
  if (!TOKEN_RE.test(secrets.token)) problems.push('token: not of the form [a-z0-9]{6}.[a-z0-9]{16}');
  checkCA('ca', secrets.ca, { type: 'ec', curve: 'prime256v1' }, at, problems);
  return problems;
}
