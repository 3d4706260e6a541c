// `edgeimg verify` as a library call: static checks for every site, then (with boot) QEMU boots
// of every node's seed media. Results are data; the CLI decides how to print them.

import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { planFleet } from '../catalogue/index.js';
import type { SitePlan } from '../catalogue/plan.js';
import { CatalogueError, plural, UsageError } from '../util/diagnostics.js';
import type { Manifest } from '../manifest/manifest.js';
import { selectSites } from '../build/build.js';
import { dirname, join, resolve } from 'node:path';
import { staticChecks, type CheckResult } from './static.js';
import { junitXml, type SuiteReport } from './junit.js';
import { bootChecks, type BootOptions } from './boot.js';
import { usbKitChecks, type UsbBootOptions } from './usb.js';
import { pxeChecks } from './pxe.js';
import { resolveCacheDir } from '../images/cache.js';
import { anchorPlaces, resolveTrustAnchor } from '../trust/signing-key.js';

export interface VerifyOptions {
  outDir: string;
  /**
   * The catalogue the sites were built from: each site's nodes must be the catalogue's. When
   * the directory does not exist, identity is checked against the manifests alone.
   */
  catalogueDir?: string;
  /**
   * The secrets directory: its fleet public key (_signing/id_ed25519.pub) is the trust anchor
   * for manifest signatures while the catalogue has no signing.pub.
   */
  secretsDir?: string;
  sites: string[];
  /** Every site in the catalogue (needs `catalogueDir`); with `shard`, every Nth of them. */
  all?: boolean;
  /** 1-based: shard K of N takes the catalogue's sites i with i % N == K - 1 (as build --shard). */
  shard?: { index: number; count: number };
  boot?: boolean;
  /**
   * With `boot`: `all` (default) boots every node; `sample` boots one node per distinct
   * (hardware class, OS and version, medium) across the selected sites and runs the static
   * checks on every node (docs/verify.md, "Why sampling boots is sound").
   */
  bootMode?: 'all' | 'sample';
  /** Progress over sites and boots (the CLI draws a bar). */
  progress?: { start(label: string, total: number): void; done(item: string): void; end(): void };
  /**
   * What --boot boots: `seed` (default) each node's seed medium with the probe image via direct
   * kernel boot; `usb` each node's field kit through real firmware (./usb.ts).
   */
  via?: 'seed' | 'usb' | 'pxe';
  /** --via usb: the boot image cache holding the class sticks. */
  cacheDir?: string;
  /** Only these nodes' boots (default: every node). */
  nodes?: string[];
  usbOptions?: Partial<UsbBootOptions>;
  jobs?: number;
  junit?: string;
  log?: (line: string) => void;
  bootOptions?: Partial<BootOptions>;
  signal?: AbortSignal;
}

export interface VerifyReport {
  ok: boolean;
  sites: SuiteReport[];
}

/** What a node's boot proves for every node like it: one key per (class, OS version, medium). */
export function bootSampleKey(manifest: Manifest, node: string, via: 'seed' | 'usb' | 'pxe'): string {
  const n = manifest.nodes.find((x) => x.name === node);
  const kinds = manifest.artifacts.filter((a) => a.node === node && /^(seed-iso|seed-img|kairos-stick)$/.test(a.kind)).map((a) => a.kind).sort();
  const medium = via === 'pxe' ? 'pxe' : via === 'usb' ? `usb:${kinds.filter((k) => k !== 'seed-iso').join('+')}` : `seed:${kinds.filter((k) => k !== 'kairos-stick').join('+')}`;
  return [n?.hardwareClass, n?.arch, n?.firmware, manifest.os, manifest.osVersion, medium].join('|');
}

