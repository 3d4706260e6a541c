// `verify --boot --via usb`: the field kits booted through real firmware, sticks on USB:
//   store-0412 cp-1  Talos class stick + seed stick, amd64 UEFI (OVMF)
//   store-0007       Talos, amd64 BIOS (SeaBIOS)
//   lab-0001         Kairos k0s, arm64 UEFI (AAVMF)
//   plant-0031       Kairos k3s server-1: class stick + seed stick, and the one-stick ISO (OVMF)
// and the negative cases, each failing for its stated reason:
//   a FAT16 seed stick is not found by the kairos-like stand-in (go-diskfs reads FAT32 only);
//   another node's seed stick is reported as the wrong node;
//   a seed stick truncated by one sector fails.
// The whole matrix (every node of every example site) is `make verify-usb`.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execaSync } from 'execa';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { IN_CI, missingTools, pgrep, REPO_ROOT } from './helpers.js';

const STANDIN_DIR = join(REPO_ROOT, 'images', 'cache', 'standin');
const FIRMWARE = ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/qemu-efi-aarch64/QEMU_EFI.fd'];

function prereqs(): boolean {
  const why: string[] = [];
  const tools = missingTools(['qemu-system-x86_64', 'qemu-system-aarch64', 'xorriso', 'mkfs.vfat', 'mcopy']);
  if (tools.length) why.push(`missing host tools: ${tools.join(', ')}`);
  const images = ['amd64/talos-like.iso', 'amd64/kairos-like.iso', 'arm64/kairos-like.iso'].filter((f) => !existsSync(join(STANDIN_DIR, f)));
  if (images.length) why.push(`no stand-in images ${images.join(', ')} (run \`make standin-images\`)`);
  const fw = FIRMWARE.filter((f) => !existsSync(f));
  if (fw.length) why.push(`missing firmware ${fw.join(', ')} (apt-get install ovmf qemu-efi-aarch64)`);
  if (why.length === 0) return true;
  if (IN_CI) throw new Error(`USB kit boot tests cannot run in CI: ${why.join('; ')}`);
  console.warn(`\n*** SKIPPING USB kit boot tests: ${why.join('; ')} ***\n`);
  return false;
}

const ok = prereqs();
const work = mkdtempSync(join(tmpdir(), 'edgeimg-usbkit-'));
const out = join(work, 'out');
const cache = join(work, 'cache');
const marker = `edgeimg-${process.pid}-`;

async function run(args: string[]): Promise<{ code: number; err: string; out: string }> {
  let o = '';
  let e = '';
  const code = await main(args, { out: (s) => (o += s), err: (s) => (e += s) });
  return { code, err: e, out: o };
}

const verify = (site: string, extra: string[] = [], outDir = out) => run(['verify', '--site', site, '--out', outDir, '--boot', '--via', 'usb', '--cache', cache, '--jobs', '2', '--catalogue', join(REPO_ROOT, 'catalogue'), '--secrets', join(work, 'secrets'), ...extra]);

/** A copy of a built site, to damage without disturbing the others. */
function scratchSite(site: string): string {
  const dir = mkdtempSync(join(work, 'neg-'));
  cpSync(join(out, site), join(dir, site), { recursive: true });
  return dir;
}

