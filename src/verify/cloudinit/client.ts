// The reference NoCloud client: boots the Debian 12 guest with real cloud-init
// (images/cloudinit/) under QEMU with one node's seed attached and the node's MAC on its NIC,
// reads the report the guest prints after cloud-final.service, and checks it.
//
// QEMU runs through runQemu (src/verify/qemu.ts): its own process group, a hard timeout, and
// reaped on success, failure and abort. The root disk is a snapshot (the image is never written).

import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { probeKvm, runQemu, type Accel, type QemuResult } from '../qemu.js';
import { checkCloudInitReport, summariseWarnings, type CheckOutcome, type CloudInitExpectation, type SeedMedium, type UserDataKind, type WarningSummary } from './checks.js';
import { locateCloudInitImage, cloudInitImageMissingMessage, type CloudInitImage } from './image.js';
import { asClientReport, type CloudInitClientReport } from './report.js';
import { parseTranscript } from './transcript.js';
import { EnvironmentError } from '../../util/diagnostics.js';

export interface CloudInitClientOptions {
  /** seed.iso or seed.img of one node. */
  seed: string;
  medium: SeedMedium;
  /** The node's MAC: put on the guest's NIC. */
  mac: string;
  expect: {
    hostname: string;
    address: string;
    prefix: number;
    gateway: string;
    dns: string[];
    searchDomains?: string[];
    /** 'cloud-config' for Kairos, 'not-cloud-config' for Talos. */
    userData: UserDataKind;
  };
  /** Hard timeout of the QEMU run. Default 600 s (a boot takes ~70-90 s under TCG, several times that on a loaded machine). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Where the full serial log goes; default a file under the OS temp dir. */
  serialLog?: string;
  /** Also write the parsed report (pretty JSON) here. */
  reportFile?: string;
  /** Default: the built image under images/cache/cloudinit. */
  image?: CloudInitImage;
  /** Default: KVM when the probe says it works, else TCG. */
  accel?: Accel;
  /** Seconds the initramfs waits for the cidata/CIDATA volume to appear (default 30; 0: no wait). */
  seedWaitSeconds?: number;
  /** Predictable interface names (enp0s*) instead of eth0. Default false (net.ifnames=0). */
  predictableIfnames?: boolean;
  memoryMiB?: number;
}

export interface CloudInitClientResult {
  /** Every check passed. */
  ok: boolean;
  report?: CloudInitClientReport;
  checks: CheckOutcome[];
  /** The failed checks (transcript and QEMU problems appear here as checks too). */
  failed: CheckOutcome[];
  warnings?: WarningSummary;
  durationMs: number;
  accel: Accel;
  serialLog: string;
  qemu: Pick<QemuResult, 'exitCode' | 'signal' | 'timedOut' | 'aborted' | 'forcedStop' | 'spawnError' | 'name'>;
  /** Transcript recovery: copies seen and garbled record lines (console interleaving). */
  transcript: { copies: number; garbled: number };
  cloudInitVersion: string;
}

let kvmChecked: Promise<Accel> | undefined;

