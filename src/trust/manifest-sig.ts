// Checks OUT/<site>/manifest.json.sig against the fleet's trust anchor (src/trust/signing-key.ts):
// one result, the same words in `verify` and `inspect`.

import { join } from 'node:path';
import { readRegularFile } from '../util/safe-read.js';
import { MAX_MANIFEST_BYTES } from '../manifest/manifest.js';
import { fingerprint, sameKey, SSHSIG_NAMESPACE_MANIFEST, verifySshsig } from './sshsig.js';
import { MANIFEST_SIG_NAME } from './sums.js';
import type { TrustAnchor } from './signing-key.js';

/** An armored Ed25519 SSHSIG is about 300 bytes. */
const MAX_SIG_BYTES = 64 * 1024;

export interface SignatureCheck {
  ok: boolean;
  message: string;
}

/**
 * `anchor` undefined: there is no trust anchor (the check fails, saying where one was looked
 * for, `lookedIn`).
 */
export async function checkManifestSignature(siteDir: string, anchor: TrustAnchor | undefined, lookedIn: string): Promise<SignatureCheck> {
  const sig = await readRegularFile(join(siteDir, MANIFEST_SIG_NAME), MAX_SIG_BYTES, MANIFEST_SIG_NAME);
  if ('problem' in sig) {
    return { ok: false, message: sig.code === 'ENOENT' ? `manifest.json is not signed (no ${MANIFEST_SIG_NAME})` : `manifest.json is not signed: ${MANIFEST_SIG_NAME}: ${sig.problem}` };
  }
  const manifest = await readRegularFile(join(siteDir, 'manifest.json'), MAX_MANIFEST_BYTES, 'manifest.json');
  if ('problem' in manifest) return { ok: false, message: `cannot check the signature: manifest.json: ${manifest.problem}` };
  if (!anchor) {
    return { ok: false, message: `cannot check the signature of manifest.json: no fleet public key (looked for ${lookedIn}); give --catalogue with the committed signing.pub` };
  }
  const v = verifySshsig(sig.data.toString('utf8'), SSHSIG_NAMESPACE_MANIFEST, manifest.data);
  const fleet = `${fingerprint(anchor.key)} (${anchor.path})`;
  if (v.key && !sameKey(v.key, anchor.key)) return { ok: false, message: `manifest.json is signed by ${fingerprint(v.key)}, not the fleet key ${fleet}` };
  if (v.ok) return { ok: true, message: `manifest.json is signed by the fleet key ${fleet}` };
  if (v.reason === 'bad-signature') return { ok: false, message: `signature does not match manifest.json: manifest.json or ${MANIFEST_SIG_NAME} was changed after the build` };
  return { ok: false, message: `${MANIFEST_SIG_NAME} is not a valid manifest signature: ${v.message}` };
}
