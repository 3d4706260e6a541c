// `edgeimg build` as a library call. Sites are rendered into a private staging directory under
// OUT and only moved into place when every selected site has built, so a catalogue or overlay
// error leaves OUT exactly as it was.

import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { planFleet } from '../catalogue/index.js';
import { closest } from '../catalogue/schema.js';
import { resolveCacheDir } from '../images/cache.js';
import { foreignBootDir, linkClassSticks, resolveClassSticks } from './boot-media.js';
import type { SitePlan } from '../catalogue/plan.js';
import { CatalogueError, formatDiagnostic, plural, UsageError, type Diagnostic } from '../util/diagnostics.js';
import { mapLimit } from '../util/pool.js';
import { overlayDigestsOf, type DigestInputs } from './inputs.js';
import { STATE_DIR_NAME, unchangedSite, writeBuildStamps, type BuildStamp } from './stamp.js';
import { ParseCache } from '../catalogue/parse-cache.js';
import { bootDigestLines } from './boot-media.js';
import { fingerprint } from '../trust/sshsig.js';
import { runSiteJob, stickKeyOf, type MediaKind, type SiteBuilt, type SiteJob } from './site.js';
import { defaultWorkers, WorkerPool } from './workers.js';
import { checkOutPlacement, foreignOutput, lockOut, OutputError, swapDir } from './output.js';
import { loadSigningKey, MissingSigningKeyError, type FleetSigningKey } from '../trust/signing-key.js';
import { loadOrCreateSiteSecrets, siteSecretsPath } from '../secrets/index.js';

export type { MediaKind } from './site.js';

const SITE_CONCURRENCY = 8;
const STAGING_PREFIX = '.edgeimg-staging-';

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
  /** Where catalogue warnings go (default: `log`). */
  warn?: (d: Diagnostic) => void;
  /** Catalogue warnings are errors. */
  strict?: boolean;
  /**
   * Every selected site must already have secrets: a missing secrets file is an error, never a
   * new PKI (a CI job with an empty or wrong --secrets would otherwise mint fresh CAs). Also set
   * by EDGEIMG_REQUIRE_SECRETS=1.
   */
  requireSecrets?: boolean;
  /** Build worker threads; default: one per core for fleet-sized builds, none for a few sites. */
  workers?: number;
  /** The boot image cache (default: --cache / $EDGEIMG_IMAGE_CACHE / ./images/cache/boot). */
  cacheDir?: string;
  /**
   * Class boot images may be test stand-ins (make standin-images) where images.lock pins
   * nothing: for tests and demos only; the manifest and field sheet say so.
   */
  allowStandin?: boolean;
  /**
   * The fleet signing key (OpenSSH ed25519, unencrypted) that signs each manifest.json
   * (manifest.json.sig); default $EDGEIMG_SIGNING_KEY, else SECRETS/_signing/id_ed25519,
   * created on first use when the catalogue pins no signing.pub (src/trust/signing-key.ts).
   */
  signingKeyFile?: string;
  /**
   * Rebuild every selected site even when OUT/<site> was built from the same inputs (input
   * digest, generator version, media selection) and is intact; by default such a site is kept
   * and reported as `unchanged` (src/build/stamp.ts).
   */
  force?: boolean;
  /**
   * Progress of the sites to render: `start` once with their count (after unchanged sites are
   * set aside), `done` as each finishes (in completion order). The CLI draws a bar from it.
   */
  progress?: { start(total: number): void; done(site: string): void };
}

export interface SiteResult extends SiteBuilt {
  dir: string;
}

export interface BuildResult {
  /** Every selected site, in catalogue order: `status` says whether it was built or kept. */
  sites: SiteResult[];
  /** How many selected sites were unchanged and kept as they are. */
  unchanged: number;
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
    if (unknown.length > 0) throw new UsageError(unknownSitesMessage(unknown, [...byId.keys()]));
    selected = [...new Set(opts.sites)].map((s) => byId.get(s)!);
  }
  if (opts.shard) {
    const { index, count } = opts.shard;
    selected = selected.filter((_, i) => i % count === index - 1);
  }
  return selected;
}

