// The fleet report page: templates/report/fleet.html.hbs (with the partial site-row.hbs), one
// self-contained HTML file (inline CSS and a few lines of inline script, no external asset),
// rendered from data only: the same data gives the same bytes.
//
// Every value reaches the page through handlebars' escaping (text and quoted attributes); the
// inline script reads the rows' data attributes and never has data written into it. The view
// model below precomputes every string, so the template holds markup only.

import { readFileSync } from 'node:fs';
import Handlebars from 'handlebars';
import { packagePath } from '../util/paths.js';
import { CRITICAL_DAYS, WARN_DAYS, type CertState, type SiteReport, type VerifyState } from './collect.js';
import type { FleetReportSummary } from './summary.js';

export interface RenderInput {
  fleetName?: string;
  generatorVersion: string;
  summary: FleetReportSummary;
  sites: readonly SiteReport[];
}

let compiled: Handlebars.TemplateDelegate | undefined;

export function reportTemplatePath(...name: string[]): string {
  return packagePath('templates', 'report', ...name);
}

function template(): Handlebars.TemplateDelegate {
  if (!compiled) {
    const hbs = Handlebars.create();
    hbs.registerPartial('siteRow', readFileSync(reportTemplatePath('site-row.hbs'), 'utf8'));
    compiled = hbs.compile(readFileSync(reportTemplatePath('fleet.html.hbs'), 'utf8'), { strict: true, noEscape: false });
  }
  return compiled;
}

/** 3400 → "3,400", independent of the locale. */
export function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

const plural = (n: number, noun: string, nouns = `${noun}s`): string => `${thousands(n)} ${n === 1 ? noun : nouns}`;

