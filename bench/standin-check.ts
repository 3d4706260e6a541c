// `make standin-check`: boot smoke check of the stand-in class boot ISOs (images/standin/).
// Every boot goes through real firmware (no -kernel): the ISO is a USB stick with bootindex 0,
// a seed stick (no boot index) next to it, OVMF / SeaBIOS / AAVMF pick the ISO and GRUB boots
// the probe kernel in its stand-in mode. The per-run nonce and the media count reach the guest
// through QEMU fw_cfg (a wrapper around qemu-system-* adds the -fw_cfg options). Not part of
// vitest: it takes minutes under TCG.
//
//   node --import tsx bench/standin-check.ts [--only NAME,...] [--jobs N] [--standin DIR] [--keep]
//
// Boots (NAME):
//   ovmf-talos         amd64 talos-like.iso + FAT32 seed stick, OVMF              -> seed found
//   seabios-talos      amd64 talos-like.iso + FAT32 seed stick, SeaBIOS           -> seed found
//   aavmf-kairos       arm64 kairos-like.iso + FAT32 seed stick, AAVMF            -> seed found
//   ovmf-kairos-fat16  amd64 kairos-like.iso + FAT16 cidata stick, OVMF           -> no cidata volume
//   ovmf-kairos-live   amd64 kairos-like.iso + config.yaml (one stick), OVMF      -> config.yaml on the live medium
//
// Serial logs go to out/standin-check/<name>.log. Exit code: 0 all as expected, 1 a boot was not,
// 2 usage error, 3 missing image or tool.

import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { buildSeedImg } from '../src/media/seed.js';
import { compareProbeReport, parseProbeTranscript, type ExpectedFile, type ProbeReport } from '../src/verify/probe-report.js';
import { interruptSignal, runQemu, type GuestArch, type QemuFirmware, type QemuMedium } from '../src/verify/qemu.js';
import { guestFirmware } from '../src/verify/real-image.js';
import { mapLimit } from '../src/util/pool.js';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Boot {
  name: string;
  arch: GuestArch;
  firmware: 'OVMF' | 'SeaBIOS' | 'AAVMF';
  iso: 'talos-like' | 'kairos-like';
  stick: 'fat32-seed' | 'fat16-cidata' | 'live-config';
  expect: string;
  timeoutS: number;
}

const BOOTS: Boot[] = [
  { name: 'ovmf-talos', arch: 'amd64', firmware: 'OVMF', iso: 'talos-like', stick: 'fat32-seed', expect: 'seed found', timeoutS: 180 },
  { name: 'seabios-talos', arch: 'amd64', firmware: 'SeaBIOS', iso: 'talos-like', stick: 'fat32-seed', expect: 'seed found', timeoutS: 180 },
  { name: 'aavmf-kairos', arch: 'arm64', firmware: 'AAVMF', iso: 'kairos-like', stick: 'fat32-seed', expect: 'seed found', timeoutS: 300 },
  { name: 'ovmf-kairos-fat16', arch: 'amd64', firmware: 'OVMF', iso: 'kairos-like', stick: 'fat16-cidata', expect: 'no cidata volume', timeoutS: 180 },
  { name: 'ovmf-kairos-live', arch: 'amd64', firmware: 'OVMF', iso: 'kairos-like', stick: 'live-config', expect: 'config.yaml on the live medium', timeoutS: 180 },
];

function usage(msg: string): never {
  process.stderr.write(`standin-check: ${msg}\nusage: bench/standin-check.ts [--only NAME,...] [--jobs N] [--standin DIR] [--keep]\n`);
  process.exit(2);
}

const args = { only: [] as string[], jobs: 1, standin: join(root, 'images/cache/standin'), keep: false };
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i]!;
  const v = (): string => process.argv[++i] ?? usage(`${k} needs a value`);
  switch (k) {
    case '--only': args.only.push(...v().split(',').filter(Boolean)); break;
    case '--jobs': args.jobs = Number(v()); if (!Number.isInteger(args.jobs) || args.jobs < 1) usage('--jobs must be a positive integer'); break;
    case '--standin': args.standin = resolve(v()); break;
    case '--keep': args.keep = true; break;
    case '-h': case '--help': process.stdout.write('see the header of bench/standin-check.ts and images/standin/README.md\n'); process.exit(0);
    default: usage(`unknown argument ${k}`);
  }
}
for (const n of args.only) if (!BOOTS.some((b) => b.name === n)) usage(`no boot named ${n} (${BOOTS.map((b) => b.name).join(', ')})`);
const boots = BOOTS.filter((b) => args.only.length === 0 || args.only.includes(b.name));

