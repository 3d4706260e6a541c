// One site's build: secrets, render every node, bake seeds, write the manifest, all into the
// site's staging directory. Runs in the main thread or in a build worker (worker.ts); its
// inputs are plain data so that they cross a worker boundary unchanged.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SitePlan } from '../catalogue/plan.js';
import type { OverlayCache } from '../catalogue/overlays.js';
import type { Diagnostic } from '../util/diagnostics.js';
import { sha256Hex } from '../util/fsx.js';
import { loadOrCreateSiteSecrets, renderTalosconfig } from '../secrets/index.js';
import type { SiteSecrets } from '../secrets/types.js';
import { renderNode } from '../render/node.js';
import { buildSeedImg, buildSeedIso, resolveEpoch } from '../media/seed.js';
import { stickInfoText, type StickInfo } from '../media/stick-info.js';
import { renderFieldSheet } from '../field/sheet.js';
import { kairosVersionKey } from '../images/assets.js';
import { writeSparseFileSync } from '../media/sparse.js';
import { artifactOf, serializeManifest, type Manifest, type ManifestArtifact } from '../manifest/manifest.js';
import { generator } from '../version.js';
import { inputDigest, type DigestInputs, type SiteSecretsInput } from './inputs.js';
import { effectiveMedia, makeBuildStamp, type BuildStamp } from './stamp.js';
import { bootDigestLines, classStickKey, type ClassStick } from './boot-media.js';
import { STICK_INFO_NAME } from '../media/stick-info.js';
import { privateKeyFromSeed, signSshsig, SSHSIG_NAMESPACE_MANIFEST, type SshPrivateKey } from '../trust/sshsig.js';
import { MANIFEST_SIG_NAME, SHA256SUMS_NAME, sha256sums } from '../trust/sums.js';

/** Per-node media: seed ISO, seed stick image, and (Kairos) the one-stick live ISO. */
export type MediaKind = 'iso' | 'img' | 'onestick';

export interface SiteJob {
  plan: SitePlan;
  secretsDir: string;
  stagingDir: string; // OUT/.edgeimg-staging-*/<site>
  media: MediaKind[];
  env: Record<string, string | undefined>;
  digestInputs: DigestInputs;
  /** Refuse to create site secrets: they must already exist. */
  requireSecrets?: boolean;
  /** By classStickKey: the class boot stick (its pin, and the verified cached file when there is one). */
  classSticks: Record<string, ClassStick>;
  /**
   * The fleet signing key's 32-byte Ed25519 seed (loaded once per build in the main thread):
   * manifest.json.sig is signed with it. Without it no signature is written. Never logged.
   */
  signingSeed?: Uint8Array;
  /** The signing key's public fingerprint (SHA256:…): part of the input digest. */
  signer?: string;
}

export interface SiteBuilt {
  site: string;
  os: 'talos' | 'kairos';
  nodes: string[];
  secretsCreated: boolean;
  inputDigest: string;
  artifacts: ManifestArtifact[];
  /** `unchanged`: an incremental build found OUT/<site> built from the same inputs and kept it. */
  status: 'built' | 'unchanged';
}

export type SiteOutcome = { ok: true; built: SiteBuilt; stamp: BuildStamp } | { ok: false; diagnostics: Diagnostic[]; secretsCreated: boolean };

export async function runSiteJob(job: SiteJob, overlays: OverlayCache, log: (line: string) => void): Promise<SiteOutcome> {
  const { plan } = job;
  const { secrets, created, storeSha256 } = await loadOrCreateSiteSecrets(job.secretsDir, plan.id, plan.os, { mustExist: job.requireSecrets, ...(plan.secrets?.ageRecipients.length ? { ageRecipients: plan.secrets.ageRecipients } : {}) });
  if (created) log(`${plan.id}: generated site secrets in ${join(job.secretsDir, plan.id)}`);
  const signer = job.signingSeed ? signerOf(job.signingSeed) : undefined;
  const secretsInput = { secretsSha256: sha256Hex(JSON.stringify(secrets)), ...(job.signer ? { signer: job.signer } : {}) };
  const r = await buildSite(plan, secrets, secretsInput, job.digestInputs, overlays, job.stagingDir, job.media, job.env, job.classSticks, signer);
  if ('diagnostics' in r) return { ok: false, diagnostics: r.diagnostics, secretsCreated: created };
  const stamp = makeBuildStamp(job.stagingDir, {
    inputDigest: r.inputDigest,
    media: effectiveMedia(plan, job.media),
    secretsStore: storeSha256,
    secretsSha256: secretsInput.secretsSha256,
    epoch: job.env.SOURCE_DATE_EPOCH ?? null,
    nodes: r.nodes,
    artifacts: r.artifacts,
  });
  log(`${plan.id}: ${r.nodes.length} node${r.nodes.length === 1 ? '' : 's'} built`);
  return { ok: true, built: { ...r, secretsCreated: created, status: 'built' }, stamp };
}

