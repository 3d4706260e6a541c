// `verify --boot --via pxe`: each node boots over the network the way `edgeimg serve` provisions
// it. The verifier starts serve on 127.0.0.1 (a free port) for the site, and boots each node in
// QEMU with the node's MAC on its NIC and no disk: firmware (OVMF for UEFI classes, SeaBIOS for
// BIOS) → the NIC's iPXE option ROM (Debian ipxe-qemu) → DHCP from QEMU's user-mode network,
// whose boot file is serve's /boot.ipxe (10.0.2.2 is the host's loopback seen from the guest) →
// the per-MAC script → the class's netboot kernel and initrd → the node's config URL.
//
// Real Talos and Kairos netboot files cannot be booted here: the class's netboot assets must be
// stand-ins (edgeimg images standin: the probe kernel and initrd), whose init fetches the URL of
// `talos.config=` / `config_url=` and prints its sha256. The check compares that with the
// manifest and with serve's own record of which MAC fetched which config.
//
// arm64: Debian ships iPXE for x86 only (ipxe, ipxe-qemu), so arm64 nodes are reported, not booted.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Manifest, ManifestNode } from '../manifest/manifest.js';
import type { CheckResult } from './static.js';
import { chooseAccel, runQemu, type Accel } from './qemu.js';
import { compareProbeReport, parseProbeTranscript } from './probe-report.js';
import { guestFirmware } from './real-image.js';
import { startServer } from '../serve/server.js';
import type { RequestEvent, ServeEvent } from '../serve/events.js';
import { mapLimit } from '../util/pool.js';
import { EnvironmentError } from '../util/diagnostics.js';

export interface PxeBootOptions {
  cacheDir: string;
  catalogueDir: string;
  jobs?: number;
  /** Hard limit per boot. Default 300 s. */
  timeoutMs?: number;
  log: (line: string) => void;
  signal?: AbortSignal;
  accel?: Accel;
  nodes?: string[];
}

export const PXE_TIMEOUT_MS = 300_000;

export async function pxeChecks(siteDir: string, manifest: Manifest, o: PxeBootOptions): Promise<CheckResult[]> {
  const jobs = Math.max(1, o.jobs ?? availableParallelism());
  const timeoutMs = o.timeoutMs ?? PXE_TIMEOUT_MS;
  const accel = await chooseAccel(o.accel, o.log);
  const site = basename(siteDir);
  const events: RequestEvent[] = [];
  const server = await startServer({
    outDir: dirname(siteDir),
    sites: [site],
    catalogueDir: o.catalogueDir,
    cacheDir: o.cacheDir,
    allowStandin: true,
    listen: '127.0.0.1:0',
    windowMs: timeoutMs * 4,
    onEvent: (e: ServeEvent) => {
      if ('status' in e) events.push(e);
    },
  });
  o.log(`${site}: edgeimg serve on ${server.url} for the PXE boots (guests reach it as 10.0.2.2:${server.port})`);
  const results: CheckResult[] = [];
  const boots: ManifestNode[] = [];
  try {
    for (const node of manifest.nodes) {
      if (o.nodes && !o.nodes.includes(node.name)) continue;
      const fail = (message: string): void => void results.push({ check: 'boot-pxe', node: node.name, ok: false, message });
      const planned = server.plan.nodes.find((n) => n.node === node.name);
      if (node.arch !== 'amd64') fail(`not booted: no ${node.arch} iPXE here (Debian's ipxe and ipxe-qemu are x86 only); ${node.arch} nodes netboot through their UEFI's own HTTP boot, untested`);
      else if (!node.mac || !planned?.mac) fail(`not booted: ${planned?.macProblem ?? 'the node has no MAC in the catalogue; serve keys configs by MAC'}`);
      else if (planned.netbootProblem) fail(`not booted: ${planned.netbootProblem.reason} (${planned.netbootProblem.fix})`);
      else if (planned.configProblem) fail(`not booted: ${planned.configProblem}`);
      else if (!(planned.netboot?.kernel.standin ?? planned.netboot?.initrd.standin)) fail('not booted: the class netboot files are the real OS; --via pxe needs stand-ins (make standin-images)');
      else boots.push(node);
    }
    const logDir = join(siteDir, 'verify');
    await mkdir(logDir, { recursive: true });
    results.push(...(await mapLimit(boots, jobs, (node) => bootOne(siteDir, manifest, node, server.port, events, { ...o, accel, timeoutMs, logDir }))));
  } finally {
    await server.close();
  }
  return results;
}