for (const b of boots) {
  const iso = join(args.standin, b.arch, `${b.iso}.iso`);
  if (!existsSync(iso)) {
    process.stderr.write(`standin-check: ${iso} not built: run \`make standin-images\` (bash images/standin/build.sh)\n`);
    process.exit(3);
  }
}
for (const tool of ['mkfs.vfat', 'mcopy', 'xorriso']) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    process.stderr.write(`standin-check: ${tool} not found (apt-get install dosfstools mtools xorriso)\n`);
    process.exit(3);
  }
}

// ---- the sticks
const work = mkdtempSync(join(tmpdir(), 'edgeimg-standin-check-'));
const logDir = join(root, 'out', 'standin-check');
mkdirSync(logDir, { recursive: true });
const EPOCH = 1700000000;
const IID = 'iid-standin-check.node-1.0123456789abcdef';
const HOST = 'standin-node-1';
const seedFiles = {
  userData: '#cloud-config\n# edgeimg stand-in smoke check\n',
  metaData: `instance-id: ${IID}\nlocal-hostname: ${HOST}\n`,
  networkConfig: 'version: 2\nethernets: {}\n',
};
const info = ['edgeimg seed stick (stand-in smoke check)', '', `Hostname:     ${HOST}`, `Instance:     ${IID}`, ''].join('\r\n');
const seedExpected: ExpectedFile[] = [
  { name: 'user-data', data: seedFiles.userData },
  { name: 'meta-data', data: seedFiles.metaData },
  { name: 'network-config', data: seedFiles.networkConfig },
  { name: 'EDGEIMG.TXT', data: info },
];

const fat32 = join(work, 'seed-fat32.img');
writeFileSync(fat32, buildSeedImg(seedFiles, EPOCH, info));

const fat16 = join(work, 'cidata-fat16.img');
const fat16src = join(work, 'fat16');
mkdirSync(fat16src);
writeFileSync(join(fat16src, 'user-data'), seedFiles.userData);
writeFileSync(join(fat16src, 'meta-data'), seedFiles.metaData);
execFileSync('mkfs.vfat', ['-F', '16', '-n', 'CIDATA', '-C', fat16, String(20 * 1024)], { stdio: 'ignore' });
execFileSync('mcopy', ['-i', fat16, join(fat16src, 'user-data'), join(fat16src, 'meta-data'), '::/']);

/** The amd64 kairos-like ISO with config.yaml and EDGEIMG.TXT added (as a Kairos one-stick kit). */
function liveStick(classIso: string): string {
  const dir = join(work, 'live');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.yaml'), seedFiles.userData);
  writeFileSync(join(dir, 'EDGEIMG.TXT'), info);
  const out = join(work, 'kairos-live.iso');
  rmSync(out, { force: true });
  execFileSync('xorriso', [
    '-no_rc', '-abort_on', 'SORRY', '-indev', `stdio:${classIso}`, '-outdev', `stdio:${out}`,
    '-boot_image', 'any', 'replay', '-map', join(dir, 'config.yaml'), '/config.yaml', '-map', join(dir, 'EDGEIMG.TXT'), '/EDGEIMG.TXT', '-commit',
  ], { stdio: 'ignore' });
  return out;
}

/** qemu-system-* with the fw_cfg items appended (runQemu takes any binary). */
function qemuWithFwCfg(arch: GuestArch, nonce: string, media: number): string {
  const real = arch === 'amd64' ? 'qemu-system-x86_64' : 'qemu-system-aarch64';
  const p = join(work, `qemu-${nonce}`);
  writeFileSync(p, `#!/bin/sh\nexec ${real} "$@" -fw_cfg name=opt/edgeimg/nonce,string=${nonce} -fw_cfg name=opt/edgeimg/media,string=${media}\n`);
  chmodSync(p, 0o755);
  return p;
}

function firmwareOf(b: Boot, dir: string): QemuFirmware | undefined {
  if (b.firmware === 'SeaBIOS') return undefined;
  const f = guestFirmware(b.arch, 'uefi', dir);
  if (f.error || !f.firmware) throw new Error(f.error ?? f.note ?? 'no UEFI firmware');
  return f.firmware;
}

