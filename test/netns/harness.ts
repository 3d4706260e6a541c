// The store scenario: PXE next to a DHCP server nobody may change, all inside network namespaces.
//
//   netns edgeimg-t-<pid>         "store router": bridge br0 10.77.0.1/24, the store's DHCP server
//                                 (dnsmasq #1: addresses only, no boot options), QEMU guests on
//                                 taps in br0.
//   netns edgeimg-t-<pid>-laptop  "technician laptop": lan0 10.77.0.2/24 (veth into br0),
//                                 dnsmasq #2 = dnsmasqProxyConfig() (proxyDHCP + TFTP) and the HTTP
//                                 server (stand-in http-standin.mjs, or `edgeimg serve`).
//   netns edgeimg-t-<pid>-pxesim  optional: 10.77.0.3 (veth into br0), pxe-client-sim.mjs playing a
//                                 non-iPXE BIOS/UEFI PXE ROM.
//
// Nothing is connected to the host's namespace: no traffic leaves the namespaces. Every process
// is spawned detached (own process group) under `setpriv --pdeathsig KILL`, with a hard timeout,
// and is reaped before runStoreScenario returns. Interfaces and namespaces are deleted in
// `finally`, on SIGINT/SIGTERM/SIGHUP and at process exit; namespaces left by a run that was
// SIGKILLed (its pid gone) are swept at the start of the next run.
//
// Guests: amd64 under TCG (KVM is not used). UEFI = OVMF (-bios /usr/share/ovmf/OVMF.fd) with
// the NIC option ROM disabled (romfile=), so the PXE client is edk2's own (VirtioNetDxe +
// UefiPxeBcDxe): real firmware PXE, TFTP of ipxe.efi, then iPXE. BIOS = SeaBIOS; it has no PXE
// client of its own, so the NIC's iPXE option ROM does PXE (it is tagged `ipxe` by the proxy and
// goes straight to HTTP). The legacy-BIOS path (non-iPXE ROM -> undionly.kpxe) is covered by
// the PXE client simulator (pxeClientSim).

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dnsmasqProxyConfig, IPXE_BIOS, IPXE_EFI, locateIpxeBinaries } from '../../src/serve/dnsmasq.js';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = join(HERE, '..', '..');
export const NETNS_PREFIX = 'edgeimg-t-';
export const OVMF = '/usr/share/ovmf/OVMF.fd';

export const ROUTER_ADDR = '10.77.0.1';
export const LAPTOP_ADDR = '10.77.0.2';
export const SIM_ADDR = '10.77.0.3';
export const SUBNET = '10.77.0.0';
export const STORE_RANGE = ['10.77.0.100', '10.77.0.150'] as const;
const SIM_MAC = '52:54:00:77:00:99';

export type GuestFirmware = 'uefi' | 'bios';

export interface ScenarioGuest {
  firmware: GuestFirmware;
  /** Fixed MAC, colon-separated lower-case hex (`52:54:00:…`). */
  mac: string;
  /**
   * Which PXE client boots: 'firmware' = the firmware's own (UEFI only: edk2 over OVMF's
   * VirtioNetDxe, the QEMU NIC ROM disabled), 'ipxe-rom' = QEMU's iPXE NIC option ROM.
   * Default: 'firmware' for uefi, 'ipxe-rom' for bios (SeaBIOS has no PXE client).
   */
  pxe?: 'firmware' | 'ipxe-rom';
  memoryMiB?: number;
}

export interface PxeSimCase {
  name: string;
  /** Client architecture, option 93: 0 BIOS, 7/9 x86-64 UEFI, 11 arm64 UEFI. */
  arch: number;
  /** Present as iPXE (user class "iPXE"). */
  ipxe?: boolean;
}

