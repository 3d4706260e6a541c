// What the fleet report knows about each site, read from three places and never written to:
// the catalogue's SitePlan (OS, versions, labels, hardware), OUT/<site>/manifest.json (the last
// build) and OUT/<site>/verify/summary.json (the last verify), plus the admin client
// certificate's notAfter from the site secrets. Every source may be missing or unreadable for a
// site; that is a state of the site, never a failure of the report.
//
// Nothing secret leaves this file: from the secrets store only a certificate's notAfter is
// taken, and errors are reduced to a fixed reason (their messages are not copied).

import { existsSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SitePlan } from '../catalogue/plan.js';
import { readManifest, type Manifest } from '../manifest/manifest.js';
import { ageIdentitySource } from '../secrets/age.js';
import { certificateDates } from '../secrets/lifecycle.js';
import { readSiteStore, siteSecretsAgePath, siteSecretsPath } from '../secrets/store.js';
import { mapLimit } from '../util/pool.js';
import { readRegularFile } from '../util/safe-read.js';

/** Admin certificates with fewer days left are a warning, and below CRITICAL_DAYS critical (as `secrets status`). */
export const WARN_DAYS = 30;
export const CRITICAL_DAYS = 7;
const DAY_MS = 86_400_000;

/** Largest verify/summary.json read: a summary is a few KiB (one entry per check). */
export const MAX_VERIFY_SUMMARY_BYTES = 1024 * 1024;

export type BuildState = 'built' | 'not-built' | 'unreadable';
export type VerifyState = 'pass' | 'fail' | 'stale' | 'never' | 'unreadable';
export type CertState = 'ok' | 'warning' | 'critical' | 'expired' | 'unknown' | 'none';

export interface SiteBuild {
  state: BuildState;
  inputDigest?: string;
  generatorVersion?: string;
  artifacts?: number;
  /** Class boot sticks named in the manifest that are test stand-ins. */
  standin?: boolean;
  /** manifest.json's mtime (ms): the "as of" time when nothing newer says otherwise. */
  mtimeMs?: number;
  problem?: string;
}

export interface SiteVerify {
  state: VerifyState;
  ok?: boolean;
  passed?: number;
  failed?: number;
  boot?: string;
  via?: string;
  finishedAt?: string;
  /** The build the result is for. */
  inputDigest?: string;
  /** "check" or "check (node)" of each failed check, in the summary's order. */
  failedChecks?: string[];
  problem?: string;
}

export interface SiteAdminCert {
  state: CertState;
  notAfter?: string;
  daysLeft?: number;
  /** Why the state is unknown or none. */
  reason?: string;
}

export interface SiteReport {
  site: string;
  os: 'talos' | 'kairos';
  /** "v1.13.9" (Talos), "v3.5.1 k3s v1.33.4+k3s1" (Kairos), as the manifest writes it. */
  osVersion: string;
  labels: Record<string, string>;
  nodes: number;
  hardware: Array<{ name: string; arch: string; firmware: string; nodes: number }>;
  build: SiteBuild;
  verify: SiteVerify;
  adminCert: SiteAdminCert;
}

export function osVersionOf(plan: SitePlan): string {
  return plan.talos ? plan.talos.version : `${plan.kairos!.version} ${plan.kairos!.provider} ${plan.kairos!.providerVersion}`;
}

