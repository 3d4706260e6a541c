// PXE in a store whose DHCP server nobody may change: edgeimg's generated dnsmasq proxyDHCP
// config (src/serve/dnsmasq.ts) next to a plain "store" dnsmasq, in network namespaces, with a
// UEFI (edk2's own PXE) and a BIOS (SeaBIOS + iPXE ROM) QEMU guest and a simulated non-iPXE PXE
// ROM. See test/netns/harness.ts for the topology. Needs root, ip, dnsmasq, qemu-system-x86_64,
// ipxe and ovmf: a loud skip without them, a failure when CI=true.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bootScriptUrl, dnsmasqProxyConfig, locateIpxeBinaries } from '../../src/serve/dnsmasq.js';
import { EnvironmentError, UsageError } from '../../src/util/diagnostics.js';
import {
  LAPTOP_ADDR,
  listScenarioNamespaces,
  macPath,
  requireScenario,
  ROUTER_ADDR,
  runStoreScenario,
  type ScenarioGuest,
  type StoreScenarioResult,
} from './harness.js';

const base = {
  interface: 'enp3s0',
  serverAddress: '192.168.10.23',
  httpUrl: 'http://192.168.10.23:8080/',
  tftpRoot: '/usr/lib/ipxe',
};

function lines(conf: string): string[] {
  return conf.split('\n').filter((l) => l && !l.startsWith('#'));
}