/** The nodes to boot per site: every node, or the first node of each sample key. */
export function pickBoots(manifests: ReadonlyArray<{ site: string; manifest: Manifest }>, via: 'seed' | 'usb' | 'pxe', mode: 'all' | 'sample', only?: readonly string[]): Map<string, string[]> {
  const picked = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const { site, manifest } of manifests) {
    for (const n of manifest.nodes) {
      if (only && !only.includes(n.name)) continue;
      if (mode === 'sample') {
        const key = bootSampleKey(manifest, n.name, via);
        if (seen.has(key)) continue;
        seen.add(key);
      }
      picked.set(site, [...(picked.get(site) ?? []), n.name]);
    }
  }
  return picked;
}

export const VERIFY_SUMMARY_NAME = 'summary.json';

export async function verify(opts: VerifyOptions): Promise<VerifyReport> {
  const log = opts.log ?? (() => {});
  const catalogue = await loadCatalogueForVerify(opts.catalogueDir, log);
  let sites = opts.sites;
  if (opts.all) {
    if (!catalogue.plans) throw new UsageError(`--all verifies every site of the catalogue: ${catalogue.problem ?? `no catalogue at ${opts.catalogueDir ?? '(none given)'}`}`);
    sites = selectSites(catalogue.plans, { sites: [], all: true, ...(opts.shard ? { shard: opts.shard } : {}) }).map((p) => p.id);
  }
  const where = { ...(opts.catalogueDir !== undefined ? { catalogueDir: opts.catalogueDir } : {}), ...(opts.secretsDir !== undefined ? { secretsDir: opts.secretsDir } : {}) };
  const signature = { anchor: await resolveTrustAnchor(where), lookedIn: anchorPlaces(where) };
  const via = opts.via ?? 'seed';
  // 1: static checks of every site (every node)
  const checked: Array<{ site: string; dir: string; manifest?: Manifest; results: CheckResult[]; started: number; ms: number }> = [];
  opts.progress?.start('checking', sites.length);
  for (const site of sites) {
    const started = Date.now();
    const dir = resolve(opts.outDir, site);
    const plan = catalogue.plans?.find((p) => p.id === site);
    const { manifest, results } = await staticChecks(dir, { siteId: site, plan, signature });
    if (catalogue.problem) results.push({ check: 'identity', node: null, ok: false, message: catalogue.problem });
    else if (catalogue.plans && !plan) results.push({ check: 'identity', node: null, ok: false, message: `site ${site} is not in the catalogue ${opts.catalogueDir}` });
    const staticOk = results.every((r) => r.ok);
    log(`${site}: static checks ${staticOk ? 'passed' : 'FAILED'} (${results.filter((r) => r.ok).length}/${results.length})`);
    for (const n of opts.nodes ?? []) {
      if (manifest && !manifest.nodes.some((m) => m.name === n)) {
        results.push({ check: 'node', node: n, ok: false, message: `site ${site} has no node ${n} (it has ${manifest.nodes.map((m) => m.name).join(', ')})` });
      }
    }
    checked.push({ site, dir, ...(manifest ? { manifest } : {}), results, started, ms: Date.now() - started });
    opts.progress?.done(site);
  }
  opts.progress?.end();
  // 2: boots, of every node or of one per (class, OS version, medium)
  const mode = opts.bootMode ?? 'all';
  if (opts.boot) {
    const withManifest = checked.flatMap((c) => (c.manifest ? [{ site: c.site, manifest: c.manifest }] : []));
    const picks = pickBoots(withManifest, via, mode, opts.nodes);
    const total = [...picks.values()].reduce((n, p) => n + p.length, 0);
    if (mode === 'sample') {
      const nodes = withManifest.reduce((n, m) => n + m.manifest.nodes.length, 0);
      log(`booting a sample: ${total} of ${nodes} node${nodes === 1 ? '' : 's'}, one per (hardware class, OS version, medium); every node had the static checks`);
    }
    opts.progress?.start('booting', picks.size);
    for (const c of checked) {
      const nodes = picks.get(c.site);
      if (!c.manifest || !nodes) continue;
      const t = Date.now();
      const boot = await bootSite(opts, c.dir, c.manifest, via, nodes, log);
      c.results.push(...boot);
      c.ms += Date.now() - t;
      log(`${c.site}: boot checks ${boot.every((r) => r.ok) ? 'passed' : 'FAILED'} (${boot.filter((r) => r.ok).length}/${boot.length})`);
      opts.progress?.done(c.site);
    }
    opts.progress?.end();
  }
  const suites: SuiteReport[] = checked.map((c) => ({ site: c.site, results: c.results, durationMs: c.ms }));
  // the last result beside the build it describes, for edgeimg report (only in edgeimg output)
  for (const c of checked) {
    if (c.manifest) await writeSummary(c.dir, c.site, c.manifest, c.results, opts.boot ? mode : 'none', opts.boot ? via : null);
  }
  if (opts.junit) {
    await mkdir(dirname(resolve(opts.junit)), { recursive: true });
    await writeFile(opts.junit, junitXml(suites));
  }
  return { ok: suites.every((s) => s.results.every((r) => r.ok)), sites: suites };
}