export { classStickKey };

// one key per build: derived once per thread, not per site
let lastSigner: { seedHex: string; key: SshPrivateKey } | undefined;
function signerOf(seed: Uint8Array): SshPrivateKey {
  const seedHex = Buffer.from(seed).toString('hex');
  if (lastSigner?.seedHex !== seedHex) lastSigner = { seedHex, key: privateKeyFromSeed(seed) };
  return lastSigner.key;
}

/** The class boot stick key of a node of `plan`. */
export function stickKeyOf(plan: SitePlan, n: SitePlan['nodes'][number]): string {
  return classStickKey(n.hardware.name, plan.os, plan.talos ? plan.talos.version : kairosVersionKey(plan.kairos!));
}

function stickInfoOf(plan: SitePlan, node: SitePlan['nodes'][number], inputDigest: string, metaData: string): StickInfo {
  return {
    site: plan.id,
    node: node.name,
    role: node.role,
    hostname: node.hostname,
    ...(node.mac ? { mac: node.mac } : {}),
    hardwareClass: node.hardware.name,
    arch: node.hardware.arch,
    firmware: node.hardware.firmware,
    os: `${plan.os} ${osVersionOf(plan)}`,
    inputDigest,
    instanceId: /^instance-id: (\S+)$/m.exec(metaData)?.[1] ?? '',
  };
}

function osVersionOf(plan: SitePlan): string {
  return plan.talos ? plan.talos.version : `${plan.kairos!.version} ${plan.kairos!.provider} ${plan.kairos!.providerVersion}`;
}