describe('dnsmasqProxyConfig', () => {
  it('is a proxy-only config: no DNS, no address range, TFTP on, iPXE and firmware PXE told apart', () => {
    const l = lines(dnsmasqProxyConfig({ ...base, subnet: '192.168.10.0', logFile: '/var/log/edgeimg-dnsmasq.log' }));
    expect(l).toEqual([
      'port=0',
      'interface=enp3s0',
      'bind-interfaces',
      'dhcp-range=192.168.10.0,proxy',
      'leasefile-ro',
      'pid-file=',
      'enable-tftp',
      'tftp-root=/usr/lib/ipxe',
      'dhcp-userclass=set:ipxe,iPXE',
      'dhcp-match=set:ipxe,175',
      'pxe-service=tag:!ipxe,x86PC,"edgeimg iPXE BIOS",undionly.kpxe',
      'pxe-service=tag:!ipxe,x86-64_EFI,"edgeimg iPXE UEFI",ipxe.efi',
      'pxe-service=tag:!ipxe,BC_EFI,"edgeimg iPXE UEFI",ipxe.efi',
      'dhcp-boot=tag:ipxe,http://192.168.10.23:8080/boot.ipxe,,192.168.10.23',
      'log-dhcp',
      'log-facility=/var/log/edgeimg-dnsmasq.log',
    ]);
  });

  it('defaults the proxy range to the server address and logs to stderr/syslog without logFile', () => {
    const l = lines(dnsmasqProxyConfig(base));
    expect(l).toContain('dhcp-range=192.168.10.23,proxy');
    expect(l.some((x) => x.startsWith('log-facility='))).toBe(false);
  });

  it('points iPXE at boot.ipxe under the serve URL, or at the .ipxe URL given', () => {
    expect(bootScriptUrl('http://10.0.0.5:8080')).toBe('http://10.0.0.5:8080/boot.ipxe');
    expect(bootScriptUrl('http://10.0.0.5:8080/edge/')).toBe('http://10.0.0.5:8080/edge/boot.ipxe');
    expect(bootScriptUrl('http://10.0.0.5/x/boot.ipxe')).toBe('http://10.0.0.5/x/boot.ipxe');
  });

  it.each([
    ['https URL (no HTTPS in Debian iPXE)', { httpUrl: 'https://10.0.0.5/' }],
    ['URL with a comma', { httpUrl: 'http://10.0.0.5/a,b/' }],
    ['URL with a query', { httpUrl: 'http://10.0.0.5/?x=1' }],
    ['too long URL', { httpUrl: `http://10.0.0.5/${'a'.repeat(120)}/` }],
    ['interface with a newline', { interface: 'eth0\ndhcp-range=0.0.0.0,1.1.1.1' }],
    ['interface name too long', { interface: 'averyveryverylongname' }],
    ['server address not IPv4', { serverAddress: 'laptop.local' }],
    ['subnet not IPv4', { subnet: '10.0.0.0/24' }],
    ['relative TFTP root', { tftpRoot: 'tftp' }],
    ['TFTP root with a newline', { tftpRoot: '/srv/tftp\nenable-ra' }],
    ['log file with a comma', { logFile: '/tmp/a,b.log' }],
  ])('rejects a %s (UsageError)', (_what, patch) => {
    expect(() => dnsmasqProxyConfig({ ...base, ...patch })).toThrow(UsageError);
  });

  const hasDnsmasq = spawnSync('sh', ['-c', 'command -v dnsmasq || test -x /usr/sbin/dnsmasq']).status === 0;
  if (!hasDnsmasq) {
    if (process.env['CI'] === 'true') throw new Error('dnsmasq is not installed (CI=true: a failure, not a skip)');
    console.warn('\n!!! dnsmasq not installed: SKIPPING the dnsmasq --test syntax check !!!\n');
  }
  it.skipIf(!hasDnsmasq)('passes `dnsmasq --test`', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeimg-dnsmasq-'));
    try {
      const file = join(dir, 'proxy.conf');
      writeFileSync(file, dnsmasqProxyConfig({ ...base, logFile: join(dir, 'x.log') }));
      const dnsmasq = spawnSync('sh', ['-c', 'command -v dnsmasq || echo /usr/sbin/dnsmasq'], { encoding: 'utf8' }).stdout.trim();
      const r = spawnSync(dnsmasq, ['--test', `--conf-file=${file}`], { encoding: 'utf8', timeout: 10_000 });
      expect(`${r.stdout}${r.stderr}`).toMatch(/syntax check OK/);
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('locateIpxeBinaries', () => {
  it('finds both binaries, returns a lone one, and is an EnvironmentError (exit 3) with none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeimg-ipxe-'));
    try {
      expect(() => locateIpxeBinaries({ dir })).toThrow(EnvironmentError);
      expect(() => locateIpxeBinaries({ dir })).toThrow(/apt-get install ipxe/);
      writeFileSync(join(dir, 'ipxe.efi'), 'x');
      expect(locateIpxeBinaries({ dir })).toEqual({ efi: join(dir, 'ipxe.efi') });
      expect(() => locateIpxeBinaries({ dir, requireBoth: true })).toThrow(/undionly\.kpxe/);
      writeFileSync(join(dir, 'undionly.kpxe'), 'x');
      expect(locateIpxeBinaries({ dir, requireBoth: true })).toEqual({ efi: join(dir, 'ipxe.efi'), bios: join(dir, 'undionly.kpxe') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------------------------------

const GUESTS: ScenarioGuest[] = [
  { firmware: 'uefi', mac: '52:54:00:77:00:07' }, // edk2's own PXE client, NIC ROM off
  { firmware: 'bios', mac: '52:54:00:77:00:00' }, // SeaBIOS + QEMU's iPXE NIC ROM
];
const canRun = requireScenario(GUESTS);

describe.skipIf(!canRun)('store scenario: store DHCP + edgeimg proxyDHCP in network namespaces', () => {
  let r: StoreScenarioResult | undefined;

  afterAll(() => {
    // whatever happened above: no namespace of ours may survive
    expect(listScenarioNamespaces(true)).toEqual([]);
  });

  it(
    'guests get their address from the store, their boot info from the proxy, and reach boot.ipxe over HTTP',
    async () => {
      r = await runStoreScenario({
        guests: GUESTS,
        expectSerial: (g) => new RegExp(`EDGEIMG-NETNS-REACHED ${macPath(g.mac)}`),
        timeoutMs: 300_000,
        pxeClientSim: [
          { name: 'bios-pxe-rom', arch: 0 },
          { name: 'uefi-x64', arch: 7 },
          { name: 'uefi-x64-9', arch: 9 },
          { name: 'ipxe-bios', arch: 0, ipxe: true },
        ],
        log: (l) => console.log(`[netns] ${l}`),
      });
      const summary = {
        timings: r.timings,
        guests: r.guests.map((g) => ({ fw: g.guest.firmware, mac: g.guest.mac, matched: g.matched, ms: g.durationMs, lease: g.storeLeases, boot: g.proxyBootFiles, tftp: g.tftpSent })),
      };
      console.log(`[netns] ${JSON.stringify(summary)}`);

      // torn down completely
      expect(r.teardownErrors).toEqual([]);
      expect(r.leftoverNamespaces).toEqual([]);

      // the proxy never hands out addresses; the store never hands out boot information
      expect(r.proxyLog).not.toMatch(/DHCP(?:OFFER|ACK)\(/);
      expect(r.storeLog).not.toMatch(/PXE\(|bootfile name:/);
      expect(r.storeLog).toMatch(/DHCPACK\(br0\)/);

      const url = `http://${LAPTOP_ADDR}:8080/boot.ipxe`;
      for (const g of r.guests) {
        const what = `${g.guest.firmware} ${g.guest.mac}`;
        const ctx = `${what}\n--- serial (tail) ---\n${g.serial.slice(-3000)}`;
        expect(g.matched, ctx).toBe(true);
        // lease from dnsmasq #1 (the store), in its range
        expect(g.storeLeases.length, ctx).toBeGreaterThan(0);
        for (const a of g.storeLeases) expect(a, ctx).toMatch(/^10\.77\.0\.(1[0-4]\d|150)$/);
        expect(g.serial, ctx).toMatch(new RegExp(`gw ${ROUTER_ADDR.replaceAll('.', '\\.')}`));
        // boot info from dnsmasq #2 (the proxy): iPXE got the HTTP URL
        expect(g.proxyBootFiles, ctx).toContain(url);
        expect(g.crossTalk, ctx).toEqual([]);
        // the HTTP server saw the MAC-derived path, from the guest's store address
        expect(g.httpRequests.some((l) => l.startsWith(`GET /ipxe/${macPath(g.guest.mac)} 200 from ${g.storeLeases[0]}`)), `${ctx}\n--- http ---\n${r.httpLog}`).toBe(true);
        expect(g.serial, ctx).toMatch(/edgeimg-netns-ok/);
      }
      // UEFI: the firmware's own PXE client got ipxe.efi by TFTP first (real firmware PXE)
      const uefi = r.guests.find((g) => g.guest.firmware === 'uefi')!;
      expect(uefi.proxyBootFiles[0]).toBe('ipxe.efi');
      expect(uefi.tftpSent.some((f) => f.endsWith('/ipxe.efi'))).toBe(true);
      expect(uefi.serial).toMatch(/Start PXE over IPv4/);
      expect(uefi.serial).toMatch(/NBP filename is ipxe\.efi/);
      // BIOS: the iPXE ROM went straight to HTTP, no TFTP
      const bios = r.guests.find((g) => g.guest.firmware === 'bios')!;
      expect(bios.proxyBootFiles.every((f) => f === url)).toBe(true);
      expect(bios.tftpSent).toEqual([]);

      // simulated non-iPXE PXE ROMs: the binary by architecture, by TFTP, byte-identical
      const sim = new Map((r.pxeSim?.cases ?? []).map((c) => [c['name'] as string, c as Record<string, any>]));
      expect(sim.size, r.pxeSim?.raw).toBe(4);
      const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
      const bin = locateIpxeBinaries({ requireBoth: true });
      for (const [name, file, path] of [
        ['bios-pxe-rom', 'undionly.kpxe', bin.bios!],
        ['uefi-x64', 'ipxe.efi', bin.efi!],
        ['uefi-x64-9', 'ipxe.efi', bin.efi!],
      ] as const) {
        const c = sim.get(name)!;
        const ctx = JSON.stringify(c);
        expect(c['storeOffer']?.server, ctx).toBe(ROUTER_ADDR);
        expect(c['proxyOffer']?.server, ctx).toBe(LAPTOP_ADDR);
        expect(c['proxyOffer']?.yiaddr, ctx).toBe('0.0.0.0');
        expect(c['bootServerReply']?.file, ctx).toBe(file);
        expect(c['tftp']?.sha256, ctx).toBe(sha(path));
      }
      const ipxeBios = sim.get('ipxe-bios')!;
      expect(ipxeBios['proxyOffer']?.file).toBe(url);
      expect(ipxeBios['proxyOffer']?.siaddr).toBe(LAPTOP_ADDR);
    },
    900_000,
  );
});
