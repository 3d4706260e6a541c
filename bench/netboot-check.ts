// Network-boot smoke check of the probe's network configuration mode (images/probe/README.md).
// Every boot starts with NO disk and NO -kernel: firmware -> the NIC's iPXE option ROM (Debian
// ipxe-qemu) -> DHCP from QEMU's slirp, whose BOOTP file field (bootfile=) is
// http://10.0.2.2:<port>/boot.ipxe (slirp's gateway reaches the host's 127.0.0.1) -> the
// in-process HTTP server below: boot.ipxe chains /ipxe/<mac>, which loads the probe's kernel and
// initrd from /nb/<mac>/kernel|initrd with talos.config= / config_url= pointing at
// /config/<mac> -> the probe init fetches the configuration over DHCP + HTTP and prints its
// transcript. The server mimics `edgeimg serve`'s routes: /config/<mac> is served once, then
// 410 Gone. Not part of vitest: it takes minutes under TCG.
//
//   node --import tsx bench/netboot-check.ts [--only NAME,...] [--jobs N] [--probe DIR] [--keep]
//
// Boots (NAME):
//   ovmf-talos         amd64 OVMF (UEFI),    virtio-net, talos.config -> config fetched
//   seabios-kairos     amd64 SeaBIOS (BIOS), virtio-net, config_url   -> config fetched
//   seabios-e1000-gone amd64 SeaBIOS (BIOS), e1000, config already served once -> ERROR http-410
//   aavmf-kairos       arm64 AAVMF (UEFI),    virtio-net, config_url   -> config fetched
//
// arm64 has no iPXE in Debian: AAVMF's own UEFI HTTP boot takes the DHCP boot file
// http://10.0.2.2:<port>/grub/netboot.efi (the probe build's GRUB image, images/probe/README.md
// "Network boot"), which fetches the GRUB script /grub/<mac> -- the arm64 twin of /ipxe/<mac>.
//
// Serial logs go to out/netboot-check/<name>.log. Exit code: 0 all as expected, 1 a boot was not,
// 2 usage error, 3 missing image or tool.

import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseProbeTranscript, type ProbeReport } from '../src/verify/probe-report.js';
import { interruptSignal, runQemu, type GuestArch, type QemuFirmware } from '../src/verify/qemu.js';
import { guestFirmware } from '../src/verify/real-image.js';
import { mapLimit } from '../src/util/pool.js';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Boot {
  name: string;
  arch: GuestArch;
  firmware: 'OVMF' | 'SeaBIOS' | 'AAVMF';
  nic: 'virtio-net-pci' | 'e1000';
  os: 'talos' | 'kairos';
  mac: string;
  /** The configuration was already fetched once: the server answers 410. */
  gone?: boolean;
  expect: string;
  timeoutS: number;
}

const BOOTS: Boot[] = [
  { name: 'ovmf-talos', arch: 'amd64', firmware: 'OVMF', nic: 'virtio-net-pci', os: 'talos', mac: '52:54:00:ed:9e:01', expect: 'config fetched', timeoutS: 240 },
  { name: 'seabios-kairos', arch: 'amd64', firmware: 'SeaBIOS', nic: 'virtio-net-pci', os: 'kairos', mac: '52:54:00:ed:9e:02', expect: 'config fetched', timeoutS: 240 },
  { name: 'seabios-e1000-gone', arch: 'amd64', firmware: 'SeaBIOS', nic: 'e1000', os: 'kairos', mac: '52:54:00:ed:9e:03', gone: true, expect: 'fetch failed http-410', timeoutS: 240 },
  { name: 'aavmf-kairos', arch: 'arm64', firmware: 'AAVMF', nic: 'virtio-net-pci', os: 'kairos', mac: '52:54:00:ed:9e:04', expect: 'config fetched', timeoutS: 480 },
];

const FIXTURES = {
  talos: [
    'version: v1alpha1',
    'machine:',
    '  type: worker',
    '  token: netboot-check.0123456789abcdef',
    '  install:',
    '    disk: /dev/vda',
    '  network:',
    '    hostname: netboot-talos-1',
    'cluster:',
    '  controlPlane:',
    '    endpoint: https://10.0.2.100:6443',
    '',
  ].join('\n'),
  kairos: ['#cloud-config', 'hostname: netboot-kairos-1', 'users:', '  - name: kairos', '    groups: [admin]', ''].join('\n'),
};
const HOSTNAMES = { talos: 'netboot-talos-1', kairos: 'netboot-kairos-1' };