async function buildSite(
  plan: SitePlan,
  secrets: SiteSecrets,
  secretsInput: SiteSecretsInput,
  digestInputs: DigestInputs,
  overlays: OverlayCache,
  dir: string,
  media: MediaKind[],
  env: Record<string, string | undefined>,
  classSticks: SiteJob['classSticks'],
  signer: SshPrivateKey | undefined,
): Promise<Omit<SiteBuilt, 'secretsCreated' | 'status'> | { diagnostics: Diagnostic[] }> {
  const keyOf = (n: SitePlan['nodes'][number]): string => stickKeyOf(plan, n);
  const digest = inputDigest(digestInputs, plan, secretsInput, bootDigestLines(plan, classSticks, keyOf));
  const epoch = resolveEpoch(env, digest.slice('sha256:'.length));
  const artifacts: ManifestArtifact[] = [];
  const diagnostics: Diagnostic[] = [];
  mkdirSync(join(dir, 'nodes'), { recursive: true, mode: 0o700 });
  const put = (rel: string, kind: ManifestArtifact['kind'], node: string | null, data: string | Uint8Array, secret: boolean, sparse = false): void => {
    const path = join(dir, rel);
    // fresh files in a fresh staging tree: the creation mode applies (a umask can only tighten it)
    // Synchronous on purpose: tens of thousands of small files, and a thread-pool round trip per
    // open/write/close cost more than the writes themselves (measured: ~2x slower async).
    const options = { mode: secret ? 0o600 : 0o644, flag: 'wx' } as const;
    // seed.img is a 33 MiB FAT32 image of mostly zeros: written with holes; the sha256 and
    // size in the manifest are still those of the full image
    if (sparse && typeof data !== 'string') writeSparseFileSync(path, data, options);
    else writeFileSync(path, data, options);
    artifacts.push(artifactOf(rel, kind, node, data, secret));
  };
  for (const node of plan.nodes) {
    const outcome = renderNode(plan, node, secrets, overlays);
    if (!outcome.ok) {
      diagnostics.push(...outcome.diagnostics);
      continue;
    }
    const { userData, metaData, networkConfig } = outcome.rendered;
    const nodeDir = `nodes/${node.name}`;
    mkdirSync(join(dir, nodeDir));
    // user-data carries tokens (and CA keys on control planes): secret, and so are the seeds holding it
    put(`${nodeDir}/user-data`, 'user-data', node.name, userData, true);
    put(`${nodeDir}/meta-data`, 'meta-data', node.name, metaData, false);
    put(`${nodeDir}/network-config`, 'network-config', node.name, networkConfig, false);
    const files = { userData, metaData, networkConfig };
    if (media.includes('iso')) put(`${nodeDir}/seed.iso`, 'seed-iso', node.name, buildSeedIso(files, epoch), true);
    if (media.includes('img')) {
      const info = stickInfoText(stickInfoOf(plan, node, digest, metaData));
      put(`${nodeDir}/seed.img`, 'seed-img', node.name, buildSeedImg(files, epoch, info), true, true);
    }
    if (media.includes('onestick') && plan.os === 'kairos') {
      // Kairos reads config.yaml at the root of its live medium: the class ISO plus this node's
      // config, one stick per node (src/media/onestick.ts)
      const stick = classSticks[keyOf(node)];
      if (!stick?.file) {
        diagnostics.push(siteDiagnostic(plan, `node ${node.name}: --media onestick needs the class boot image of ${node.hardware.name}: ${stick?.problem ?? 'unknown class image'}`));
        continue;
      }
      // loaded only when asked for: it drives xorriso
      const { buildOneStickIso, oneStickFileName } = await import('../media/onestick.js');
      const rel = `${nodeDir}/${oneStickFileName()}`;
      const info = stickInfoText(stickInfoOf(plan, node, digest, metaData), 'kairos-stick');
      const r = await buildOneStickIso({
        classIso: stick.file,
        outPath: join(dir, rel),
        files: [
          { name: 'config.yaml', data: userData },
          { name: STICK_INFO_NAME, data: info },
        ],
        epoch,
      });
      artifacts.push({ path: rel, kind: 'kairos-stick', node: node.name, sha256: r.sha256, bytes: r.bytes, secret: true });
    }
  }
  if (diagnostics.length > 0) return { diagnostics };
  if (plan.os === 'talos' && secrets.kind === 'talos') {
    const cps = plan.nodes.filter((n) => n.role === 'controlplane').map((n) => n.ip);
    const talosconfig = renderTalosconfig({ context: plan.id, endpoints: cps, nodes: [], secrets });
    put('talosconfig', 'talosconfig', null, talosconfig, true);
  }
  const oneStickOf = (node: string): { path: string; sha256: string } | undefined => {
    const a = artifacts.find((x) => x.node === node && x.kind === 'kairos-stick');
    return a ? { path: a.path, sha256: a.sha256 } : undefined;
  };
  const seedOf = (node: string): { path: string; sha256: string } | undefined => {
    const a = artifacts.find((x) => x.node === node && x.kind === 'seed-img');
    return a ? { path: a.path, sha256: a.sha256 } : undefined;
  };
  const sheet = renderFieldSheet({
    site: plan.id,
    os: plan.os,
    osVersion: osVersionOf(plan),
    inputDigest: digest,
    labels: plan.labels,
    nodes: plan.nodes.map((n) => ({
      name: n.name,
      role: n.role,
      hostname: n.hostname,
      address: n.ip,
      ...(n.mac ? { mac: n.mac } : {}),
      hardwareClass: n.hardware.name,
      arch: n.hardware.arch,
      firmware: n.hardware.firmware,
      classStick: sheetStick(classSticks[keyOf(n)], n.hardware.name),
      ...(seedOf(n.name) ? { seedStick: seedOf(n.name)! } : {}),
      ...(oneStickOf(n.name) ? { oneStick: oneStickOf(n.name)! } : {}),
    })),
  });
  put('field-sheet.html', 'field-sheet', null, sheet, false);
  const manifest: Manifest = {
    schemaVersion: 1,
    site: plan.id,
    os: plan.os,
    osVersion: osVersionOf(plan),
    generator: generator(),
    inputDigest: digest,
    artifacts,
    nodes: plan.nodes.map((n) => ({
      name: n.name,
      hostname: n.hostname,
      role: n.role,
      arch: n.hardware.arch,
      firmware: n.hardware.firmware,
      hardwareClass: n.hardware.name,
      address: n.ip,
      ...(n.mac ? { mac: n.mac } : {}),
    })),
    bootMedia: [...new Set(plan.nodes.map(keyOf))].flatMap((k) => (classSticks[k] ? [classSticks[k]!.medium] : [])),
  };
  const manifestText = serializeManifest(manifest);
  writeFileSync(join(dir, 'manifest.json'), manifestText, { mode: 0o644, flag: 'wx' });
  // beside the manifest, never listed in it (src/trust/sums.ts)
  writeFileSync(join(dir, SHA256SUMS_NAME), sha256sums(artifacts, manifestText), { mode: 0o644, flag: 'wx' });
  if (signer) writeFileSync(join(dir, MANIFEST_SIG_NAME), signSshsig(signer, SSHSIG_NAMESPACE_MANIFEST, Buffer.from(manifestText, 'utf8')), { mode: 0o644, flag: 'wx' });
  return { site: plan.id, os: plan.os, nodes: plan.nodes.map((n) => n.name), inputDigest: digest, artifacts };
}

function sheetStick(s: ClassStick | undefined, hardwareClass: string): { name: string; sha256?: string; standin?: string } {
  if (!s) return { name: `${hardwareClass} boot image (see edgeimg images list)` };
  const m = s.medium;
  return {
    name: `${m.hardwareClass}: ${m.name} (${m.os} ${m.version})`,
    ...(m.sha256 ? { sha256: m.sha256 } : {}),
    ...(m.standin ? { standin: m.standin } : {}),
  };
}

function siteDiagnostic(plan: SitePlan, message: string): Diagnostic {
  return { ...plan.source, message };
}
