// `make cloudinit-check`: boot every example node's seed.iso and seed.img in the reference NoCloud
// client (real cloud-init, images/cloudinit/) and print a pass/fail table.
//
//   node --import tsx bench/cloudinit-check.ts [--site ID ...] [--node NAME ...] [--media iso,img]
//        [--jobs N] [--timeout SECONDS] [--catalogue DIR] [--out DIR] [--keep]
//
// The sites are built (media iso,img) into a temporary directory with throw-away secrets, unless
// --out names a directory that already holds them. Serial logs and parsed reports go to
// out/cloudinit-check/ (git-ignored). Nodes without a MAC in the plan or manifest are skipped,
// with a message. Exit code: 0 all passed, 1 a check failed, 2 usage error, 3 missing image/tool.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, planFleet } from '../src/index.js';
import { cloudInitTargets, locateCloudInitImage, cloudInitImageMissingMessage, runCloudInitClient, type CloudInitClientResult, type CloudInitTarget, type SeedMedium } from '../src/verify/cloudinit/index.js';
import { interruptSignal, probeKvm } from '../src/verify/qemu.js';
import { mapLimit } from '../src/util/pool.js';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Args {
  sites: string[];
  nodes: string[];
  media: SeedMedium[];
  jobs: number;
  timeoutS: number;
  catalogue: string;
  out?: string;
  keep: boolean;
}

