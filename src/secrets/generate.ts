// Site secret generation, equivalent in content to `talosctl gen secrets` plus the admin
// client certificate `talosctl gen config` derives for talosconfig.
//
// Facts taken from Talos (siderolabs/talos pkg/machinery/config/generate/secrets and
// siderolabs/crypto x509), restated here rather than copied:
//   - CA validity 87600h (10 years), notBefore = generation time.
//   - OS CA: Ed25519, subject O=talos. Kubernetes CA: ECDSA P-256, O=kubernetes. etcd CA:
//     ECDSA P-256, O=etcd. Aggregator CA: ECDSA P-256; Talos passes CN=front-proxy but its CA
//     constructor only copies Organization, so talosctl emits an empty subject. We keep
//     CN=front-proxy: an empty subject confuses issuer matching in OpenSSL-based tooling.
//   - CA extensions in Talos: keyUsage digitalSignature+keyCertSign (critical), extKeyUsage
//     serverAuth+clientAuth, basicConstraints CA:TRUE (critical), subjectKeyIdentifier.
//     We add cRLSign (RFC 5280 4.2.1.3 recommends it for CAs; harmless for Go verifiers).
//   - Service-account key: RSA-4096 PKCS#1 for Talos >= 1.7 (ECDSA P-256 before).
//   - Tokens: 6+16 chars from [0-9a-z], rejection sampling of bytes >= 252.
//   - cluster id/secret and secretbox secret: 32 random bytes, standard padded base64.
//   - Admin client cert: key of the CA's type (Ed25519), O=os:admin, keyUsage
//     digitalSignature, extKeyUsage clientAuth, 1 year (8760h).

import { generateKeyPair as generateKeyPairCb, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { buildCertificate, KeyUsageBit, OID, type DistinguishedName } from './der.js';
import { ecKeyToPem, ed25519KeyToPem, rsaKeyToPem, toPem, PEM_CERTIFICATE } from './pem.js';
import type { CertAndKey, KairosSecrets, TalosSecrets } from './types.js';

const generateKeyPair = promisify(generateKeyPairCb);

export const CA_VALIDITY_MS = 87_600 * 3600 * 1000; // 10 years (3650 days), as Talos
export const ADMIN_VALIDITY_MS = 8_760 * 3600 * 1000; // 1 year, Talos' default for talosconfig
export const SERVICE_ACCOUNT_RSA_BITS = 4096;

export const TOKEN_RE = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;

const TOKEN_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Unbiased random string over [0-9a-z]: bytes >= 252 (= 7*36) are rejected. */
export function randomTokenString(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b >= 252) continue;
      out += TOKEN_ALPHABET[b % 36];
      if (out.length === length) break;
    }
  }
  return out;
}

/** Kubernetes bootstrap-token shaped secret: [a-z0-9]{6}.[a-z0-9]{16}. */
export function generateToken(): string {
  return `${randomTokenString(6)}.${randomTokenString(16)}`;
}

/** n random bytes as standard, padded base64. */
export function randomBase64(n = 32): string {
  return randomBytes(n).toString('base64');
}

interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

// The async forms run in libuv's thread pool, so all keys of a site are made concurrently and
// a site costs about one RSA-4096 generation.
const ed25519Pair = (): Promise<KeyPair> => generateKeyPair('ed25519');
const p256Pair = (): Promise<KeyPair> => generateKeyPair('ec', { namedCurve: 'prime256v1' });
const rsaPair = (bits: number): Promise<KeyPair> => generateKeyPair('rsa', { modulusLength: bits, publicExponent: 0x10001 });

function keyToPem(key: KeyObject): string {
  switch (key.asymmetricKeyType) {
    case 'ed25519':
      return ed25519KeyToPem(key);
    case 'ec':
      return ecKeyToPem(key);
    case 'rsa':
      return rsaKeyToPem(key);
    default:
      throw new Error(`unsupported key type ${String(key.asymmetricKeyType)}`);
  }
}

