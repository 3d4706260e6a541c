// Shared pieces of the real-image profiles: the verdict type, ANSI/kernel-prefix clean-up of
// serial lines, scratch install disks, a free loopback port, and a guest run that can be
// stopped from outside once the profile has its verdict.

import { createServer } from 'node:net';
import { closeSync, openSync, ftruncateSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runQemu, type Accel, type GuestArch, type QemuFirmware, type QemuMedium, type QemuResult, type QemuUserNetwork, type RunQemuOptions } from '../qemu.js';

export type VerdictStatus = 'pass' | 'fail' | 'pending';

export interface Verdict {
  status: VerdictStatus;
  reason: string;
}

// CSI / OSC escape sequences (colours, cursor movement of a TUI drawn on the console)
// eslint-disable-next-line no-control-regex
const ANSI_RE = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]/g;

/** A serial line without escape sequences, CRs and other control characters (tabs kept). */
export function cleanLine(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(ANSI_RE, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').trimEnd();
}

/** Last `n` non-empty cleaned lines, for failure messages. */
export function tail(lines: readonly string[], n = 3): string {
  return lines
    .map(cleanLine)
    .filter((l) => l.trim() !== '')
    .slice(-n)
    .map((l) => (l.length > 200 ? `${l.slice(0, 200)}...` : l))
    .join(' | ');
}

/** A sparse raw file of `bytes` to install into; removed by the returned cleanup. */
export function createScratchDisk(bytes: number, name = 'disk.raw'): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'edgeimg-scratch-'));
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A TCP port on 127.0.0.1 that was free a moment ago (QEMU binds it next; callers retry on a clash). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolvePort(port) : reject(new Error('no port assigned'))));
    });
  });
}

export interface GuestRun {
  /** Resolves once QEMU has exited and been reaped (runQemu's guarantees hold). */
  done: Promise<QemuResult>;
  /** Stops the guest (process group SIGTERM, then SIGKILL); `why` is kept for the report. */
  stop: (why: string) => void;
  stoppedBecause: () => string | undefined;
  /** Aborted by the caller's signal (Ctrl-C), as opposed to stopped by the profile. */
  callerAborted: () => boolean;
  lines: string[];
}

/**
 * Starts a guest whose serial lines are collected (cleaned) and passed to `onLine`. The guest can
 * be stopped by the profile (`stop`) or by the caller's signal; both go through runQemu's abort
 * path, so the process-group kill and reaping guarantees are runQemu's.
 */
export function startGuest(opts: Omit<RunQemuOptions, 'signal' | 'onSerialLine' | 'stopAfter'>, signal: AbortSignal | undefined, onLine: (line: string, run: GuestRun) => void): GuestRun {
  const ac = new AbortController();
  let why: string | undefined;
  let byCaller = false;
  const onCallerAbort = (): void => {
    byCaller = true;
    ac.abort();
  };
  if (signal?.aborted) onCallerAbort();
  else signal?.addEventListener('abort', onCallerAbort, { once: true });
  const lines: string[] = [];
  const run: GuestRun = {
    done: Promise.resolve(undefined as unknown as QemuResult),
    stop: (reason) => {
      if (why === undefined && !byCaller) why = reason;
      ac.abort();
    },
    stoppedBecause: () => why,
    callerAborted: () => byCaller,
    lines,
  };
  run.done = runQemu({
    ...opts,
    stopAfter: null,
    signal: ac.signal,
    onSerialLine: (raw) => {
      const line = cleanLine(raw);
      lines.push(line);
      onLine(line, run);
    },
  }).finally(() => signal?.removeEventListener('abort', onCallerAbort));
  return run;
}

/** Feeds lines to a streaming judge until it decides; the verdict for a whole transcript. */
export function judgeLines(judge: { push(line: string): Verdict; current(): Verdict }, lines: readonly string[]): Verdict {
  for (const l of lines) {
    if (judge.push(l).status !== 'pending') break;
  }
  return judge.current();
}

/** What every real-image profile boot needs (the profile adds its own options). */
export interface ProfileBootOptions {
  arch: GuestArch;
  accel: Accel;
  /** The cached real boot image. */
  isoPath: string;
  seedPath: string;
  seedMedium: 'cdrom' | 'usb';
  /** Install target the seed's config names, emulated by a sparse scratch disk. */
  scratch: { kind: QemuMedium['kind']; bytes: number };
  network?: QemuUserNetwork;
  firmware?: QemuFirmware;
  role: 'controlplane' | 'worker';
  timeoutMs: number;
  serialLog: string;
  signal?: AbortSignal;
  log: (line: string) => void;
  memoryMiB?: number;
  cpus?: number;
  qemuBinary?: string;
  killGraceMs?: number;
}

export interface ProfileResult {
  ok: boolean;
  message: string;
  durationMs: number;
  qemu?: QemuResult;
}

/**
 * QEMU options for an installer boot: the real ISO first, the seed as the node would see it,
 * and the scratch install disk second in boot order (so the installed system boots after).
 */
export function installerGuestOptions(
  o: ProfileBootOptions,
  scratchPath: string,
  over: { network?: QemuUserNetwork; memoryMiB: number; timeoutMs: number },
): Omit<RunQemuOptions, 'signal' | 'onSerialLine' | 'stopAfter'> {
  return {
    arch: o.arch,
    accel: o.accel,
    media: [
      { path: o.isoPath, kind: 'cdrom', bootIndex: 0 },
      { path: o.seedPath, kind: o.seedMedium },
      { path: scratchPath, kind: o.scratch.kind, readOnly: false, bootIndex: 1 },
    ],
    network: over.network,
    firmware: o.firmware,
    memoryMiB: o.memoryMiB ?? over.memoryMiB,
    cpus: o.cpus ?? 2,
    timeoutMs: over.timeoutMs,
    serialLog: o.serialLog,
    qemuBinary: o.qemuBinary,
    killGraceMs: o.killGraceMs,
  };
}

/**
 * Serial-line handler for a streaming judge: stops the guest on the first failing verdict and
 * calls `onPass` once, on the first passing one; later lines are ignored.
 */
export function onFirstVerdict(
  judge: { push(line: string): Verdict; current(): Verdict },
  log: (line: string) => void,
  onPass: (run: GuestRun) => void,
): (line: string, run: GuestRun) => void {
  return (line, run) => {
    const before = judge.current().status;
    const v = judge.push(line);
    if (before !== 'pending' || v.status === 'pending') return;
    if (v.status === 'fail') return run.stop('fail');
    log(v.reason);
    onPass(run);
  };
}
