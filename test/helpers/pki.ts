// Test-only PKI: an apid-like server certificate issued by a given CA, for local TLS servers.
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { parsePrivateKeyPem } from '../../src/secrets/index.js';
import { buildCertificate, KeyUsageBit, OID, type DistinguishedName } from '../../src/secrets/der.js';
import { PEM_CERTIFICATE, toPem } from '../../src/secrets/pem.js';

/** A server certificate (Ed25519 key, serverAuth, SAN-less like a bare apid cert) issued by `ca`. */
export function issueServerCert(ca: { crt: string; key: string; subject: DistinguishedName }): { cert: string; key: string } {
  const keys = generateKeyPairSync('ed25519');
  const now = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  const der = buildCertificate({
    subject: { O: ['talos'], CN: 'apid' },
    issuer: ca.subject,
    notBefore: now,
    notAfter: new Date(now.getTime() + 3600_000),
    publicKey: keys.publicKey,
    signingKey: parsePrivateKeyPem(ca.key),
    issuerPublicKey: new X509Certificate(ca.crt).publicKey,
    isCA: false,
    keyUsage: [KeyUsageBit.digitalSignature],
    extKeyUsage: [OID.serverAuth],
  });
  return { cert: toPem(PEM_CERTIFICATE, der), key: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}
