// QEMU runner for boot verification.
//
// Every QEMU process is spawned detached, i.e. in a process group of its own, and is tracked
// until it has been reaped. It is stopped -- SIGTERM to the whole group, then SIGKILL after a
// grace period -- on timeout, on abort (the CLI wires SIGINT to an AbortSignal), and on error;
// a process 'exit' hook SIGKILLs any group still alive. Each one carries `-name edgeimg-<id>` so
// tests can assert with `pgrep -f` that none is left behind.

import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, createWriteStream, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { arch as hostArch, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export type GuestArch = 'amd64' | 'arm64';
/**
 * `nvme` and `sata-disk` are for scratch install disks of real-image boots (they show up as
 * /dev/nvme0n1 and /dev/sda, the device names install configs usually name).
 */
export type MediaKind = 'cdrom' | 'usb' | 'virtio-disk' | 'nvme' | 'sata-disk';
export type Accel = 'kvm' | 'tcg';

export interface QemuMedium {
  path: string;
  kind: MediaKind;
  /** Default true. A writable medium is a scratch disk (opened with cache=unsafe). */
  readOnly?: boolean;
  /**
   * The guest may write, but its writes go to a temporary overlay QEMU discards on exit
   * (`snapshot=on`): the file itself is never changed. Overrides `readOnly`. Not for CD-ROMs.
   */
  snapshot?: boolean;
  /** Firmware boot order (`bootindex`); lower boots first. Unset: no explicit order. */
  bootIndex?: number;
}

/** Guest firmware: `-bios <file>` (SeaBIOS-style image, or a combined OVMF.fd/QEMU_EFI.fd), or UEFI pflash. */
export type QemuFirmware = { kind: 'bios'; path: string } | { kind: 'pflash'; code: string; vars?: string };

/**
 * User-mode (slirp) networking with one virtio NIC. Forwards bind to 127.0.0.1 only. `subnet`,
 * `hostAddress` (the slirp gateway), `dnsAddress` and `guestAddress` (first DHCP lease, and the
 * default forward target) let the guest keep the static address of its seed.
 */
export interface QemuUserNetwork {
  macAddress?: string;
  /** CIDR, e.g. 10.4.12.0/24. */
  subnet?: string;
  hostAddress?: string;
  dnsAddress?: string;
  guestAddress?: string;
  /** Isolate the guest from the host's networks (restrict=on); forwards still work. */
  restrict?: boolean;
  hostForwards?: Array<{ hostPort: number; guestPort: number; guestAddress?: string }>;
  /**
   * Network boot: the DHCP boot file slirp offers (`bootfile=`, the BOOTP file field), an
   * http:// URL the NIC's iPXE option ROM fetches and runs, e.g.
   * `http://10.0.2.2:8080/boot.ipxe` (slirp's gateway reaches the host's 127.0.0.1); AAVMF's
   * UEFI HTTP boot (arm64, no iPXE) takes it too, for an EFI binary. At most 127 characters;
   * no commas, spaces or quotes.
   */
  bootFile?: string;
  /** Firmware boot order of the NIC (`bootindex`); set it to boot from the network. */
  nicBootIndex?: number;
  /** Default `virtio-net-pci` (option ROM efi-virtio.rom / pxe-virtio.rom). */
  nicModel?: 'virtio-net-pci' | 'e1000';
  /**
   * The NIC's option ROM (`romfile=`): a file name QEMU looks up in its data directories (e.g.
   * `efi-virtio.rom`) or a path; `''` for none. Default: QEMU's choice for the model.
   */
  romfile?: string;
}

export interface RunQemuOptions {
  arch: GuestArch;
  /** Direct kernel boot. Leave out (with initrd and append) to boot from firmware and `media`. */
  kernel?: string;
  initrd?: string;
  /** Extra kernel arguments, appended to the base ones (console, quiet, panic, edgeimg.media). */
  append?: string;
  media: QemuMedium[];
  timeoutMs: number;
  /** Path the full serial log is written to (directories are created). */
  serialLog: string;
  /** `kvm` falls back to `tcg` when the guest architecture differs from the host's. */
  accel: Accel;
  signal?: AbortSignal;
  memoryMiB?: number;
  /** Override the qemu-system-* binary (tests). */
  qemuBinary?: string;
  /** Unique marker for `-name`; default `edgeimg-<random>`. */
  name?: string;
  /** Leave out the base kernel arguments; `append` is then the whole command line. */
  noBaseAppend?: boolean;
  /**
   * After a serial line matching this appears, the guest gets `stopGraceMs` (default 5 s) to
   * exit by itself before it is stopped. Default: the probe's END line; null disables.
   */
  stopAfter?: RegExp | null;
  stopGraceMs?: number;
  /** Between SIGTERM and SIGKILL. Default 2000 ms. */
  killGraceMs?: number;
  onSerialLine?: (line: string) => void;
  /** vCPUs; default 1. */
  cpus?: number;
  firmware?: QemuFirmware;
  network?: QemuUserNetwork;
  fwCfg?: FwCfgItem[];
  /**
   * CPU model under TCG (default: `max` for amd64, `cortex-a57` for arm64); ignored with KVM.
   * `max` emulates every feature the emulator knows, which a general-purpose distribution then
   * uses at a cost: a baseline such as `qemu64` boots the cloud-init client ~20% faster.
   */
  tcgCpu?: string;
}

export interface QemuResult {
  /** QEMU's exit code; null when it was ended by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  /** Stopped by the runner after `stopAfter` matched and the guest did not power off. */
  forcedStop: boolean;
  serial: string;
  stderr: string;
  durationMs: number;
  accel: Accel;
  name: string;
  argv: string[];
  /** Set when QEMU could not be started at all (e.g. binary not found). */
  spawnError?: string;
}

const SERIAL_CAP = 8 * 1024 * 1024;

// ------------------------------------------------------------------------------------------
// Process-group bookkeeping
// ------------------------------------------------------------------------------------------

const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    killAllQemuSync('SIGKILL');
  });
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // ESRCH: the group is gone already
  }
}

