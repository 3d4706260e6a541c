// Kairos real-image profile: boot a Kairos live ISO with the node's seed attached. The seed's
// cloud-config has `install.auto: true`, so the live system should pick it up through its
// nocloud/cdrom datasource, install to the target disk and reboot (QEMU runs with -no-reboot,
// so the reboot ends the run).
//
// Kairos' installer writes its progress to tty1, not to the serial console (the
// kairos-installer unit sets TTYPath=/dev/tty1 and mutes systemd's console status while it
// runs), so the serial transcript alone rarely proves success. The verdict therefore combines
// the transcript (decisive failure markers; the completion line when it does reach the serial
// console) with the scratch install disk read back after the run: a GPT with Kairos' partitions
// (state, recovery, oem; see docs/decisions-real-images.md) and a guest that rebooted by itself.

import { redactedExcerpt } from '../../util/diagnostics.js';
import { closeSync, openSync, readSync } from 'node:fs';
import { cleanLine, createScratchDisk, installerGuestOptions, judgeLines, onFirstVerdict, startGuest, tail, type ProfileBootOptions, type ProfileResult, type Verdict } from './common.js';

const KAIROS_PASS: ReadonlyArray<{ re: RegExp; why: string }> = [
  { re: /Installation completed, starting reboot/i, why: 'kairos-agent finished the auto-install and is rebooting' },
  { re: /Installation completed, starting power off/i, why: 'kairos-agent finished the auto-install and is powering off' },
  { re: /Installation completed, press enter to go back to the shell/i, why: 'kairos-agent finished the auto-install' },
];

const KAIROS_FAILURES: ReadonlyArray<{ re: RegExp; why: string }> = [
  { re: /No providers found, dropping to a shell/i, why: 'kairos-agent found no auto-install config (install.auto) and dropped to a shell' },
  { re: /no configuration, stopping installation/i, why: 'kairos-agent has no configuration and stopped the installation' },
  { re: /userdata configuration failed to load after/i, why: 'the userdata from the datasource never finished loading' },
  { re: /config not found in the system/i, why: 'kairos-agent found no config' },
  { re: /Failed to start .*kairos[- ]installer/i, why: 'the Kairos installer service failed' },
  { re: /Kernel panic - not syncing/, why: 'kernel panic' },
  { re: /Entering emergency mode|You are in emergency mode/i, why: 'the live system fell into an emergency shell' },
];

/** Progress markers: they make a pending reason more precise but never decide. */
const KAIROS_PROGRESS: ReadonlyArray<{ re: RegExp; note: string }> = [
  { re: /Disabling immucore/i, note: 'the live ISO booted (immucore: live media)' },
  { re: /cos-setup-network|cOS setup after network/i, note: 'the network stage (where the datasource is pulled) ran' },
  { re: /Pull data from provider/i, note: 'the datasource stage ran' },
  { re: /kairos-installer\.service|kairos installer/i, note: 'the Kairos installer service started' },
  { re: /Starting installation|Running install|Partitioning device/i, note: 'the installation started' },
];

const NO_DATASOURCE = /No metadata\/userdata found/i;

/** Incremental judge of a Kairos console transcript (see the module comment for what it can and cannot see). */
export class KairosTranscriptJudge {
  private verdict: Verdict = { status: 'pending', reason: 'no Kairos installer activity on the console yet' };
  private notes: string[] = [];
  private noDatasource = 0;

  push(raw: string): Verdict {
    if (this.verdict.status !== 'pending') return this.verdict;
    const line = cleanLine(raw);
    for (const f of KAIROS_FAILURES) {
      if (f.re.test(line)) {
        const ds = this.noDatasource > 0 ? ' (the datasource reported no metadata/userdata earlier)' : '';
        this.verdict = { status: 'fail', reason: `${f.why}${ds}: ${redactedExcerpt(line, 240)}` };
        return this.verdict;
      }
    }
    for (const p of KAIROS_PASS) {
      if (p.re.test(line)) {
        this.verdict = { status: 'pass', reason: p.why };
        return this.verdict;
      }
    }
    // yip's datasource plugin says this on every stage that finds nothing; Kairos retries at
    // rootfs, initramfs and network, so it only counts together with a later failure
    if (NO_DATASOURCE.test(line)) this.noDatasource++;
    for (const p of KAIROS_PROGRESS) {
      if (p.re.test(line) && !this.notes.includes(p.note)) this.notes.push(p.note);
    }
    const ds = this.noDatasource > 0 ? `; the datasource reported no metadata/userdata ${this.noDatasource}x` : '';
    this.verdict = { status: 'pending', reason: this.notes.length ? `${this.notes.join('; ')}${ds}` : `no Kairos installer activity on the console yet${ds}` };
    return this.verdict;
  }