function usage(msg: string): never {
  process.stderr.write(`netboot-check: ${msg}\nusage: bench/netboot-check.ts [--only NAME,...] [--jobs N] [--probe DIR] [--keep]\n`);
  process.exit(2);
}

const args = { only: [] as string[], jobs: 1, probe: join(root, 'images/cache/probe'), keep: false };
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i]!;
  const v = (): string => process.argv[++i] ?? usage(`${k} needs a value`);
  switch (k) {
    case '--only': args.only.push(...v().split(',').filter(Boolean)); break;
    case '--jobs': args.jobs = Number(v()); if (!Number.isInteger(args.jobs) || args.jobs < 1) usage('--jobs must be a positive integer'); break;
    case '--probe': args.probe = resolve(v()); break;
    case '--keep': args.keep = true; break;
    case '-h': case '--help': process.stdout.write('see the header of bench/netboot-check.ts and images/probe/README.md\n'); process.exit(0);
    default: usage(`unknown argument ${k}`);
  }
}
for (const n of args.only) if (!BOOTS.some((b) => b.name === n)) usage(`no boot named ${n} (${BOOTS.map((b) => b.name).join(', ')})`);
const boots = BOOTS.filter((b) => args.only.length === 0 || args.only.includes(b.name));

for (const b of boots) {
  for (const f of ['vmlinuz', 'initrd.img', ...(b.arch === 'arm64' ? ['netboot.efi'] : [])]) {
    if (!existsSync(join(args.probe, b.arch, f))) {
      process.stderr.write(`netboot-check: ${join(args.probe, b.arch, f)} not built: run \`make probe-image\` (bash images/probe/build.sh)\n`);
      process.exit(3);
    }
  }
}
if (!existsSync('/usr/lib/ipxe/qemu/efi-virtio.rom')) {
  process.stderr.write('netboot-check: no iPXE option ROMs for QEMU (apt-get install ipxe-qemu)\n');
  process.exit(3);
}

// ---- the HTTP server (edgeimg serve's routes, for the boots of this check)
const hyph = (mac: string): string => mac.toLowerCase().replace(/:/g, '-');
const byMac = new Map<string, { boot: Boot; nonce: string; t0: number; hits: Array<{ path: string; status: number; at: number }>; served: boolean }>();
let port = 0;
const base = (): string => `http://10.0.2.2:${port}`;

function cmdline(b: Boot, nonce: string): string {
  const mac = hyph(b.mac);
  const os = b.os === 'talos'
    ? `edgeimg.standin=talos talos.platform=metal talos.config=${base()}/config/${mac}`
    : `edgeimg.standin=kairos config_url=${base()}/config/${mac}`;
  // amd64 (iPXE): initrd=initrd -- iPXE (2019) under UEFI starts the kernel's EFI stub, which
  // loads the initrd named on the command line from iPXE's virtual file system (without it:
  // "VFS: Unable to mount root fs"); BIOS boots ignore it. arm64 (GRUB) passes the initrd itself.
  const head = b.arch === 'amd64' ? 'initrd=initrd console=ttyS0' : 'console=ttyAMA0';
  return `${head} quiet panic=-1 cryptomgr.notests edgeimg.nonce=${nonce} ${os}`;
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0]!;
  const m = /^\/(?:ipxe|grub|nb|config)\/([0-9a-f]{2}(?:-[0-9a-f]{2}){5})(?:\/|$)/.exec(path);
  const node = m ? byMac.get(m[1]!) : undefined;
  const send = (status: number, body: string | Buffer, type = 'text/plain'): void => {
    node?.hits.push({ path, status, at: performance.now() - node.t0 });
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
  if (path === '/boot.ipxe') {
    // no node yet: every boot's first request; the MAC comes back in the chained URL
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`#!ipxe\nchain ${base()}/ipxe/\${net0/mac:hexhyp}\n`);
    return;
  }
  if (path === '/grub/netboot.efi') {
    // arm64: AAVMF's UEFI HTTP boot (HEAD, then GET) wants application/efi (or a .efi name)
    const body = readFileSync(join(args.probe, 'arm64', 'netboot.efi'));
    res.writeHead(200, { 'Content-Type': 'application/efi', 'Content-Length': body.length });
    res.end(body);
    return;
  }
  if (!node) return send(404, 'unknown node\n');
  const mac = m![1]!;
  if (path === `/ipxe/${mac}`) {
    return send(200, `#!ipxe\nkernel ${base()}/nb/${mac}/kernel ${cmdline(node.boot, node.nonce)}\ninitrd ${base()}/nb/${mac}/initrd\nboot\n`);
  }
  if (path === `/grub/${mac}`) {
    const h = `(http,10.0.2.2:${port})`;
    return send(200, `linux ${h}/nb/${mac}/kernel ${cmdline(node.boot, node.nonce)}\ninitrd ${h}/nb/${mac}/initrd\nboot\n`);
  }
  if (path === `/nb/${mac}/kernel` || path === `/nb/${mac}/initrd`) {
    const file = join(args.probe, node.boot.arch, path.endsWith('kernel') ? 'vmlinuz' : 'initrd.img');
    node.hits.push({ path, status: 200, at: performance.now() - node.t0 });
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': statSync(file).size });
    createReadStream(file).pipe(res);
    return;
  }
  if (path === `/config/${mac}`) {
    if (node.served) return send(410, 'configuration already served\n');
    node.served = true;
    return send(200, FIXTURES[node.boot.os], 'application/yaml');
  }
  return send(404, 'not found\n');
}