/** Whole seconds: X.509 times have second precision, so keep the Date equal to what is encoded. */
function floorToSecond(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

export function selfSignedCA(keys: KeyPair, subject: DistinguishedName, now: Date, validityMs = CA_VALIDITY_MS): CertAndKey {
  const notBefore = floorToSecond(now);
  const der = buildCertificate({
    subject,
    issuer: subject,
    notBefore,
    notAfter: new Date(notBefore.getTime() + validityMs),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    issuerPublicKey: keys.publicKey,
    isCA: true,
    keyUsage: [KeyUsageBit.digitalSignature, KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign],
    extKeyUsage: [OID.serverAuth, OID.clientAuth],
  });
  return { crt: toPem(PEM_CERTIFICATE, der), key: keyToPem(keys.privateKey) };
}

export interface IssueClientCertArgs {
  ca: { crt: string; privateKey: KeyObject; publicKey: KeyObject; subject: DistinguishedName };
  keys: KeyPair;
  subject: DistinguishedName;
  now: Date;
  validityMs: number;
}

export function issueClientCert(a: IssueClientCertArgs): CertAndKey {
  const notBefore = floorToSecond(a.now);
  const der = buildCertificate({
    subject: a.subject,
    issuer: a.ca.subject,
    notBefore,
    notAfter: new Date(notBefore.getTime() + a.validityMs),
    publicKey: a.keys.publicKey,
    signingKey: a.ca.privateKey,
    issuerPublicKey: a.ca.publicKey,
    isCA: false,
    keyUsage: [KeyUsageBit.digitalSignature],
    extKeyUsage: [OID.clientAuth],
  });
  return { crt: toPem(PEM_CERTIFICATE, der), key: keyToPem(a.keys.privateKey) };
}

export const SUBJECTS = {
  os: { O: ['talos'] },
  k8s: { O: ['kubernetes'] },
  etcd: { O: ['etcd'] },
  k8sAggregator: { CN: 'front-proxy' },
  admin: { O: ['os:admin'], CN: 'admin' },
  kairosCa: { O: ['kubernetes'], CN: 'kubernetes-ca' },
} as const satisfies Record<string, DistinguishedName>;

export interface GenerateOptions {
  /** Generation time (defaults to now). Certificates start at this second. */
  now?: Date;
}

export async function generateTalosSecrets(opts: GenerateOptions = {}): Promise<TalosSecrets> {
  const now = opts.now ?? new Date();
  const [sa, osKeys, adminKeys, k8sKeys, etcdKeys, aggKeys] = await Promise.all([
    rsaPair(SERVICE_ACCOUNT_RSA_BITS), // slowest first so it starts first
    ed25519Pair(),
    ed25519Pair(),
    p256Pair(),
    p256Pair(),
    p256Pair(),
  ]);
  const os = selfSignedCA(osKeys, SUBJECTS.os, now);
  const admin = issueClientCert({
    ca: { crt: os.crt, privateKey: osKeys.privateKey, publicKey: osKeys.publicKey, subject: SUBJECTS.os },
    keys: adminKeys,
    subject: SUBJECTS.admin,
    now,
    validityMs: ADMIN_VALIDITY_MS,
  });
  return {
    kind: 'talos',
    clusterId: randomBase64(32),
    clusterSecret: randomBase64(32),
    bootstrapToken: generateToken(),
    trustdToken: generateToken(),
    secretboxEncryptionSecret: randomBase64(32),
    certs: {
      os,
      k8s: selfSignedCA(k8sKeys, SUBJECTS.k8s, now),
      k8sAggregator: selfSignedCA(aggKeys, SUBJECTS.k8sAggregator, now),
      etcd: selfSignedCA(etcdKeys, SUBJECTS.etcd, now),
      k8sServiceAccount: { key: rsaKeyToPem(sa.privateKey) },
    },
    admin,
  };
}

export async function generateKairosSecrets(opts: GenerateOptions = {}): Promise<KairosSecrets> {
  const now = opts.now ?? new Date();
  const caKeys = await p256Pair();
  return { kind: 'kairos', token: generateToken(), ca: selfSignedCA(caKeys, SUBJECTS.kairosCa, now) };
}
