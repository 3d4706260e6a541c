// Boot-verification benchmark: build store-0412 (3 control planes) with both seed media and time
// `edgeimg verify --site store-0412 --boot` (6 QEMU boots under TCG here). Target: <= 45 s.
// A benchmark, not a test: it prints its figures and asserts nothing.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'bin', 'edgeimg.js');
const work = mkdtempSync(join(tmpdir(), 'edgeimg-bench-verify-'));
try {
  const common = ['--out', join(work, 'out')];
  await execa(process.execPath, [cli, 'build', '--site', 'store-0412', '--media', 'iso,img', '--catalogue', join(root, 'catalogue'), '--secrets', join(work, 'secrets'), ...common]);
  const t0 = performance.now();
  const r = await execa(process.execPath, [cli, 'verify', '--site', 'store-0412', '--boot', '--secrets', join(work, 'secrets'), ...common], { reject: false, all: true });
  const seconds = (performance.now() - t0) / 1000;
  const boots = (r.all?.match(/^ok {3}store-0412\/\S+ boot-/gm) ?? []).length;
  const accel = /\((?:amd64|arm64), (kvm|tcg),/.exec(r.all ?? '')?.[1] ?? 'unknown';
  const perBoot = [...(r.all ?? '').matchAll(/, (?:kvm|tcg), ([\d.]+) s\)/g)].map((m) => Number(m[1]));
  const mean = perBoot.reduce((a, b) => a + b, 0) / Math.max(1, perBoot.length);
  if (r.exitCode !== 0) process.stderr.write(r.all ?? '');
  console.log(`bench-verify: site=store-0412 nodes=3 boots=${boots} accel=${accel} seconds=${seconds.toFixed(1)} boot_s_mean=${mean.toFixed(1)} target_s=45 ok=${r.exitCode === 0}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