/** Process-group ids of QEMU (and probe) processes started here that are still alive. */
export function liveQemuGroups(): number[] {
  return [...liveGroups];
}

/** Signals every live group at once; used by the exit hook and by signal handlers. */
export function killAllQemuSync(sig: NodeJS.Signals = 'SIGKILL'): number {
  const n = liveGroups.size;
  for (const pgid of liveGroups) killGroup(pgid, sig);
  return n;
}

/**
 * An AbortSignal that fires on SIGINT/SIGTERM (for the CLI): pass it to runQemu/bootChecks.
 * `dispose()` removes the handlers. While installed, the signals no longer end the process by
 * themselves: the caller exits once the boots have been stopped (they are, via the signal).
 */
export function interruptSignal(signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const handler = (sig: NodeJS.Signals): void => {
    if (!ac.signal.aborted) ac.abort(new Error(`interrupted by ${sig}`));
    else killAllQemuSync('SIGKILL'); // second Ctrl-C: no more grace
  };
  for (const s of signals) process.on(s, handler);
  return { signal: ac.signal, dispose: () => signals.forEach((s) => process.off(s, handler)) };
}

interface GroupRunOptions {
  timeoutMs: number;
  killGraceMs?: number;
  signal?: AbortSignal;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Set by the caller to end the run early (not counted as a timeout). */
  control?: { stop?: (why: 'forced') => void };
}

interface GroupRunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  forcedStop: boolean;
  spawnError?: string;
  durationMs: number;
}

