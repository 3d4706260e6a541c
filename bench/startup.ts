// Start-up benchmark: what one `edgeimg` invocation costs a pre-commit hook or an incremental CI
// step, against a bare `node -e 0` measured in the same run. Commands run round-robin (one of
// each per round), so load from other jobs on the machine falls on all of them alike.
// Needs the built CLI (npm run build). Prints a table and one `bench: startup` line.
//
//   node --import tsx bench/startup.ts            BENCH_STARTUP_RUNS=N (default 25)
//   BENCH_STARTUP_BASELINE=DIR   also time the CLI of another built checkout (before/after)

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 25);
const WARMUP = 2;
const TARGET = 3;
const SITE = 'store-0412';
const BASELINE = process.env.BENCH_STARTUP_BASELINE;

const log = (s: string): void => void process.stderr.write(`bench: ${s}\n`);

interface Command {
  name: string;
  args: () => string[];
  cwd?: string;
}

/** The four commands against the CLI of the checkout at `dir`; `secrets` already holds the site's. */
function cliCommands(dir: string, work: string, secrets: string, suffix: string): Command[] {
  const cli = join(dir, 'bin', 'edgeimg.js');
  const help = spawnSync(process.execPath, [cli, 'build', '--help'], { encoding: 'utf8' }).stdout;
  const force = help.includes('--force') ? ['--force'] : []; // incremental builds: never skip the site
  let n = 0;
  return [
    { name: `edgeimg --version${suffix}`, args: () => [cli, '--version'], cwd: dir },
    { name: `edgeimg validate${suffix}`, args: () => [cli, 'validate'], cwd: dir },
    // a fresh --out each time: a one-site build that writes every file
    {
      name: `edgeimg build --site ${SITE}${suffix}`,
      args: () => [cli, 'build', '--site', SITE, '--out', join(work, `out${suffix ? '-base' : ''}-${n++}`), '--secrets', secrets, ...force],
      cwd: dir,
    },
  ];
}

/**
 * CPU time (user + system) of this process's waited-for children, in ms, from /proc (Linux;
 * clock ticks, usually 10 ms). On a machine shared with other jobs wall time includes waiting
 * for a core; CPU time does not, so it shows whether a ratio moved because of load.
 */
const TICK_MS = 1000 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100);
function childrenCpuMs(): number | undefined {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[13]) + Number(fields[14])) * TICK_MS; // cutime, cstime
  } catch {
    return undefined;
  }
}

function run(args: string[], cwd = root): { ms: number; cpu?: number } {
  const c = childrenCpuMs();
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  const c2 = childrenCpuMs();
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}:\n${r.stderr.slice(-2000)}`);
  return { ms, ...(c !== undefined && c2 !== undefined ? { cpu: c2 - c } : {}) };
}

function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export async function startupBench(): Promise<void> {
  for (const dir of [root, ...(BASELINE ? [BASELINE] : [])]) {
    if (!existsSync(join(dir, 'dist', 'cli', 'main.js'))) throw new Error(`bench/startup.ts needs the built CLI in ${dir}: npm run build`);
  }
  const work = mkdtempSync(join(tmpdir(), 'edgeimg-startup-'));
  try {
    const secrets = join(work, 'secrets');
    // steady state: the site's secrets and the fleet signing key exist before the timed builds
    run([join(root, 'bin', 'edgeimg.js'), 'build', '--site', SITE, '--out', join(work, 'out-setup'), '--secrets', secrets]);
    const commands: Command[] = [
      { name: 'node -e 0', args: () => ['-e', '0'] },
      ...cliCommands(root, work, secrets, ''),
      ...(BASELINE ? cliCommands(BASELINE, work, secrets, ' (baseline)') : []),
    ];
    const times = new Map(commands.map((c) => [c.name, [] as number[]]));
    const cpu = new Map(commands.map((c) => [c.name, [] as number[]]));
    log(`startup: ${RUNS} rounds of ${commands.length} commands (after ${WARMUP} warm-up rounds), round-robin`);
    for (let round = 0; round < WARMUP + RUNS; round++) {
      for (const c of commands) {
        const r = run(c.args(), c.cwd);
        if (round >= WARMUP) {
          times.get(c.name)!.push(r.ms);
          if (r.cpu !== undefined) cpu.get(c.name)!.push(r.cpu);
        }
      }
    }
    const stats = commands.map((c) => {
      const s = [...times.get(c.name)!].sort((a, b) => a - b);
      const u = [...cpu.get(c.name)!].sort((a, b) => a - b);
      return { name: c.name, median: quantile(s, 0.5), p90: quantile(s, 0.9), cpu: u.length > 0 ? quantile(u, 0.5) : NaN };
    });
    const base = stats[0]!;
    const rows = stats.map((s) => ({ ...s, ratio: s.median / base.median, ratio90: s.p90 / base.p90, cpuRatio: s.cpu / base.cpu }));
    const w = Math.max(...rows.map((r) => r.name.length));
    console.log(`${'command'.padEnd(w)}  median ms  p90 ms  ×node (median)  ×node (p90)  target ${TARGET}×  | CPU ms  ×node CPU`);
    for (const r of rows) {
      const verdict = r === rows[0] ? '    ' : r.ratio < TARGET ? 'ok  ' : 'OVER';
      const cpuCols = Number.isFinite(r.cpu) ? `${r.cpu.toFixed(0).padStart(6)}  ${r.cpuRatio.toFixed(2).padStart(9)}` : '';
      console.log(`${r.name.padEnd(w)}  ${r.median.toFixed(0).padStart(9)}  ${r.p90.toFixed(0).padStart(6)}  ${r.ratio.toFixed(2).padStart(14)}  ${r.ratio90.toFixed(2).padStart(11)}  ${verdict.padEnd(9)}  | ${cpuCols}`);
    }
    const load = (() => {
      try {
        return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
      } catch {
        return 'NA';
      }
    })();
    log(`startup: load average at the end ${load}`);
    const key = ['node', 'version', 'validate', 'build'];
    console.log(
      `bench: startup runs=${RUNS} ${rows.slice(0, 4).map((r, i) => `${key[i]}_ms=${r.median.toFixed(0)} ${key[i]}_p90_ms=${r.p90.toFixed(0)}${i > 0 ? ` ${key[i]}_ratio=${r.ratio.toFixed(2)}` : ''}`).join(' ')} target=${TARGET}`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await startupBench();
