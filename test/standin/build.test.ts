// images/standin/build.sh: two builds (different output directories) give identical ISOs, the
// ISOs carry the volume ids, marker, grub.cfg and boot equipment the stand-ins promise, and a
// second run with the same inputs is a no-op. amd64 only (arm64 needs grub-efi-arm64-bin:arm64
// from the Debian mirror); needs the host's grub-mkrescue, GRUB i386-pc + x86_64-efi, xorriso
// and mtools, and the probe image.

import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_CI, REPO_ROOT, bootPrereqs, missingTools } from '../boot/helpers.js';

const BUILD = join(REPO_ROOT, 'images/standin/build.sh');
const tools = [...missingTools(['grub-mkrescue', 'grub-mkimage', 'xorriso', 'mformat', 'mcopy']), ...['i386-pc', 'x86_64-efi'].filter((p) => !existsSync(`/usr/lib/grub/${p}/moddep.lst`)).map((p) => `/usr/lib/grub/${p}`)];
const pre = arch() === 'x64' ? bootPrereqs(['amd64'], 'stand-in image build tests') : { run: false };
if (!IN_CI && tools.length) console.warn(`*** SKIPPING stand-in image build tests: missing ${tools.join(', ')} ***`);

function build(out: string): { status: number | null; stderr: string } {
  const r = spawnSync('bash', [BUILD, '--arch', 'amd64', '--out', out], { encoding: 'utf8', timeout: 15 * 60_000 });
  return { status: r.status, stderr: r.stderr };
}

let extracted = 0;
/** One file out of an ISO (xorriso's -extract to a scratch file). */
function isoBytes(dir: string, iso: string, path: string): Buffer {
  const to = join(dir, `x${extracted++}`);
  execFileSync('xorriso', ['-no_rc', '-indev', iso, '-osirrox', 'on', '-extract', path, to], { stdio: 'ignore' });
  return readFileSync(to);
}

describe.skipIf(!pre.run || (!IN_CI && tools.length > 0))('stand-in image build (amd64)', () => {
  let dir: string;
  let a: string;
  let b: string;
  let first: { status: number | null; stderr: string };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'edgeimg-standin-build-'));
    a = join(dir, 'a');
    b = join(dir, 'b');
    first = build(a);
  }, 20 * 60_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('builds talos-like.iso and kairos-like.iso with a manifest', () => {
    expect(first.status, first.stderr).toBe(0);
    const m = JSON.parse(readFileSync(join(a, 'amd64/manifest.json'), 'utf8'));
    expect(m).toMatchObject({ schema: 1, arch: 'amd64', grubPlatforms: ['i386-pc', 'x86_64-efi'] });
    expect(m.key).toMatch(/^[0-9a-f]{64}$/);
    for (const [name, volid] of [['talos-like.iso', 'EDGEIMG_TALOS_LIKE'], ['kairos-like.iso', 'COS_LIVE']] as const) {
      const iso = join(a, 'amd64', name);
      const sha = execFileSync('sha256sum', [iso], { encoding: 'utf8' }).split(' ')[0];
      expect(m.outputs[name]).toEqual({ size: statSync(iso).size, sha256: sha, volumeId: volid });
    }
    expect(m.inputs.probe.vmlinuz).toMatch(/^[0-9a-f]{64}$/);
    expect(m.inputs.packages.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['grub-common', 'grub-pc-bin', 'grub-efi-amd64-bin', 'xorriso']));
  });

  it('each ISO: volume id, marker, grub.cfg with the fixed command line, the probe kernel and initrd', () => {
    for (const [kind, mode, volid] of [['talos-like', 'talos', 'EDGEIMG_TALOS_LIKE'], ['kairos-like', 'kairos', 'COS_LIVE']] as const) {
      const iso = join(a, 'amd64', `${kind}.iso`);
      const img = readFileSync(iso);
      expect(img.subarray(32768 + 40, 32768 + 72).toString('latin1').trimEnd()).toBe(volid);
      const isoFile = (path: string): string => isoBytes(dir, iso, path).toString('utf8');
      expect(JSON.parse(isoFile('/EDGEIMG-STANDIN.json'))).toEqual({
        standin: kind,
        arch: 'amd64',
        version: 1,
        note: 'test stand-in built from Debian packages; not Talos/Kairos',
      });
      const cfg = isoFile('/boot/grub/grub.cfg');
      expect(cfg).toContain('set timeout=0');
      expect(cfg).toContain(
        `linux /boot/vmlinuz console=ttyS0 quiet panic=-1 cryptomgr.notests edgeimg.standin=${mode} edgeimg.live=${volid} edgeimg.wait=30`,
      );
      expect(cfg).toContain('initrd /boot/initrd.img');
      expect(cfg).toContain('serial --unit=0 --speed=115200');
      // the probe's bzImage (not the PVH vmlinux) and its initramfs, as built
      const m = JSON.parse(readFileSync(join(a, 'amd64/manifest.json'), 'utf8'));
      const sha = (p: string): string => createHash('sha256').update(isoBytes(dir, iso, p)).digest('hex');
      expect(sha('/boot/vmlinuz')).toBe(m.inputs.probe.vmlinuz);
      expect(sha('/boot/initrd.img')).toBe(m.inputs.probe['initrd.img']);
      // hybrid: isohybrid MBR boot code + 55AA, El Torito for BIOS and UEFI
      expect(img.readUInt16BE(510)).toBe(0x55aa);
      const report = execFileSync('xorriso', ['-no_rc', '-indev', iso, '-report_el_torito', 'plain'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      expect(report).toMatch(/El Torito boot img\s*:\s*1\s+BIOS/);
      expect(report).toMatch(/El Torito boot img\s*:\s*2\s+UEFI/);
    }
  });

  it('is reproducible: a second build elsewhere gives identical bytes; a rerun is a no-op', () => {
    // libfaketime (fetched from the Debian mirror) freezes grub-mkrescue's clock
    expect(JSON.parse(readFileSync(join(a, 'amd64/manifest.json'), 'utf8')).reproducible).toBe(true);
    const second = build(b);
    expect(second.status, second.stderr).toBe(0);
    for (const f of ['talos-like.iso', 'kairos-like.iso', 'manifest.json']) {
      expect(readFileSync(join(b, 'amd64', f)).equals(readFileSync(join(a, 'amd64', f))), f).toBe(true);
    }
    const again = build(a);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toContain('amd64: up to date');
  });
});