/** "2026-12-01 20:00 UTC" */
export function utcMinute(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function osLabel(os: string, version: string): string {
  return `${os === 'talos' ? 'Talos' : os === 'kairos' ? 'Kairos' : os} ${version}`;
}

/** The filter link for one value, as the page's script reads it from the URL hash. */
function filterHref(key: string, value: string): string {
  return `#${new URLSearchParams({ [key]: value }).toString()}`;
}

const VERIFY_TEXT: Record<VerifyState, string> = { pass: 'pass', fail: 'FAIL', stale: 'stale', never: 'never', unreadable: 'unreadable' };

function verifyCell(s: SiteReport): { state: VerifyState; text: string; detail: string; title: string } {
  const v = s.verify;
  if (v.state === 'never') return { state: 'never', text: 'never', detail: '', title: '' };
  if (v.state === 'unreadable') return { state: 'unreadable', text: 'unreadable', detail: '', title: v.problem ?? 'verify/summary.json cannot be read' };
  const counts = v.passed !== undefined || v.failed !== undefined ? `${v.passed ?? 0} passed, ${v.failed ?? 0} failed` : v.ok ? 'passed' : 'failed';
  const boot = v.boot === undefined || v.boot === 'none' ? 'static checks only' : `boot ${v.boot}${v.via ? ` via ${v.via}` : ''}`;
  const when = v.finishedAt ? `verified ${utcMinute(v.finishedAt)}` : 'verified (time not recorded)';
  const failedList = v.failedChecks && v.failedChecks.length > 0 ? `; failed: ${v.failedChecks.slice(0, 5).join(', ')}${v.failedChecks.length > 5 ? `, and ${v.failedChecks.length - 5} more` : ''}` : '';
  const shortBoot = v.boot === undefined || v.boot === 'none' ? 'static' : `${v.boot}${v.via ? ` · ${v.via}` : ''}`;
  if (v.state === 'stale') {
    const of = v.inputDigest ? `build ${v.inputDigest.slice(7, 19)}` : 'an unrecorded build';
    const now = s.build.state === 'built' && s.build.inputDigest ? `the current build is ${s.build.inputDigest.slice(7, 19)}` : 'there is no current build';
    return { state: 'stale', text: 'stale', detail: `was ${v.ok ? 'pass' : 'fail'}`, title: `${when}: ${v.ok ? 'passed' : 'FAILED'} for ${of}, but ${now}; verify again` };
  }
  const failedCount = v.failed !== undefined ? `${v.failed} of ${(v.passed ?? 0) + v.failed}` : '';
  return {
    state: v.state,
    text: VERIFY_TEXT[v.state],
    detail: v.state === 'fail' && failedCount ? failedCount : shortBoot,
    title: `${when}; ${counts}; ${boot}${failedList}`,
  };
}

/** `filter`: the value the page's cert filter matches (expired sites are among the critical ones). */
function certCell(s: SiteReport): { state: CertState; filter: string; text: string; title: string } {
  const cell = certText(s);
  return { ...cell, filter: cell.state === 'expired' ? 'critical' : cell.state };
}

function certText(s: SiteReport): { state: CertState; text: string; title: string } {
  const c = s.adminCert;
  const date = c.notAfter ? `notAfter ${c.notAfter.slice(0, 10)}` : '';
  switch (c.state) {
    case 'none':
      return { state: 'none', text: 'n/a', title: c.reason ?? '' };
    case 'unknown':
      return { state: 'unknown', text: c.notAfter ? c.notAfter.slice(0, 10) : 'unknown', title: [date, c.reason ?? ''].filter(Boolean).join('; ') };
    case 'expired':
      return { state: 'expired', text: 'expired', title: `${date}: expired ${plural(-c.daysLeft!, 'day')} ago; edgeimg secrets reissue-admin --site ${s.site}` };
    default:
      return {
        state: c.state,
        text: `${c.daysLeft} d`,
        title: `${date}${c.state === 'ok' ? '' : `; renew: edgeimg secrets reissue-admin --site ${s.site}`}`,
      };
  }
}

function buildCell(s: SiteReport): { state: string; short: string; full: string; generator: string; standin: boolean; text: string } {
  const b = s.build;
  if (b.state === 'built' && b.inputDigest) {
    return { state: 'built', short: b.inputDigest.replace(/^sha256:/, '').slice(0, 12), full: b.inputDigest, generator: b.generatorVersion ?? '?', standin: b.standin === true, text: '' };
  }
  return { state: b.state, short: '', full: '', generator: '', standin: false, text: b.state === 'not-built' ? 'not built' : b.problem ?? 'unreadable' };
}

const NONE = '—';

function siteRow(s: SiteReport) {
  const verify = verifyCell(s);
  const cert = certCell(s);
  return {
    site: s.site,
    country: s.labels['country'] ?? '',
    region: s.labels['region'] ?? '',
    tier: s.labels['tier'] ?? '',
    tierText: s.labels['tier'] ?? NONE,
    // labels beyond the three shown in the table
    labelsTitle: Object.keys(s.labels)
      .filter((k) => k !== 'country' && k !== 'region' && k !== 'tier')
      .sort(byText)
      .map((k) => `${k}: ${s.labels[k]}`)
      .join(', '),
    osKey: `${s.os} ${s.osVersion}`,
    osText: osLabel(s.os, s.osVersion),
    // Kairos versions name the provider too and may not fit the column
    osTitle: s.os === 'kairos' ? osLabel(s.os, s.osVersion) : '',
    hardware: s.hardware.map((h) => h.name).join(', '),
    nodes: s.nodes,
    build: buildCell(s),
    verify,
    cert,
  };
}

/** Rows per chunk: the unit the browser skips laying out while off screen (see the template). */
const CHUNK_ROWS = 100;

interface Group {
  title: string;
  count: string;
  chunks: Array<{ rows: Array<ReturnType<typeof siteRow>> }>;
}

function chunked<T>(items: T[], size: number): Array<{ rows: T[] }> {
  const out: Array<{ rows: T[] }> = [];
  for (let i = 0; i < items.length; i += size) out.push({ rows: items.slice(i, i + size) });
  return out;
}

/** Sites grouped by country and region (unlabelled last), by site id within a group. */
function groups(sites: readonly SiteReport[]): Group[] {
  const byKey = new Map<string, { country?: string; region?: string; sites: SiteReport[] }>();
  for (const s of sites) {
    const country = s.labels['country'];
    const region = s.labels['region'];
    const key = JSON.stringify([country ?? null, region ?? null]);
    const g = byKey.get(key) ?? byKey.set(key, { ...(country !== undefined ? { country } : {}), ...(region !== undefined ? { region } : {}), sites: [] }).get(key)!;
    g.sites.push(s);
  }
  const order = (v: string | undefined): [number, string] => (v === undefined ? [1, ''] : [0, v]);
  const cmp = (a: string | undefined, b: string | undefined): number => {
    const [x, xs] = order(a);
    const [y, ys] = order(b);
    return x - y || byText(xs, ys);
  };
  return [...byKey.values()]
    .sort((a, b) => cmp(a.country, b.country) || cmp(a.region, b.region))
    .map((g) => ({
      title: `${g.country ?? 'no country label'} · ${g.region ?? 'no region label'}`,
      count: plural(g.sites.length, 'site'),
      chunks: chunked([...g.sites].sort((a, b) => byText(a.site, b.site)).map(siteRow), CHUNK_ROWS),
    }));
}

/** A filter's options: each value once, sorted, named "Country: de" so a chosen one still says what it filters. */
function options(name: string, values: Iterable<string>): Array<{ value: string; text: string }> {
  const set = new Set(values);
  const named = [...set].filter((v) => v !== '').sort(byText).map((v) => ({ value: v, text: `${name}: ${v}` }));
  return set.has('') ? [...named, { value: '', text: `${name}: (no label)` }] : named;
}

export function renderFleetReport(input: RenderInput): string {
  const { summary: sum, sites } = input;
  const rows = sites;
  const osOptions: Array<{ value: string; text: string }> = [];
  for (const os of ['talos', 'kairos']) {
    const versions = sum.os.filter((o) => o.os === os);
    if (versions.length === 0) continue;
    osOptions.push({ value: os, text: `OS: ${os === 'talos' ? 'Talos' : 'Kairos'}, every version` });
    for (const v of versions) osOptions.push({ value: `${os} ${v.version}`, text: `OS: ${osLabel(os, v.version)}` });
  }
  const v = sum.verify;
  const c = sum.adminCerts;
  const card = (n: number, text: string, cls: string, href: string) => ({ n: thousands(n), text, cls: n === 0 && cls !== 'neutral' ? `${cls} zero` : cls, href });
  return template()({
    title: `Fleet report${input.fleetName ? `: ${input.fleetName}` : ''}`,
    generator: input.generatorVersion,
    asOf: sum.asOf ? utcMinute(sum.asOf) : 'unknown',
    asOfIso: sum.asOf ?? '',
    asOfNote: sum.asOfNote,
    sitesText: plural(sum.sites, 'site'),
    nodesText: plural(sum.nodes, 'node'),
    builtText: `${thousands(sum.builds.built)} built, ${thousands(sum.builds.notBuilt)} not built${sum.builds.unreadable > 0 ? `, ${thousands(sum.builds.unreadable)} unreadable` : ''}`,
    verifyCards: [
      card(v.pass, 'verify pass', 'pass', filterHref('verify', 'pass')),
      card(v.fail, 'verify FAIL', 'fail', filterHref('verify', 'fail')),
      card(v.stale, 'stale (rebuilt since)', 'stale', filterHref('verify', 'stale')),
      card(v.never, 'never verified', 'never', filterHref('verify', 'never')),
      ...(v.unreadable > 0 ? [card(v.unreadable, 'result unreadable', 'fail', filterHref('verify', 'unreadable'))] : []),
    ],
    certCards: [
      card(c.expired + c.critical, `expired or under ${CRITICAL_DAYS} days`, 'critical', filterHref('cert', 'critical')),
      card(c.warning, `under ${WARN_DAYS} days`, 'warning', filterHref('cert', 'warning')),
      card(c.ok, 'ok', 'ok', filterHref('cert', 'ok')),
      card(c.unknown, 'unknown', 'unknown', filterHref('cert', 'unknown')),
    ],
    osTable: sum.os.map((o) => ({ text: osLabel(o.os, o.version), sites: thousands(o.sites), nodes: thousands(o.nodes), href: filterHref('os', `${o.os} ${o.version}`) })),
    hardwareTable: sum.hardware.map((h) => ({
      name: h.name,
      detail: `${h.arch}, ${h.firmware === 'uefi' ? 'UEFI' : h.firmware === 'bios' ? 'BIOS' : h.firmware}`,
      sites: thousands(h.sites),
      nodes: thousands(h.nodes),
      href: filterHref('q', h.name),
    })),
    countryOptions: options('Country', rows.map((s) => s.labels['country'] ?? '')),
    regionOptions: options('Region', rows.map((s) => s.labels['region'] ?? '')),
    tierOptions: options('Tier', rows.map((s) => s.labels['tier'] ?? '')),
    osOptions,
    warnDays: WARN_DAYS,
    criticalDays: CRITICAL_DAYS,
    total: thousands(rows.length),
    groups: groups(rows),
  });
}
