// `edgeimg verify` end to end on built example sites: the passing boots of both media types and
// both architectures, and the negative cases, each failing for its stated reason with no QEMU
// process left behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { main } from '../../src/cli/main.js';
import { bootChecks } from '../../src/verify/boot.js';
import { staticChecks } from '../../src/verify/static.js';
import { readManifest, serializeManifest, type Manifest } from '../../src/manifest/manifest.js';
import { writeIso9660 } from '../../src/media/iso9660/writer.js';
import { bootPrereqs, ensureProbeImages, pgrep, REPO_ROOT } from './helpers.js';

const pre = bootPrereqs(['amd64', 'arm64'], 'verify --boot end-to-end tests');
const work = mkdtempSync(join(tmpdir(), 'edgeimg-verify-'));
const out = join(work, 'out');
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const marker = `edgeimg-${process.pid}-`;

async function run(args: string[]): Promise<{ code: number; err: string; out: string }> {
  let o = '';
  let e = '';
  const code = await main(args, { out: (s) => (o += s), err: (s) => (e += s) });
  return { code, err: e, out: o };
}

/** Replace an artifact's bytes and make the manifest agree, so only deeper checks can notice. */
function forge(site: string, rel: string, data: Uint8Array): Manifest {
  const dir = join(out, site);
  writeFileSync(join(dir, rel), data);
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const a = m.artifacts.find((x) => x.path === rel)!;
  a.sha256 = sha(data);
  a.bytes = data.byteLength;
  writeFileSync(join(dir, 'manifest.json'), serializeManifest(m));
  return m;
}

describe.runIf(pre.run)('edgeimg verify --boot', () => {
  beforeAll(async () => {
    ensureProbeImages(['amd64', 'arm64']);
    const r = await run(['build', '--site', 'store-0412', '--site', 'lab-0001', '--media', 'iso,img', '--catalogue', join(REPO_ROOT, 'catalogue'), '--out', out, '--secrets', join(work, 'secrets')]);
    expect(r.code, r.err).toBe(0);
  }, 300_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('boots every store-0412 node from CD-ROM and USB and writes JUnit', async () => {
    const junit = join(work, 'junit.xml');
    const r = await run(['verify', '--site', 'store-0412', '--out', out, '--secrets', join(work, 'secrets'), '--boot', '--jobs', '2', '--junit', junit]);
    expect(r.code, r.err).toBe(0);
    expect(r.err.match(/ok {3}store-0412\/cp-\d boot-(cdrom|usb)/g)).toHaveLength(6);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/<testsuite name="store-0412" tests="\d+" failures="0"/);
    expect(readFileSync(join(out, 'store-0412', 'verify', 'cp-1-seed-iso.log'), 'utf8')).toMatch(/EDGEIMG-PROBE END status=ok/);
    expect(pgrep(marker)).toEqual([]);
  }, 300_000);

  it('boots lab-0001 as arm64', async () => {
    const r = await run(['verify', '--site', 'lab-0001', '--out', out, '--secrets', join(work, 'secrets'), '--boot']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/lab-0001\/ctl-1 boot-cdrom: .*\(arm64, /);
    expect(r.err).toMatch(/lab-0001\/ctl-1 boot-usb: .*\(arm64, /);
  }, 300_000);

  it('a byte flipped in user-data inside the seed fails static checks; with consistent checksums it fails the boot, naming user-data', async () => {
    const rel = 'nodes/cp-2/seed.iso';
    const iso = Buffer.from(readFileSync(join(out, 'store-0412', rel)));
    const ud = readFileSync(join(out, 'store-0412', 'nodes/cp-2/user-data'));
    const at = iso.indexOf(ud.subarray(0, 64));
    expect(at).toBeGreaterThan(0);
    iso[at + 100] = iso[at + 100]! ^ 0x01;
    writeFileSync(join(out, 'store-0412', rel), iso);
    const first = await staticChecks(join(out, 'store-0412'));
    const bad = first.results.filter((r) => !r.ok).map((r) => r.message).join('\n');
    expect(bad).toMatch(/nodes\/cp-2\/seed\.iso: sha256 mismatch/);
    expect(bad).toMatch(/user-data differs from the built file/);

    const m = forge('store-0412', rel, iso); // now the manifest agrees with the corrupted seed
    const boots = await bootChecks(join(out, 'store-0412'), { ...m, nodes: m.nodes.filter((n) => n.name === 'cp-2') }, { jobs: 2 });
    const cd = boots.find((b) => b.check === 'boot-cdrom')!;
    expect(cd.ok).toBe(false);
    expect(cd.message).toMatch(/user-data: sha256 mismatch/);
    expect(boots.find((b) => b.check === 'boot-usb')!.ok).toBe(true); // the untouched FAT seed still passes
    expect(pgrep(marker)).toEqual([]);
  }, 300_000);

  it('a volume labelled notcidata fails with "no cidata volume found"', async () => {
    const dir = join(out, 'store-0412', 'nodes', 'cp-3');
    const files = ['meta-data', 'network-config', 'user-data'].map((name) => ({ name, data: readFileSync(join(dir, name)) }));
    const m = forge('store-0412', 'nodes/cp-3/seed.iso', writeIso9660(files, { volumeId: 'notcidata', epochSeconds: 1_700_000_000 }));
    const boots = await bootChecks(join(out, 'store-0412'), { ...m, nodes: m.nodes.filter((n) => n.name === 'cp-3') }, { jobs: 2 });
    const cd = boots.find((b) => b.check === 'boot-cdrom')!;
    expect(cd.ok).toBe(false);
    expect(cd.message).toMatch(/no cidata volume found/);
    const st = await staticChecks(join(out, 'store-0412'));
    expect(st.results.some((r) => !r.ok && /label is "notcidata"/.test(r.message))).toBe(true);
  }, 300_000);

  it('a truncated ISO fails the static and the boot checks', async () => {
    const rel = 'nodes/cp-1/seed.iso';
    const iso = readFileSync(join(out, 'store-0412', rel));
    const m = forge('store-0412', rel, iso.subarray(0, Math.floor(iso.length / 2)));
    const st = await staticChecks(join(out, 'store-0412'));
    expect(st.results.some((r) => r.node === 'cp-1' && r.check === 'seed-iso' && !r.ok)).toBe(true);
    const boots = await bootChecks(join(out, 'store-0412'), { ...m, nodes: m.nodes.filter((n) => n.name === 'cp-1') }, { jobs: 2 });
    expect(boots.find((b) => b.check === 'boot-cdrom')!.ok).toBe(false);
  }, 300_000);

  it('a guest that does not finish in time is killed, reported as a timeout, and leaves no QEMU behind', async () => {
    const m = await readManifest(join(out, 'lab-0001'));
    const boots = await bootChecks(join(out, 'lab-0001'), m, { jobs: 2, timeoutMs: 800 });
    expect(boots).toHaveLength(2);
    for (const b of boots) {
      expect(b.ok).toBe(false);
      expect(b.message).toMatch(/timed out/);
    }
    expect(pgrep(marker)).toEqual([]);
  }, 120_000);

  it('exits 1 from the command line when a check fails', async () => {
    const r = await run(['verify', '--site', 'store-0412', '--out', out, '--secrets', join(work, 'secrets')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/FAIL store-0412\/cp-\d/);
  }, 120_000);
});
