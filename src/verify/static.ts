// Static checks over a built site: the manifest against the files, the seeds read back with our
// own ISO/FAT readers, Talos documents against the upstream schema, the PKI's internal
// consistency, and meta-data's instance-id. Every check yields a result; none throws.

import { readdir } from 'node:fs/promises';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { readManifest, type Manifest, type ManifestArtifact } from '../manifest/manifest.js';
import { readIso9660 } from '../media/iso9660/reader.js';
import { readFatImage } from '../media/fat/reader.js';
import { FAT32_MIN_CLUSTERS } from '../media/fat/writer.js';
import { SEED_IMG_LABEL, SEED_ISO_LABEL } from '../media/seed.js';
import { STICK_INFO_NAME, stickInfoFromManifest, stickInfoText } from '../media/stick-info.js';
import { instanceId } from '../render/nocloud.js';
import { validateTalosDocuments, talosMinorOf, type TalosDocument } from '../render/talos/index.js';
import { parsePrivateKeyPem } from '../secrets/pem.js';
import { sha256Hex } from '../util/fsx.js';
import { yamlErrorWhere } from '../util/diagnostics.js';
import type { SitePlan } from '../catalogue/plan.js';
import { identityChecks } from './identity.js';
import { readArtifact, shownPath } from './artifact-read.js';
import { UNLISTED_SITE_FILES } from '../trust/sums.js';
import { checkManifestSignature } from '../trust/manifest-sig.js';
import type { TrustAnchor } from '../trust/signing-key.js';

export interface CheckResult {
  check: string; // e.g. "sha256", "seed-iso", "talos-schema", "pki"
  node: string | null;
  ok: boolean;
  message: string;
  /** Serial log of a boot check, when there is one. */
  log?: string;
}

const SEED_NAMES = ['meta-data', 'network-config', 'user-data'];

export interface StaticOptions {
  /** The site id asked for; default: the directory's name. */
  siteId?: string;
  /** The catalogue's plan for the site, for the identity checks. */
  plan?: SitePlan;
  /**
   * Check manifest.json.sig against the fleet's public key (`verify` always does; `anchor`
   * undefined fails the check, naming `lookedIn`). Omitted: the signature is not checked.
   */
  signature?: { anchor: TrustAnchor | undefined; lookedIn: string };
}

