// Site secrets as stored on disk and read by the renderers. PEM strings throughout;
// the on-disk Talos file mirrors `talosctl gen secrets` (base64-encoded PEM) so that it
// can be handed to talosctl if ever needed.

export interface CertAndKey {
  crt: string; // PEM
  // PEM, encoded as `talosctl gen secrets` does: Ed25519 -> "ED25519 PRIVATE KEY" (PKCS#8 body),
  // ECDSA -> "EC PRIVATE KEY" (SEC 1), RSA -> "RSA PRIVATE KEY" (PKCS#1). Use
  // parsePrivateKeyPem()/toStandardPem() from src/secrets/pem.ts to hand keys to Node/OpenSSL.
  key: string;
}

export interface TalosSecrets {
  kind: 'talos';
  clusterId: string; // 32 random bytes, base64 (std, padded)
  clusterSecret: string; // 32 random bytes, base64
  bootstrapToken: string; // [a-z0-9]{6}.[a-z0-9]{16}
  trustdToken: string; // [a-z0-9]{6}.[a-z0-9]{16}
  secretboxEncryptionSecret: string; // 32 random bytes, base64
  certs: {
    os: CertAndKey; // Ed25519 CA
    k8s: CertAndKey; // ECDSA P-256 CA, 10 years
    k8sAggregator: CertAndKey; // ECDSA P-256 CA, 10 years
    etcd: CertAndKey; // ECDSA P-256 CA, 10 years
    k8sServiceAccount: { key: string }; // RSA-4096
  };
  /** Admin client certificate for talosconfig: O=os:admin, signed by the OS CA, 1 year. */
  admin: CertAndKey;
}

export interface KairosSecrets {
  kind: 'kairos';
  /**
   * Cluster join token, [a-z0-9]{6}.[a-z0-9]{16}. k3s uses it as the shared server token;
   * k0s uses it as a Kubernetes bootstrap token, so it has that shape.
   */
  token: string;
  /** Cluster CA pre-seeded into k0s controllers so that worker join tokens can be built offline. ECDSA P-256, 10 years. */
  ca: CertAndKey;
}

export type SiteSecrets = TalosSecrets | KairosSecrets;