async function defaultAccel(): Promise<Accel> {
  kvmChecked ??= probeKvm().then((k) => (k.usable ? 'kvm' : 'tcg'));
  return kvmChecked;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** The guest kernel command line (the console, quiet, and the client's own parameters). */
export function clientKernelArgs(nonce: string, opts: { seedWaitSeconds?: number; predictableIfnames?: boolean } = {}): string {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(nonce)) throw new Error(`invalid nonce ${nonce}`);
  const args = [
    'console=ttyS0',
    'root=/dev/vda rootfstype=ext4 rw',
    // the report shares ttyS0 with the kernel: only emergencies may print there
    'quiet loglevel=1 systemd.show_status=0',
    'panic=-1',
    'cryptomgr.notests random.trust_cpu=on',
    // USB mass storage is scanned at once (usb-storage waits 1 s per device by default)
    'usb-storage.delay_use=0',
    opts.predictableIfnames ? 'net.ifnames=1' : 'net.ifnames=0',
    `edgeimg.nonce=${nonce}`,
  ];
  if (opts.seedWaitSeconds !== undefined) {
    if (!Number.isInteger(opts.seedWaitSeconds) || opts.seedWaitSeconds < 0 || opts.seedWaitSeconds > 600) throw new Error(`seedWaitSeconds ${opts.seedWaitSeconds} out of range`);
    args.push(`edgeimg.seedwait=${opts.seedWaitSeconds}`);
  }
  return args.join(' ');
}

/** Boots the client with one seed and checks what cloud-init did with it. Never throws for guest failures. */
export async function runCloudInitClient(opts: CloudInitClientOptions): Promise<CloudInitClientResult> {
  const image = opts.image ?? locateCloudInitImage();
  if (!image) throw new EnvironmentError(cloudInitImageMissingMessage());
  if (!existsSync(opts.seed)) throw new Error(`seed not found: ${opts.seed}`);
  if (!MAC_RE.test(opts.mac)) throw new Error(`MAC address ${opts.mac} is not valid`);
  const accel = opts.accel ?? (await defaultAccel());
  const nonce = randomBytes(8).toString('hex');
  const serialLog = opts.serialLog ?? join(tmpdir(), `edgeimg-cloudinit-${nonce}.log`);
  const expect: CloudInitExpectation = { ...opts.expect, mac: opts.mac, medium: opts.medium };

  const res = await runQemu({
    arch: 'amd64',
    accel,
    kernel: image.kernel,
    initrd: image.initrd,
    noBaseAppend: true,
    append: clientKernelArgs(nonce, opts),
    media: [
      { path: image.rootfs, kind: 'virtio-disk', snapshot: true },
      { path: opts.seed, kind: opts.medium === 'iso' ? 'cdrom' : 'usb' },
    ],
    // user-mode networking, isolated: the static address need not reach anything
    network: { macAddress: opts.mac, restrict: true },
    memoryMiB: opts.memoryMiB ?? 512,
    // baseline x86-64 rather than `max`: measured ~20% faster boots under TCG (docs/cloudinit.md)
    tcgCpu: 'qemu64',
    timeoutMs: opts.timeoutMs ?? 600_000,
    serialLog,
    signal: opts.signal,
    // the guest powers off right after the second copy; stop it if it does not
    stopAfter: new RegExp(`EDGEIMG-CI END v1 nonce=${nonce} copy=2 `),
    stopGraceMs: 15_000,
  });

  const failed: CheckOutcome[] = [];
  const qemuProblem = (): string | undefined => {
    if (res.spawnError) return `QEMU did not start: ${res.spawnError}`;
    if (res.aborted) return 'aborted';
    if (res.timedOut) return `no power-off within ${Math.round((opts.timeoutMs ?? 600_000) / 1000)} s (killed)`;
    if (/Kernel panic/.test(res.serial)) return `kernel panic: ${/Kernel panic[^\n]*/.exec(res.serial)?.[0] ?? ''}`;
    return undefined;
  };
  const tr = parseTranscript(res.serial, nonce);
  let report: CloudInitClientReport | undefined;
  if (tr.document !== undefined) {
    const r = asClientReport(tr.document);
    if (typeof r === 'string') tr.problems.push(r);
    else report = r;
  }
  const base = {
    durationMs: res.durationMs,
    accel: res.accel,
    serialLog,
    qemu: { exitCode: res.exitCode, signal: res.signal, timedOut: res.timedOut, aborted: res.aborted, forcedStop: res.forcedStop, spawnError: res.spawnError, name: res.name },
    transcript: { copies: tr.copies, garbled: tr.garbled },
    cloudInitVersion: image.cloudInitVersion,
  };
  if (!report) {
    const q = qemuProblem();
    failed.push({ check: 'report', ok: false, detail: [q, ...tr.problems].filter(Boolean).join('; ') });
    return { ok: false, checks: failed, failed, ...base };
  }
  if (opts.reportFile) {
    await mkdir(dirname(opts.reportFile), { recursive: true });
    await writeFile(opts.reportFile, `${JSON.stringify(report, null, 2)}\n`);
  }
  const checks = checkCloudInitReport(report, expect);
  const warnings = summariseWarnings(report, expect);
  return { ok: checks.every((c) => c.ok), report, checks, failed: checks.filter((c) => !c.ok), warnings, ...base };
}