/** "unknown site store-412 (did you mean store-0412?)", or the known ones when there are few. */
export function unknownSitesMessage(unknown: string[], known: string[]): string {
  const parts = unknown.map((u) => {
    const hint = closest(u, known);
    return hint ? `${u} (did you mean ${hint}?)` : u;
  });
  const list = known.length <= 12 ? `; the catalogue has ${known.slice().sort().join(', ')}` : `; the catalogue has ${known.length} sites (edgeimg validate --json lists them)`;
  return `unknown site${unknown.length > 1 ? 's' : ''}: ${parts.join(', ')}${list}`;
}

export async function build(opts: BuildOptions): Promise<BuildResult> {
  const log = opts.log ?? (() => {});
  const env = opts.env ?? process.env;
  const media = opts.media ?? ['iso'];
  // A fleet build starts its workers first: their start-up overlaps planning the catalogue.
  // An incremental build of an existing OUT starts them only once it knows there is work.
  const planned = opts.workers ?? (opts.all || opts.sites.length >= 16 ? defaultWorkers(Infinity) : 1);
  const early = planned > 1 && (opts.force || !existsSync(resolve(opts.outDir)));
  const pools: { pool?: WorkerPool; planned: number } = { planned, ...(early ? { pool: new WorkerPool(planned) } : {}) };
  try {
    return await buildWith(opts, pools, log, env, media);
  } finally {
    await pools.pool?.close();
  }
}

async function buildWith(
  opts: BuildOptions,
  pools: { pool?: WorkerPool; planned: number },
  log: (line: string) => void,
  env: NodeJS.ProcessEnv,
  media: MediaKind[],
): Promise<BuildResult> {
  checkOutPlacement(opts.outDir, [
    { flag: '--secrets', dir: opts.secretsDir },
    { flag: '--catalogue', dir: opts.catalogueDir },
  ]);
  const outDir = resolve(opts.outDir);
  // --force is a clean build: every document is parsed again
  const parseCache = opts.force ? undefined : ParseCache.open(join(outDir, STATE_DIR_NAME, 'catalogue.cache'));
  const { catalogue, plans, overlays, warnings } = await planFleet(opts.catalogueDir, { strict: opts.strict, ...(parseCache ? { parseCache } : {}) });
  for (const w of warnings) (opts.warn ?? ((d: Diagnostic) => log(formatDiagnostic(d))))(w);
  const selected = selectSites(plans, opts);
  const lock = await lockOut(outDir, log);
  try {
    const result = await buildLocked(opts, selected, catalogue, overlays, pools, log, env, media, outDir);
    parseCache?.save();
    return result;
  } finally {
    lock.release();
  }
}

