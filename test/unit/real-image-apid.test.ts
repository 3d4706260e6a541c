// checkApidCertificate against local TLS servers on 127.0.0.1: a server certificate issued by a
// site's OS CA (Ed25519, as Talos makes it), one from a foreign CA, one from a different CA that
// copies the OS CA's name, a server that insists on a client certificate, and nothing listening.

import { generateKeyPairSync } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer } from 'node:net';
import { createServer, type Server, type TlsOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkApidCertificate } from '../../src/verify/profiles/talos.js';
import { generateTalosSecrets, toStandardPem, type TalosSecrets } from '../../src/secrets/index.js';
import type { DistinguishedName } from '../../src/secrets/der.js';
import { selfSignedCA, SUBJECTS } from '../../src/secrets/generate.js';
import { issueServerCert } from '../helpers/pki.js';


function foreignCa(subject: DistinguishedName): { crt: string; key: string; subject: DistinguishedName } {
  const keys = generateKeyPairSync('ed25519');
  const ca = selfSignedCA(keys, subject, new Date(Date.now() - 60_000));
  return { crt: ca.crt, key: toStandardPem(ca.key), subject };
}

const servers: Server[] = [];
function serve(opts: TlsOptions): Promise<number> {
  return new Promise((res) => {
    const s = createServer(opts, (sock) => {
      sock.on('error', () => {});
      sock.end();
    });
    s.on('tlsClientError', () => {});
    servers.push(s);
    s.listen(0, '127.0.0.1', () => res((s.address() as AddressInfo).port));
  });
}

let secrets: TalosSecrets;
let osCa: { crt: string; key: string; subject: DistinguishedName };
beforeAll(async () => {
  secrets = await generateTalosSecrets();
  osCa = { crt: secrets.certs.os.crt, key: secrets.certs.os.key, subject: SUBJECTS.os };
}, 60_000);
afterAll(() => servers.forEach((s) => s.close()));

describe('checkApidCertificate', () => {
  it('accepts an Ed25519 server certificate issued by the site OS CA (TLS 1.3)', async () => {
    const port = await serve({ ...issueServerCert(osCa), minVersion: 'TLSv1.3' });
    const r = await checkApidCertificate('127.0.0.1', port, secrets.certs.os.crt, 5000);
    expect(r.reason).toMatch(/signed by the site OS CA "O=talos"/);
    expect(r.ok).toBe(true);
  });

  it('still sees the certificate when the server demands a client certificate (TLS 1.3 and 1.2)', async () => {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const port = await serve({ ...issueServerCert(osCa), requestCert: true, rejectUnauthorized: true, ca: [secrets.certs.os.crt], maxVersion });
      const r = await checkApidCertificate('127.0.0.1', port, secrets.certs.os.crt, 5000);
      expect(r.ok, `${maxVersion}: ${r.reason}`).toBe(true);
    }
  });

  it('rejects a certificate from a foreign CA, naming its issuer', async () => {
    const port = await serve(issueServerCert(foreignCa({ O: ['acme-foreign'], CN: 'rogue-ca' })));
    const t0 = Date.now();
    const r = await checkApidCertificate('127.0.0.1', port, secrets.certs.os.crt, 10_000);
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/issued by "O=acme-foreign, CN=rogue-ca", not by the site OS CA "O=talos"/);
    expect(Date.now() - t0).toBeLessThan(5000); // decided at once, no retrying until the deadline
  });

  it('rejects a certificate from a different CA that copies the OS CA name (signature check)', async () => {
    const port = await serve(issueServerCert(foreignCa(SUBJECTS.os)));
    const r = await checkApidCertificate('127.0.0.1', port, secrets.certs.os.crt, 5000);
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/signature does not verify with the site OS CA's key/);
  });

  it('gives up after the bounded retry time when nothing listens', async () => {
    const probe = createTcpServer();
    const port = await new Promise<number>((res) => probe.listen(0, '127.0.0.1', () => res((probe.address() as AddressInfo).port)));
    await new Promise<void>((res) => probe.close(() => res()));
    const t0 = Date.now();
    const r = await checkApidCertificate('127.0.0.1', port, secrets.certs.os.crt, 1200, { retryDelayMs: 200 });
    const took = Date.now() - t0;
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/presented no certificate within 1\.2 s \(\d+ attempts; last error: ECONNREFUSED/);
    expect(took).toBeGreaterThanOrEqual(1000);
    expect(took).toBeLessThan(4000);
  });

  it('retries until apid comes up (a listener that starts late)', async () => {
    const tcp = createTcpServer();
    const port = await new Promise<number>((res) => tcp.listen(0, '127.0.0.1', () => res((tcp.address() as AddressInfo).port)));
    await new Promise<void>((res) => tcp.close(() => res()));
    const pending = checkApidCertificate('127.0.0.1', port, secrets.certs.os.crt, 8000, { retryDelayMs: 150 });
    await new Promise((res) => setTimeout(res, 600));
    const s = createServer(issueServerCert(osCa), (sock) => sock.end());
    servers.push(s);
    await new Promise<void>((res) => s.listen(port, '127.0.0.1', () => res()));
    const r = await pending;
    expect(r.ok, r.reason).toBe(true);
    expect(r.reason).toMatch(/after [2-9]\d* attempts/);
  });

  it('reports an unreadable CA', async () => {
    const r = await checkApidCertificate('127.0.0.1', 1, 'not a pem', 100);
    expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/OS CA is not a readable certificate/) });
  });
});
