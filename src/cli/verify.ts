import { parseJobs } from '../util/pool.js';
import { verify } from '../verify/index.js';
import { interruptSignal } from '../verify/qemu.js';
import { UsageError } from '../util/diagnostics.js';
import { EXIT, parse, type Io } from './main.js';

export async function runVerify(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    site: { type: 'string', multiple: true },
    out: { type: 'string', default: 'out' },
    catalogue: { type: 'string', default: 'catalogue' },
    secrets: { type: 'string', default: process.env.EDGEIMG_SECRETS_DIR ?? 'secrets' },
    boot: { type: 'boolean' },
    jobs: { type: 'string' },
    junit: { type: 'string' },
    timeout: { type: 'string' },
    via: { type: 'string' },
    node: { type: 'string', multiple: true },
    cache: { type: 'string' },
  });
  const sites = values.site ?? [];
  if (sites.length === 0) throw new UsageError('give --site ID (repeatable)');
  const jobs = parseJobs(values.jobs);
  const via = values.via ?? 'seed';
  if (via !== 'seed' && via !== 'usb' && via !== 'pxe') throw new UsageError(`--via accepts seed, usb or pxe, got "${values.via}"`);
  if (values.via && !values.boot) throw new UsageError('--via chooses what --boot boots: give --boot too');
  if (values.node && sites.length !== 1) throw new UsageError('--node needs exactly one --site');
  const timeoutS = values.timeout === undefined ? (via === 'seed' ? 120 : 300) : Number(values.timeout);
  if (!(timeoutS > 0)) throw new UsageError(`--timeout must be a positive number of seconds, got "${values.timeout}"`);
  // Ctrl-C aborts running guests (a second one kills them at once); the QEMU runner kills and
  // reaps their process groups before verify returns.
  const interrupt = interruptSignal();
  const abort = { signal: interrupt.signal };
  try {
    const report = await verify({
      outDir: values.out!,
      catalogueDir: values.catalogue!,
      secretsDir: values.secrets!,
      sites,
      boot: values.boot,
      via,
      ...(values.cache ? { cacheDir: values.cache } : {}),
      ...(values.node ? { nodes: values.node } : {}),
      usbOptions: { timeoutMs: timeoutS * 1000 },
      jobs,
      junit: values.junit,
      signal: abort.signal,
      bootOptions: { timeoutMs: timeoutS * 1000 },
      log: (line) => io.err(`edgeimg: ${line}\n`),
    });
    for (const s of report.sites) {
      for (const r of s.results) {
        if (!r.ok) io.err(`FAIL ${s.site}${r.node ? `/${r.node}` : ''} ${r.check}: ${r.message}\n`);
        else if (r.check.startsWith('boot')) io.err(`ok   ${s.site}/${r.node} ${r.check}: ${r.message}\n`);
      }
    }
    const total = report.sites.reduce((n, s) => n + s.results.length, 0);
    const failed = report.sites.reduce((n, s) => n + s.results.filter((r) => !r.ok).length, 0);
    io.err(`edgeimg: verify ${report.ok ? 'passed' : 'FAILED'}: ${total - failed} passed, ${failed} failed\n`);
    if (values.json) io.out(`${JSON.stringify({ ok: report.ok, sites: report.sites })}\n`);
    return report.ok ? EXIT.ok : EXIT.failed;
  } finally {
    interrupt.dispose();
  }
}
