// PEM helpers. Key encodings follow what `talosctl gen secrets` writes (siderolabs/crypto
// x509 package):
//   Ed25519 -> "ED25519 PRIVATE KEY" block whose body is PKCS#8 (non-standard label; Talos
//              also accepts "PRIVATE KEY")
//   ECDSA   -> "EC PRIVATE KEY" (SEC 1 / RFC 5915)
//   RSA     -> "RSA PRIVATE KEY" (PKCS#1)
// Node/OpenSSL do not know the ED25519 label, so parsing relabels it to "PRIVATE KEY".

import { createPrivateKey, type KeyObject } from 'node:crypto';

export const PEM_ED25519_PRIVATE = 'ED25519 PRIVATE KEY';
export const PEM_EC_PRIVATE = 'EC PRIVATE KEY';
export const PEM_RSA_PRIVATE = 'RSA PRIVATE KEY';
export const PEM_PKCS8_PRIVATE = 'PRIVATE KEY';
export const PEM_CERTIFICATE = 'CERTIFICATE';

/** Encode DER as PEM with 64-column lines and a trailing newline (as Go's encoding/pem does). */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

const PEM_RE = /^-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END \1-----\r?\n?$/;

/** Label of a single-block PEM string, or undefined if it is not one. */
export function pemLabel(pem: string): string | undefined {
  return PEM_RE.exec(pem.trim() + '\n')?.[1];
}

/** Decode a single-block PEM into its DER body, checking the label. */
export function pemBody(pem: string, label: string): Buffer {
  const m = PEM_RE.exec(pem.trim() + '\n');
  if (!m || m[1] !== label) throw new Error(`expected a PEM ${label} block`);
  return Buffer.from((m[2] ?? '').replace(/\s+/g, ''), 'base64');
}

export function ed25519KeyToPem(key: KeyObject): string {
  return toPem(PEM_ED25519_PRIVATE, key.export({ type: 'pkcs8', format: 'der' }));
}

export function ecKeyToPem(key: KeyObject): string {
  return toPem(PEM_EC_PRIVATE, key.export({ type: 'sec1', format: 'der' }));
}

export function rsaKeyToPem(key: KeyObject): string {
  return toPem(PEM_RSA_PRIVATE, key.export({ type: 'pkcs1', format: 'der' }));
}

/** Parse any private key PEM Talos accepts (including the ED25519 label) into a KeyObject. */
export function parsePrivateKeyPem(pem: string): KeyObject {
  const label = pemLabel(pem);
  if (label === PEM_ED25519_PRIVATE) {
    return createPrivateKey({ key: pemBody(pem, label), format: 'der', type: 'pkcs8' });
  }
  if (label === PEM_EC_PRIVATE || label === PEM_RSA_PRIVATE || label === PEM_PKCS8_PRIVATE) {
    return createPrivateKey({ key: pem, format: 'pem' });
  }
  throw new Error('not a supported private key PEM block');
}

/** Standard-label PEM (for OpenSSL and other tools that do not know "ED25519 PRIVATE KEY"). */
export function toStandardPem(pem: string): string {
  const label = pemLabel(pem);
  if (label === PEM_ED25519_PRIVATE) return toPem(PEM_PKCS8_PRIVATE, pemBody(pem, label));
  return pem;
}
