// Real boots of the probe image (Debian kernel + busybox initramfs) under QEMU/TCG against seeds
// made with genisoimage / mkfs.vfat: the probe must find the volume by its on-medium label and
// report every file's exact sha256; wrong labels, truncated media and changed bytes must fail;
// a hung guest must be cut off with no QEMU left behind. Boot times are printed at the end.

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runQemu, type GuestArch, type QemuMedium, type QemuResult } from '../../src/verify/qemu.js';
import { compareProbeReport, parseProbeTranscript, type ProbeReport } from '../../src/verify/probe-report.js';
import { newNonce, probeAppend, type ProbeImage } from '../../src/verify/probe-image.js';
import { bootPrereqs, ensureProbeImages, makeFat, makeIso, makePartitionedFat, pgrep, type SeedFiles } from './helpers.js';

const FILES: SeedFiles = {
  'user-data': '#cloud-config\nhostname: edge-a1\nstages:\n  boot:\n    - commands: ["echo hi"]\n',
  'meta-data': 'instance-id: edge-a1-5f3c\nlocal-hostname: edge-a1\n',
  'network-config': 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n',
};
const expected = Object.entries(FILES).map(([name, data]) => ({ name, data }));
const sha = (d: string | Buffer): string => createHash('sha256').update(d).digest('hex');

const pre = bootPrereqs(['amd64', 'arm64'], 'QEMU probe boot tests');

