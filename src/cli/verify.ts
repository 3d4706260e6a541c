import { parseJobs } from '../util/pool.js';
import { verify } from '../verify/index.js';
import { interruptSignal } from '../verify/qemu.js';
import { UsageError } from '../util/diagnostics.js';
import { parseShard } from '../build/build.js';
import { createProgress, type Progress } from '../util/progress.js';

/** Fewer sites than this are done before a bar would tell anyone anything. */
const PROGRESS_MIN = 16;
import { EXIT, parse, type Io } from './main.js';

/** `--boot=sample` / `--boot=all` (parseArgs has no optional values): split off before parsing. */
function bootMode(args: string[]): { args: string[]; mode?: 'all' | 'sample' } {
  let mode: 'all' | 'sample' | undefined;
  const rest = args.map((a) => {
    const m = /^--boot=(.*)$/.exec(a);
    if (!m) return a;
    if (m[1] !== 'all' && m[1] !== 'sample') throw new UsageError(`--boot= takes all or sample, got "${m[1]}"`);
    mode = m[1];
    return '--boot';
  });
  return { args: rest, ...(mode ? { mode } : {}) };
}

export async function runVerify(argv: string[], io: Io): Promise<number> {
  const { args, mode } = bootMode(argv);
  const { values } = parse(args, {
    site: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    shard: { type: 'string' },
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
  if (values.all && sites.length > 0) throw new UsageError('give either --site or --all, not both');
  if (sites.length === 0 && !values.all) throw new UsageError('give --site ID (repeatable) or --all');
  if (values.shard && !values.all) throw new UsageError('--shard needs --all');
  const shard = values.shard ? parseShard(values.shard) : undefined;
  const jobs = parseJobs(values.jobs);
  const via = values.via ?? 'seed';
  if (via !== 'seed' && via !== 'usb' && via !== 'pxe') throw new UsageError(`--via accepts seed, usb or pxe, got "${values.via}"`);
  if (values.via && !values.boot) throw new UsageError('--via chooses what --boot boots: give --boot too');
  if (values.node && sites.length !== 1) throw new UsageError('--node needs exactly one --site');
  if (mode === 'sample' && values.node) throw new UsageError('--boot=sample chooses the nodes itself: leave out --node');
  const timeoutS = values.timeout === undefined ? (via === 'seed' ? 120 : 300) : Number(values.timeout);
  if (!(timeoutS > 0)) throw new UsageError(`--timeout must be a positive number of seconds, got "${values.timeout}"`);
  // Ctrl-C aborts running guests (a second one kills them at once); the QEMU runner kills and
  // reaps their process groups before verify returns.
  const interrupt = interruptSignal();
  let bar: Progress | undefined;
  const say = (line: string): void => (bar ? bar.log(line) : io.err(line));
  const abort = { signal: interrupt.signal };
  try {
    const report = await verify({
      outDir: values.out!,
      catalogueDir: values.catalogue!,
      secretsDir: values.secrets!,
      sites,
      ...(values.all ? { all: true } : {}),
      ...(shard ? { shard } : {}),
      boot: values.boot,
      ...(mode ? { bootMode: mode } : {}),
      via,
      ...(values.cache ? { cacheDir: values.cache } : {}),
      ...(values.node ? { nodes: values.node } : {}),
      usbOptions: { timeoutMs: timeoutS * 1000 },
      jobs,
      junit: values.junit,
      signal: abort.signal,
      bootOptions: { timeoutMs: timeoutS * 1000 },
      log: (line) => say(`edgeimg: ${line}\n`),
      progress: {
        start: (label, total) => {
          bar = total >= PROGRESS_MIN ? createProgress({ total, label: `edgeimg: ${label}`, stream: { write: (s: string) => io.err(s), isTTY: io.isTTY ?? false } }) : undefined;
        },
        done: (item) => bar?.tick(1, item),
        end: () => {
          bar?.done();
          bar = undefined;
        },
      },
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