export async function staticChecks(siteDir: string, opts: StaticOptions = {}): Promise<{ manifest?: Manifest; results: CheckResult[] }> {
  const results: CheckResult[] = [];
  const add = (check: string, node: string | null, ok: boolean, message: string): void => {
    results.push({ check, node, ok, message });
  };
  let manifest: Manifest;
  try {
    manifest = await readManifest(siteDir);
  } catch (err) {
    const site = opts.siteId ?? basename(siteDir);
    if (!existsSync(siteDir)) add('manifest', null, false, `site ${site} was never built into ${dirname(siteDir)} (no ${siteDir}); run edgeimg build --site ${site} first`);
    else add('manifest', null, false, `cannot read manifest: ${(err as Error).message}`);
    return { results };
  }
  add('manifest', null, true, `manifest lists ${manifest.artifacts.length} artifacts`);
  if (opts.signature) {
    const sig = await checkManifestSignature(siteDir, opts.signature.anchor, opts.signature.lookedIn);
    add('signature', null, sig.ok, sig.message);
  }

  // 1. Every manifest entry exists with its size and digest; nothing unlisted sits beside them.
  const contents = new Map<string, Buffer>();
  for (const a of manifest.artifacts) {
    // confined: a relative path inside the site directory, a regular file, no symlink, capped
    const read = await readArtifact(siteDir, a.path);
    if ('problem' in read) {
      add('artifact', a.node, false, `${shownPath(a.path)}: ${read.problem}`);
      continue;
    }
    const data = read.data;
    contents.set(a.path, data);
    if (data.byteLength !== a.bytes) add('artifact', a.node, false, `${a.path}: ${data.byteLength} bytes, manifest says ${a.bytes}`);
    else if (sha256Hex(data) !== a.sha256) add('artifact', a.node, false, `${a.path}: sha256 mismatch (file ${sha256Hex(data)}, manifest ${a.sha256})`);
    else add('artifact', a.node, true, `${a.path}: ${a.bytes} bytes, sha256 ok`);
  }
  // the signature and SHA256SUMS cover the manifest, so it cannot list them (src/trust/sums.ts)
  const listed = new Set([...manifest.artifacts.map((a) => a.path), 'manifest.json', ...UNLISTED_SITE_FILES]);
  for (const f of await listFiles(siteDir)) {
    if (!listed.has(f) && !f.startsWith('verify/')) add('artifact', null, false, `${f}: not listed in the manifest`);
  }

  const byNode = new Map<string, Map<ManifestArtifact['kind'], ManifestArtifact>>();
  for (const a of manifest.artifacts) {
    if (!a.node) continue;
    if (!byNode.has(a.node)) byNode.set(a.node, new Map());
    byNode.get(a.node)!.set(a.kind, a);
  }

  for (const [node, kinds] of [...byNode].sort(([a], [b]) => a.localeCompare(b))) {
    const file = (kind: ManifestArtifact['kind']): Buffer | undefined => {
      const a = kinds.get(kind);
      return a ? contents.get(a.path) : undefined;
    };
    const userData = file('user-data');
    const seedFiles: Record<string, Buffer | undefined> = { 'user-data': userData, 'meta-data': file('meta-data'), 'network-config': file('network-config') };
    const missing = SEED_NAMES.filter((n) => !seedFiles[n]);
    if (missing.length > 0) {
      add('node', node, false, `missing ${missing.join(', ')}`);
      continue;
    }

    // 2. meta-data's instance-id is the hash of this user-data.
    const meta = parseYaml(seedFiles['meta-data']!.toString('utf8')) as Record<string, unknown> | null;
    const expected = instanceId(manifest.site, node, userData!);
    if (meta?.['instance-id'] === expected) add('instance-id', node, true, `instance-id ${expected} matches user-data`);
    else add('instance-id', node, false, `meta-data instance-id ${String(meta?.['instance-id'])} does not match user-data (expected ${expected})`);

    // 3. Seeds read back with our own readers to exactly these bytes, under the right label.
    const seedIso = file('seed-iso');
    if (seedIso) results.push(checkSeed('seed-iso', node, seedFiles, () => {
      const r = readIso9660(seedIso);
      return { label: r.volumeId, extraLabel: r.jolietVolumeId, files: r.files };
    }, SEED_ISO_LABEL));
    const seedImg = file('seed-img');
    // the stick also carries EDGEIMG.TXT, recomputed here from the manifest: it must name this node
    const mnode = manifest.nodes.find((n) => n.name === node);
    const info = mnode ? Buffer.from(stickInfoText(stickInfoFromManifest(manifest, mnode, String(meta?.['instance-id'] ?? '')))) : undefined;
    if (seedImg) results.push(checkSeed('seed-img', node, { ...seedFiles, [STICK_INFO_NAME]: info }, () => {
      const r = readFatImage(seedImg);
      // Kairos finds seeds through go-diskfs v1.7.0, which reads FAT32 only (docs/consumers.md);
      // FAT32 by the specification also needs at least 65,525 clusters (Windows, macOS).
      const fat32 = r.fatType === 32 && r.clusterCount >= FAT32_MIN_CLUSTERS;
      return {
        label: r.label,
        extraLabel: r.bootSectorLabel,
        files: r.files,
        problem: fat32 ? undefined : `FAT${r.fatType} with ${r.clusterCount} clusters: Kairos (go-diskfs 1.7) reads only FAT32 of at least ${FAT32_MIN_CLUSTERS} clusters`,
      };
    }, SEED_IMG_LABEL));

    // 4. Talos documents validate against the upstream schema of the site's version.
    if (manifest.os === 'talos') results.push(checkTalosSchema(node, userData!, manifest.osVersion));
    else {
      const first = userData!.toString('utf8').split('\n', 1)[0];
      // the first line of a secret artifact is never quoted
      add('cloud-config', node, first === '#cloud-config', first === '#cloud-config' ? 'user-data starts with #cloud-config' : 'user-data does not start with the line #cloud-config');
    }
  }

  if (manifest.os === 'talos') results.push(...checkTalosPkiArtifacts(manifest, contents));
  // 5. Whose artifacts these are: the site asked for, each node's own (identity.ts).
  results.push(...identityChecks({ siteId: opts.siteId ?? basename(siteDir), manifest, contents, plan: opts.plan }));
  return { manifest, results };
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  // everything but directories: a symlink or FIFO beside the artifacts is reported, never skipped
  return entries.filter((e) => !e.isDirectory()).map((e) => relative(dir, join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))).sort();
}