export interface StoreScenarioOptions {
  guests: ScenarioGuest[];
  /** What each guest's serial console must show; the guest is stopped once it does. */
  expectSerial: RegExp | ((g: ScenarioGuest) => RegExp);
  /** Hard limit per guest (they boot concurrently); also bounds the whole run (x2 + setup). */
  timeoutMs: number;
  /**
   * HTTP server run in the laptop namespace instead of the stand-in, e.g. the real
   * `['node', 'bin/edgeimg.js', 'serve', '--listen', '{address}:{port}', …]`. Placeholders:
   * {address} (10.77.0.2), {port}, {workDir} (a scratch dir), {tftpRoot}, {repo}. cwd = repo.
   */
  httpServerCommand?: string[];
  /** Default 8080. */
  httpPort?: number;
  /** What the proxy hands to iPXE (dnsmasqProxyConfig httpUrl); default http://10.77.0.2:<port>/. */
  httpUrl?: string;
  /** Rewrites the generated proxy config before dnsmasq #2 reads it (negative experiments). */
  proxyConfigTransform?: (conf: string) => string;
  /** Also run the PXE client simulator with these cases (no QEMU needed for them). */
  pxeClientSim?: PxeSimCase[];
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Keep the scratch directory (logs, configs) instead of deleting it. */
  keepWorkDir?: boolean;
}

export interface ProcessOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
}

export interface GuestOutcome {
  guest: ScenarioGuest;
  tap: string;
  /** Serial console, escape sequences and backspaces removed. */
  serial: string;
  matched: boolean;
  /** Start of QEMU to expectSerial matching (or to the end of the run). */
  durationMs: number;
  exit: ProcessOutcome;
  /** Address the STORE dnsmasq acknowledged for this MAC (DHCPACK). */
  storeLeases: string[];
  /** Boot files the PROXY dnsmasq sent to this MAC, in order (`bootfile name:` lines). */
  proxyBootFiles: string[];
  /** Files the proxy's TFTP server sent to this guest's lease addresses. */
  tftpSent: string[];
  /** HTTP log lines mentioning this guest's MAC-derived path (aa-bb-cc-dd-ee-ff). */
  httpRequests: string[];
  /** DHCPACK / bootfile lines for this MAC in the wrong server's log (must stay empty). */
  crossTalk: string[];
}

export interface StoreScenarioResult {
  namespaces: { router: string; laptop: string; sim?: string };
  workDir: string;
  proxyConfig: string;
  storeConfig: string;
  storeLog: string;
  proxyLog: string;
  httpLog: string;
  guests: GuestOutcome[];
  pxeSim?: { cases: Array<Record<string, unknown>>; raw: string; exit: ProcessOutcome };
  timings: { setupMs: number; guestsMs: number; pxeSimMs?: number; teardownMs: number; totalMs: number };
  /** `ip netns list` entries named edgeimg-t-* after teardown (must be empty). */
  leftoverNamespaces: string[];
  /** Teardown steps that failed (interface or namespace deletion). */
  teardownErrors: string[];
}

// ------------------------------------------------------------------------------------------
// Prerequisites
// ------------------------------------------------------------------------------------------