async function bootOne(
  siteDir: string,
  manifest: Manifest,
  node: ManifestNode,
  port: number,
  events: RequestEvent[],
  o: PxeBootOptions & { accel: Accel; timeoutMs: number; logDir: string },
): Promise<CheckResult> {
  const serialLog = join(o.logDir, `${node.name}-pxe.log`);
  const base = { check: 'boot-pxe', node: node.name, log: serialLog };
  const varsDir = await mkdtemp(join(tmpdir(), 'edgeimg-fw-'));
  try {
    const fw = guestFirmware(node.arch, node.firmware, varsDir);
    if (node.firmware === 'uefi' && !fw.firmware) throw new EnvironmentError('no OVMF found (/usr/share/OVMF): install ovmf; --via pxe boots a UEFI class through UEFI firmware');
    const fwName = node.firmware === 'uefi' ? 'OVMF' : 'SeaBIOS';
    const nonce = randomBytes(8).toString('hex');
    const res = await runQemu({
      arch: node.arch,
      media: [],
      ...(fw.firmware ? { firmware: fw.firmware } : {}),
      network: { macAddress: node.mac!, bootFile: `http://10.0.2.2:${port}/boot.ipxe`, nicBootIndex: 0 },
      fwCfg: [{ name: 'opt/edgeimg/nonce', value: nonce }],
      memoryMiB: 512,
      timeoutMs: o.timeoutMs,
      serialLog,
      accel: o.accel,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const what = `${node.mac} (${node.arch}, ${fwName} + iPXE, ${o.accel}`;
    if (res.timedOut) return { ...base, ok: false, message: `${what}): no transcript within ${Math.round(o.timeoutMs / 1000)} s (serial log ${serialLog})` };
    const secs = (res.durationMs / 1000).toFixed(1);
    const report = parseProbeTranscript(res.serial, nonce);
    const ud = manifest.artifacts.find((a) => a.node === node.name && a.kind === 'user-data');
    const problems = compareProbeReport(report, ud ? [{ name: 'config', sha256: ud.sha256, size: ud.bytes }] : []);
    if (report.volume && report.source !== 'net') problems.push('the guest did not read its configuration over the network');
    // serve's own record: this MAC fetched this node's config, once, with the manifest's sha256
    const norm = (m: string | undefined): string => (m ?? '').toLowerCase().replace(/-/g, ':');
    const mac = norm(node.mac);
    const fetched = events.filter((e) => e.event === 'config' && norm(e.mac) === mac && e.status === 200);
    if (fetched.length === 0) problems.push(`serve recorded no config fetch by ${node.mac}`);
    else if (fetched.some((e) => e.node !== node.name || (ud && e.sha256 !== ud.sha256))) problems.push(`serve handed ${node.mac} a config that is not ${node.name}'s`);
    const foreign = events.filter((e) => e.event === 'config' && e.status === 200 && e.node === node.name && norm(e.mac) !== mac);
    if (foreign.length > 0) problems.push(`${node.name}'s config went to another MAC (${foreign.map((e) => e.mac).join(', ')})`);
    if (problems.length > 0) return { ...base, ok: false, message: `${what}, ${secs} s): ${[...new Set(problems)].join('; ')}` };
    return {
      ...base,
      ok: true,
      message: `${what}, ${secs} s): ${fwName} → iPXE → serve: the node fetched its config (sha256 ${ud!.sha256.slice(0, 16)}…) over HTTP; it matches the manifest, and serve logged the fetch by ${node.mac}`,
    };
  } finally {
    await rm(varsDir, { recursive: true, force: true });
  }
}