function checkSeed(
  check: string,
  node: string,
  expected: Record<string, Buffer | undefined>,
  read: () => { label: string; extraLabel?: string; files: Array<{ name: string; data: Uint8Array }>; problem?: string },
  label: string,
): CheckResult {
  let r;
  try {
    r = read();
  } catch (err) {
    return { check, node, ok: false, message: `cannot read the seed: ${(err as Error).message}` };
  }
  const problems: string[] = r.problem ? [r.problem] : [];
  if (r.label !== label) problems.push(`label is ${JSON.stringify(r.label)}, expected ${JSON.stringify(label)}`);
  if (r.extraLabel !== undefined && r.extraLabel !== label) problems.push(`secondary label is ${JSON.stringify(r.extraLabel)}, expected ${JSON.stringify(label)}`);
  const names = r.files.map((f) => f.name).sort();
  const wanted = Object.keys(expected).sort();
  if (names.join(',') !== wanted.join(',')) problems.push(`holds ${names.join(', ') || 'no files'}, expected ${wanted.join(', ')}`);
  for (const f of r.files) {
    const want = expected[f.name];
    if (want && !Buffer.from(f.data).equals(want)) problems.push(`${f.name} differs from the built file (sha256 ${sha256Hex(f.data)}, expected ${sha256Hex(want)})`);
  }
  return problems.length === 0
    ? { check, node, ok: true, message: `label ${label}; ${Object.keys(expected).sort().join(', ')} read back byte-identical` }
    : { check, node, ok: false, message: problems.join('; ') };
}

function parseTalosDocs(userData: Buffer): TalosDocument[] {
  return parseAllDocuments(userData.toString('utf8'))
    .filter((d) => d.contents !== null)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`YAML error at ${yamlErrorWhere(d.errors[0])}`);
      return d.toJS() as TalosDocument;
    });
}

function checkTalosSchema(node: string, userData: Buffer, osVersion: string): CheckResult {
  const check = 'talos-schema';
  const minor = talosMinorOf(osVersion);
  if (!minor) return { check, node, ok: false, message: `unsupported Talos version ${osVersion}` };
  let docs: TalosDocument[];
  try {
    docs = parseTalosDocs(userData);
  } catch (err) {
    // never the parser's message: it quotes the line, and user-data holds tokens and keys
    return { check, node, ok: false, message: `user-data is not valid YAML: ${(err as Error).message.startsWith('YAML error at') ? (err as Error).message.slice('YAML error at '.length) : yamlErrorWhere(err)}` };
  }
  const errs = validateTalosDocuments(docs, minor);
  return errs.length === 0
    ? { check, node, ok: true, message: `${docs.length} documents valid against the Talos ${minor} schema` }
    : { check, node, ok: false, message: errs.map((e) => `${e.kind} ${e.path || '/'}: ${e.message}`).join('; ') };
}

const b64pem = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? Buffer.from(v, 'base64').toString('utf8') : undefined);

