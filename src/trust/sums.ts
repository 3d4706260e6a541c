// The two files beside a site's manifest that the manifest cannot list: its signature and a
// SHA256SUMS anyone can check with `sha256sum -c` (GNU coreutils format: "<sha256>  <path>",
// sorted by path in byte order; every non-secret artifact plus manifest.json, never a secret
// artifact: a technician's copy of the public files must check clean without them).

import type { ManifestArtifact } from '../manifest/manifest.js';
import { sha256Hex } from '../util/fsx.js';

export const MANIFEST_SIG_NAME = 'manifest.json.sig';
export const SHA256SUMS_NAME = 'SHA256SUMS';
/** Written beside the artifacts, never listed in the manifest. */
export const UNLISTED_SITE_FILES: readonly string[] = [MANIFEST_SIG_NAME, SHA256SUMS_NAME];

export function sha256sums(artifacts: readonly Pick<ManifestArtifact, 'path' | 'sha256' | 'secret'>[], manifestBytes: string | Uint8Array): string {
  const rows = [...artifacts.filter((a) => !a.secret).map((a) => ({ path: a.path, sha256: a.sha256 })), { path: 'manifest.json', sha256: sha256Hex(manifestBytes) }];
  rows.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  return rows.map((r) => `${r.sha256}  ${r.path}\n`).join('');
}