/** Problems with a transcript, given what the boot should show; empty = as expected. */
function judge(b: Boot, r: ProbeReport, volid: string): string[] {
  const p: string[] = [];
  if (r.status === 'incomplete') return [r.error ?? 'no transcript'];
  if (r.standin !== b.iso) p.push(`STANDIN ${r.standin ?? '(none)'}, expected ${b.iso}`);
  if (!r.boot) p.push('no BOOT line');
  else if (r.boot.label !== volid) p.push(`booted from "${r.boot.label}", expected "${volid}"`);
  if (b.stick === 'fat16-cidata') {
    if (!r.errors.includes('no cidata volume found')) p.push(`expected "no cidata volume found", got ${r.errors.join('; ') || 'no error'}`);
    if (!r.skipped.some((s) => s.reason === 'go-diskfs-reads-only-fat32-and-iso9660')) p.push('no SKIP line for the FAT16 cidata stick');
    if (r.volume) p.push(`a volume was chosen: ${r.volume.device}`);
    return p;
  }
  if (b.stick === 'live-config') {
    p.push(...compareProbeReport(r, [{ name: 'config.yaml', data: seedFiles.userData }, { name: 'EDGEIMG.TXT', data: info }]));
    if (r.source !== 'live') p.push('configuration not taken from the live medium');
  } else {
    p.push(...compareProbeReport(r, seedExpected));
    if (r.volume && r.boot && r.volume.device.startsWith(r.boot.device)) p.push(`chose the boot medium ${r.volume.device}`);
  }
  if (!r.node || r.node.instanceId !== IID || r.node.hostname !== HOST) p.push(`NODE ${JSON.stringify(r.node)}`);
  return p;
}

interface Row { boot: Boot; ok: boolean; seconds?: number; note: string }

const { signal, dispose } = interruptSignal();
let exitCode = 0;
try {
  process.stderr.write(`standin-check: ${boots.length} boot(s), ${args.jobs} at a time, TCG; logs in ${logDir}\n`);
  const rows = await mapLimit(boots, args.jobs, async (b): Promise<Row> => {
    const classIso = join(args.standin, b.arch, `${b.iso}.iso`);
    const volid = b.iso === 'talos-like' ? 'EDGEIMG_TALOS_LIKE' : 'COS_LIVE';
    const fwDir = mkdtempSync(join(work, 'fw-'));
    try {
      const media: QemuMedium[] = [];
      if (b.stick === 'live-config') media.push({ path: liveStick(classIso), kind: 'usb', bootIndex: 0 });
      else media.push({ path: classIso, kind: 'usb', bootIndex: 0 }, { path: b.stick === 'fat32-seed' ? fat32 : fat16, kind: 'usb' });
      const nonce = randomBytes(8).toString('hex');
      const firmware = firmwareOf(b, fwDir);
      const serialLog = join(logDir, `${b.name}.log`);
      const res = await runQemu({
        arch: b.arch,
        media,
        ...(firmware ? { firmware } : {}),
        memoryMiB: 512, // GRUB 2.06 under OVMF runs out of memory loading the kernel with 256 MiB
        timeoutMs: b.timeoutS * 1000,
        serialLog,
        accel: 'tcg',
        qemuBinary: qemuWithFwCfg(b.arch, nonce, media.length),
        signal,
      });
      const seconds = res.durationMs / 1000;
      if (res.spawnError) return { boot: b, ok: false, seconds, note: `qemu: ${res.spawnError}` };
      if (res.timedOut) return { boot: b, ok: false, seconds, note: `timed out after ${b.timeoutS} s (${serialLog})` };
      const report = parseProbeTranscript(res.serial, nonce);
      const problems = judge(b, report, volid);
      const what = report.source === 'live'
        ? `config.yaml on ${report.volume?.device} (live)`
        : report.volume ? `${report.volume.fstype} "${report.volume.label}" on ${report.volume.device}` : report.errors.join('; ');
      return { boot: b, ok: problems.length === 0, seconds, note: problems.length === 0 ? `boot ${report.boot?.device}; ${what}` : problems.join('; ') };
    } catch (e) {
      return { boot: b, ok: false, note: (e as Error).message };
    } finally {
      rmSync(fwDir, { recursive: true, force: true });
    }
  });
  const head = ['boot', 'arch', 'firmware', 'ISO', 'stick', 'expected', 'result', 'wall s', 'details'];
  const table = rows.map((r) => [r.boot.name, r.boot.arch, r.boot.firmware, r.boot.iso, r.boot.stick, r.boot.expect, r.ok ? 'pass' : 'FAIL', r.seconds?.toFixed(1) ?? '-', r.note]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  process.stdout.write(`${line(head)}\n${line(widths.map((w) => '-'.repeat(w)))}\n${table.map(line).join('\n')}\n`);
  if (rows.some((r) => !r.ok)) exitCode = 1;
} finally {
  dispose();
  if (!args.keep) rmSync(work, { recursive: true, force: true });
  else process.stderr.write(`standin-check: kept ${work}\n`);
}
process.exit(exitCode);