function which(cmd: string): string | undefined {
  for (const dir of [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/sbin']) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}

/** What is missing for the scenario on this host (empty: it can run). */
export function scenarioMissing(guests: readonly ScenarioGuest[] = []): string[] {
  const missing: string[] = [];
  if (process.platform !== 'linux') missing.push('Linux (network namespaces)');
  if (typeof process.getuid === 'function' && process.getuid() !== 0) missing.push('root (ip netns, taps, DHCP ports)');
  for (const t of ['ip', 'ss', 'dnsmasq', 'qemu-system-x86_64', 'setpriv']) if (!which(t)) missing.push(t);
  if (!existsSync('/dev/net/tun')) missing.push('/dev/net/tun');
  try {
    const b = locateIpxeBinaries();
    if (!b.efi || !b.bios) missing.push(`iPXE binaries (${IPXE_EFI}, ${IPXE_BIOS}: apt-get install ipxe)`);
  } catch {
    missing.push('iPXE binaries (apt-get install ipxe)');
  }
  if (guests.some((g) => g.firmware === 'uefi') && !existsSync(OVMF)) missing.push(`${OVMF} (apt-get install ovmf)`);
  return missing;
}

/**
 * Gate for tests: true when the scenario can run. Missing prerequisites are a loud skip
 * (console.warn) unless process.env.CI === 'true', where they throw (a failure, not a skip).
 */
export function requireScenario(guests: readonly ScenarioGuest[] = []): boolean {
  const missing = scenarioMissing(guests);
  if (missing.length === 0) return true;
  const msg = `netns store scenario needs: ${missing.join('; ')}`;
  if (process.env['CI'] === 'true') throw new Error(`${msg} (CI=true: a failure, not a skip)`);
  console.warn(`\n!!! SKIPPING the netns store scenario: ${msg} !!!\n`);
  return false;
}

// ------------------------------------------------------------------------------------------
// Processes: own group, pdeathsig, hard timeout, always reaped
// ------------------------------------------------------------------------------------------

interface Proc {
  name: string;
  pgid: number | undefined;
  out: () => string;
  done: Promise<ProcessOutcome>;
  /** SIGTERM the group, SIGKILL after graceMs; resolves once reaped. */
  stop: (graceMs?: number) => Promise<ProcessOutcome>;
}

const liveGroups = new Set<number>();

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // ESRCH: gone already
  }
}

function startProc(name: string, argv: string[], timeoutMs: number, opts: { cwd?: string; onData?: (s: string) => void } = {}): Proc {
  const t0 = performance.now();
  const chunks: string[] = [];
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...argv], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: opts.cwd ?? REPO_ROOT,
  });
  const pgid = child.pid;
  if (pgid !== undefined) liveGroups.add(pgid);
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const onChunk = (b: Buffer): void => {
    const s = b.toString('utf8');
    chunks.push(s);
    opts.onData?.(s);
  };
  child.stdout?.on('data', onChunk);
  child.stderr?.on('data', onChunk);
  const term = (graceMs: number): void => {
    if (pgid === undefined) return;
    killGroup(pgid, 'SIGTERM');
    killTimer ??= setTimeout(() => killGroup(pgid, 'SIGKILL'), graceMs);
  };
  const hard = setTimeout(() => {
    timedOut = true;
    term(2000);
  }, timeoutMs);
  const done = new Promise<ProcessOutcome>((resolve) => {
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(hard);
      if (killTimer) clearTimeout(killTimer);
      resolve({ code, signal, timedOut, durationMs: Math.round(performance.now() - t0) });
    };
    child.on('error', (err) => {
      chunks.push(`\n[spawn error: ${err.message}]\n`);
      if (pgid === undefined) finish(null, null);
    });
    child.on('exit', (code, signal) => {
      if (pgid !== undefined) {
        killGroup(pgid, 'SIGKILL'); // anything else left in the group
        liveGroups.delete(pgid);
      }
      const drain = setTimeout(() => finish(code, signal), 2000);
      child.once('close', () => {
        clearTimeout(drain);
        finish(code, signal);
      });
    });
  });
  return {
    name,
    pgid,
    out: () => chunks.join(''),
    done,
    stop: (graceMs = 3000) => {
      term(graceMs);
      return done;
    },
  };
}

// ------------------------------------------------------------------------------------------
// Namespaces and links
// ------------------------------------------------------------------------------------------

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Names from `ip netns list` that start with edgeimg-t-. */
/**
 * Scenario namespaces on the machine; `ownOnly`: only this process's (test files run in parallel
 * processes, each with its own edgeimg-t-<pid>* namespaces).
 */
export function listScenarioNamespaces(ownOnly = false): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 15_000 });
  return (r.stdout ?? '')
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(NETNS_PREFIX))
    .filter((n) => !ownOnly || n === `${NETNS_PREFIX}${process.pid}` || n.startsWith(`${NETNS_PREFIX}${process.pid}-`));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes edgeimg-t-<pid>* namespaces and edgeimg-netns-<pid>-* scratch directories whose
 * creating process is gone (a run that was SIGKILLed, so no hook ran).
 */