  current(): Verdict {
    return this.verdict;
  }
}

/** Judges a whole Kairos transcript (pure). */
export function judgeKairosTranscript(lines: string[]): Verdict {
  return judgeLines(new KairosTranscriptJudge(), lines);
}

// ------------------------------------------------------------------------------------------
// Reading the install disk back
// ------------------------------------------------------------------------------------------

export interface DiskPartition {
  index: number;
  /** GPT partition name (Kairos: efi/bios, oem, recovery, state, persistent). */
  name: string;
  firstLba: bigint;
  lastLba: bigint;
  /** ext2/3/4 volume label, when the partition starts with an ext superblock. */
  fsLabel?: string;
}

export interface DiskLayout {
  /** 'gpt' with partitions, 'blank' (no partition table), or 'other' (MBR only / unreadable GPT). */
  table: 'gpt' | 'blank' | 'other';
  partitions: DiskPartition[];
}

const SECTOR = 512;

function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** Reads the GPT (primary header at LBA 1, 512-byte sectors) and ext volume labels of a raw disk image. */
export function readDiskLayout(path: string): DiskLayout {
  const fd = openSync(path, 'r');
  try {
    const mbr = readAt(fd, 0, SECTOR);
    const hdr = readAt(fd, SECTOR, SECTOR);
    if (hdr.length < 92 || hdr.toString('latin1', 0, 8) !== 'EFI PART') {
      const hasMbr = mbr.length === SECTOR && mbr[510] === 0x55 && mbr[511] === 0xaa;
      return { table: hasMbr ? 'other' : 'blank', partitions: [] };
    }
    const entriesLba = Number(hdr.readBigUInt64LE(72));
    const count = hdr.readUInt32LE(80);
    const size = hdr.readUInt32LE(84);
    if (size < 128 || count > 1024) return { table: 'other', partitions: [] };
    const table = readAt(fd, entriesLba * SECTOR, count * size);
    const partitions: DiskPartition[] = [];
    for (let i = 0; i < count; i++) {
      const e = table.subarray(i * size, (i + 1) * size);
      if (e.length < 128 || e.subarray(0, 16).every((b) => b === 0)) continue; // unused entry
      const name = e.toString('utf16le', 56, 128).replace(/\0.*$/s, '');
      const firstLba = e.readBigUInt64LE(32);
      const lastLba = e.readBigUInt64LE(40);
      const p: DiskPartition = { index: i + 1, name, firstLba, lastLba };
      const sb = readAt(fd, Number(firstLba) * SECTOR + 1024, 136);
      if (sb.length >= 136 && sb.readUInt16LE(0x38) === 0xef53) {
        const label = sb.toString('latin1', 0x78, 0x88).replace(/\0.*$/s, '');
        if (label) p.fsLabel = label;
      }
      partitions.push(p);
    }
    return { table: 'gpt', partitions };
  } finally {
    closeSync(fd);
  }
}

/** Partitions (GPT name or ext label) a finished Kairos install leaves on its target disk. */
export const KAIROS_REQUIRED_PARTITIONS: ReadonlyArray<{ name: string; label: string }> = [
  { name: 'oem', label: 'COS_OEM' },
  { name: 'recovery', label: 'COS_RECOVERY' },
  { name: 'state', label: 'COS_STATE' },
];

function describeLayout(d: DiskLayout): string {
  if (d.table === 'blank') return 'the install disk is blank';
  if (d.table === 'other') return 'the install disk has no readable GPT';
  if (d.partitions.length === 0) return 'the install disk has an empty GPT';
  return `the install disk has partitions ${d.partitions.map((p) => (p.fsLabel ? `${p.name} (${p.fsLabel})` : p.name || `#${p.index}`)).join(', ')}`;
}

