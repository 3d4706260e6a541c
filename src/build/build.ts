// `edgeimg build` as a library call. Sites are rendered into a private staging directory under
// OUT and only moved into place when every selected site has built, so a catalogue or overlay
// error leaves OUT exactly as it was.

import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { planFleet } from '../catalogue/index.js';
import type { SitePlan } from '../catalogue/plan.js';
import type { OverlayCache } from '../catalogue/overlays.js';
import type { Catalogue } from '../catalogue/types.js';
import { CatalogueError, UsageError, type Diagnostic } from '../util/diagnostics.js';
import { sha256Hex } from '../util/fsx.js';
import { loadOrCreateSiteSecrets, renderTalosconfig } from '../secrets/index.js';
import type { SiteSecrets } from '../secrets/types.js';
import { renderNode } from '../render/node.js';
import { buildSeedImg, buildSeedIso, resolveEpoch } from '../media/seed.js';
import { artifactOf, serializeManifest, type Manifest, type ManifestArtifact } from '../manifest/manifest.js';
import { generator } from '../version.js';
import { inputDigest } from './inputs.js';
import { mapLimit } from '../verify/pool.js';

const SITE_CONCURRENCY = 8;

export type MediaKind = 'iso' | 'img';

export interface BuildOptions {
  catalogueDir: string;
  outDir: string;
  secretsDir: string;
  /** Explicit site ids; empty with `all` for the whole fleet. */
  sites: string[];
  all?: boolean;
  shard?: { index: number; count: number }; // index is 1-based
  media?: MediaKind[];
  /** Progress lines for humans (stderr in the CLI). Never receives secret values. */
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export interface SiteResult {
  site: string;
  os: 'talos' | 'kairos';
  dir: string;
  nodes: string[];
  secretsCreated: boolean;
  inputDigest: string;
  artifacts: ManifestArtifact[];
}

export interface BuildResult {
  sites: SiteResult[];
}

export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index < 1 || index > count) throw new UsageError(`--shard must be K/N with 1 <= K <= N, got "${text}"`);
  return { index, count };
}

