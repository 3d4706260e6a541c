// `edgeimg verify` as a library call: static checks for every site, then (with boot) QEMU boots
// of every node's seed media. Results are data; the CLI decides how to print them.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { staticChecks, type CheckResult } from './static.js';
import { junitXml, type SuiteReport } from './junit.js';
import { bootChecks, type BootOptions } from './boot.js';

export interface VerifyOptions {
  outDir: string;
  sites: string[];
  boot?: boolean;
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
  for (const site of opts.sites) {
    const started = Date.now();
    const dir = resolve(opts.outDir, site);
    const { manifest, results } = await staticChecks(dir);
    const staticOk = results.every((r) => r.ok);
    log(`${site}: static checks ${staticOk ? 'passed' : 'FAILED'} (${results.filter((r) => r.ok).length}/${results.length})`);
    if (opts.boot && manifest) {
      const boot = await bootChecks(dir, manifest, { jobs: opts.jobs, log, signal: opts.signal, ...opts.bootOptions });
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

export type { CheckResult };
export { staticChecks };
export const verifyLogDir = (siteDir: string): string => join(siteDir, 'verify');