const server = createServer(handle);
server.keepAliveTimeout = 2000;
await new Promise<void>((res, rej) => {
  server.once('error', rej);
  server.listen(0, '127.0.0.1', () => res());
});
port = (server.address() as AddressInfo).port;

// ---- the boots
const work = mkdtempSync(join(tmpdir(), 'edgeimg-netboot-check-'));
const logDir = join(root, 'out', 'netboot-check');
mkdirSync(logDir, { recursive: true });

function firmwareOf(b: Boot, dir: string): QemuFirmware | undefined {
  if (b.firmware === 'SeaBIOS') return undefined;
  // arm64: always AAVMF (QEMU_EFI.fd)
  const f = guestFirmware(b.arch, 'uefi', dir);
  if (f.error || !f.firmware) throw new Error(f.error ?? f.note ?? 'no UEFI firmware');
  return f.firmware;
}

/** The fields of the transcript's NET line (the report parser does not keep it). */
function netLine(serial: string, nonce: string): Record<string, string> | undefined {
  const at = serial.indexOf(`EDGEIMG-PROBE BEGIN v1 nonce=${nonce}`);
  const line = serial.slice(Math.max(at, 0)).split('\n').find((l) => l.includes('EDGEIMG-PROBE NET '));
  if (!line) return undefined;
  const out: Record<string, string> = {};
  for (const tok of line.slice(line.indexOf('EDGEIMG-PROBE NET ') + 18).trim().split(/\s+/)) {
    const eq = tok.indexOf('=');
    if (eq > 0) out[tok.slice(0, eq)] = decodeURIComponent(tok.slice(eq + 1));
  }
  return out;
}

function judge(b: Boot, r: ProbeReport, net: Record<string, string> | undefined): string[] {
  const p: string[] = [];
  if (r.status === 'incomplete') return [r.error ?? 'no transcript'];
  if (r.standin !== `${b.os}-like`) p.push(`STANDIN ${r.standin ?? '(none)'}, expected ${b.os}-like`);
  if (!net) p.push('no NET line');
  else {
    if (net.mac !== hyph(b.mac)) p.push(`NET mac=${net.mac}, expected ${hyph(b.mac)}`);
    if (net.server !== `10.0.2.2:${port}`) p.push(`NET server=${net.server}`);
    if (!/^10\.0\.2\.\d+\/24$/.test(net.address ?? '')) p.push(`NET address=${net.address}`);
  }
  if (b.gone) {
    const e = r.errors.find((x) => x.startsWith('fetch failed'));
    if (!e || !e.endsWith('reason=http-410')) p.push(`expected "fetch failed … reason=http-410", got ${r.errors.join('; ') || 'no error'}`);
    if (r.status !== 'error') p.push(`status ${r.status}`);
    if (r.files.length) p.push('a FILE line despite the failed fetch');
    return p;
  }
  if (r.status !== 'ok') p.push(`status ${r.status}: ${r.errors.join('; ')}`);
  if (r.source !== 'net' || r.volume?.device !== 'net' || r.volume.fstype !== 'http' || r.volume.label !== `10.0.2.2:${port}`) p.push(`VOLUME ${JSON.stringify(r.volume)} source=${r.source}`);
  const want = createHash('sha256').update(FIXTURES[b.os]).digest('hex');
  const f = r.files.find((x) => x.name === 'config');
  if (!f) p.push('no FILE config');
  else {
    if (f.sha256 !== want) p.push(`config sha256 ${f.sha256}, expected ${want}`);
    if (f.size !== Buffer.byteLength(FIXTURES[b.os])) p.push(`config size ${f.size}`);
  }
  if (r.volume?.size !== Buffer.byteLength(FIXTURES[b.os])) p.push(`VOLUME size ${r.volume?.size}`);
  if (!r.node || r.node.instanceId !== '-' || r.node.hostname !== HOSTNAMES[b.os]) p.push(`NODE ${JSON.stringify(r.node)}`);
  return p;
}