export function selectSites(plans: SitePlan[], opts: Pick<BuildOptions, 'sites' | 'all' | 'shard'>): SitePlan[] {
  let selected: SitePlan[];
  if (opts.all) selected = plans;
  else {
    if (opts.sites.length === 0) throw new UsageError('give --site ID (repeatable) or --all');
    const byId = new Map(plans.map((p) => [p.id, p]));
    const unknown = opts.sites.filter((s) => !byId.has(s));
    if (unknown.length > 0) throw new UsageError(`unknown site${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
    selected = [...new Set(opts.sites)].map((s) => byId.get(s)!);
  }
  if (opts.shard) {
    const { index, count } = opts.shard;
    selected = selected.filter((_, i) => i % count === index - 1);
  }
  return selected;
}

export async function build(opts: BuildOptions): Promise<BuildResult> {
  const log = opts.log ?? (() => {});
  const env = opts.env ?? process.env;
  const media = opts.media ?? ['iso'];
  const { catalogue, plans, overlays } = await planFleet(opts.catalogueDir);
  const selected = selectSites(plans, opts);
  const outDir = resolve(opts.outDir);
  const staging = join(outDir, `.edgeimg-staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(staging, { recursive: true });
  const results: SiteResult[] = [];
  const diagnostics: Diagnostic[] = [];
  try {
    // Sites are independent: a few in flight at once keep the disk busy while the CPU renders.
    const outcomes = await mapLimit(selected, SITE_CONCURRENCY, async (plan) => {
      const { secrets, created } = await loadOrCreateSiteSecrets(opts.secretsDir, plan.id, plan.os);
      if (created) log(`${plan.id}: generated site secrets in ${join(opts.secretsDir, plan.id)}`);
      const r = await buildSite(plan, secrets, catalogue, overlays, join(staging, plan.id), media, env);
      if ('diagnostics' in r) return r;
      log(`${plan.id}: ${r.nodes.length} node${r.nodes.length === 1 ? '' : 's'} built`);
      return { ...r, dir: join(outDir, plan.id), secretsCreated: created };
    });
    for (const o of outcomes) {
      if ('diagnostics' in o) diagnostics.push(...o.diagnostics);
      else results.push(o);
    }
    if (diagnostics.length > 0) throw new CatalogueError(diagnostics);
    for (const r of results) await swapInto(join(staging, r.site), r.dir);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return { sites: results };
}

/** Replace OUT/<site> with the staged directory: the old tree is moved aside, then removed. */
async function swapInto(staged: string, final: string): Promise<void> {
  const old = `${final}.edgeimg-old-${randomBytes(4).toString('hex')}`;
  let hadOld = true;
  try {
    await rename(final, old);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    hadOld = false;
  }
  await rename(staged, final);
  if (hadOld) await rm(old, { recursive: true, force: true });
}

async function buildSite(
  plan: SitePlan,
  secrets: SiteSecrets,
  catalogue: Catalogue,
  overlays: OverlayCache,
  dir: string,
  media: MediaKind[],
  env: NodeJS.ProcessEnv,
): Promise<Omit<SiteResult, 'dir' | 'secretsCreated'> | { diagnostics: Diagnostic[] }> {
  const digest = inputDigest(catalogue, plan, sha256Hex(JSON.stringify(secrets)));
  const epoch = resolveEpoch(env, digest.slice('sha256:'.length));
  const artifacts: ManifestArtifact[] = [];
  const diagnostics: Diagnostic[] = [];
  await mkdir(join(dir, 'nodes'), { recursive: true, mode: 0o700 });
  const put = async (rel: string, kind: ManifestArtifact['kind'], node: string | null, data: string | Uint8Array, secret: boolean): Promise<void> => {
    const path = join(dir, rel);
    // fresh files in a fresh staging tree: the creation mode applies (a umask can only tighten it)
    await writeFile(path, data, { mode: secret ? 0o600 : 0o644, flag: 'wx' });
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
    await mkdir(join(dir, nodeDir), { recursive: true });
    // user-data carries tokens (and CA keys on control planes): secret, and so are the seeds holding it
    await put(`${nodeDir}/user-data`, 'user-data', node.name, userData, true);
    await put(`${nodeDir}/meta-data`, 'meta-data', node.name, metaData, false);
    await put(`${nodeDir}/network-config`, 'network-config', node.name, networkConfig, false);
    const files = { userData, metaData, networkConfig };
    if (media.includes('iso')) await put(`${nodeDir}/seed.iso`, 'seed-iso', node.name, buildSeedIso(files, epoch), true);
    if (media.includes('img')) await put(`${nodeDir}/seed.img`, 'seed-img', node.name, buildSeedImg(files, epoch), true);
  }
  if (diagnostics.length > 0) return { diagnostics };
  if (plan.os === 'talos' && secrets.kind === 'talos') {
    const cps = plan.nodes.filter((n) => n.role === 'controlplane').map((n) => n.ip);
    const talosconfig = renderTalosconfig({ context: plan.id, endpoints: cps, nodes: cps, secrets });
    await put('talosconfig', 'talosconfig', null, talosconfig, true);
  }
  const manifest: Manifest = {
    schemaVersion: 1,
    site: plan.id,
    os: plan.os,
    osVersion: plan.talos ? plan.talos.version : `${plan.kairos!.version} ${plan.kairos!.provider} ${plan.kairos!.providerVersion}`,
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
    })),
  };
  await writeFile(join(dir, 'manifest.json'), serializeManifest(manifest), { mode: 0o644 });
  return { site: plan.id, os: plan.os, nodes: plan.nodes.map((n) => n.name), inputDigest: digest, artifacts };
}