export interface KairosBootFacts {
  transcript: Verdict;
  /** The guest ended the run itself (reboot or power-off under -no-reboot), not a timeout or a stop. */
  guestExited: boolean;
  exitCode: number | null;
  timedOut: boolean;
  disk: DiskLayout | null;
  timeoutMs: number;
}

/** The Kairos verdict from the transcript and the install disk read back after the run (pure). */
export function judgeKairosBoot(f: KairosBootFacts): Verdict {
  if (f.transcript.status === 'fail') return f.transcript;
  const disk = f.disk ?? { table: 'blank' as const, partitions: [] };
  const missing = KAIROS_REQUIRED_PARTITIONS.filter((r) => !disk.partitions.some((p) => p.name === r.name || p.fsLabel === r.label));
  const installed = disk.table === 'gpt' && missing.length === 0;
  const layout = describeLayout(disk);
  if (installed && (f.transcript.status === 'pass' || (f.guestExited && f.exitCode === 0))) {
    const how = f.transcript.status === 'pass' ? f.transcript.reason : 'the live system rebooted after the install';
    return { status: 'pass', reason: `Kairos auto-installed from the nocloud seed's cloud-config: ${how}; ${layout}` };
  }
  if (installed) {
    return { status: 'fail', reason: `the install started (${layout}) but did not finish: the guest did not reboot within ${Math.round(f.timeoutMs / 1000)} s (${f.transcript.reason})` };
  }
  if (f.transcript.status === 'pass') {
    return { status: 'fail', reason: `${f.transcript.reason}, but ${layout} (missing ${missing.map((m) => m.name).join(', ')})` };
  }
  if (f.guestExited) {
    const how = f.exitCode === 0 ? 'rebooted or powered off' : `exited with code ${f.exitCode ?? '?'}`;
    return { status: 'fail', reason: `the guest ${how} without installing Kairos: ${layout} (${f.transcript.reason})` };
  }
  const secs = Math.round(f.timeoutMs / 1000);
  return { status: 'fail', reason: `no Kairos install within ${secs} s: ${f.transcript.reason}; ${layout}` };
}

// ------------------------------------------------------------------------------------------
// Boot
// ------------------------------------------------------------------------------------------

export interface KairosBootOptions extends ProfileBootOptions {
  /** After a completion line on the console, how long the guest may take to reboot by itself. Default 120 s. */
  rebootGraceMs?: number;
}

export async function bootKairos(o: KairosBootOptions): Promise<ProfileResult> {
  const t0 = Date.now();
  const scratch = createScratchDisk(o.scratch.bytes, 'kairos-install.raw');
  const judge = new KairosTranscriptJudge();
  let graceTimer: NodeJS.Timeout | undefined;
  try {
    const run = startGuest(
      installerGuestOptions(o, scratch.path, { network: o.network, memoryMiB: 4096, timeoutMs: o.timeoutMs }),
      o.signal,
      onFirstVerdict(judge, o.log, (g) => {
        graceTimer = setTimeout(() => g.stop('installed, no reboot'), o.rebootGraceMs ?? 120_000);
      }),
    );
    const res = await run.done;
    if (graceTimer) clearTimeout(graceTimer);
    const durationMs = Date.now() - t0;
    if (res.spawnError) return { ok: false, message: `cannot run QEMU: ${res.spawnError}`, durationMs, qemu: res };
    if (run.callerAborted()) return { ok: false, message: 'interrupted', durationMs, qemu: res };
    let disk: DiskLayout | null = null;
    try {
      disk = readDiskLayout(scratch.path);
    } catch (err) {
      o.log(`cannot read the install disk back: ${(err as Error).message}`);
    }
    const v = judgeKairosBoot({
      transcript: judge.current(),
      guestExited: !res.timedOut && !res.aborted,
      exitCode: res.exitCode,
      timedOut: res.timedOut,
      disk,
      timeoutMs: o.timeoutMs,
    });
    if (v.status === 'pass') return { ok: true, message: v.reason, durationMs, qemu: res };
    const err = res.stderr.trim() ? `; QEMU: ${res.stderr.trim().split('\n')[0]}` : '';
    return { ok: false, message: `${v.reason}${err}; last console lines: ${tail(run.lines) || '(none)'}`, durationMs, qemu: res };
  } finally {
    if (graceTimer) clearTimeout(graceTimer);
    scratch.cleanup();
  }
}