function usage(msg: string): never {
  process.stderr.write(`cloudinit-check: ${msg}\nusage: bench/cloudinit-check.ts [--site ID ...] [--node NAME ...] [--media iso,img] [--jobs N] [--timeout SECONDS] [--catalogue DIR] [--out DIR] [--keep]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { sites: [], nodes: [], media: ['iso', 'img'], jobs: 2, timeoutS: 600, catalogue: join(root, 'catalogue'), keep: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = (): string => argv[++i] ?? usage(`${k} needs a value`);
    switch (k) {
      case '--site': a.sites.push(...v().split(',').filter(Boolean)); break;
      case '--node': a.nodes.push(...v().split(',').filter(Boolean)); break;
      case '--media': {
        const m = v().split(',').filter(Boolean);
        if (m.length === 0 || m.some((x) => x !== 'iso' && x !== 'img')) usage('--media takes iso, img or iso,img');
        a.media = m as SeedMedium[];
        break;
      }
      case '--jobs': a.jobs = Number(v()); if (!Number.isInteger(a.jobs) || a.jobs < 1) usage('--jobs must be a positive integer'); break;
      case '--timeout': a.timeoutS = Number(v()); if (!(a.timeoutS > 0)) usage('--timeout must be a positive number of seconds'); break;
      case '--catalogue': a.catalogue = resolve(v()); break;
      case '--out': a.out = resolve(v()); break;
      case '--keep': a.keep = true; break;
      case '-h': case '--help': process.stdout.write('see the header of bench/cloudinit-check.ts and docs/cloudinit.md\n'); process.exit(0);
      default: usage(`unknown argument ${k}`);
    }
  }
  return a;
}

interface Row {
  site: string;
  node: string;
  arch: string;
  os: string;
  medium: SeedMedium;
  status: 'pass' | 'FAIL' | 'skip';
  seconds?: number;
  note: string;
}

const args = parseArgs(process.argv.slice(2));
const image = locateCloudInitImage(root);
if (!image) {
  process.stderr.write(`cloudinit-check: ${cloudInitImageMissingMessage(root)}\n`);
  process.exit(3);
}

const { signal, dispose } = interruptSignal();
const work = mkdtempSync(join(tmpdir(), 'edgeimg-cloudinit-check-'));
const logDir = join(root, 'out', 'cloudinit-check');
let exitCode = 0;
try {
  const { plans } = await planFleet(args.catalogue);
  const selected = plans.filter((p) => args.sites.length === 0 || args.sites.includes(p.id));
  for (const s of args.sites) if (!plans.some((p) => p.id === s)) usage(`no site ${s} in ${args.catalogue}`);
  let outDir = args.out;
  const needBuild = !outDir || selected.some((p) => !existsSync(join(outDir!, p.id, 'manifest.json')));
  if (needBuild) {
    outDir ??= join(work, 'out');
    process.stderr.write(`cloudinit-check: building ${selected.map((p) => p.id).join(', ')} (media iso,img) into ${outDir}\n`);
    await build({ catalogueDir: args.catalogue, outDir, secretsDir: join(work, 'secrets'), sites: selected.map((p) => p.id), media: ['iso', 'img'] });
  }
  const kvm = await probeKvm();
  const accel = kvm.usable ? 'kvm' : 'tcg';
  if (!kvm.usable) process.stderr.write(`cloudinit-check: KVM unusable (${kvm.reason}); booting under TCG software emulation\n`);
  process.stderr.write(`cloudinit-check: client image ${image.dir} (cloud-init ${image.cloudInitVersion}, kernel ${image.manifest.kernelRelease})\n`);

  const rows: Row[] = [];
  const boots: Array<{ t: CloudInitTarget; medium: SeedMedium; row: Row }> = [];
  for (const plan of selected) {
    for (const t of await cloudInitTargets(join(outDir!, plan.id), plan)) {
      if (args.nodes.length > 0 && !args.nodes.includes(t.node)) continue;
      for (const medium of args.media) {
        const row: Row = { site: t.site, node: t.node, arch: t.arch, os: t.os, medium, status: 'skip', note: '' };
        rows.push(row);
        if (!t.mac) {
          row.note = 'no MAC in the catalogue plan or the manifest yet: cannot give the client the node\'s NIC';
          process.stderr.write(`cloudinit-check: SKIP ${t.site}/${t.node} seed.${medium}: ${row.note}\n`);
        } else if (!t.seeds[medium]) {
          row.note = `no seed.${medium} was built`;
          process.stderr.write(`cloudinit-check: SKIP ${t.site}/${t.node} seed.${medium}: ${row.note}\n`);
        } else boots.push({ t, medium, row });
      }
    }
  }
  await mkdir(logDir, { recursive: true });
  process.stderr.write(`cloudinit-check: ${boots.length} boot(s), ${args.jobs} at a time; logs in ${logDir}\n`);
  await mapLimit(boots, args.jobs, async ({ t, medium, row }) => {
    const base = join(logDir, `${t.site}-${t.node}-${medium}`);
    let r: CloudInitClientResult;
    try {
      r = await runCloudInitClient({
        seed: t.seeds[medium]!, medium, mac: t.mac!, expect: t.expect, accel,
        timeoutMs: args.timeoutS * 1000, signal, serialLog: `${base}.log`, reportFile: `${base}.json`, image,
      });
    } catch (e) {
      row.status = 'FAIL';
      row.note = (e as Error).message;
      return;
    }
    row.seconds = r.durationMs / 1000;
    row.status = r.ok ? 'pass' : 'FAIL';
    const warn = r.warnings ? `${r.warnings.expected.length} expected / ${r.warnings.unexpected.length} other warning(s)` : '';
    row.note = r.ok
      ? [r.report?.cloudInit.datasourceFile?.replace(/^DataSourceNoCloud(Net)?: /, '').trim(), warn].filter(Boolean).join('; ')
      : r.failed.map((c) => `${c.check}: ${c.detail.split('\n')[0]}`).join(' | ');
    await writeFile(`${base}.checks.json`, `${JSON.stringify({ ok: r.ok, checks: r.checks, warnings: r.warnings, durationMs: r.durationMs, accel: r.accel, transcript: r.transcript }, null, 2)}\n`);
    process.stderr.write(`cloudinit-check: ${row.status} ${t.site}/${t.node} seed.${medium} (${row.seconds.toFixed(1)} s)\n`);
  }, { signal });

  const head = ['site', 'node', 'arch', 'os', 'seed', 'result', 'time', 'detail'];
  const cells = rows.map((r) => [r.site, r.node, r.arch, r.os, `seed.${r.medium}`, r.status, r.seconds !== undefined ? `${r.seconds.toFixed(1)} s` : '-', r.note]);
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (i < head.length - 1 ? c[i]!.length : 0))));
  const line = (c: string[]): string => c.map((v, i) => (i < c.length - 1 ? v.padEnd(width[i]!) : v)).join('  ');
  process.stdout.write(`${line(head)}\n${cells.map(line).join('\n')}\n`);
  const n = (s: Row['status']): number => rows.filter((r) => r.status === s).length;
  const total = rows.reduce((a, r) => a + (r.seconds ?? 0), 0);
  process.stdout.write(`\n${n('pass')} passed, ${n('FAIL')} failed, ${n('skip')} skipped; ${total.toFixed(0)} s of boots (${accel}); cloud-init ${image.cloudInitVersion}\n`);
  if (n('FAIL') > 0) exitCode = 1;
} catch (e) {
  if (signal.aborted) {
    process.stderr.write('cloudinit-check: interrupted\n');
    exitCode = 130;
  } else {
    process.stderr.write(`cloudinit-check: ${(e as Error).stack ?? String(e)}\n`);
    exitCode = (e as { exitCode?: number }).exitCode ?? 1;
  }
} finally {
  dispose();
  if (!args.keep) rmSync(work, { recursive: true, force: true });
  else process.stderr.write(`cloudinit-check: kept ${work}\n`);
}
process.exit(exitCode);
