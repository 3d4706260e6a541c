// The fleet report's counts (the top of the page, and `edgeimg report --json`), and the "as of"
// time the page is dated with: never the wall clock, so the same inputs give the same page.

import { UsageError } from '../util/diagnostics.js';
import { CRITICAL_DAYS, WARN_DAYS, type SiteReport } from './collect.js';

export type AsOfSource = 'now' | 'SOURCE_DATE_EPOCH' | 'verify' | 'build' | 'none';

export interface AsOf {
  /** Milliseconds since the epoch; undefined when nothing dates the report. */
  ms?: number;
  source: AsOfSource;
  /** What the page says about it. */
  note: string;
}

export interface FleetReportSummary {
  ok: true;
  /** ISO 8601, or null when nothing dates the report. */
  asOf: string | null;
  asOfSource: AsOfSource;
  asOfNote: string;
  sites: number;
  nodes: number;
  builds: { built: number; notBuilt: number; unreadable: number };
  os: Array<{ os: string; version: string; sites: number; nodes: number }>;
  hardware: Array<{ name: string; arch: string; firmware: string; sites: number; nodes: number }>;
  verify: { pass: number; fail: number; stale: number; never: number; unreadable: number };
  adminCerts: { ok: number; warning: number; critical: number; expired: number; unknown: number; none: number; warnDays: number; criticalDays: number };
  /** Sites that need someone: failed or stale verify results, admin certificates under WARN_DAYS. */
  attention: {
    verifyFailed: string[];
    verifyStale: string[];
    certExpiring: Array<{ site: string; notAfter: string; daysLeft: number }>;
  };
}

/** SOURCE_DATE_EPOCH: whole seconds since the epoch (reproducible-builds.org). */
export function parseSourceDateEpoch(value: string): number {
  if (!/^[0-9]{1,12}$/.test(value)) throw new UsageError(`SOURCE_DATE_EPOCH must be whole seconds since 1970-01-01, got "${value}"`);
  return Number(value) * 1000;
}

/**
 * The time the report is as of, first of: the time given (`--now`), SOURCE_DATE_EPOCH, the
 * newest verify result's finishedAt, the newest manifest.json's modification time.
 */
export function chooseAsOf(sites: ReadonlyArray<Omit<SiteReport, 'adminCert'>>, now: Date | undefined, env: NodeJS.ProcessEnv): AsOf {
  if (now !== undefined) return { ms: now.getTime(), source: 'now', note: 'the time given with --now' };
  const sde = env['SOURCE_DATE_EPOCH'];
  if (sde !== undefined && sde !== '') return { ms: parseSourceDateEpoch(sde), source: 'SOURCE_DATE_EPOCH', note: 'SOURCE_DATE_EPOCH' };
  let verify: { ms: number; site: string } | undefined;
  let build: { ms: number; site: string } | undefined;
  for (const s of sites) {
    const f = s.verify.finishedAt;
    if (f !== undefined) {
      const ms = Date.parse(f);
      if (verify === undefined || ms > verify.ms) verify = { ms, site: s.site };
    }
    const m = s.build.mtimeMs;
    if (m !== undefined && (build === undefined || m > build.ms)) build = { ms: Math.floor(m), site: s.site };
  }
  if (verify) return { ms: verify.ms, source: 'verify', note: `the newest verify result (${verify.site}); give --now to date it otherwise` };
  if (build) return { ms: build.ms, source: 'build', note: `the newest build (${build.site}'s manifest.json); give --now to date it otherwise` };
  return { source: 'none', note: 'nothing is built or verified yet, and no --now or SOURCE_DATE_EPOCH was given' };
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function summarize(sites: readonly SiteReport[], asOf: AsOf): FleetReportSummary {
  const os = new Map<string, { os: string; version: string; sites: number; nodes: number }>();
  const hardware = new Map<string, { name: string; arch: string; firmware: string; sites: number; nodes: number }>();
  const builds = { built: 0, notBuilt: 0, unreadable: 0 };
  const verify = { pass: 0, fail: 0, stale: 0, never: 0, unreadable: 0 };
  const adminCerts = { ok: 0, warning: 0, critical: 0, expired: 0, unknown: 0, none: 0, warnDays: WARN_DAYS, criticalDays: CRITICAL_DAYS };
  const attention: FleetReportSummary['attention'] = { verifyFailed: [], verifyStale: [], certExpiring: [] };
  let nodes = 0;
  for (const s of sites) {
    nodes += s.nodes;
    const key = `${s.os} ${s.osVersion}`;
    const o = os.get(key) ?? os.set(key, { os: s.os, version: s.osVersion, sites: 0, nodes: 0 }).get(key)!;
    o.sites++;
    o.nodes += s.nodes;
    for (const h of s.hardware) {
      const e = hardware.get(h.name) ?? hardware.set(h.name, { name: h.name, arch: h.arch, firmware: h.firmware, sites: 0, nodes: 0 }).get(h.name)!;
      e.sites++;
      e.nodes += h.nodes;
    }
    builds[s.build.state === 'built' ? 'built' : s.build.state === 'not-built' ? 'notBuilt' : 'unreadable']++;
    verify[s.verify.state]++;
    if (s.verify.state === 'fail') attention.verifyFailed.push(s.site);
    if (s.verify.state === 'stale') attention.verifyStale.push(s.site);
    adminCerts[s.adminCert.state]++;
    if (s.adminCert.daysLeft !== undefined && s.adminCert.daysLeft < WARN_DAYS) {
      attention.certExpiring.push({ site: s.site, notAfter: s.adminCert.notAfter!, daysLeft: s.adminCert.daysLeft });
    }
  }
  attention.verifyFailed.sort(byText);
  attention.verifyStale.sort(byText);
  attention.certExpiring.sort((a, b) => a.daysLeft - b.daysLeft || byText(a.site, b.site));
  return {
    ok: true,
    asOf: asOf.ms !== undefined ? new Date(asOf.ms).toISOString() : null,
    asOfSource: asOf.source,
    asOfNote: asOf.note,
    sites: sites.length,
    nodes,
    builds,
    os: [...os.values()].sort((a, b) => byText(a.os, b.os) || byText(a.version, b.version)),
    hardware: [...hardware.values()].sort((a, b) => byText(a.name, b.name)),
    verify,
    adminCerts,
    attention,
  };
}
