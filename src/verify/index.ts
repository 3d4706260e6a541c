// `edgeimg verify` as a library call: static checks for every site, then (with boot) QEMU boots
// of every node's seed media. Results are data; the CLI decides how to print them.

import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { planFleet } from '../catalogue/index.js';
import type { SitePlan } from '../catalogue/plan.js';
import { CatalogueError, plural } from '../util/diagnostics.js';
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
  boot?: boolean;
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

export async function verify(opts: VerifyOptions): Promise<VerifyReport> {
  const log = opts.log ?? (() => {});
  const suites: SuiteReport[] = [];
  const catalogue = await loadCatalogueForVerify(opts.catalogueDir, log);
  const where = { ...(opts.catalogueDir !== undefined ? { catalogueDir: opts.catalogueDir } : {}), ...(opts.secretsDir !== undefined ? { secretsDir: opts.secretsDir } : {}) };
  const signature = { anchor: await resolveTrustAnchor(where), lookedIn: anchorPlaces(where) };
  for (const site of opts.sites) {
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
    if (opts.boot && manifest) {
      const boot =
        opts.via === 'pxe'
          ? await pxeChecks(dir, manifest, {
              cacheDir: resolveCacheDir(opts.cacheDir),
              catalogueDir: opts.catalogueDir ?? 'catalogue',
              log,
              ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
              ...(opts.signal ? { signal: opts.signal } : {}),
              ...(opts.nodes ? { nodes: opts.nodes } : {}),
              ...(opts.usbOptions?.timeoutMs ? { timeoutMs: opts.usbOptions.timeoutMs } : {}),
            })
          : opts.via === 'usb'
          ? await usbKitChecks(dir, manifest, {
              cacheDir: resolveCacheDir(opts.cacheDir),
              log,
              ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
              ...(opts.signal ? { signal: opts.signal } : {}),
              ...(opts.nodes ? { nodes: opts.nodes } : {}),
              ...opts.usbOptions,
            })
          : await bootChecks(dir, manifest, { jobs: opts.jobs, log, signal: opts.signal, ...(opts.nodes ? { nodes: opts.nodes } : {}), ...opts.bootOptions });
      results.push(...boot);
      log(`${site}: boot checks ${boot.every((r) => r.ok) ? 'passed' : 'FAILED'} (${boot.filter((r) => r.ok).length}/${boot.length})`);
    }
    suites.push({ site, results, durationMs: Date.now() - started });
  }
  if (opts.junit) {
    await mkdir(dirname(resolve(opts.junit)), { recursive: true });
    await writeFile(opts.junit, junitXml(suites));
  }
  return { ok: suites.every((s) => s.results.every((r) => r.ok)), sites: suites };
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