describe.runIf(ok)('verify --boot --via usb (firmware, USB mass storage)', () => {
  beforeAll(async () => {
    const s = await run(['images', 'standin', '--from', STANDIN_DIR, '--cache', cache, '--catalogue', join(REPO_ROOT, 'catalogue')]);
    expect(s.code, s.err).toBe(0);
    const b = await run([
      'build', '--site', 'store-0412', '--site', 'store-0007', '--site', 'lab-0001', '--site', 'plant-0031',
      '--media', 'iso,img,onestick', '--allow-standin', '--cache', cache,
      '--catalogue', join(REPO_ROOT, 'catalogue'), '--out', out, '--secrets', join(work, 'secrets'),
    ]);
    expect(b.code, b.err).toBe(0);
  }, 600_000);
  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
    // the boots run concurrently: once they are all done, none may be left behind
    expect(pgrep(marker)).toEqual([]);
  });

  it.concurrent('store-0412 (amd64 UEFI, OVMF): class stick + seed stick', async () => {
    const r = await verify('store-0412', ['--node', 'cp-1']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/ok {3}store-0412\/cp-1 boot-usb: nocloud-amd64\.iso \+ nodes\/cp-1\/seed\.img \(amd64, OVMF, .*OVMF booted talos-like from \/dev\/sd[a-z]; it found vfat "CIDATA" on \/dev\/sd[a-z]; 4 files match the manifest/);
  }, 900_000);

  it.concurrent('store-0007 (amd64 BIOS, SeaBIOS): class stick + seed stick', async () => {
    const r = await verify('store-0007');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/ok {3}store-0007\/cp-1 boot-usb: .*\(amd64, SeaBIOS, .*SeaBIOS booted talos-like/);
  }, 900_000);

  it.concurrent('lab-0001 (arm64 UEFI, AAVMF): class stick + seed stick', async () => {
    const r = await verify('lab-0001');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/ok {3}lab-0001\/ctl-1 boot-usb: .*\(arm64, AAVMF, .*AAVMF booted kairos-like/);
  }, 900_000);

  it.concurrent('plant-0031 (Kairos, OVMF): both kits, the one-stick ISO found by its own config.yaml', async () => {
    const r = await verify('plant-0031', ['--node', 'server-1']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/ok {3}plant-0031\/server-1 boot-usb: .*kairos-like.*it found vfat "CIDATA"/);
    expect(r.err).toMatch(/ok {3}plant-0031\/server-1 boot-usb-onestick: nodes\/server-1\/kairos-stick\.iso .*it found config\.yaml on its own medium; 2 files match/);
    const sheet = readFileSync(join(out, 'plant-0031', 'field-sheet.html'), 'utf8');
    expect(sheet).toMatch(/alone instead of both sticks:<\/em> <code>nodes\/server-1\/kairos-stick\.iso<\/code>/);
    const i = await run(['inspect', join(out, 'plant-0031', 'nodes', 'server-1', 'kairos-stick.iso'), '--out', out, '--secrets', join(work, 'secrets'), '--site', 'plant-0031', '--node', 'server-1']);
    expect(i.code, i.err).toBe(0);
    expect(i.err).toMatch(/Kairos one-stick \(live ISO \+ config\.yaml\) for plant-0031 node server-1/);
    const wrong = await run(['inspect', join(out, 'plant-0031', 'nodes', 'agent-1', 'kairos-stick.iso'), '--out', out, '--secrets', join(work, 'secrets'), '--site', 'plant-0031', '--node', 'server-1']);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/PROBLEM: this stick is for node plant-0031\/agent-1/);
  }, 900_000);

  it.concurrent('negative: a FAT16 seed stick is not found by the kairos-like stand-in', async () => {
    const dir = scratchSite('plant-0031');
    const node = join(dir, 'plant-0031', 'nodes', 'server-1');
    const img = join(node, 'seed.img');
    rmSync(img);
    execaSync('mkfs.vfat', ['-C', '-F', '16', '-n', 'CIDATA', img, String(32 * 1024)]);
    for (const f of ['user-data', 'meta-data', 'network-config']) execaSync('mcopy', ['-i', img, join(node, f), `::/${f}`]);
    const r = await verify('plant-0031', ['--node', 'server-1'], dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/FAIL plant-0031\/server-1 boot-usb: .*(no cidata volume found|passed over \/dev\/sd[a-z]: go-diskfs-reads-only-fat32-and-iso9660)/);
    expect(r.err).not.toMatch(/ok {3}plant-0031\/server-1 boot-usb:/);
  }, 900_000);

  it.concurrent("negative: another node's seed stick is reported as the wrong node", async () => {
    const dir = scratchSite('store-0412');
    copyFileSync(join(out, 'store-0412', 'nodes', 'cp-2', 'seed.img'), join(dir, 'store-0412', 'nodes', 'cp-1', 'seed.img'));
    const r = await verify('store-0412', ['--node', 'cp-1'], dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/FAIL store-0412\/cp-1 boot-usb: .*the stick that booted is store-0412-cp-2's .*not store-0412\/cp-1 .*wrong node's stick/);
  }, 900_000);

  it.concurrent('negative: a seed stick truncated by one sector fails', async () => {
    const dir = scratchSite('store-0007');
    const img = join(dir, 'store-0007', 'nodes', 'cp-1', 'seed.img');
    truncateSync(img, statSync(img).size - 512);
    const r = await verify('store-0007', [], dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/FAIL store-0007\/cp-1 boot-usb: .*volume truncated/);
    expect(readFileSync(join(dir, 'store-0007', 'verify', 'cp-1-usb.log'), 'utf8')).toMatch(/EDGEIMG-PROBE ERROR volume truncated/);
  }, 900_000);
});