/** The path `cmd` would be executed from (PATH lookup), or null. */
function findExecutable(cmd: string): string | null {
  const ok = (p: string): boolean => {
    try {
      accessSync(p, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (cmd.includes('/')) return ok(cmd) ? cmd : null;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && ok(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

let setprivPath: string | null | undefined;

/** util-linux `setpriv`, if present: used to give QEMU a parent-death signal. */
function setpriv(): string | null {
  if (setprivPath === undefined) {
    setprivPath = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) ?? null;
  }
  return setprivPath;
}

/**
 * Runs `cmd` in its own process group with a hard timeout; resolves only after it was reaped.
 * Where util-linux `setpriv` exists, `cmd` is started through `setpriv --pdeathsig KILL`, so
 * it is killed by the kernel even if this process dies without running any hook (SIGKILL).
 */
function runGroup(cmd: string, args: string[], opts: GroupRunOptions): Promise<GroupRunResult> {
  installExitHook();
  const t0 = performance.now();
  return new Promise<GroupRunResult>((resolvePromise) => {
    if (opts.signal?.aborted) {
      resolvePromise({ code: null, signal: null, timedOut: false, aborted: true, forcedStop: false, durationMs: 0 });
      return;
    }
    let timedOut = false;
    let aborted = false;
    let forcedStop = false;
    let spawnError: string | undefined;
    let stopping = false;
    let killTimer: NodeJS.Timeout | undefined;
    let settled = false;

    if (!findExecutable(cmd)) {
      resolvePromise({
        code: null, signal: null, timedOut: false, aborted: false, forcedStop: false,
        spawnError: `spawn ${cmd} ENOENT`, durationMs: Math.round(performance.now() - t0),
      });
      return;
    }
    const wrapper = setpriv();
    const child = wrapper
      ? spawn(wrapper, ['--pdeathsig', 'KILL', '--', cmd, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const pgid = child.pid;
    if (pgid !== undefined) liveGroups.add(pgid);

    const stop = (): void => {
      if (stopping || pgid === undefined) return;
      stopping = true;
      killGroup(pgid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(pgid, 'SIGKILL'), opts.killGraceMs ?? 2000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, opts.timeoutMs);
    const onAbort = (): void => {
      aborted = true;
      stop();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.control) {
      opts.control.stop = () => {
        forcedStop = true;
        stop();
      };
    }

    child.stdout?.on('data', (c: Buffer) => opts.onStdout?.(c));
    child.stderr?.on('data', (c: Buffer) => opts.onStderr?.(c));

    const finish = (code: number | null, sig: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolvePromise({
        code,
        signal: sig,
        timedOut,
        aborted,
        forcedStop,
        spawnError,
        durationMs: Math.round(performance.now() - t0),
      });
    };

    child.on('error', (err) => {
      spawnError = err.message;
      if (pgid === undefined) finish(null, null); // never started: no 'exit' will come
      else stop();
    });
    child.on('exit', (code, sig) => {
      // the leader is reaped; sweep anything else left in its group, then stop tracking it
      if (pgid !== undefined) {
        killGroup(pgid, 'SIGKILL');
        liveGroups.delete(pgid);
      }
      // wait for stdio to drain ('close'), but never hang on a pipe held open elsewhere
      const drain = setTimeout(() => finish(code, sig), 2000);
      child.once('close', () => {
        clearTimeout(drain);
        finish(code, sig);
      });
    });
  });
}

// ------------------------------------------------------------------------------------------
// Command line
// ------------------------------------------------------------------------------------------

export function qemuBinary(arch: GuestArch): string {
  return arch === 'amd64' ? 'qemu-system-x86_64' : 'qemu-system-aarch64';
}

/** `kvm` only when the host runs the guest's architecture; otherwise `tcg`. */
export function effectiveAccel(arch: GuestArch, accel: Accel): Accel {
  if (accel !== 'kvm') return 'tcg';
  const host = hostArch();
  return (arch === 'amd64' && host === 'x64') || (arch === 'arm64' && host === 'arm64') ? 'kvm' : 'tcg';
}

/**
 * The kernel arguments every probe boot gets: the serial console, quiet, reboot (= QEMU exit,
 * with -no-reboot) on panic, no crypto self-tests at boot (~0.5 s under TCG; the probe kernel
 * only reads media), and the number of media so the probe knows when to stop waiting.
 */
export function baseKernelArgs(arch: GuestArch, mediaCount: number): string {
  const console = arch === 'amd64' ? 'console=ttyS0' : 'console=ttyAMA0';
  return `${console} quiet panic=-1 cryptomgr.notests edgeimg.media=${mediaCount}`;
}

/** Escapes a value for QEMU's comma-separated option syntax. */
function optValue(v: string): string {
  return v.replace(/,/g, ',,');
}

export interface QemuArgsInput {
  arch: GuestArch;
  kernel?: string;
  initrd?: string;
  append?: string;
  media: QemuMedium[];
  accel: Accel;
  name: string;
  memoryMiB?: number;
  noBaseAppend?: boolean;
  cpus?: number;
  firmware?: QemuFirmware;
  network?: QemuUserNetwork;
  tcgCpu?: string;
  fwCfg?: FwCfgItem[];
}

/**
 * A QEMU fw_cfg item the guest reads at /sys/firmware/qemu_fw_cfg/by_name/<name>/raw: how a
 * firmware boot, whose kernel command line is fixed in the boot image, gets a per-run nonce.
 */
export interface FwCfgItem {
  /** opt/<vendor>/<item>, [A-Za-z0-9/._-] */
  name: string;
  /** Plain text; no commas (QEMU option syntax). */
  value: string;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;
const CIDR_RE = /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/;
/** http://host[:port][/path]: URL characters only, none of which QEMU's option parser treats specially (no commas). */
const BOOTFILE_RE = /^http:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(\/[A-Za-z0-9._~!$&()*+;=:@%\/?-]*)?$/;
const ROMFILE_RE = /^[A-Za-z0-9._+\/-]{0,255}$/;

function checkPort(p: number, what: string): void {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`${what} ${p} is not a TCP port`);
}

/** `-netdev user,...` and its NIC. Values are validated: nothing user-controlled reaches QEMU's option parser unchecked. */
export function userNetworkArgs(n: QemuUserNetwork): string[] {
  const opts = ['user', 'id=n0'];
  const addr = (v: string | undefined, what: string): string | undefined => {
    if (v !== undefined && !IPV4_RE.test(v)) throw new Error(`${what} ${v} is not an IPv4 address`);
    return v;
  };
  if (n.subnet !== undefined) {
    if (!CIDR_RE.test(n.subnet)) throw new Error(`subnet ${n.subnet} is not an IPv4 CIDR`);
    opts.push(`net=${n.subnet}`);
  }
  const host = addr(n.hostAddress, 'host address');
  if (host) opts.push(`host=${host}`);
  const dns = addr(n.dnsAddress, 'DNS address');
  if (dns) opts.push(`dns=${dns}`);
  const guest = addr(n.guestAddress, 'guest address');
  if (guest) opts.push(`dhcpstart=${guest}`);
  if (n.restrict) opts.push('restrict=on');
  for (const f of n.hostForwards ?? []) {
    checkPort(f.hostPort, 'host port');
    checkPort(f.guestPort, 'guest port');
    const to = addr(f.guestAddress, 'forward target') ?? guest ?? '';
    opts.push(`hostfwd=tcp:127.0.0.1:${f.hostPort}-${to}:${f.guestPort}`);
  }
  if (n.bootFile !== undefined) {
    if (!BOOTFILE_RE.test(n.bootFile) || n.bootFile.length > 127) {
      throw new Error(`boot file ${n.bootFile} is not an http:// URL QEMU's bootfile= option can carry (no commas, spaces or quotes; at most 127 characters)`);
    }
    const port = /^http:\/\/(?:\[[^\]]*\]|[^:/]*):(\d+)/.exec(n.bootFile)?.[1];
    if (port !== undefined) checkPort(Number(port), 'boot file port');
    opts.push(`bootfile=${n.bootFile}`);
  }
  const model = n.nicModel ?? 'virtio-net-pci';
  if (model !== 'virtio-net-pci' && model !== 'e1000') throw new Error(`NIC model ${String(model)} is not supported`);
  let nic = `${model},netdev=n0`;
  if (n.macAddress !== undefined) {
    if (!MAC_RE.test(n.macAddress)) throw new Error(`MAC address ${n.macAddress} is not valid`);
    nic += `,mac=${n.macAddress.toLowerCase()}`;
  }
  if (n.nicBootIndex !== undefined) {
    if (!Number.isInteger(n.nicBootIndex) || n.nicBootIndex < 0) throw new Error(`bad NIC boot index ${n.nicBootIndex}`);
    nic += `,bootindex=${n.nicBootIndex}`;
  }
  if (n.romfile !== undefined) {
    if (!ROMFILE_RE.test(n.romfile)) throw new Error(`ROM file ${n.romfile} has characters QEMU options cannot carry`);
    nic += `,romfile=${n.romfile}`;
  }
  return ['-netdev', opts.join(','), '-device', nic];
}

export function buildQemuArgs(i: QemuArgsInput): string[] {
  const accel = effectiveAccel(i.arch, i.accel);
  const directKernel = i.kernel !== undefined;
  if (directKernel && i.initrd === undefined) throw new Error('a direct kernel boot needs an initrd');
  if (!directKernel && (i.initrd !== undefined || (i.append ?? '') !== '')) {
    throw new Error('initrd and kernel arguments need a direct kernel boot (kernel)');
  }
  if (!directKernel && i.media.length === 0 && i.network?.nicBootIndex === undefined) {
    throw new Error('a firmware boot needs at least one medium (or a NIC with a boot index)');
  }
  const append = i.append ?? '';
  const cmdline = i.noBaseAppend ? append : [baseKernelArgs(i.arch, i.media.length), append].filter(Boolean).join(' ');
  const args = ['-name', i.name];
  if (i.tcgCpu !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(i.tcgCpu)) throw new Error(`CPU model ${i.tcgCpu} is not a plain model name`);
  if (i.arch === 'amd64') {
    args.push('-machine', 'q35', '-accel', accel, '-cpu', accel === 'kvm' ? 'host' : (i.tcgCpu ?? 'max'));
  } else {
    args.push('-machine', accel === 'kvm' ? 'virt,gic-version=host' : 'virt', '-accel', accel);
    // cortex-a57 is markedly faster than `max` under TCG (no pointer-authentication emulation)
    args.push('-cpu', accel === 'kvm' ? 'host' : (i.tcgCpu ?? 'cortex-a57'));
  }
  const cpus = i.cpus ?? 1;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) throw new Error(`cpus ${cpus} out of range`);
  args.push(
    '-m', String(i.memoryMiB ?? 256),
    '-smp', String(cpus),
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    '-no-reboot',
    '-serial', 'stdio',
  );
  if (directKernel) args.push('-kernel', i.kernel!, '-initrd', i.initrd!, '-append', cmdline);
  if (i.firmware?.kind === 'bios') args.push('-bios', i.firmware.path);
  if (i.firmware?.kind === 'pflash') {
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${optValue(i.firmware.code)}`);
    if (i.firmware.vars) args.push('-drive', `if=pflash,format=raw,unit=1,file=${optValue(i.firmware.vars)}`);
  }

  let ide = 0;
  let scsi = false;
  let xhci = false;
  let nvme = 0;
  i.media.forEach((m, n) => {
    const id = `m${n}`;
    const file = optValue(m.path);
    const readOnly = m.readOnly ?? true;
    if (!readOnly && m.kind === 'cdrom') throw new Error('a CD-ROM cannot be writable');
    if (m.snapshot && m.kind === 'cdrom') throw new Error('a CD-ROM cannot be a snapshot disk');
    // scratch disks are thrown away after the boot: no need to flush
    const mode = m.snapshot ? 'snapshot=on,cache=unsafe' : readOnly ? 'readonly=on' : 'cache=unsafe';
    if (m.bootIndex !== undefined && (!Number.isInteger(m.bootIndex) || m.bootIndex < 0)) throw new Error(`bad boot index ${m.bootIndex}`);
    const boot = m.bootIndex !== undefined ? `,bootindex=${m.bootIndex}` : '';
    const scsiBus = (): void => {
      if (!scsi) args.push('-device', 'virtio-scsi-pci,id=scsi0');
      scsi = true;
    };
    switch (m.kind) {
      case 'cdrom':
        args.push('-drive', `if=none,id=${id},file=${file},format=raw,media=cdrom,readonly=on`);
        if (i.arch === 'amd64') {
          // q35's ICH9 AHCI controller has six ports, ide.0 .. ide.5
          if (ide > 5) throw new Error('at most 6 CD-ROMs can be attached to an amd64 guest');
          args.push('-device', `ide-cd,drive=${id},bus=ide.${ide++}${boot}`);
        } else {
          scsiBus();
          args.push('-device', `scsi-cd,drive=${id},bus=scsi0.0${boot}`);
        }
        break;
      case 'usb':
        if (!xhci) args.push('-device', 'qemu-xhci,id=xhci');
        xhci = true;
        args.push('-drive', `if=none,id=${id},file=${file},format=raw,${mode}`);
        args.push('-device', `usb-storage,bus=xhci.0,drive=${id},removable=on${boot}`);
        break;
      case 'virtio-disk':
        args.push('-drive', `if=none,id=${id},file=${file},format=raw,${mode}`);
        args.push('-device', `virtio-blk-pci,drive=${id}${boot}`);
        break;
      case 'nvme':
        args.push('-drive', `if=none,id=${id},file=${file},format=raw,${mode}`);
        args.push('-device', `nvme,drive=${id},serial=edgeimg${nvme++}${boot}`);
        break;
      case 'sata-disk':
        args.push('-drive', `if=none,id=${id},file=${file},format=raw,${mode}`);
        if (i.arch === 'amd64') {
          if (ide > 5) throw new Error('at most 6 AHCI devices (CD-ROMs and SATA disks) can be attached to an amd64 guest');
          args.push('-device', `ide-hd,drive=${id},bus=ide.${ide++}${boot}`);
        } else {
          // arm64 virt has no AHCI controller; a SCSI disk is also /dev/sdX
          scsiBus();
          args.push('-device', `scsi-hd,drive=${id},bus=scsi0.0${boot}`);
        }
        break;
      default: {
        const never: never = m.kind;
        throw new Error(`unknown medium kind ${String(never)}`);
      }
    }
  });
  if (i.network) args.push(...userNetworkArgs(i.network));
  for (const f of i.fwCfg ?? []) {
    if (!/^opt\/[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(f.name) || f.name.length > 55) throw new Error(`bad fw_cfg name ${f.name}`);
    if (!/^[A-Za-z0-9._:=/+-]{0,256}$/.test(f.value)) throw new Error(`fw_cfg value for ${f.name} has characters QEMU options cannot carry`);
    args.push('-fw_cfg', `name=${f.name},string=${f.value}`);
  }
  return args;
}

// ------------------------------------------------------------------------------------------
// Running a guest
// ------------------------------------------------------------------------------------------

export function newQemuName(): string {
  return `edgeimg-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * Boots a guest and returns once QEMU has exited and been reaped. Never rejects for guest
 * failures: a timeout, an abort or a failed start are reported in the result (the serial log
 * is written either way). Throws only for invalid options (e.g. too many CD-ROMs).
 */
export async function runQemu(opts: RunQemuOptions): Promise<QemuResult> {
  const name = opts.name ?? newQemuName();
  const accel = effectiveAccel(opts.arch, opts.accel);
  const args = buildQemuArgs({ ...opts, name, accel });
  const bin = opts.qemuBinary ?? qemuBinary(opts.arch);
  for (const m of opts.media) {
    if (!existsSync(m.path)) throw new Error(`medium not found: ${m.path}`);
  }
  for (const f of opts.firmware?.kind === 'bios' ? [opts.firmware.path] : opts.firmware ? [opts.firmware.code, opts.firmware.vars] : []) {
    if (f !== undefined && !existsSync(f)) throw new Error(`firmware not found: ${f}`);
  }

  await mkdir(dirname(opts.serialLog), { recursive: true });
  const log = createWriteStream(opts.serialLog);
  const logDone = new Promise<void>((res) => {
    log.once('close', () => res());
    log.once('error', () => res());
  });

  const chunks: Buffer[] = [];
  let kept = 0;
  let pending = '';
  const stderr: Buffer[] = [];
  const control: { stop?: (why: 'forced') => void } = {};
  let stopTimer: NodeJS.Timeout | undefined;

  const stopAfter = opts.stopAfter === undefined ? /EDGEIMG-PROBE END / : opts.stopAfter;
  const onLine = (line: string): void => {
    opts.onSerialLine?.(line);
    if (stopAfter && !stopTimer && stopAfter.test(line)) {
      stopTimer = setTimeout(() => control.stop?.('forced'), opts.stopGraceMs ?? 5000);
    }
  };

  const res = await runGroup(bin, args, {
    timeoutMs: opts.timeoutMs,
    killGraceMs: opts.killGraceMs,
    signal: opts.signal,
    control,
    onStdout: (c) => {
      log.write(c);
      if (kept < SERIAL_CAP) {
        const part = c.subarray(0, SERIAL_CAP - kept);
        chunks.push(part);
        kept += part.length;
      }
      if (opts.onSerialLine || stopAfter) {
        const text = pending + c.toString('utf8');
        const lines = text.split('\n');
        pending = lines.pop() ?? '';
        for (const l of lines) onLine(l.replace(/\r$/, ''));
      }
    },
    onStderr: (c) => {
      if (stderr.length < 256) stderr.push(c);
    },
  });
  if (stopTimer) clearTimeout(stopTimer);
  if (pending && (opts.onSerialLine || stopAfter)) onLine(pending.replace(/\r$/, ''));
  log.end();
  await logDone;

  return {
    exitCode: res.code,
    signal: res.signal,
    timedOut: res.timedOut,
    aborted: res.aborted,
    forcedStop: res.forcedStop,
    serial: Buffer.concat(chunks).toString('utf8'),
    stderr: Buffer.concat(stderr).toString('utf8'),
    durationMs: res.durationMs,
    accel,
    name,
    argv: [bin, ...args],
    spawnError: res.spawnError,
  };
}

// ------------------------------------------------------------------------------------------
// KVM probe
// ------------------------------------------------------------------------------------------

export interface KvmProbeResult {
  usable: boolean;
  reason: string;
}

export interface KvmProbeOptions {
  /** Override qemu-system-x86_64 (tests inject a fake that hangs). */
  qemuBinary?: string;
  /** Override /dev/kvm (tests). */
  kvmDevice?: string;
  /** Ignore the per-process cache. */
  fresh?: boolean;
}

// A 64 KiB firmware image for `-bios`: from the reset vector it loads a GDT, enters protected
// mode, builds identity-mapped page tables, enables long mode and writes 0x2a to the
// isa-debug-exit port at 0xf4, so QEMU exits with status (0x2a << 1) | 1 = 85. Where KVM
// "exists but hangs" (nested virtualisation that cannot run real guests) the guest never gets
// there, even though creating the VM and running real-mode code works.
const KVM_PROBE_CODE =
  'fa2e660f0116b8000f20c06683c8010f22c066ea1a000f00080066b810008ed88ec08ed0c7050010000003200000' +
  'c7050410000000000000c7050020000003300000c7050420000000000000c7050030000083000000c705043000' +
  '00000000000f20e083c8200f22e0b8001000000f22d8b9800000c00f320d000100000f300f20c00d000000800f' +
  '22c0ea91000f001800b02ae6f4f4ebfd0000000000000000ffff0000009acf00ffff00000092cf00ffff000000' +
  '9aaf001f0098000f00';
const KVM_PROBE_EXIT = 85;

export function kvmProbeFirmware(): Buffer {
  const img = Buffer.alloc(65536, 0xf4); // hlt
  Buffer.from(KVM_PROBE_CODE, 'hex').copy(img, 0);
  // reset vector (F000:FFF0): ljmp 0xF000:0x0000, the start of the image (mapped at 0xF0000)
  Buffer.from([0xea, 0x00, 0x00, 0x00, 0xf0]).copy(img, 0xfff0);
  return img;
}

const kvmCache = new Map<string, Promise<KvmProbeResult>>();

export function resetKvmProbeCache(): void {
  kvmCache.clear();
}

/**
 * Whether KVM can actually run a guest here. Runs a tiny long-mode guest under `-accel kvm`
 * in its own process group with a hard timeout (the whole group is killed when it hangs).
 * The result is cached per process (per binary/device).
 */
export function probeKvm(timeoutMs = 3000, opts: KvmProbeOptions = {}): Promise<KvmProbeResult> {
  const bin = opts.qemuBinary ?? 'qemu-system-x86_64';
  const dev = opts.kvmDevice ?? '/dev/kvm';
  const key = `${bin}\0${dev}`;
  const cached = kvmCache.get(key);
  if (cached && !opts.fresh) return cached;
  const p = doProbeKvm(timeoutMs, bin, dev);
  kvmCache.set(key, p);
  return p;
}

async function doProbeKvm(timeoutMs: number, bin: string, dev: string): Promise<KvmProbeResult> {
  if (hostArch() !== 'x64') return { usable: false, reason: `the KVM probe supports x86_64 hosts only (host is ${hostArch()})` };
  if (!existsSync(dev)) return { usable: false, reason: `${dev} does not exist` };
  try {
    accessSync(dev, fsConstants.R_OK | fsConstants.W_OK);
  } catch {
    return { usable: false, reason: `no read/write access to ${dev}` };
  }
  const dir = mkdtempSync(join(tmpdir(), 'edgeimg-kvmprobe-'));
  try {
    const fw = join(dir, 'kvm-probe.bin');
    writeFileSync(fw, kvmProbeFirmware());
    const name = `edgeimg-kvmprobe-${process.pid}-${randomBytes(4).toString('hex')}`;
    const args = [
      '-name', name,
      '-machine', 'pc',
      '-accel', 'kvm',
      '-cpu', 'host',
      '-m', '16',
      '-nodefaults',
      '-no-user-config',
      '-display', 'none',
      '-no-reboot',
      '-bios', fw,
      '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04',
    ];
    let stderr = '';
    const res = await runGroup(bin, args, {
      timeoutMs,
      killGraceMs: 200,
      onStderr: (c) => {
        if (stderr.length < 4096) stderr += c.toString('utf8');
      },
    });
    const firstErr = stderr
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/warning:/i.test(l))[0];
    if (res.spawnError) return { usable: false, reason: `cannot run ${bin}: ${res.spawnError}` };
    if (res.timedOut) return { usable: false, reason: `a KVM test guest hung (no exit within ${timeoutMs} ms; killed)` };
    if (res.code === KVM_PROBE_EXIT) return { usable: true, reason: `KVM ran a long-mode test guest in ${res.durationMs} ms` };
    const how = res.code !== null ? `exit code ${res.code}` : `signal ${res.signal ?? '?'}`;
    return { usable: false, reason: `a KVM test guest failed (${how})${firstErr ? `: ${firstErr}` : ''}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let tcgAnnounced = false;

/**
 * The accelerator for a batch of boots: `forced`, else KVM when the probe finds it usable, else
 * TCG (said once per process, through `log`).
 */
export async function chooseAccel(forced: Accel | undefined, log: (line: string) => void): Promise<Accel> {
  if (forced) return forced;
  const kvm = await probeKvm();
  if (kvm.usable) return 'kvm';
  if (!tcgAnnounced) {
    tcgAnnounced = true;
    log(`KVM unusable (${kvm.reason}); booting under TCG software emulation`);
  }
  return 'tcg';
}
