// Stand-in secrets for `edgeimg validate`: well-formed (right token shapes, PEM framing) but
// holding no key material, so every node can be rendered, patched by its overlays and checked
// against the schema on a pull request without touching (or creating) real site secrets.
import type { CertAndKey, KairosSecrets, SiteSecrets, TalosSecrets } from './types.js';

const pem = (label: string): string =>
  `-----BEGIN ${label}-----\n${'AAAA'.repeat(16)}\n-----END ${label}-----\n`;
const pair = (keyLabel: string): CertAndKey => ({ crt: pem('CERTIFICATE'), key: pem(keyLabel) });
const b64 = Buffer.alloc(32).toString('base64');

export function placeholderSecrets(os: 'talos' | 'kairos'): SiteSecrets {
  if (os === 'kairos') {
    const k: KairosSecrets = { kind: 'kairos', token: 'aaaaaa.aaaaaaaaaaaaaaaa', ca: pair('EC PRIVATE KEY') };
    return k;
  }
  const t: TalosSecrets = {
    kind: 'talos',
    clusterId: b64,
    clusterSecret: b64,
    bootstrapToken: 'aaaaaa.aaaaaaaaaaaaaaaa',
    trustdToken: 'aaaaaa.aaaaaaaaaaaaaaaa',
    secretboxEncryptionSecret: b64,
    certs: {
      os: pair('ED25519 PRIVATE KEY'),
      k8s: pair('EC PRIVATE KEY'),
      k8sAggregator: pair('EC PRIVATE KEY'),
      etcd: pair('EC PRIVATE KEY'),
      k8sServiceAccount: { key: pem('RSA PRIVATE KEY') },
    },
    admin: pair('ED25519 PRIVATE KEY'),
  };
  return t;
}
