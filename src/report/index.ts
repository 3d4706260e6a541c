// `fleetReport`: the static HTML fleet report from what the catalogue says and what was built
// and verified (OUT/<site>/manifest.json, OUT/<site>/verify/summary.json), with each Talos
// site's admin certificate expiry when its secrets can be read. Reads only; `writeReportFile`
// puts the page in place atomically.

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { planFleet } from '../catalogue/index.js';
import type { SitePlan } from '../catalogue/plan.js';
import { EnvironmentError, UsageError } from '../util/diagnostics.js';
import { generator } from '../version.js';
import { collectAdminCerts, collectOutputs, type SiteReport } from './collect.js';
import { renderFleetReport } from './render.js';
import { chooseAsOf, summarize, type FleetReportSummary } from './summary.js';

export type { SiteReport, BuildState, VerifyState, CertState } from './collect.js';
export type { FleetReportSummary, AsOfSource } from './summary.js';
export { WARN_DAYS, CRITICAL_DAYS } from './collect.js';

export interface FleetReportOptions {
  /** Default ./catalogue. */
  catalogueDir?: string;
  /** Default ./out. */
  outDir?: string;
  /** Default $EDGEIMG_SECRETS_DIR, else ./secrets. */
  secretsDir?: string;
  /** Only these sites (unknown ids are a UsageError); default every site. */
  sites?: readonly string[];
  /** The "as of" time; default SOURCE_DATE_EPOCH, else the newest verify result or build. */
  now?: Date;
  /** SOURCE_DATE_EPOCH, EDGEIMG_AGE_IDENTITY (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface FleetReport {
  html: string;
  summary: FleetReportSummary;
  sites: SiteReport[];
}

function selectPlans(plans: readonly SitePlan[], ids: readonly string[] | undefined, catalogueDir: string): SitePlan[] {
  if (ids === undefined || ids.length === 0) return [...plans];
  const byId = new Map(plans.map((p) => [p.id, p]));
  const seen = new Set<string>();
  const out: SitePlan[] = [];
  for (const id of ids) {
    const p = byId.get(id);
    if (!p) throw new UsageError(`unknown site "${id}" (not in ${catalogueDir})`);
    if (!seen.has(id)) out.push(p);
    seen.add(id);
  }
  return out;
}

export async function fleetReport(opts: FleetReportOptions = {}): Promise<FleetReport> {
  const env = opts.env ?? process.env;
  const catalogueDir = opts.catalogueDir ?? 'catalogue';
  const outDir = opts.outDir ?? 'out';
  const secretsDir = opts.secretsDir ?? env['EDGEIMG_SECRETS_DIR'] ?? 'secrets';
  const fleet = await planFleet(catalogueDir);
  const plans = selectPlans(fleet.plans, opts.sites, catalogueDir);
  const collect = { outDir, secretsDir, env };
  const outputs = await collectOutputs(plans, collect);
  const asOf = chooseAsOf(outputs, opts.now, env);
  const certs = await collectAdminCerts(plans, asOf.ms, collect);
  const sites: SiteReport[] = outputs.map((o, i) => ({ ...o, adminCert: certs[i]! }));
  const summary = summarize(sites, asOf);
  const fleetName = fleet.catalogue.fleet?.name;
  const html = renderFleetReport({ ...(fleetName ? { fleetName } : {}), generatorVersion: generator().version, summary, sites });
  return { html, summary, sites };
}

function unwritable(file: string, err: unknown): EnvironmentError {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT' ? 'its directory does not exist'
    : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'EISDIR' ? 'it is a directory'
    : code === 'ENOTDIR' ? 'a part of the path is a file, not a directory'
    : code === 'EROFS' ? 'the file system is read-only'
    : code === 'ENOSPC' ? 'no space left on the device'
    : (code ?? (err as Error).message);
  return new EnvironmentError(`cannot write the report to ${file}: ${why}`);
}

/** Fails (EnvironmentError naming `file`) when the report cannot be written there: before the work, not after. */
export async function checkReportPath(file: string): Promise<void> {
  try {
    if ((await stat(file)).isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw unwritable(file, err);
  }
  try {
    await access(dirname(file), constants.W_OK);
  } catch (err) {
    throw unwritable(file, err);
  }
}

/**
 * Write the page to `file` atomically (a temporary file beside it, renamed into place), mode
 * 0644. A path that cannot be written is an EnvironmentError naming it.
 */
export async function writeReportFile(file: string, html: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, html, { mode: 0o644, flag: 'wx' });
    await chmod(tmp, 0o644); // whatever the umask
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw unwritable(file, err);
  }
}