async function bootSite(opts: VerifyOptions, dir: string, manifest: Manifest, via: 'seed' | 'usb' | 'pxe', nodes: string[], log: (line: string) => void): Promise<CheckResult[]> {
  if (via === 'pxe') {
    return pxeChecks(dir, manifest, {
      cacheDir: resolveCacheDir(opts.cacheDir),
      catalogueDir: opts.catalogueDir ?? 'catalogue',
      log,
      ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      nodes,
      ...(opts.usbOptions?.timeoutMs ? { timeoutMs: opts.usbOptions.timeoutMs } : {}),
    });
  }
  if (via === 'usb') {
    return usbKitChecks(dir, manifest, {
      cacheDir: resolveCacheDir(opts.cacheDir),
      log,
      ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...opts.usbOptions,
      nodes,
    });
  }
  return bootChecks(dir, manifest, { jobs: opts.jobs, log, signal: opts.signal, ...opts.bootOptions, nodes });
}

async function writeSummary(dir: string, site: string, manifest: Manifest, results: CheckResult[], boot: 'none' | 'all' | 'sample', via: string | null): Promise<void> {
  const failed = results.filter((r) => !r.ok).length;
  const summary = {
    schemaVersion: 1,
    site,
    ok: failed === 0,
    passed: results.length - failed,
    failed,
    boot,
    via,
    inputDigest: manifest.inputDigest,
    finishedAt: new Date().toISOString(),
    booted: [...new Set(results.filter((r) => r.check.startsWith('boot') && r.node).map((r) => r.node!))].sort(),
    checks: results.map((r) => ({ check: r.check, node: r.node, ok: r.ok, message: r.message })),
  };
  const logDir = verifyLogDir(dir);
  try {
    await mkdir(logDir, { recursive: true });
    const tmp = join(logDir, `.${VERIFY_SUMMARY_NAME}.${process.pid}`);
    await writeFile(tmp, `${JSON.stringify(summary, null, 2)}\n`, { mode: 0o644 });
    await rename(tmp, join(logDir, VERIFY_SUMMARY_NAME));
  } catch {
    // a read-only OUT (e.g. a pulled artifact on a read-only mount): the result is still printed
  }
}

async function loadCatalogueForVerify(dir: string | undefined, log: (line: string) => void): Promise<{ plans?: SitePlan[]; problem?: string }> {
  if (dir === undefined) return {};
  if (!existsSync(dir)) {
    log(`no catalogue at ${dir}: identity is checked against the manifests only`);
    return {};
  }
  try {
    return { plans: (await planFleet(dir)).plans };
  } catch (err) {
    if (err instanceof CatalogueError) return { problem: `the catalogue ${dir} is invalid (${plural(err.diagnostics.length, 'error')}; run edgeimg validate), so identity cannot be checked against it` };
    throw err;
  }
}

export type { CheckResult };
export { staticChecks };
export const verifyLogDir = (siteDir: string): string => join(siteDir, 'verify');
