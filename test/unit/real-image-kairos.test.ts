// The Kairos console judge against synthetic transcripts (test/fixtures/transcripts/kairos-*.log),
// the install-disk read-back (a GPT written here the way Kairos lays its disk out), and the
// combined verdict.

import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  judgeKairosBoot,
  judgeKairosTranscript,
  readDiskLayout,
  type DiskLayout,
  type KairosBootFacts,
} from '../../src/verify/profiles/kairos.js';
import { readFileSync } from 'node:fs';
import type { Manifest, ManifestNode } from '../../src/manifest/manifest.js';
import { realImageBoot } from '../../src/verify/real-image.js';

const fixture = (name: string): string[] =>
  readFileSync(new URL(`../fixtures/transcripts/${name}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('#'));

const dir = mkdtempSync(join(tmpdir(), 'edgeimg-kairos-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A raw disk with a protective MBR and a GPT; partitions get an ext superblock carrying `label` when given. */
function writeGptDisk(path: string, parts: Array<{ name: string; label?: string; sizeMiB: number }>): void {
  const SECTOR = 512;
  const fd = openSync(path, 'w');
  try {
    const total = (parts.reduce((n, p) => n + p.sizeMiB, 0) + 2) * 1024 * 1024;
    ftruncateSync(fd, total);
    const mbr = Buffer.alloc(SECTOR);
    mbr[446 + 4] = 0xee; // protective partition
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    writeSync(fd, mbr, 0, SECTOR, 0);
    const entries = Buffer.alloc(128 * 128);
    let lba = 2048n;
    parts.forEach((p, i) => {
      const e = entries.subarray(i * 128, (i + 1) * 128);
      randomBytes(16).copy(e, 0); // type GUID
      randomBytes(16).copy(e, 16); // unique GUID
      const sectors = BigInt(p.sizeMiB * 2048);
      e.writeBigUInt64LE(lba, 32);
      e.writeBigUInt64LE(lba + sectors - 1n, 40);
      Buffer.from(p.name, 'utf16le').copy(e, 56);
      if (p.label) {
        const sb = Buffer.alloc(1024);
        sb.writeUInt16LE(0xef53, 0x38);
        Buffer.from(p.label, 'latin1').copy(sb, 0x78);
        writeSync(fd, sb, 0, sb.length, Number(lba) * SECTOR + 1024);
      }
      lba += sectors;
    });
    const hdr = Buffer.alloc(SECTOR);
    hdr.write('EFI PART', 0, 'latin1');
    hdr.writeUInt32LE(0x00010000, 8);
    hdr.writeUInt32LE(92, 12);
    hdr.writeBigUInt64LE(1n, 24);
    hdr.writeBigUInt64LE(2n, 72); // entries at LBA 2
    hdr.writeUInt32LE(128, 80);
    hdr.writeUInt32LE(128, 84);
    writeSync(fd, hdr, 0, SECTOR, SECTOR);
    writeSync(fd, entries, 0, entries.length, 2 * SECTOR);
  } finally {
    closeSync(fd);
  }
}

const KAIROS_LAYOUT = [
  { name: 'efi', sizeMiB: 1 },
  { name: 'oem', label: 'COS_OEM', sizeMiB: 1 },
  { name: 'recovery', label: 'COS_RECOVERY', sizeMiB: 1 },
  { name: 'state', label: 'COS_STATE', sizeMiB: 1 },
  { name: 'persistent', label: 'COS_PERSISTENT', sizeMiB: 1 },
];

describe('judgeKairosTranscript', () => {
  it('passes on the completion line (installer output mirrored to serial), despite an early empty datasource attempt', () => {
    const v = judgeKairosTranscript(fixture('kairos-installed-tty.log'));
    expect(v.status).toBe('pass');
    expect(v.reason).toMatch(/finished the auto-install and is rebooting/);
  });

  it('is pending on a plain live console (installer on tty1), naming the progress seen', () => {
    const v = judgeKairosTranscript(fixture('kairos-live-console.log'));
    expect(v.status).toBe('pending');
    expect(v.reason).toMatch(/live ISO booted/);
    expect(v.reason).toMatch(/installer service started/);
  });

  it('fails when no auto-install config is found, mentioning the empty datasource', () => {
    const v = judgeKairosTranscript(fixture('kairos-no-config.log'));
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/no auto-install config/);
    expect(v.reason).toMatch(/datasource reported no metadata\/userdata earlier/);
  });

  it('fails on a kernel panic and on a failed installer unit', () => {
    expect(judgeKairosTranscript(fixture('kairos-panic.log'))).toMatchObject({ status: 'fail', reason: expect.stringMatching(/kernel panic/) });
    expect(judgeKairosTranscript(fixture('kairos-installer-failed.log'))).toMatchObject({ status: 'fail', reason: expect.stringMatching(/installer service failed/) });
  });

  it('an empty datasource attempt alone does not decide anything', () => {
    expect(judgeKairosTranscript(['kairos-agent[1]: ERR No metadata/userdata found. Bye']).status).toBe('pending');
  });
});

describe('readDiskLayout', () => {
  it('reads GPT partition names and ext labels', () => {
    const p = join(dir, 'kairos.raw');
    writeGptDisk(p, KAIROS_LAYOUT);
    const d = readDiskLayout(p);
    expect(d.table).toBe('gpt');
    expect(d.partitions.map((x) => [x.name, x.fsLabel])).toEqual([
      ['efi', undefined],
      ['oem', 'COS_OEM'],
      ['recovery', 'COS_RECOVERY'],
      ['state', 'COS_STATE'],
      ['persistent', 'COS_PERSISTENT'],
    ]);
  });

  it('tells a blank disk from one with only an MBR', () => {
    const blank = join(dir, 'blank.raw');
    writeGptDisk(blank, []);
    // writeGptDisk wrote a GPT: overwrite it with zeros for the blank case
    const fd = openSync(blank, 'r+');
    writeSync(fd, Buffer.alloc(1024), 0, 1024, 0);
    closeSync(fd);
    expect(readDiskLayout(blank)).toEqual({ table: 'blank', partitions: [] });
    const mbrOnly = join(dir, 'mbr.raw');
    writeGptDisk(mbrOnly, []);
    const fd2 = openSync(mbrOnly, 'r+');
    writeSync(fd2, Buffer.alloc(512), 0, 512, 512);
    closeSync(fd2);
    expect(readDiskLayout(mbrOnly).table).toBe('other');
  });
});

describe('judgeKairosBoot', () => {
  const installed: DiskLayout = {
    table: 'gpt',
    partitions: KAIROS_LAYOUT.map((p, i) => ({ index: i + 1, name: p.name, firstLba: 0n, lastLba: 0n, ...(p.label ? { fsLabel: p.label } : {}) })),
  };
  const pending = judgeKairosTranscript(fixture('kairos-live-console.log'));
  const facts = (f: Partial<KairosBootFacts>): KairosBootFacts => ({
    transcript: pending,
    guestExited: true,
    exitCode: 0,
    timedOut: false,
    disk: installed,
    timeoutMs: 600_000,
    ...f,
  });

  it('passes: Kairos partitions on the install disk and the live system rebooted by itself', () => {
    const v = judgeKairosBoot(facts({}));
    expect(v.status).toBe('pass');
    expect(v.reason).toMatch(/rebooted after the install/);
    expect(v.reason).toMatch(/state \(COS_STATE\)/);
  });

  it('passes on the completion line with the partitions even if the guest had to be stopped', () => {
    const v = judgeKairosBoot(facts({ transcript: judgeKairosTranscript(fixture('kairos-installed-tty.log')), guestExited: false }));
    expect(v.status).toBe('pass');
  });

  it('fails: partitions but no reboot before the timeout (install did not finish)', () => {
    const v = judgeKairosBoot(facts({ guestExited: false, timedOut: true, exitCode: null }));
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/did not finish/);
  });

  it('fails: the guest rebooted but the disk is blank, or only partly laid out', () => {
    expect(judgeKairosBoot(facts({ disk: { table: 'blank', partitions: [] } }))).toMatchObject({ status: 'fail', reason: expect.stringMatching(/without installing Kairos: the install disk is blank/) });
    const partial: DiskLayout = { table: 'gpt', partitions: installed.partitions.filter((p) => p.name !== 'recovery') };
    expect(judgeKairosBoot(facts({ disk: partial })).status).toBe('fail');
    expect(judgeKairosBoot(facts({ disk: partial, transcript: judgeKairosTranscript(fixture('kairos-installed-tty.log')) }))).toMatchObject({
      status: 'fail',
      reason: expect.stringMatching(/missing recovery/),
    });
  });

  it('a transcript failure wins over the disk; a timeout with nothing installed is a failure', () => {
    expect(judgeKairosBoot(facts({ transcript: judgeKairosTranscript(fixture('kairos-no-config.log')) })).status).toBe('fail');
    const v = judgeKairosBoot(facts({ guestExited: false, timedOut: true, exitCode: null, disk: null }));
    expect(v).toMatchObject({ status: 'fail', reason: expect.stringMatching(/no Kairos install within 600 s/) });
  });
});

// ------------------------------------------------------------------------------------------
// realImageBoot with a fake qemu: it prints a transcript and, to stand in for the installer,
// copies a disk laid out like Kairos' onto the scratch install disk before "rebooting" (exit 0)
// ------------------------------------------------------------------------------------------

describe('realImageBoot (Kairos, fake QEMU)', () => {
  const site = join(dir, 'out', 'plant-0031');
  const repo = join(dir, 'repo');
  const node: ManifestNode = { name: 'server-1', hostname: 'plant-0031-server-1', role: 'controlplane', arch: 'amd64', firmware: 'bios', hardwareClass: 'ipc-amd64', address: '10.31.0.11' };
  const manifest: Manifest = {
    schemaVersion: 1,
    site: 'plant-0031',
    os: 'kairos',
    osVersion: 'v3.5.1 k3s v1.33.4+k3s1',
    generator: { name: 'edgeimg', version: '0' },
    inputDigest: 'sha256:0',
    nodes: [node],
    artifacts: [{ path: 'nodes/server-1/user-data', kind: 'user-data', node: 'server-1', sha256: '', bytes: 0, secret: true }],
  };
  const template = join(dir, 'installed-template.raw');
  mkdirSync(join(site, 'nodes', 'server-1'), { recursive: true });
  writeFileSync(join(site, 'nodes', 'server-1', 'user-data'), '#cloud-config\ninstall:\n  auto: true\n  device: /dev/sda\n  reboot: true\nhostname: plant-0031-server-1\n');
  writeFileSync(join(site, 'nodes', 'server-1', 'seed.iso'), Buffer.alloc(4096));
  const iso = join(repo, 'images', 'cache', 'kairos', 'v3.5.1', 'k3s-v1.33.4+k3s1', 'ubuntu-24.04-amd64.iso');
  mkdirSync(join(iso, '..'), { recursive: true });
  writeFileSync(iso, Buffer.alloc(4096));
  writeGptDisk(template, KAIROS_LAYOUT);

  let k = 0;
  function fake(lines: string[], o: { install: boolean; exit?: number }): { bin: string; marker: string; argvFile: string } {
    const marker = `edgeimg-fakekairos-${process.pid}-${k++}`;
    const js = join(dir, `${marker}.mjs`);
    const argvFile = join(dir, `${marker}.argv.json`);
    writeFileSync(
      js,
      `import { copyFileSync, writeFileSync } from 'node:fs';
const argv = process.argv.slice(2);
writeFileSync(${JSON.stringify(argvFile)}, JSON.stringify(argv));
for (const l of ${JSON.stringify(lines)}) { process.stdout.write(l + '\\n'); await new Promise((r) => setTimeout(r, 5)); }
const scratch = argv.map((a) => /file=([^,]*kairos-install\\.raw)/.exec(a)).find(Boolean)[1];
${o.install ? `copyFileSync(${JSON.stringify(template)}, scratch);` : ''}
${o.exit !== undefined ? `process.exit(${o.exit});` : 'setInterval(() => {}, 1000);'}
`,
    );
    const bin = join(dir, `${marker}.sh`);
    writeFileSync(bin, `#!/bin/sh\nexec "${process.execPath}" "${js}" "$@" # ${marker}\n`);
    chmodSync(bin, 0o755);
    return { bin, marker, argvFile };
  }
  const pgrep = (m: string): string => spawnSync('pgrep', ['-f', m], { encoding: 'utf8' }).stdout.trim();
  const run = (bin: string, timeoutMs = 20_000): ReturnType<typeof realImageBoot> =>
    realImageBoot({
      siteDir: site,
      manifest,
      node,
      seedPath: join(site, 'nodes', 'server-1', 'seed.iso'),
      medium: 'cdrom',
      imagesDir: repo,
      timeoutMs,
      exactTimeout: true,
      accel: 'tcg',
      log: () => {},
      qemuBinary: bin,
      killGraceMs: 300,
      scratchBytes: 64 * 1024 * 1024,
    });

  it('passes when the guest installs (Kairos partitions on /dev/sda) and reboots', async () => {
    const f = fake(fixture('kairos-live-console.log'), { install: true, exit: 0 });
    const r = await run(f.bin);
    expect(r!.message).toMatch(/real kairos image ubuntu-24\.04-amd64\.iso\): Kairos auto-installed from the nocloud seed's cloud-config: the live system rebooted after the install; the install disk has partitions efi, oem \(COS_OEM\)/);
    expect(r!.ok).toBe(true);
    const s = (JSON.parse(readFileSync(f.argvFile, 'utf8')) as string[]).join(' ');
    expect(s).toMatch(/kairos-install\.raw,format=raw,cache=unsafe -device ide-hd,drive=m2,bus=ide\.2,bootindex=1/);
    expect(pgrep(f.marker)).toBe('');
  });

  it('fails when the guest reboots without installing', async () => {
    const r = await run(fake(fixture('kairos-live-console.log'), { install: false, exit: 0 }).bin);
    expect(r).toMatchObject({ ok: false, message: expect.stringMatching(/rebooted or powered off without installing Kairos: the install disk is blank/) });
  });

  it('fails at once when the agent finds no config, and stops the guest', async () => {
    const f = fake(fixture('kairos-no-config.log'), { install: false });
    const t0 = Date.now();
    const r = await run(f.bin);
    expect(r).toMatchObject({ ok: false, message: expect.stringMatching(/no auto-install config/) });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(pgrep(f.marker)).toBe('');
  });
});