export function sweepStaleNamespaces(): string[] {
  const swept: string[] = [];
  const stale = (pid: string | undefined): boolean => pid !== undefined && Number(pid) !== process.pid && !pidAlive(Number(pid));
  for (const ns of listScenarioNamespaces()) {
    if (!stale(/^edgeimg-t-(\d+)(?:-|$)/.exec(ns)?.[1])) continue;
    if (spawnSync('ip', ['netns', 'del', ns], { timeout: 15_000 }).status === 0) swept.push(ns);
  }
  for (const d of readdirSync(tmpdir())) {
    if (!stale(/^edgeimg-netns-(\d+)-/.exec(d)?.[1])) continue;
    rmSync(join(tmpdir(), d), { recursive: true, force: true });
    swept.push(join(tmpdir(), d));
  }
  return swept;
}

interface Topology {
  router: string;
  laptop: string;
  sim?: string;
  taps: string[];
  /** Scratch directory, removed with the topology unless kept. */
  workDir?: string;
}

/** Deletes what buildTopology created, in reverse; never throws. Returns the steps that failed. */
function destroyTopology(t: Topology): string[] {
  const errors: string[] = [];
  const run = (args: string[], what: string, onlyIf: () => boolean = () => true): void => {
    if (!onlyIf()) return;
    const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 15_000 });
    if (r.status !== 0) errors.push(`${what}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  };
  const nsExists = (ns: string): boolean => listScenarioNamespaces().includes(ns);
  const linkExists = (ns: string, dev: string): boolean =>
    nsExists(ns) && spawnSync('ip', ['-n', ns, 'link', 'show', dev], { timeout: 15_000 }).status === 0;
  for (const tap of t.taps) run(['-n', t.router, 'link', 'del', tap], `delete ${tap}`, () => linkExists(t.router, tap));
  if (t.sim) run(['-n', t.sim, 'link', 'del', 'lan0'], 'delete sim veth', () => linkExists(t.sim!, 'lan0'));
  run(['-n', t.laptop, 'link', 'del', 'lan0'], 'delete laptop veth', () => linkExists(t.laptop, 'lan0'));
  run(['-n', t.router, 'link', 'del', 'br0'], 'delete br0', () => linkExists(t.router, 'br0'));
  for (const ns of [t.sim, t.laptop, t.router]) {
    if (ns) run(['netns', 'del', ns], `delete netns ${ns}`, () => nsExists(ns));
  }
  return errors;
}

function buildTopology(t: Topology): void {
  ip(['netns', 'add', t.router]);
  ip(['netns', 'add', t.laptop]);
  if (t.sim) ip(['netns', 'add', t.sim]);
  for (const ns of [t.router, t.laptop, t.sim]) if (ns) ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  // the store LAN: a bridge without STP delay, so ports forward at once
  ip(['-n', t.router, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
  ip(['-n', t.router, 'addr', 'add', `${ROUTER_ADDR}/24`, 'dev', 'br0']);
  ip(['-n', t.router, 'link', 'set', 'br0', 'up']);
  // the laptop: a veth created directly in the two namespaces (never in the host's)
  ip(['link', 'add', 'lan0', 'netns', t.laptop, 'type', 'veth', 'peer', 'name', 'vlaptop', 'netns', t.router]);
  ip(['-n', t.router, 'link', 'set', 'vlaptop', 'master', 'br0', 'up']);
  ip(['-n', t.laptop, 'addr', 'add', `${LAPTOP_ADDR}/24`, 'dev', 'lan0']);
  ip(['-n', t.laptop, 'link', 'set', 'lan0', 'up']);
  if (t.sim) {
    ip(['link', 'add', 'lan0', 'netns', t.sim, 'type', 'veth', 'peer', 'name', 'vsim', 'netns', t.router]);
    ip(['-n', t.router, 'link', 'set', 'vsim', 'master', 'br0', 'up']);
    ip(['-n', t.sim, 'link', 'set', 'lan0', 'address', SIM_MAC]);
    ip(['-n', t.sim, 'addr', 'add', `${SIM_ADDR}/24`, 'dev', 'lan0']);
    ip(['-n', t.sim, 'link', 'set', 'lan0', 'up']);
    // limited broadcast (255.255.255.255) needs a route out of lan0
    ip(['-n', t.sim, 'route', 'add', 'default', 'dev', 'lan0']);
  }
  for (const tap of t.taps) {
    ip(['-n', t.router, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    ip(['-n', t.router, 'link', 'set', tap, 'master', 'br0', 'up']);
  }
}

// ------------------------------------------------------------------------------------------
// Emergency cleanup (signals, exit)
// ------------------------------------------------------------------------------------------

const activeTopologies = new Set<Topology>();
let hooksInstalled = false;

function emergencyCleanup(): void {
  for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  for (const t of activeTopologies) {
    for (const ns of [t.sim, t.laptop, t.router]) if (ns) spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
    if (t.workDir) rmSync(t.workDir, { recursive: true, force: true });
  }
  activeTopologies.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', emergencyCleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      emergencyCleanup();
      process.off(sig, handler);
      process.kill(process.pid, sig); // default action now that nothing is left behind
    };
    process.on(sig, handler);
  }
}

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Serial output as text: ANSI/VT escape sequences, backspace pairs and CRs removed. */
export function cleanSerial(raw: string): string {
  return raw
    .replace(/\x1b\[[0-9;?=]*[A-Za-z]/g, '')
    .replace(/\x1b[()][A-Za-z0-9]|\x1b[cA-Za-z]/g, '')
    .replace(/(?:\x08 \x08|\x08)+/g, '')
    .replace(/\r/g, '');
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number, proc?: Proc): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return;
    if (proc && (await Promise.race([proc.done.then(() => true), sleep(0).then(() => false)]))) {
      throw new Error(`${proc.name} exited while waiting for ${what}:\n${proc.out().slice(-2000)}`);
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${proc ? `:\n${proc.out().slice(-2000)}` : ''}`);
    await sleep(200);
  }
}

