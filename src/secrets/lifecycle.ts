// Site secrets lifecycle operations that are not "create once": reissuing the admin client
// certificate from the stored OS CA, and adopting an existing cluster's secrets. Pure
// functions over the secrets model; storing is the caller's (store.ts writeSiteStore).
// edgeimg never rotates a CA: nothing here makes or replaces one of an existing site.

import { createPublicKey, generateKeyPair as generateKeyPairCb, X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import { buildCertificate, certificateSubjectInfo, KeyUsageBit, OID } from './der.js';
import { ADMIN_VALIDITY_MS, generateKairosSecrets, SUBJECTS } from './generate.js';
import { ed25519KeyToPem, parsePrivateKeyPem, pemBody, toPem, PEM_CERTIFICATE } from './pem.js';
import type { CertAndKey, KairosSecrets, TalosSecrets } from './types.js';

const generateKeyPair = promisify(generateKeyPairCb);

/**
 * A new admin client certificate (O=os:admin, CN=admin, Ed25519 key, clientAuth, one year from
 * `now`) signed by the OS CA in `osCa`. The issuer name and authority key identifier are copied
 * from the CA certificate as it is encoded, so chains build with any verifier, whoever made the CA.
 */
export async function issueAdminCert(osCa: CertAndKey, now = new Date()): Promise<CertAndKey> {
  const caDer = pemBody(osCa.crt, PEM_CERTIFICATE);
  const info = certificateSubjectInfo(caDer);
  const caKey = parsePrivateKeyPem(osCa.key);
  const caPub = createPublicKey(caKey);
  const keys = await generateKeyPair('ed25519');
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const der = buildCertificate({
    subject: SUBJECTS.admin,
    issuer: SUBJECTS.os,
    issuerRaw: info.subjectRaw,
    ...(info.subjectKeyId ? { authorityKeyId: info.subjectKeyId } : {}),
    notBefore,
    notAfter: new Date(notBefore.getTime() + ADMIN_VALIDITY_MS),
    publicKey: keys.publicKey,
    signingKey: caKey,
    issuerPublicKey: caPub,
    isCA: false,
    keyUsage: [KeyUsageBit.digitalSignature],
    extKeyUsage: [OID.clientAuth],
  });
  return { crt: toPem(PEM_CERTIFICATE, der), key: ed25519KeyToPem(keys.privateKey) };
}

/** The site's secrets with a new admin certificate; every other value (every CA) unchanged. */
export async function reissueAdmin(secrets: TalosSecrets, now = new Date()): Promise<TalosSecrets> {
  return { ...secrets, admin: await issueAdminCert(secrets.certs.os, now) };
}

/** Talos secrets from a talosctl bundle (see parseTalosctlBundle) plus a new admin certificate. */
export async function adoptTalosBundle(bundle: Omit<TalosSecrets, 'admin'>, now = new Date()): Promise<TalosSecrets> {
  return { ...bundle, admin: await issueAdminCert(bundle.certs.os, now) };
}

/**
 * Kairos secrets carrying an existing cluster's join token. The cluster CA is kept from
 * `existing` when there is one, otherwise a new one is made (k3s does not use it; a k0s
 * cluster already running has its own, see docs/secrets.md).
 */
export async function adoptKairosToken(token: string, existing?: KairosSecrets): Promise<KairosSecrets> {
  const base = existing ?? (await generateKairosSecrets());
  return { ...base, token };
}

/** notAfter and subject of a PEM certificate. */
export function certificateDates(pem: string): { subject: string; issuer: string; notBefore: Date; notAfter: Date; serial: string; fingerprint256: string } {
  const c = new X509Certificate(pem);
  return {
    subject: c.subject.replace(/\n/g, ', '),
    issuer: c.issuer.replace(/\n/g, ', '),
    notBefore: new Date(c.validFrom),
    notAfter: new Date(c.validTo),
    serial: c.serialNumber,
    fingerprint256: c.fingerprint256,
  };
}