/** CA certificates match their keys, the admin certificate chains to the OS CA, workers hold no keys. */
function checkTalosPkiArtifacts(manifest: Manifest, contents: Map<string, Buffer>): CheckResult[] {
  const out: CheckResult[] = [];
  const tcArt = manifest.artifacts.find((a) => a.kind === 'talosconfig');
  const tc = tcArt ? contents.get(tcArt.path) : undefined;
  let osCa: X509Certificate | undefined;
  if (!tc) out.push({ check: 'pki', node: null, ok: false, message: 'talosconfig missing' });
  else {
    try {
      const cfg = parseYaml(tc.toString('utf8')) as { context: string; contexts: Record<string, { ca: string; crt: string; key: string }> };
      const ctx = cfg.contexts[cfg.context]!;
      osCa = new X509Certificate(b64pem(ctx.ca)!);
      const admin = new X509Certificate(b64pem(ctx.crt)!);
      const problems: string[] = [];
      if (!admin.verify(osCa.publicKey)) problems.push('admin certificate is not signed by the OS CA');
      if (!/O=os:admin/.test(admin.subject)) problems.push(`admin certificate subject ${admin.subject.replace(/\n/g, ', ')} lacks O=os:admin`);
      if (!admin.checkPrivateKey(parsePrivateKeyPem(b64pem(ctx.key)!))) problems.push('admin key does not match its certificate');
      out.push(problems.length === 0
        ? { check: 'pki', node: null, ok: true, message: 'talosconfig client certificate chains to the OS CA (O=os:admin)' }
        : { check: 'pki', node: null, ok: false, message: problems.join('; ') });
    } catch (err) {
      out.push({ check: 'pki', node: null, ok: false, message: `talosconfig unreadable: ${(err as { linePos?: unknown }).linePos ? `YAML error at ${yamlErrorWhere(err)}` : 'missing or malformed context, ca, crt or key'}` });
    }
  }
  for (const n of manifest.nodes) {
    const ud = manifest.artifacts.find((a) => a.node === n.name && a.kind === 'user-data');
    const data = ud ? contents.get(ud.path) : undefined;
    if (!data) continue;
    let v1: Record<string, any>;
    try {
      v1 = parseTalosDocs(data).find((d) => d.version === 'v1alpha1' && !('kind' in d)) as Record<string, any>;
    } catch {
      continue; // reported by the schema check
    }
    const problems: string[] = [];
    const pairs: Array<[string, { crt?: string; key?: string } | undefined]> = [
      ['machine.ca', v1?.machine?.ca],
      ['cluster.ca', v1?.cluster?.ca],
      ['cluster.aggregatorCA', v1?.cluster?.aggregatorCA],
      ['cluster.etcd.ca', v1?.cluster?.etcd?.ca],
    ];
    if (n.role === 'controlplane') {
      for (const [field, pair] of pairs) {
        try {
          const crt = new X509Certificate(b64pem(pair?.crt) ?? '');
          if (!crt.ca) problems.push(`${field} is not a CA certificate`);
          if (!crt.checkPrivateKey(parsePrivateKeyPem(b64pem(pair?.key) ?? ''))) problems.push(`${field} key does not match its certificate`);
          if (field === 'machine.ca' && osCa && !crt.publicKey.equals(osCa.publicKey)) problems.push('machine.ca differs from the talosconfig CA');
        } catch (err) {
          problems.push(`${field}: ${(err as Error).message}`);
        }
      }
      try {
        const sa = parsePrivateKeyPem(b64pem(v1?.cluster?.serviceAccount?.key) ?? '');
        if (sa.asymmetricKeyType !== 'rsa') problems.push('service-account key is not RSA');
        createPublicKey(sa);
      } catch (err) {
        problems.push(`cluster.serviceAccount.key: ${(err as Error).message}`);
      }
    } else {
      const keys = findPrivateKeys(parseTalosDocs(data));
      if (keys.length > 0) problems.push(`worker carries private key material at ${keys.join(', ')}`);
      if (osCa && v1?.machine?.ca?.crt && !new X509Certificate(b64pem(v1.machine.ca.crt)!).publicKey.equals(osCa.publicKey)) {
        problems.push('machine.ca differs from the talosconfig CA');
      }
    }
    out.push(problems.length === 0
      ? { check: 'pki', node: n.name, ok: true, message: n.role === 'controlplane' ? 'CA certificates match their keys' : 'no CA keys on this worker' }
      : { check: 'pki', node: n.name, ok: false, message: problems.join('; ') });
  }
  return out;
}

/** Paths of values that are, or base64-decode to, a PEM private key. */
function findPrivateKeys(node: unknown, path = ''): string[] {
  if (typeof node === 'string') {
    const decoded = /^[A-Za-z0-9+/=\s]{40,}$/.test(node) ? Buffer.from(node, 'base64').toString('latin1') : '';
    return /PRIVATE KEY/.test(node) || /PRIVATE KEY/.test(decoded) ? [path || '/'] : [];
  }
  if (Array.isArray(node)) return node.flatMap((v, i) => findPrivateKeys(v, `${path}/${i}`));
  if (node && typeof node === 'object') return Object.entries(node).flatMap(([k, v]) => findPrivateKeys(v, `${path}/${k}`));
  return [];
}