function readIf(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function tcpListening(ns: string, port: number): boolean {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'ss', '-Hltn', `sport = :${port}`], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 && r.stdout.trim().length > 0;
}

/** `aa:bb:…` → `aa-bb-…` (the path edgeimg serve uses per node). */
export function macPath(mac: string): string {
  return mac.toLowerCase().replace(/:/g, '-');
}

function storeConfig(dir: string): string {
  return [
    '# The store\'s own DHCP server in the scenario: addresses only, no PXE/boot options at all.',
    'port=0',
    'interface=br0',
    'bind-interfaces',
    `dhcp-range=${STORE_RANGE[0]},${STORE_RANGE[1]},12h`,
    `dhcp-leasefile=${join(dir, 'store.leases')}`,
    'pid-file=',
    'log-dhcp',
    `log-facility=${join(dir, 'store.log')}`,
    '',
  ].join('\n');
}

/** Lines of a dnsmasq log-dhcp transcript grouped by transaction id. */
function byXid(log: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of log.split('\n')) {
    const x = /dnsmasq-dhcp\[\d+\]: (\d+) (.*)$/.exec(line);
    if (!x) continue;
    const list = m.get(x[1]!) ?? [];
    list.push(x[2]!);
    m.set(x[1]!, list);
  }
  return m;
}