function hardwareOf(plan: SitePlan): SiteReport['hardware'] {
  const byName = new Map<string, SiteReport['hardware'][number]>();
  for (const n of plan.nodes) {
    const h = byName.get(n.hardware.name);
    if (h) h.nodes++;
    else byName.set(n.hardware.name, { name: n.hardware.name, arch: n.hardware.arch, firmware: n.hardware.firmware, nodes: 1 });
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function readBuild(siteDir: string): Promise<SiteBuild> {
  let mtimeMs: number;
  try {
    mtimeMs = (await lstat(join(siteDir, 'manifest.json'))).mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return { state: 'not-built' };
    return { state: 'unreadable', problem: 'manifest.json cannot be read' };
  }
  let m: Manifest;
  try {
    m = await readManifest(siteDir);
  } catch {
    return { state: 'unreadable', problem: 'manifest.json is not a readable edgeimg manifest', mtimeMs };
  }
  const digest = typeof m.inputDigest === 'string' ? m.inputDigest : undefined;
  return {
    state: 'built',
    ...(digest ? { inputDigest: digest } : {}),
    ...(typeof m.generator?.version === 'string' ? { generatorVersion: m.generator.version } : {}),
    artifacts: m.artifacts.length,
    standin: (m.bootMedia ?? []).some((b) => b && typeof b === 'object' && b.standin !== undefined),
    mtimeMs,
  };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const count = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);

/**
 * OUT/<site>/verify/summary.json as `edgeimg verify` writes it (schemaVersion 1). Unknown
 * fields are ignored; a result for another build than the current manifest's is stale.
 */
async function readVerify(siteDir: string, site: string, build: SiteBuild): Promise<SiteVerify> {
  const read = await readRegularFile(join(siteDir, 'verify', 'summary.json'), MAX_VERIFY_SUMMARY_BYTES, 'verify/summary.json');
  if ('problem' in read) {
    if (read.code === 'ENOENT' || read.code === 'ENOTDIR') return { state: 'never' };
    return { state: 'unreadable', problem: `verify/summary.json ${read.problem}` };
  }
  let s: Record<string, unknown>;
  try {
    s = JSON.parse(read.data.toString('utf8')) as Record<string, unknown>;
  } catch {
    return { state: 'unreadable', problem: 'verify/summary.json is not valid JSON' };
  }
  if (s === null || typeof s !== 'object' || Array.isArray(s) || typeof s['ok'] !== 'boolean') {
    return { state: 'unreadable', problem: 'verify/summary.json is not a verify summary (no "ok")' };
  }
  if (s['site'] !== undefined && s['site'] !== site) return { state: 'unreadable', problem: 'verify/summary.json is for another site' };
  const finishedAt = str(s['finishedAt']);
  const checks = Array.isArray(s['checks']) ? s['checks'] : [];
  const failedChecks = checks
    .filter((c): c is Record<string, unknown> => c !== null && typeof c === 'object' && c.ok === false && typeof c.check === 'string')
    .map((c) => (typeof c['node'] === 'string' ? `${c['check'] as string} (${c['node']})` : (c['check'] as string)));
  const v: SiteVerify = {
    state: 'pass',
    ok: s['ok'],
    ...(count(s['passed']) !== undefined ? { passed: count(s['passed'])! } : {}),
    ...(count(s['failed']) !== undefined ? { failed: count(s['failed'])! } : {}),
    ...(str(s['boot']) ? { boot: str(s['boot'])! } : {}),
    ...(str(s['via']) ? { via: str(s['via'])! } : {}),
    ...(finishedAt && !Number.isNaN(Date.parse(finishedAt)) ? { finishedAt: new Date(Date.parse(finishedAt)).toISOString() } : {}),
    ...(str(s['inputDigest']) ? { inputDigest: str(s['inputDigest'])! } : {}),
    ...(failedChecks.length > 0 ? { failedChecks } : {}),
  };
  // A result says something about the build it checked only: any other build (or none) is stale.
  const current = build.state === 'built' && build.inputDigest !== undefined && v.inputDigest === build.inputDigest;
  v.state = !current ? 'stale' : v.ok ? 'pass' : 'fail';
  return v;
}

/**
 * The admin client certificate's notAfter (Talos). Kairos sites have none. Missing secrets, an
 * encrypted store without an identity, or any other problem make it unknown; the store is
 * parsed without the PKI check and nothing is written (no .pki-checked marker).
 */
async function readAdminCert(plan: SitePlan, secretsDir: string, asOf: number | undefined, env: NodeJS.ProcessEnv): Promise<SiteAdminCert> {
  if (plan.os !== 'talos') return { state: 'none', reason: 'Kairos sites have no admin client certificate' };
  let plain: string;
  try {
    plain = siteSecretsPath(secretsDir, plan.id);
  } catch {
    return { state: 'unknown', reason: 'site id cannot name a secrets directory' };
  }
  const encrypted = existsSync(siteSecretsAgePath(secretsDir, plan.id));
  if (encrypted && !existsSync(plain) && ageIdentitySource(env) === undefined) {
    return { state: 'unknown', reason: 'secrets are age-encrypted and no age identity is set (EDGEIMG_AGE_IDENTITY)' };
  }
  let notAfter: Date;
  try {
    const stored = await readSiteStore(secretsDir, plan.id, { os: 'talos', env });
    if (!stored) return { state: 'unknown', reason: 'no site secrets in the secrets directory' };
    if (stored.secrets.kind !== 'talos') return { state: 'unknown', reason: 'the secrets are not Talos secrets' };
    notAfter = certificateDates(stored.secrets.admin.crt).notAfter;
  } catch {
    return { state: 'unknown', reason: `the site secrets cannot be read${encrypted ? ' or decrypted' : ''} (edgeimg secrets status --site ${plan.id} says why)` };
  }
  if (asOf === undefined) return { state: 'unknown', notAfter: notAfter.toISOString(), reason: 'no "as of" time to count days from (give --now)' };
  const daysLeft = Math.floor((notAfter.getTime() - asOf) / DAY_MS);
  const state: CertState = notAfter.getTime() <= asOf ? 'expired' : daysLeft < CRITICAL_DAYS ? 'critical' : daysLeft < WARN_DAYS ? 'warning' : 'ok';
  return { state, notAfter: notAfter.toISOString(), daysLeft };
}

export interface CollectOptions {
  outDir: string;
  secretsDir: string;
  env: NodeJS.ProcessEnv;
  /** Sites read at a time. */
  concurrency?: number;
}

/** Per-site build and verify state (everything but the certificates, which need the "as of" time). */
export async function collectOutputs(plans: readonly SitePlan[], opts: CollectOptions): Promise<Array<Omit<SiteReport, 'adminCert'>>> {
  return mapLimit(plans, opts.concurrency ?? 32, async (plan) => {
    const siteDir = join(opts.outDir, plan.id);
    const build = await readBuild(siteDir);
    const verify = await readVerify(siteDir, plan.id, build);
    return {
      site: plan.id,
      os: plan.os,
      osVersion: osVersionOf(plan),
      labels: { ...plan.labels },
      nodes: plan.nodes.length,
      hardware: hardwareOf(plan),
      build,
      verify,
    };
  });
}

/** The admin certificate of each site, days counted from `asOf` (ms; undefined: not counted). */
export async function collectAdminCerts(plans: readonly SitePlan[], asOf: number | undefined, opts: CollectOptions): Promise<SiteAdminCert[]> {
  return mapLimit(plans, opts.concurrency ?? 32, (plan) => readAdminCert(plan, opts.secretsDir, asOf, opts.env));
}
