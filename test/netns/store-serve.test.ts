// The store scenario end to end with the real `edgeimg serve`: in network namespaces, the store's
// own dnsmasq hands out addresses only; on the "laptop", edgeimg's proxyDHCP config (dnsmasq) and
// `edgeimg serve` for store-0412 and store-0007. A UEFI guest (edk2's own PXE → ipxe.efi by TFTP)
// with store-0412 cp-1's MAC and a BIOS guest (SeaBIOS + iPXE ROM) with store-0007 cp-1's MAC
// PXE-boot through to their config: the stand-in netboot kernel fetches the URL serve's per-MAC
// script gives it and prints the sha256, which must be the manifest's; serve's log shows each
// fetch by that MAC. Topology and clean-up: test/netns/harness.ts.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { parseProbeTranscript } from '../../src/verify/probe-report.js';
import { listScenarioNamespaces, LAPTOP_ADDR, requireScenario, runStoreScenario, type ScenarioGuest } from './harness.js';
import { REPO_ROOT } from '../boot/helpers.js';

const GUESTS: ScenarioGuest[] = [
  { firmware: 'uefi', mac: '52:54:00:04:12:11' }, // store-0412 cp-1
  { firmware: 'bios', mac: '00:e0:4c:00:07:11' }, // store-0007 cp-1
];
const NODE_OF: Record<string, [string, string]> = { '52:54:00:04:12:11': ['store-0412', 'cp-1'], '00:e0:4c:00:07:11': ['store-0007', 'cp-1'] };
const canRun = requireScenario(GUESTS);

async function run(args: string[]): Promise<{ code: number; err: string }> {
  let e = '';
  const code = await main(args, { out: () => {}, err: (s) => (e += s) });
  return { code, err: e };
}

describe.skipIf(!canRun)('store scenario with edgeimg serve: PXE through to the node config', () => {
  const work = mkdtempSync(join(tmpdir(), 'edgeimg-storeserve-'));
  const out = join(work, 'out');
  const cache = join(work, 'cache');
  const cat = join(REPO_ROOT, 'catalogue');
  beforeAll(async () => {
    const s = await run(['images', 'standin', '--from', join(REPO_ROOT, 'images', 'cache', 'standin'), '--cache', cache, '--catalogue', cat]);
    expect(s.code, s.err).toBe(0);
    const b = await run(['build', '--site', 'store-0412', '--site', 'store-0007', '--out', out, '--secrets', join(work, 's'), '--cache', cache, '--catalogue', cat, '--allow-standin']);
    expect(b.code, b.err).toBe(0);
  }, 300_000);
  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
    expect(listScenarioNamespaces(true)).toEqual([]);
  });

  it('UEFI and BIOS nodes fetch their own config from edgeimg serve behind the store DHCP', async () => {
    const r = await runStoreScenario({
      guests: GUESTS,
      // the probe prints its report, END with a checksum, then the whole report again: wait for
      // the second complete END line, so the guest is never stopped inside the first copy
      expectSerial: /END status=\w+ files=\d+ lines=\d+ sum=[0-9a-f]{16}[\s\S]*END status=\w+ files=\d+ lines=\d+ sum=[0-9a-f]{16}/,
      timeoutMs: 400_000,
      httpServerCommand: [
        process.execPath, '--import', 'tsx', join(REPO_ROOT, 'test', 'helpers', 'cli.ts'),
        'serve', '--site', 'store-0412', '--site', 'store-0007', '--listen', '{address}:{port}',
        '--out', out, '--cache', cache, '--catalogue', cat, '--allow-standin', '--for', '20m',
      ],
      log: (l) => console.log(`[netns-serve] ${l}`),
    });
    expect(r.teardownErrors).toEqual([]);
    expect(r.leftoverNamespaces).toEqual([]);
    expect(r.proxyLog).not.toMatch(/DHCP(?:OFFER|ACK)\(/);
    expect(r.storeLog).not.toMatch(/PXE\(|bootfile name:/);
    for (const g of r.guests) {
      const [site, node] = NODE_OF[g.guest.mac]!;
      const ctx = `${g.guest.firmware} ${g.guest.mac}\n--- serial (tail) ---\n${g.serial.slice(-3000)}\n--- serve ---\n${r.httpLog.slice(-3000)}`;
      expect(g.matched, ctx).toBe(true);
      expect(g.storeLeases.length, ctx).toBeGreaterThan(0);
      expect(g.proxyBootFiles, ctx).toContain(`http://${LAPTOP_ADDR}:8080/boot.ipxe`);
      const report = parseProbeTranscript(g.serial);
      const m = JSON.parse(readFileSync(join(out, site, 'manifest.json'), 'utf8'));
      const ud = m.artifacts.find((a: { node: string; kind: string }) => a.node === node && a.kind === 'user-data');
      expect(report.status, ctx).toBe('ok');
      expect(report.source, ctx).toBe('net');
      expect(report.files, ctx).toEqual([{ name: 'config', size: ud.bytes, sha256: ud.sha256 }]);
      // serve's own log: this MAC fetched this node's config, with the manifest's sha256
      expect(r.httpLog, ctx).toMatch(new RegExp(`GET /config/${g.guest.mac.replace(/:/g, '-')} 200 ${site}/${node} config nodes/${node}/user-data sha256 ${ud.sha256}`));
    }
    // and the summary on exit names both nodes as fetched, the others as not
    expect(r.httpLog).toMatch(/store-0412: 1 of 3 nodes fetched their config/);
    expect(r.httpLog).toMatch(/store-0007: 1 of 1 node fetched their config/);
  }, 1_200_000);
});