interface Row { boot: Boot; ok: boolean; seconds?: number; ipxe?: number; kernel?: number; config?: number; note: string }

const { signal, dispose } = interruptSignal();
let exitCode = 0;
try {
  process.stderr.write(`netboot-check: ${boots.length} boot(s), ${args.jobs} at a time, TCG; HTTP server 127.0.0.1:${port}; logs in ${logDir}\n`);
  const rows = await mapLimit(boots, args.jobs, async (b): Promise<Row> => {
    const fwDir = mkdtempSync(join(work, 'fw-'));
    const nonce = randomBytes(8).toString('hex');
    const node = { boot: b, nonce, t0: performance.now(), hits: [] as Array<{ path: string; status: number; at: number }>, served: !!b.gone };
    byMac.set(hyph(b.mac), node);
    try {
      const firmware = firmwareOf(b, fwDir);
      const serialLog = join(logDir, `${b.name}.log`);
      node.t0 = performance.now();
      const res = await runQemu({
        arch: b.arch,
        media: [],
        ...(firmware ? { firmware } : {}),
        network: b.arch === 'amd64'
          ? { macAddress: b.mac, nicModel: b.nic, nicBootIndex: 0, bootFile: `${base()}/boot.ipxe` }
          // no (x86) iPXE ROM: the firmware's own network stack
          : { macAddress: b.mac, nicModel: b.nic, nicBootIndex: 0, bootFile: `${base()}/grub/netboot.efi`, romfile: '' },
        memoryMiB: 512,
        timeoutMs: b.timeoutS * 1000,
        serialLog,
        accel: 'tcg',
        signal,
      });
      const seconds = res.durationMs / 1000;
      const at = (p: RegExp): number | undefined => node.hits.find((h) => p.test(h.path))?.at;
      const times = { ipxe: at(/^\/(ipxe|grub)\/..-/), kernel: at(/\/kernel$/), config: at(/^\/config\//) };
      if (res.spawnError) return { boot: b, ok: false, seconds, ...times, note: `qemu: ${res.spawnError}` };
      if (res.timedOut) return { boot: b, ok: false, seconds, ...times, note: `timed out after ${b.timeoutS} s (${serialLog}); requests: ${node.hits.map((h) => `${h.path}=${h.status}`).join(' ') || 'none'}` };
      const report = parseProbeTranscript(res.serial, nonce);
      const net = netLine(res.serial, nonce);
      const problems = judge(b, report, net);
      const configHits = node.hits.filter((h) => h.path.startsWith('/config/'));
      if (configHits.length !== 1) problems.push(`/config/ requested ${configHits.length} times`);
      const what = b.gone
        ? report.errors.join('; ')
        : `${net?.if} ${net?.address}; config ${report.files[0]?.size} bytes sha256 ${report.files[0]?.sha256.slice(0, 12)}…; hostname ${report.node?.hostname}`;
      return { boot: b, ok: problems.length === 0, seconds, ...times, note: problems.length === 0 ? what : problems.join('; ') };
    } catch (e) {
      return { boot: b, ok: false, note: (e as Error).message };
    } finally {
      rmSync(fwDir, { recursive: true, force: true });
    }
  });
  const s = (ms: number | undefined): string => (ms === undefined ? '-' : (ms / 1000).toFixed(1));
  const head = ['boot', 'arch', 'firmware', 'NIC', 'os', 'expected', 'result', 'chain s', 'kernel s', 'config s', 'wall s', 'details'];
  const table = rows.map((r) => [
    r.boot.name, r.boot.arch, r.boot.firmware, r.boot.nic, r.boot.os, r.boot.expect, r.ok ? 'pass' : 'FAIL',
    s(r.ipxe), s(r.kernel), s(r.config), r.seconds?.toFixed(1) ?? '-', r.note,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  process.stdout.write(`${line(head)}\n${line(widths.map((w) => '-'.repeat(w)))}\n${table.map(line).join('\n')}\n`);
  process.stdout.write('chain/kernel/config s: when the server saw /ipxe/<mac> (arm64: /grub/<mac>), /nb/<mac>/kernel, /config/<mac>, from QEMU start\n');
  if (rows.some((r) => !r.ok)) exitCode = 1;
} finally {
  dispose();
  server.closeAllConnections();
  server.close();
  if (!args.keep) rmSync(work, { recursive: true, force: true });
  else process.stderr.write(`netboot-check: kept ${work}\n`);
}
process.exit(exitCode);
