// `verify --boot --via pxe`: nodes boot over the network as `edgeimg serve` provisions them:
// firmware (OVMF for store-0412's UEFI class, SeaBIOS for store-0007's BIOS class) → QEMU's iPXE
// ROM → serve's boot.ipxe on 127.0.0.1 → per-MAC script → stand-in netboot kernel and initrd →
// the node's config URL. And a node whose built config was changed after the build gets nothing
// (serve refuses it against the manifest): the boot fails, saying why.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { IN_CI, missingTools, pgrep, REPO_ROOT } from './helpers.js';

const STANDIN_DIR = join(REPO_ROOT, 'images', 'cache', 'standin');

function prereqs(): boolean {
  const why: string[] = [];
  const tools = missingTools(['qemu-system-x86_64']);
  if (tools.length) why.push(`missing host tools: ${tools.join(', ')}`);
  if (!existsSync(join(REPO_ROOT, 'images', 'cache', 'probe', 'amd64', 'initrd.img'))) why.push('no probe image (make probe-image)');
  if (!existsSync(join(STANDIN_DIR, 'amd64', 'talos-like.iso'))) why.push('no stand-in images (make standin-images)');
  for (const f of ['/usr/share/ovmf/OVMF.fd', '/usr/lib/ipxe/qemu/efi-virtio.rom']) if (!existsSync(f)) why.push(`missing ${f} (apt-get install ovmf ipxe-qemu)`);
  if (why.length === 0) return true;
  if (IN_CI) throw new Error(`PXE boot tests cannot run in CI: ${why.join('; ')}`);
  console.warn(`\n*** SKIPPING PXE boot tests: ${why.join('; ')} ***\n`);
  return false;
}

const ok = prereqs();
const work = mkdtempSync(join(tmpdir(), 'edgeimg-pxekit-'));
const out = join(work, 'out');
const cache = join(work, 'cache');
const cat = join(REPO_ROOT, 'catalogue');
const marker = `edgeimg-${process.pid}-`;

async function run(args: string[]): Promise<{ code: number; err: string }> {
  let e = '';
  const code = await main(args, { out: () => {}, err: (s) => (e += s) });
  return { code, err: e };
}

describe.runIf(ok)('verify --boot --via pxe (firmware + iPXE + edgeimg serve)', () => {
  beforeAll(async () => {
    const s = await run(['images', 'standin', '--from', STANDIN_DIR, '--cache', cache, '--catalogue', cat]);
    expect(s.code, s.err).toBe(0);
    const b = await run(['build', '--site', 'store-0412', '--site', 'store-0007', '--out', out, '--secrets', join(work, 's'), '--cache', cache, '--catalogue', cat, '--allow-standin']);
    expect(b.code, b.err).toBe(0);
  }, 300_000);
  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
    expect(pgrep(marker)).toEqual([]);
  });

  it.concurrent('store-0412 cp-1 (UEFI, OVMF) fetches its config over HTTP', async () => {
    const r = await run(['verify', '--site', 'store-0412', '--node', 'cp-1', '--out', out, '--cache', cache, '--catalogue', cat, '--secrets', join(work, 's'), '--boot', '--via', 'pxe']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/ok {3}store-0412\/cp-1 boot-pxe: 52:54:00:04:12:11 \(amd64, OVMF \+ iPXE, .*the node fetched its config .* serve logged the fetch by 52:54:00:04:12:11/);
  }, 600_000);

  it.concurrent('store-0007 (BIOS, SeaBIOS) fetches its config over HTTP', async () => {
    const r = await run(['verify', '--site', 'store-0007', '--out', out, '--cache', cache, '--catalogue', cat, '--secrets', join(work, 's'), '--boot', '--via', 'pxe']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/ok {3}store-0007\/cp-1 boot-pxe: 00:e0:4c:00:07:11 \(amd64, SeaBIOS \+ iPXE/);
  }, 600_000);

  it.concurrent('negative: a config changed after the build is not served; the boot fails saying so', async () => {
    const dir = mkdtempSync(join(work, 'neg-'));
    cpSync(join(out, 'store-0007'), join(dir, 'store-0007'), { recursive: true });
    const ud = join(dir, 'store-0007', 'nodes', 'cp-1', 'user-data');
    writeFileSync(ud, `${readFileSync(ud, 'utf8')}# changed after the build\n`);
    const r = await run(['verify', '--site', 'store-0007', '--out', dir, '--cache', cache, '--catalogue', cat, '--secrets', join(work, 's'), '--boot', '--via', 'pxe']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/FAIL store-0007\/cp-1 boot-pxe: .*(not booted: .*user-data|fetch failed .*http-503|serve recorded no config fetch)/);
  }, 600_000);
});