function evidence(g: ScenarioGuest, storeLog: string, proxyLog: string, httpLog: string): Pick<GuestOutcome, 'storeLeases' | 'proxyBootFiles' | 'tftpSent' | 'httpRequests' | 'crossTalk'> {
  const mac = g.mac.toLowerCase();
  const storeLeases = [...storeLog.matchAll(new RegExp(`DHCPACK\\([^)]*\\) (\\d+\\.\\d+\\.\\d+\\.\\d+) ${mac}`, 'g'))].map((m) => m[1]!);
  const proxyBootFiles: string[] = [];
  for (const lines of byXid(proxyLog).values()) {
    // a transaction may hold several replies (retransmissions): pair each PXE() line with the
    // bootfile line that follows it
    let mine = false;
    for (const l of lines) {
      if (/^PXE\(/.test(l)) mine = l.includes(mac);
      const b = /^bootfile name: (.*)$/.exec(l);
      if (mine && b) proxyBootFiles.push(b[1]!.trim());
    }
  }
  const leases = new Set(storeLeases);
  const tftpSent = [...proxyLog.matchAll(/dnsmasq-tftp\[\d+\]: sent (\S+) to (\S+)/g)].filter((m) => leases.has(m[2]!)).map((m) => m[1]!);
  const httpRequests = httpLog.split('\n').filter((l) => l.includes(macPath(mac)));
  const crossTalk = [
    ...proxyLog.split('\n').filter((l) => /DHCP(?:OFFER|ACK)\(/.test(l) && l.includes(mac)).map((l) => `proxy: ${l}`),
    ...[...byXid(storeLog).values()]
      .filter((ls) => ls.some((l) => l.includes(mac)))
      .flat()
      .filter((l) => /^(?:PXE\(|bootfile name:)/.test(l))
      .map((l) => `store: ${l}`),
  ];
  return { storeLeases, proxyBootFiles, tftpSent, httpRequests, crossTalk };
}

function qemuArgs(g: ScenarioGuest, tap: string, id: number): string[] {
  const pxe = g.pxe ?? (g.firmware === 'uefi' ? 'firmware' : 'ipxe-rom');
  if (g.firmware === 'bios' && pxe === 'firmware') throw new Error('SeaBIOS has no PXE client of its own: use pxe: "ipxe-rom" for bios guests');
  if (!/^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/.test(g.mac)) throw new Error(`guest MAC ${g.mac} is not lower-case aa:bb:cc:dd:ee:ff`);
  return [
    'qemu-system-x86_64',
    '-name', `edgeimg-netns-${id}`,
    // graphics=off: SeaBIOS (and the iPXE ROM through it) print on the serial port
    '-machine', g.firmware === 'bios' ? 'q35,graphics=off' : 'q35',
    '-accel', 'tcg',
    '-m', String(g.memoryMiB ?? 512),
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-serial', 'stdio',
    ...(g.firmware === 'uefi' ? ['-bios', OVMF] : []),
    '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
    '-device', `virtio-net-pci,netdev=n0,mac=${g.mac},bootindex=1${pxe === 'firmware' ? ',romfile=' : ''}`,
  ];
}

// ------------------------------------------------------------------------------------------
// The scenario
// ------------------------------------------------------------------------------------------

/**
 * Builds the namespaces, starts the store DHCP, the proxy (dnsmasqProxyConfig) and the HTTP
 * server, boots the guests concurrently until each shows expectSerial (or timeoutMs), optionally
 * runs the PXE client simulator, then tears everything down. Never leaves processes, links or
 * namespaces behind, also when it throws. The returned evidence is for the caller to assert on.
 */
export async function runStoreScenario(o: StoreScenarioOptions): Promise<StoreScenarioResult> {
  const t0 = performance.now();
  const log = o.log ?? ((): void => {});
  installHooks();
  const swept = sweepStaleNamespaces();
  if (swept.length) log(`swept stale leftovers: ${swept.join(', ')}`);

  const base = `${NETNS_PREFIX}${process.pid}`;
  const topo: Topology = {
    router: base,
    laptop: `${base}-laptop`,
    ...(o.pxeClientSim?.length ? { sim: `${base}-pxesim` } : {}),
    taps: o.guests.map((_, i) => `tap${i}`),
  };
  for (const ns of [topo.router, topo.laptop, topo.sim]) {
    if (ns && listScenarioNamespaces().includes(ns)) throw new Error(`network namespace ${ns} exists already (a concurrent run in this process?)`);
  }
  const port = o.httpPort ?? 8080;
  const httpUrl = o.httpUrl ?? `http://${LAPTOP_ADDR}:${port}/`;
  const expect = (g: ScenarioGuest): RegExp => (typeof o.expectSerial === 'function' ? o.expectSerial(g) : o.expectSerial);

  const workDir = mkdtempSync(join(tmpdir(), `edgeimg-netns-${process.pid}-`));
  if (!o.keepWorkDir) topo.workDir = workDir;
  const tftpRoot = join(workDir, 'tftp');
  let storeConf: string;
  let proxyConf: string;
  try {
    // dnsmasq drops root (to nobody): the TFTP root must be world-readable, all the way down
    chmodSync(workDir, 0o755);
    mkdirSync(tftpRoot, { mode: 0o755 });
    const ipxe = locateIpxeBinaries({ requireBoth: true });
    for (const [from, name] of [[ipxe.efi!, IPXE_EFI], [ipxe.bios!, IPXE_BIOS]] as const) {
      copyFileSync(from, join(tftpRoot, name));
      chmodSync(join(tftpRoot, name), 0o644);
    }
    storeConf = storeConfig(workDir);
    proxyConf = dnsmasqProxyConfig({
      interface: 'lan0',
      serverAddress: LAPTOP_ADDR,
      httpUrl,
      tftpRoot,
      subnet: SUBNET,
      logFile: join(workDir, 'proxy.log'),
    });
    if (o.proxyConfigTransform) proxyConf = o.proxyConfigTransform(proxyConf);
    writeFileSync(join(workDir, 'store.conf'), storeConf);
    writeFileSync(join(workDir, 'proxy.conf'), proxyConf);
  } catch (e) {
    if (!o.keepWorkDir) rmSync(workDir, { recursive: true, force: true });
    throw e;
  }

  const procs: Proc[] = [];
  const serviceLimit = o.timeoutMs * 2 + 120_000;
  let setupMs = 0;
  let guestsMs = 0;
  let pxeSimMs: number | undefined;
  let outcomes: GuestOutcome[] = [];
  let pxeSim: StoreScenarioResult['pxeSim'];
  let http: Proc | undefined;
  let teardownErrors: string[] = [];
  let teardownMs = 0;
  const result = (): StoreScenarioResult => ({
    namespaces: { router: topo.router, laptop: topo.laptop, ...(topo.sim ? { sim: topo.sim } : {}) },
    workDir,
    proxyConfig: proxyConf,
    storeConfig: storeConf,
    storeLog: readIf(join(workDir, 'store.log')),
    proxyLog: readIf(join(workDir, 'proxy.log')),
    httpLog: http?.out() ?? '',
    guests: outcomes,
    ...(pxeSim ? { pxeSim } : {}),
    timings: { setupMs, guestsMs, ...(pxeSimMs !== undefined ? { pxeSimMs } : {}), teardownMs, totalMs: Math.round(performance.now() - t0) },
    leftoverNamespaces: listScenarioNamespaces(true),
    teardownErrors,
  });

  activeTopologies.add(topo);
  let res: StoreScenarioResult | undefined;
  try {
    buildTopology(topo);
    log(`namespaces up: ${topo.router} (store, br0 ${ROUTER_ADDR}), ${topo.laptop} (${LAPTOP_ADDR})${topo.sim ? `, ${topo.sim} (${SIM_ADDR})` : ''}`);

    const store = startProc('store dnsmasq', ['ip', 'netns', 'exec', topo.router, 'dnsmasq', `--conf-file=${join(workDir, 'store.conf')}`, '--no-daemon'], serviceLimit);
    procs.push(store);
    const proxy = startProc('proxy dnsmasq', ['ip', 'netns', 'exec', topo.laptop, 'dnsmasq', `--conf-file=${join(workDir, 'proxy.conf')}`, '--no-daemon'], serviceLimit);
    procs.push(proxy);
    const fill = (a: string): string =>
      a
        .replaceAll('{address}', LAPTOP_ADDR)
        .replaceAll('{port}', String(port))
        .replaceAll('{workDir}', workDir)
        .replaceAll('{tftpRoot}', tftpRoot)
        .replaceAll('{repo}', REPO_ROOT);
    const httpArgv = o.httpServerCommand?.map(fill) ?? [process.execPath, join(HERE, 'http-standin.mjs'), LAPTOP_ADDR, String(port)];
    http = startProc('http server', ['ip', 'netns', 'exec', topo.laptop, ...httpArgv], serviceLimit);
    procs.push(http);

    await waitFor('the store DHCP server', () => /DHCP, IP range/.test(readIf(join(workDir, 'store.log'))), 20_000, store);
    await waitFor('the proxy DHCP/TFTP server', () => /TFTP root is/.test(readIf(join(workDir, 'proxy.log'))), 20_000, proxy);
    await waitFor(`the HTTP server on ${LAPTOP_ADDR}:${port}`, () => tcpListening(topo.laptop, port), 30_000, http);
    setupMs = Math.round(performance.now() - t0);
    log(`services up after ${setupMs} ms`);

    // the PXE client simulator first: it is quick and does not compete with QEMU for the CPUs
    if (topo.sim && o.pxeClientSim?.length) {
      const ts = performance.now();
      const spec = JSON.stringify({ mac: SIM_MAC, address: SIM_ADDR, cases: o.pxeClientSim });
      const sim = startProc('pxe client sim', ['ip', 'netns', 'exec', topo.sim, process.execPath, join(HERE, 'pxe-client-sim.mjs'), spec], 90_000);
      procs.push(sim);
      const exit = await sim.done;
      const raw = sim.out();
      const cases = raw
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      pxeSim = { cases, raw, exit };
      pxeSimMs = Math.round(performance.now() - ts);
      log(`pxe client sim: ${cases.length} cases in ${pxeSimMs} ms`);
    }

    const tg = performance.now();
    const runs = o.guests.map(async (g, i): Promise<Omit<GuestOutcome, 'storeLeases' | 'proxyBootFiles' | 'tftpSent' | 'httpRequests' | 'crossTalk'>> => {
      const tap = topo.taps[i]!;
      const re = expect(g);
      let matchedAt: number | undefined;
      let text = '';
      const started = performance.now();
      const q = startProc(`qemu ${g.firmware} ${g.mac}`, ['ip', 'netns', 'exec', topo.router, ...qemuArgs(g, tap, i)], o.timeoutMs, {
        onData: () => {
          if (matchedAt !== undefined) return;
          text = cleanSerial(q.out());
          if (re.test(text)) {
            matchedAt = performance.now();
            log(`${g.firmware} ${g.mac}: serial matched after ${Math.round(matchedAt - started)} ms`);
            void q.stop(2000);
          }
        },
      });
      procs.push(q);
      const exit = await q.done;
      text = cleanSerial(q.out());
      const matched = matchedAt !== undefined || re.test(text);
      return { guest: g, tap, serial: text, matched, durationMs: Math.round((matchedAt ?? performance.now()) - started), exit };
    });
    const raw = await Promise.all(runs);
    guestsMs = Math.round(performance.now() - tg);

    // stop the servers before reading their logs, so everything is flushed
    await Promise.all(procs.map((p) => p.stop(3000)));
    const storeLog = readIf(join(workDir, 'store.log'));
    const proxyLog = readIf(join(workDir, 'proxy.log'));
    const httpLog = http.out();
    outcomes = raw.map((r) => ({ ...r, ...evidence(r.guest, storeLog, proxyLog, httpLog) }));
  } finally {
    const td = performance.now();
    await Promise.all(procs.map((p) => p.stop(2000)));
    teardownErrors = destroyTopology(topo);
    activeTopologies.delete(topo);
    teardownMs = Math.round(performance.now() - td);
    res = result();
    if (!o.keepWorkDir) rmSync(workDir, { recursive: true, force: true });
  }
  return res;
}