describe.skipIf(!pre.run)('probe boots under QEMU (TCG)', () => {
  let images: Record<GuestArch, ProbeImage>;
  let dir: string;
  const timings: string[] = [];

  beforeAll(() => {
    images = ensureProbeImages(['amd64', 'arm64']);
    dir = mkdtempSync(join(tmpdir(), 'edgeimg-boot-'));
  }, 20 * 60_000);

  afterAll(() => {
    if (timings.length) console.log(`\nprobe boot times (TCG):\n${timings.map((t) => `  ${t}`).join('\n')}\n`);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function boot(
    label: string,
    arch: GuestArch,
    media: QemuMedium[],
    extra: { hang?: boolean; timeoutMs?: number; signal?: AbortSignal; onSerialLine?: (l: string) => void } = {},
  ): Promise<{ res: QemuResult; report: ProbeReport }> {
    const nonce = newNonce();
    const name = `edgeimg-test-${nonce}`;
    const img = images[arch];
    const res = await runQemu({
      arch,
      kernel: img.kernel,
      initrd: img.initrd,
      append: probeAppend({ nonce, hang: extra.hang }),
      media,
      timeoutMs: extra.timeoutMs ?? 90_000,
      serialLog: join(dir, `${name}.log`),
      accel: 'tcg',
      name,
      signal: extra.signal,
      onSerialLine: extra.onSerialLine,
    });
    timings.push(`${label}: ${(res.durationMs / 1000).toFixed(2)} s${res.timedOut ? ' (timed out)' : ''}`);
    // every QEMU is gone once runQemu returns
    expect(pgrep(name)).toEqual([]);
    return { res, report: parseProbeTranscript(res.serial, nonce) };
  }

  function expectVerified(report: ProbeReport, res: QemuResult): void {
    expect(report.status, res.serial).toBe('ok');
    expect(compareProbeReport(report, expected)).toEqual([]);
    for (const [name, data] of Object.entries(FILES)) {
      expect(report.files.find((f) => f.name === name)).toEqual({ name, size: Buffer.byteLength(data), sha256: sha(data) });
    }
    expect(res.timedOut).toBe(false);
    expect(res.exitCode).toBe(0);
  }

  it('amd64: ISO seed as CD-ROM (AHCI) verifies', async () => {
    const iso = makeIso(dir, 'a-seed.iso', FILES);
    const { res, report } = await boot('amd64 cdrom (iso9660)', 'amd64', [{ path: iso, kind: 'cdrom' }]);
    expectVerified(report, res);
    expect(report.volume).toMatchObject({ device: '/dev/sr0', label: 'cidata', fstype: 'iso9660' });
    expect(report.kernel).toBe(images.amd64.manifest?.kernelRelease);
    expect(report.machine).toBe('x86_64');
  });

  it('amd64: FAT seed as USB stick (xHCI) verifies', async () => {
    const img = makeFat(dir, 'a-seed.img', FILES);
    const { res, report } = await boot('amd64 usb (vfat)', 'amd64', [{ path: img, kind: 'usb' }]);
    expectVerified(report, res);
    expect(report.volume).toMatchObject({ device: '/dev/sda', label: 'CIDATA', fstype: 'vfat' });
  });

  it('arm64: ISO seed as CD-ROM (virtio-scsi, -M virt) verifies', async () => {
    const iso = makeIso(dir, 'b-seed.iso', FILES);
    const { res, report } = await boot('arm64 cdrom (iso9660)', 'arm64', [{ path: iso, kind: 'cdrom' }]);
    expectVerified(report, res);
    expect(report.volume).toMatchObject({ device: '/dev/sr0', label: 'cidata', fstype: 'iso9660' });
    expect(report.machine).toBe('aarch64');
    expect(report.kernel).toBe(images.arm64.manifest?.kernelRelease);
  });

  it('arm64: FAT seed as USB stick verifies', async () => {
    const img = makeFat(dir, 'b-seed.img', FILES);
    const { res, report } = await boot('arm64 usb (vfat)', 'arm64', [{ path: img, kind: 'usb' }]);
    expectVerified(report, res);
    expect(report.volume).toMatchObject({ device: '/dev/sda', label: 'CIDATA', fstype: 'vfat' });
  });

  it('amd64: FAT seed in the first partition of a virtio disk verifies', async () => {
    const img = makePartitionedFat(dir, 'c-disk.img', FILES);
    const { res, report } = await boot('amd64 virtio-disk partition (vfat)', 'amd64', [{ path: img, kind: 'virtio-disk' }]);
    expectVerified(report, res);
    expect(report.volume).toMatchObject({ device: '/dev/vda1', label: 'CIDATA', fstype: 'vfat' });
  });

  it('a volume labelled notcidata does not match', async () => {
    const iso = makeIso(dir, 'not.iso', FILES, 'notcidata');
    const { report } = await boot('amd64 cdrom, label notcidata', 'amd64', [{ path: iso, kind: 'cdrom' }]);
    expect(report.status).toBe('error');
    expect(report.error).toBe('no cidata volume found');
    expect(report.devices).toEqual([expect.objectContaining({ device: '/dev/sr0', label: 'notcidata', fstype: 'iso9660' })]);
    expect(compareProbeReport(report, expected)).toEqual(['no cidata volume found']);
  });

  it('a truncated ISO (cut in half) fails', async () => {
    const whole = readFileSync(makeIso(dir, 'whole.iso', FILES));
    const cut = join(dir, 'cut.iso');
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2 / 2048) * 2048));
    const { report } = await boot('amd64 cdrom, truncated', 'amd64', [{ path: cut, kind: 'cdrom' }]);
    expect(report.status).toBe('error');
    expect(report.error).toMatch(/^volume truncated device=\/dev\/sr0 declared=\d+ actual=\d+$/);
    expect(compareProbeReport(report, expected).length).toBeGreaterThan(0);
  });

  it('a seed whose user-data bytes changed is named by compareProbeReport', async () => {
    const iso = makeIso(dir, 'changed.iso', { ...FILES, 'user-data': `${FILES['user-data'] as string}# tampered\n` });
    const { report } = await boot('amd64 cdrom, changed user-data', 'amd64', [{ path: iso, kind: 'cdrom' }]);
    expect(report.status).toBe('ok'); // the probe itself worked ...
    const problems = compareProbeReport(report, expected); // ... but the bytes are not the expected ones
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems) expect(p).toMatch(/^user-data: (size|sha256) mismatch/);
    expect(problems).toContain(
      `user-data: sha256 mismatch (expected ${sha(FILES['user-data']!)}, got ${report.files.find((f) => f.name === 'user-data')!.sha256})`,
    );
  });

  it('a hung guest times out and no qemu process is left', async () => {
    const iso = makeIso(dir, 'hang.iso', FILES);
    // 20 s: long enough to boot to the HANG line on a loaded machine under TCG
    const { res, report } = await boot('amd64 hung guest (timeout 20 s)', 'amd64', [{ path: iso, kind: 'cdrom' }], { hang: true, timeoutMs: 20_000 });
    expect(res.timedOut).toBe(true);
    // stopped at the deadline (SIGTERM, then SIGKILL after the 2 s grace), with slack for a busy host
    expect(res.durationMs).toBeGreaterThanOrEqual(20_000);
    expect(res.durationMs).toBeLessThan(20_000 + 2000 + 15_000);
    expect(res.serial).toContain('EDGEIMG-PROBE HANG requested'); // it really booted, then hung
    expect(report.status).toBe('incomplete');
    expect(pgrep('edgeimg-test-')).toEqual([]);
  });

  it('an abort (Ctrl-C) mid-boot stops the guest and leaves nothing behind', async () => {
    const iso = makeIso(dir, 'abort.iso', FILES);
    const ac = new AbortController();
    const { res } = await boot('amd64 aborted after BEGIN', 'amd64', [{ path: iso, kind: 'cdrom' }], {
      hang: true,
      signal: ac.signal,
      onSerialLine: (l) => {
        if (l.includes('EDGEIMG-PROBE BEGIN')) ac.abort();
      },
    });
    expect(res.aborted).toBe(true);
    expect(res.timedOut).toBe(false);
  });
});