async function buildLocked(
  opts: BuildOptions,
  selected: SitePlan[],
  catalogue: Awaited<ReturnType<typeof planFleet>>['catalogue'],
  overlays: Awaited<ReturnType<typeof planFleet>>['overlays'],
  pools: { pool?: WorkerPool; planned: number },
  log: (line: string) => void,
  env: NodeJS.ProcessEnv,
  media: MediaKind[],
  outDir: string,
): Promise<BuildResult> {
  const sticks = await resolveClassSticks(selected, opts.catalogueDir, resolveCacheDir(opts.cacheDir, env), opts.allowStandin ?? false);
  if (media.includes('onestick') && selected.some((p) => p.os === 'talos')) {
    log('--media onestick applies to Kairos sites only: a Talos node takes its class boot stick plus its seed stick (docs/field.md)');
  }
  // once per build, in the main thread; workers get only the 32-byte seed in their jobs
  const requireSecrets = opts.requireSecrets ?? env.EDGEIMG_REQUIRE_SECRETS === '1';
  let signing: FleetSigningKey;
  try {
    signing = await loadSigningKey({
      catalogueDir: opts.catalogueDir,
      secretsDir: opts.secretsDir,
      ...(opts.signingKeyFile !== undefined ? { signingKeyFile: opts.signingKeyFile } : {}),
      env,
      mustExist: requireSecrets,
      log,
      // the fleet's age recipients (the same in every site's plan): a new key is stored encrypted
      ageRecipients: selected.find((p) => p.secrets?.ageRecipients.length)?.secrets?.ageRecipients ?? [],
    });
  } catch (err) {
    // --require-secrets with an empty or wrong --secrets: name the missing site secrets first
    // (that store's own refusal), the fleet key after
    if (err instanceof MissingSigningKeyError) {
      for (const p of selected) {
        if (!existsSync(siteSecretsPath(resolve(opts.secretsDir), p.id))) await loadOrCreateSiteSecrets(resolve(opts.secretsDir), p.id, p.os, { mustExist: true });
      }
    }
    throw err;
  }
  // Each job carries only the digests of its own overlays: jobs cross to worker threads.
  const digestsOf = (plan: SitePlan): DigestInputs => ({ root: catalogue.root, overlayDigests: overlayDigestsOf([plan], (p) => overlays.get(p)) });
  const signer = fingerprint(signing.key.publicKey);
  const epoch = env.SOURCE_DATE_EPOCH ?? null;
  // Incremental: a site built from the same inputs, still intact in OUT, is kept as it is.
  const kept = new Map<string, SiteResult>();
  if (!opts.force) {
    // synchronous: small reads and stats, cheaper than a thread-pool round trip each
    const checks = selected.map((plan) =>
      unchangedSite({
        outDir,
        siteDir: join(outDir, plan.id),
        plan,
        media,
        secretsDir: resolve(opts.secretsDir),
        digestInputs: digestsOf(plan),
        extra: bootDigestLines(plan, sticks, (n) => stickKeyOf(plan, n)),
        signer,
        epoch,
      }),
    );
    const reasons = new Map<string, number>();
    checks.forEach((c, i) => {
      if ('rebuild' in c) reasons.set(c.rebuild, (reasons.get(c.rebuild) ?? 0) + 1);
      else kept.set(c.site, { ...c, dir: join(outDir, selected[i]!.id) });
    });
    if (kept.size > 0) log(`${plural(kept.size, 'site')} unchanged since the last build (same inputs, output intact): kept; --force rebuilds them`);
    if (reasons.size > 0 && kept.size > 0) {
      log(`rebuilding ${plural(selected.length - kept.size, 'site')}: ${[...reasons].sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r} (${n})`).join(', ')}`);
    }
  }
  const toBuild = selected.filter((p) => !kept.has(p.id));
  if (opts.all && !opts.shard) {
    const gone = retiredSites(outDir, new Set(selected.map((p) => p.id)));
    if (gone.length > 0) {
      log(`${plural(gone.length, 'site')} in ${outDir} no longer in the catalogue, left as they are: ${gone.slice(0, 10).join(', ')}${gone.length > 10 ? ', …' : ''} (remove them when the sites are retired)`);
    }
  }
  // what a build would replace must be edgeimg's (a kept site is not touched)
  const foreign = [...foreignOutput(outDir, toBuild.map((p) => p.id)), ...foreignBootDir(outDir)];
  if (foreign.length > 0) throw new OutputError(foreign.join('\n'));
  await removeStaleStaging(outDir);
  const staging = join(outDir, `${STAGING_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(staging, { recursive: true });
  const results: SiteResult[] = [];
  const diagnostics: Diagnostic[] = [];
  const jobs: SiteJob[] = toBuild.map((plan) => ({
    plan,
    secretsDir: resolve(opts.secretsDir),
    stagingDir: join(staging, plan.id),
    media,
    env: { SOURCE_DATE_EPOCH: env.SOURCE_DATE_EPOCH },
    digestInputs: digestsOf(plan),
    requireSecrets,
    classSticks: sticks,
    signingSeed: signing.key.seed,
    signer,
  }));
  if (!pools.pool && pools.planned > 1 && jobs.length >= 16) pools.pool = new WorkerPool(pools.planned);
  const pool = pools.pool;
  try {
    opts.progress?.start(jobs.length);
    const outcomes = pool && jobs.length >= 16
      ? await pool.run(jobs, log, (i) => opts.progress?.done(jobs[i]!.plan.id))
      : await mapLimit(jobs, SITE_CONCURRENCY, async (job) => {
          const o = await runSiteJob(job, overlays, log);
          opts.progress?.done(job.plan.id);
          return o;
        });
    const created: string[] = [];
    const stamps: Array<{ site: string; stamp: BuildStamp }> = [];
    for (const [i, o] of outcomes.entries()) {
      if (!o.ok) diagnostics.push(...o.diagnostics);
      else {
        results.push({ ...o.built, dir: join(outDir, jobs[i]!.plan.id) });
        stamps.push({ site: o.built.site, stamp: o.stamp });
      }
      if (o.ok ? o.built.secretsCreated : o.secretsCreated) created.push(jobs[i]!.plan.id);
    }
    if (diagnostics.length > 0) {
      throw new CatalogueError(diagnostics, created.length > 0 ? `site secrets were created for ${created.join(', ')} in ${opts.secretsDir}` : undefined);
    }
    // checked again right before replacing anything: the render took a while
    const foreignNow = foreignOutput(outDir, results.map((r) => r.site));
    if (foreignNow.length > 0) throw new OutputError(foreignNow.join('\n'));
    for (const r of results) await swapInto(join(staging, r.site), r.dir, log);
    writeBuildStamps(outDir, stamps);
    for (const k of kept.values()) results.push(k);
    const order = new Map(selected.map((p, i) => [p.id, i]));
    results.sort((a, b) => order.get(a.site)! - order.get(b.site)!);
    const needed = new Set(selected.flatMap((plan) => plan.nodes.map((n) => stickKeyOf(plan, n))).filter((k) => sticks[k]));
    for (const placed of linkClassSticks(outDir, [...needed].map((k) => sticks[k]!))) {
      if (placed.how !== 'kept') log(`class boot stick ${placed.path} (${placed.how === 'linked' ? 'hard link into the image cache, no copy' : 'copied: the image cache is on another filesystem'})`);
    }
    const missing = [...needed].map((k) => sticks[k]!).filter((s) => !s.file);
    for (const m of missing) log(`class boot stick of ${m.medium.hardwareClass} (${m.medium.os} ${m.medium.version}) not placed: ${m.problem}`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return { sites: results, unchanged: kept.size };
}

/** Site directories in OUT holding edgeimg output for a site the catalogue no longer has. */
function retiredSites(outDir: string, current: Set<string>): string[] {
  let names: string[];
  try {
    names = readdirSync(outDir);
  } catch {
    return [];
  }
  return names.filter((n) => !n.startsWith('.') && n !== '_boot' && !n.includes('.edgeimg-old-') && !current.has(n) && existsSync(join(outDir, n, 'manifest.json'))).sort();
}

/**
 * A build that crashed (or was killed) leaves its staging directory behind, never a partial
 * artifact under a final name. Remove those whose process is gone; leave a live build's alone.
 */
async function removeStaleStaging(outDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(outDir);
  } catch {
    return;
  }
  for (const name of names) {
    const staging = /^\.edgeimg-staging-(\d+)-/.exec(name);
    const replaced = /\.edgeimg-old-[0-9a-f]+$/.test(name); // a site tree a crashed swap moved aside
    if (!staging && !replaced) continue;
    if (staging && isAlive(Number(staging[1])) && Number(staging[1]) !== process.pid) continue;
    if (replaced) {
      // killed between the two renames of a swap: the previous tree is still the good one
      const site = join(outDir, name.replace(/\.edgeimg-old-[0-9a-f]+$/, ''));
      if (!existsSync(site)) {
        await rename(join(outDir, name), site);
        continue;
      }
    }
    await rm(join(outDir, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Replace OUT/<site> with the staged directory (swapDir). The previous `verify` logs
 * (OUT/<site>/verify/) move into the new tree, so a rebuild never loses the evidence of the last
 * boots; the next verify overwrites them node by node.
 */
async function swapInto(staged: string, final: string, log: (line: string) => void): Promise<void> {
  await swapDir(staged, final, async (old) => {
    if (!existsSync(join(old, 'verify'))) return;
    await rename(join(old, 'verify'), join(staged, 'verify'));
    log(`${basename(final)}: kept the previous verify logs in ${join(final, 'verify')} (they describe the previous build until the next verify)`);
  });
}

