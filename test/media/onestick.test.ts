// One-stick ISOs (src/media/onestick.ts): a class live ISO replayed by xorriso with extra files at
// its root. The fixtures are small hybrid ISOs made in beforeAll:
//   grub.iso    grub-mkrescue (BIOS + UEFI El Torito, protective MBR + GPT, EFI image in the tree)
//   kairos.iso  the layout Kairos live ISOs have (kairos-agent GetDefaultXorrisoBooloaderArgs):
//               partition_offset 16, hidden boot catalog, EFI image as appended MBR partition 2
//               (type 0xef), Joliet
//   hfs.iso     grub-mkrescue's default on Debian (adds HFS+ and APM for Macs)
// Their grub.cfg prints a marker on the serial line saying whether /config.yaml is on the medium
// and halts, so the QEMU tests show the output boots by BIOS and UEFI, as CD and as USB stick.
//
// Host tools: grub-mkrescue (grub-common, grub-pc-bin, grub-efi-amd64-bin), xorriso, mtools,
// isoinfo (genisoimage), bsdtar; qemu-system-x86_64 and OVMF for the boot tests. Missing tools
// are a loud skip locally and a failure when CI is set (test/helpers/tools.ts).

import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOneStickIso, inspectLiveIso, oneStickFileName, type OneStickFile } from '../../src/media/onestick.js';
import { EnvironmentError } from '../../src/util/diagnostics.js';
import { requireTool, requireTools } from '../helpers/tools.js';

const EPOCH = 1_700_000_000;
const SECRET = 'k3s-token: K10aVeryS3cretTokenThatMustNeverAppearInMessages';
const CONFIG = `#cloud-config\nhostname: site-a-cp-1\n${SECRET}\n`;
const GRUB_DIRS = ['/usr/lib/grub/i386-pc', '/usr/lib/grub/x86_64-efi'];
const OVMF = ['/usr/share/ovmf/OVMF.fd', '/usr/share/qemu/OVMF.fd', '/usr/share/OVMF/OVMF.fd', '/usr/share/edk2-ovmf/x64/OVMF.fd'];

/** A missing prerequisite: a loud skip locally, a failure when CI is set. */
function requirePaths(paths: string[], what: string): boolean {
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length === 0) return true;
  if (process.env['CI']) throw new Error(`${what} missing (${missing.join(', ')}); CI is set, so this is a failure, not a skip`);
  console.warn(`\n!!! ${what} missing (${missing.join(', ')}): SKIPPING the tests that need it (set CI=1 to make this fail) !!!\n`);
  return false;
}

const HAVE_TOOLS = requireTools('grub-mkrescue', 'xorriso', 'mformat', 'isoinfo', 'bsdtar') && requirePaths(GRUB_DIRS, 'GRUB BIOS/UEFI platform files (grub-pc-bin, grub-efi-amd64-bin)');
const HAVE_QEMU = HAVE_TOOLS && requireTool('qemu-system-x86_64');
const OVMF_FD = OVMF.find((p) => existsSync(p));
const HAVE_OVMF = HAVE_QEMU && requirePaths(OVMF_FD ? [OVMF_FD] : [OVMF[0]!], 'OVMF UEFI firmware (ovmf)');

let work = '';
let stageRoot = ''; // TMPDIR while the tests run: where the staging directories are made
let savedTmp: string | undefined;
let grubIso = '';
let kairosIso = '';
let hfsIso = '';
let plainIso = '';
let notIso = '';
let fakeDir = '';
let outN = 0;

/** A fresh empty output directory. */
function outDir(): string {
  const d = join(work, `out-${++outN}`);
  mkdirSync(d);
  return d;
}

async function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  // TZ=UTC: xorriso lists dates in local time
  const r = await execa(cmd, args, { timeout: 120_000, killSignal: 'SIGKILL', cleanup: true, stdin: 'ignore', env: { TZ: 'UTC' }, ...opts });
  return r.stdout;
}

async function runBuffer(cmd: string, args: string[]): Promise<Buffer> {
  const r = await execa(cmd, args, { timeout: 60_000, killSignal: 'SIGKILL', cleanup: true, stdin: 'ignore', encoding: 'buffer', stripFinalNewline: false });
  return Buffer.from(r.stdout);
}

function sha256File(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}

function files(config = CONFIG): OneStickFile[] {
  return [
    { name: 'config.yaml', data: config },
    { name: 'EDGEIMG.TXT', data: 'edgeimg one-stick for site-a cp-1\n', mode: 0o444 },
  ];
}

/**
 * What must not change between class ISO and one-stick: El Torito entries (platform, bootable,
 * emulation, load segment, load size, image paths and options) and the system area (MBR, GPT,
 * APM presence, partition types and names), with block addresses and GPT GUIDs left out (the
 * added files shift the former; the latter come from the volume uuid by design).
 */
async function bootSignature(iso: string): Promise<string[]> {
  const out = await run('xorriso', ['-no_rc', '-indev', `stdio:${iso}`, '-report_el_torito', 'plain', '-report_system_area', 'plain']);
  const sig: string[] = [];
  for (const line of out.split('\n')) {
    const [key, rest] = [line.slice(0, 19).trim(), line.slice(20).trim().split(/\s+/)];
    if (!key.startsWith('El Torito') && !key.startsWith('System area') && !key.startsWith('MBR') && !key.startsWith('GPT') && !key.startsWith('APM') && !key.startsWith('Partition offset')) continue;
    if (key === 'El Torito catalog') sig.push(`${key}: entries ${rest[1]}`);
    else if (key === 'El Torito boot img') sig.push(`${key}: ${rest.slice(0, -1).join(' ')}`);
    else if (key === 'MBR partition') sig.push(`${key}: ${rest.slice(0, 3).join(' ')}`);
    else if (key === 'APM start and size' || key === 'GPT start and size' || key === 'GPT lba range') sig.push(key);
    else if (key === 'GPT disk GUID' || key === 'GPT partition GUID') sig.push(key);
    else sig.push(`${key}: ${rest.join(' ')}`);
  }
  return sig;
}

/** Volume id and the volume creation/modification dates (the ISO's UUID for blkid and GRUB). */
function pvdIdentity(iso: string): { volumeId: string; dates: string } {
  const b = readFileSync(iso).subarray(16 * 2048, 17 * 2048);
  return { volumeId: b.toString('latin1', 40, 72).trimEnd(), dates: b.toString('latin1', 813, 847) };
}

async function extract(iso: string, name: string): Promise<{ isoinfo: Buffer; bsdtar: Buffer }> {
  return {
    isoinfo: await runBuffer('isoinfo', ['-R', '-x', `/${name}`, '-i', iso]),
    bsdtar: await runBuffer('bsdtar', ['-xOf', iso, name]),
  };
}

async function lsl(iso: string, path: string): Promise<string> {
  return (await run('xorriso', ['-no_rc', '-indev', `stdio:${iso}`, '-lsdl', path])).trim();
}

function stagingLeft(): string[] {
  return readdirSync(stageRoot);
}

/** A stand-in xorriso: records what it was given, then fails (or hangs) as told. */
function fakeXorriso(name: string, body: string): string {
  const d = join(fakeDir, name);
  mkdirSync(d);
  const p = join(d, 'xorriso');
  writeFileSync(
    p,
    `#!/bin/sh
d=$(dirname "$0")
printf '%s\\n' "$@" > "$d/args"
prev=""
for a in "$@"; do
  if [ "$prev" = "-map" ]; then stat -c '%a %n' "$(dirname "$a")" "$a" >> "$d/modes"; fi
  prev="$a"
done
printf '%s\\n' "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH" > "$d/env"
${body}
`,
  );
  chmodSync(p, 0o755);
  return p;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'edgeimg-onestick-test-'));
  stageRoot = join(work, 'tmp');
  mkdirSync(stageRoot);
  savedTmp = process.env['TMPDIR'];
  process.env['TMPDIR'] = stageRoot;
  fakeDir = join(work, 'fake');
  mkdirSync(fakeDir);
  notIso = join(work, 'not-an.iso');
  writeFileSync(notIso, Buffer.alloc(64 * 1024, 0x5a));
  if (!HAVE_TOOLS) return;

  const root = join(work, 'root');
  mkdirSync(join(root, 'boot', 'grub'), { recursive: true });
  writeFileSync(
    join(root, 'boot', 'grub', 'grub.cfg'),
    [
      'insmod serial',
      'serial --unit=0 --speed=115200',
      'terminal_input serial',
      'terminal_output serial',
      'if [ -f /config.yaml ]; then set c=present; else set c=absent; fi',
      'echo "ONESTICK-BOOT platform=${grub_platform} config=${c}"',
      'halt',
      '',
    ].join('\n'),
  );
  writeFileSync(join(root, 'class-readme.txt'), 'hardware class test ISO\n');

  grubIso = join(work, 'grub.iso');
  await run('grub-mkrescue', ['-o', grubIso, root, '--', '-volid', 'COS_LIVE', '-hfsplus', 'off']);
  hfsIso = join(work, 'hfs.iso');
  await run('grub-mkrescue', ['-o', hfsIso, root, '--', '-volid', 'COS_LIVE']);

  // Kairos layout, from the same GRUB files and with the same volume uuid
  const tree = join(work, 'kairos-tree');
  await run('xorriso', ['-no_rc', '-osirrox', 'on', '-indev', `stdio:${grubIso}`, '-extract', '/', tree]);
  await run('chmod', ['-R', 'u+w', tree]);
  rmSync(join(tree, 'boot.catalog'));
  mkdirSync(join(tree, 'boot'), { recursive: true });
  copyFileSync(join(tree, 'efi.img'), join(tree, 'boot', 'uefi.img'));
  rmSync(join(tree, 'efi.img'));
  const uuid = /^-volume_date uuid '(\d{16})'$/m.exec(await run('xorriso', ['-no_rc', '-indev', `stdio:${grubIso}`, '-report_el_torito', 'cmd']))?.[1];
  expect(uuid, 'grub fixture volume uuid').toBeDefined();
  kairosIso = join(work, 'kairos.iso');
  // prettier-ignore
  await run('xorriso', [
    '-no_rc', '-volid', 'COS_LIVE', '-joliet', 'on', '-padding', '0', '-volume_date', 'uuid', uuid!,
    '-outdev', `stdio:${kairosIso}`, '-map', tree, '/',
    '-boot_image', 'grub', 'bin_path=/boot/grub/i386-pc/eltorito.img',
    '-boot_image', 'grub', 'grub2_mbr=/usr/lib/grub/i386-pc/boot_hybrid.img',
    '-boot_image', 'grub', 'grub2_boot_info=on',
    '-boot_image', 'any', 'partition_offset=16',
    '-boot_image', 'any', 'cat_path=/boot/boot.catalog',
    '-boot_image', 'any', 'cat_hidden=on',
    '-boot_image', 'any', 'boot_info_table=on',
    '-boot_image', 'any', 'platform_id=0x00',
    '-boot_image', 'any', 'emul_type=no_emulation',
    '-boot_image', 'any', 'load_size=2048',
    '-append_partition', '2', '0xef', join(tree, 'boot', 'uefi.img'),
    '-boot_image', 'any', 'next',
    '-boot_image', 'any', 'efi_path=--interval:appended_partition_2:all::',
    '-boot_image', 'any', 'platform_id=0xef',
    '-boot_image', 'any', 'emul_type=no_emulation',
    '-commit',
  ]);

  plainIso = join(work, 'plain.iso');
  await run('xorriso', ['-no_rc', '-as', 'mkisofs', '-V', 'COS_LIVE', '-r', '-o', plainIso, root]);

  // the fixtures must really be what they stand for
  for (const iso of [grubIso, kairosIso]) {
    const sig = (await bootSignature(iso)).join('\n');
    expect(sig, iso).toMatch(/El Torito boot img: 1 BIOS y none/);
    expect(sig, iso).toMatch(/El Torito boot img: 2 UEFI y none/);
  }
  expect((await bootSignature(grubIso)).join('\n')).toMatch(/System area summary: MBR protective-msdos-label grub2-mbr .*GPT/);
  expect((await bootSignature(kairosIso)).join('\n')).toMatch(/MBR partition: 2 0x00 0xef/);
  expect((await inspectLiveIso(kairosIso)).joliet).toBe(true);
});

afterAll(() => {
  if (savedTmp === undefined) delete process.env['TMPDIR'];
  else process.env['TMPDIR'] = savedTmp;
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('one-stick ISO', () => {
  it('names its output kairos-stick.iso', () => {
    expect(oneStickFileName()).toBe('kairos-stick.iso');
  });

  describe.skipIf(!HAVE_TOOLS)('built by xorriso from a class live ISO', () => {
    for (const fixture of ['grub', 'kairos'] as const) {
      it(`${fixture} layout: same boot equipment, volume id and dates; the files readable; the class ISO untouched`, async () => {
        const classIso = fixture === 'grub' ? grubIso : kairosIso;
        const before = sha256File(classIso);
        const dir = outDir();
        const outPath = join(dir, oneStickFileName());
        const r = await buildOneStickIso({ classIso, outPath, files: files(), epoch: EPOCH });

        expect(sha256File(classIso)).toBe(before);
        expect(r.sha256).toBe(sha256File(outPath));
        expect(r.bytes).toBe(statSync(outPath).size);
        expect(statSync(outPath).mode & 0o777).toBe(0o600);
        expect(readdirSync(dir)).toEqual([oneStickFileName()]);
        expect(stagingLeft()).toEqual([]);

        expect(await bootSignature(outPath)).toEqual(await bootSignature(classIso));
        expect(pvdIdentity(outPath)).toEqual(pvdIdentity(classIso));
        expect(pvdIdentity(outPath).volumeId).toBe('COS_LIVE');
        expect((await inspectLiveIso(outPath)).joliet).toBe((await inspectLiveIso(classIso)).joliet);

        const cfg = await extract(outPath, 'config.yaml');
        expect(cfg.isoinfo.toString('utf8')).toBe(CONFIG);
        expect(cfg.bsdtar.toString('utf8')).toBe(CONFIG);
        expect((await extract(outPath, 'EDGEIMG.TXT')).bsdtar.toString('utf8')).toBe(files()[1]!.data);
        // root-owned, secret file private, all dates = epoch (Nov 14 2023)
        expect(await lsl(outPath, '/config.yaml')).toMatch(/^-r-------- +1 0 +0 +\d+ Nov 14 +2023 '\/config.yaml'$/);
        expect(await lsl(outPath, '/EDGEIMG.TXT')).toMatch(/^-r--r--r-- +1 0 +0 +\d+ Nov 14 +2023 '\/EDGEIMG.TXT'$/);

        const efiImg = fixture === 'grub' ? 'efi.img' : 'boot/uefi.img';
        for (const name of ['boot/grub/grub.cfg', 'class-readme.txt', efiImg]) {
          const a = await extract(classIso, name);
          const b = await extract(outPath, name);
          expect(b.bsdtar.equals(a.bsdtar), name).toBe(true);
          expect(b.isoinfo.equals(a.isoinfo), name).toBe(true);
        }
        if (fixture === 'kairos') {
          // the appended EFI partition (MBR entry 2, type 0xef) still holds the EFI image
          const img = readFileSync(outPath);
          const e = 446 + 16;
          expect(img[e + 4]).toBe(0xef);
          const start = img.readUInt32LE(e + 8) * 512;
          const size = img.readUInt32LE(e + 12) * 512;
          expect(img.subarray(start, start + size).equals((await extract(classIso, efiImg)).bsdtar)).toBe(true);
        }
      });
    }

    it('is deterministic: same inputs give the same bytes; another epoch, config or file gives other bytes', async () => {
      const a = await buildOneStickIso({ classIso: grubIso, outPath: join(outDir(), 'a.iso'), files: files(), epoch: EPOCH });
      // the class ISO at another path, another output directory, files listed in another order
      const copyDir = outDir();
      const copy = join(copyDir, 'class copy.iso');
      copyFileSync(grubIso, copy);
      await new Promise((r) => setTimeout(r, 1100)); // a later clock second must not matter
      const b = await buildOneStickIso({ classIso: copy, outPath: join(outDir(), 'b.iso'), files: files().reverse(), epoch: EPOCH });
      expect(b).toEqual(a);

      const otherEpoch = await buildOneStickIso({ classIso: grubIso, outPath: join(outDir(), 'c.iso'), files: files(), epoch: EPOCH + 1 });
      const otherConfig = await buildOneStickIso({ classIso: grubIso, outPath: join(outDir(), 'd.iso'), files: files(CONFIG.replace('cp-1', 'cp-2')), epoch: EPOCH });
      const fewerFiles = await buildOneStickIso({ classIso: grubIso, outPath: join(outDir(), 'e.iso'), files: files().slice(0, 1), epoch: EPOCH });
      const shas = new Set([a.sha256, otherEpoch.sha256, otherConfig.sha256, fewerFiles.sha256]);
      expect(shas.size).toBe(4);
      expect(stagingLeft()).toEqual([]);
    });

    it('refuses to replace a file the class ISO already has, leaving nothing behind', async () => {
      const dir = outDir();
      const outPath = join(dir, oneStickFileName());
      const err = await buildOneStickIso({ classIso: grubIso, outPath, files: [{ name: 'class-readme.txt', data: SECRET }], epoch: EPOCH }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(EnvironmentError);
      expect((err as Error).message).toMatch(/already has \/class-readme\.txt at its root/);
      expect((err as Error).message).not.toContain(SECRET);
      expect(readdirSync(dir)).toEqual([]);
      expect(stagingLeft()).toEqual([]);
    });

    it('refuses a class ISO without El Torito boot record (a plain ISO is not a live ISO)', async () => {
      const dir = outDir();
      const outPath = join(dir, oneStickFileName());
      await expect(buildOneStickIso({ classIso: plainIso, outPath, files: files(), epoch: EPOCH })).rejects.toThrow(
        /has no El Torito boot record: it is not a bootable live ISO/,
      );
      expect(readdirSync(dir)).toEqual([]);
    });

    it('refuses to write over the class ISO itself', async () => {
      const before = sha256File(grubIso);
      await expect(buildOneStickIso({ classIso: grubIso, outPath: grubIso, files: files(), epoch: EPOCH })).rejects.toThrow(/is the class ISO itself/);
      expect(sha256File(grubIso)).toBe(before);
    });

    it('an ISO with HFS+ (grub-mkrescue default): bootable output, or a plain Error quoting xorriso', async () => {
      // xorriso 1.5.4 cannot replay the HFS+/APM + GPT gap layout ("GPT partitions 1 and 2
      // overlap"); Kairos ISOs carry no HFS+. Either way nothing half-written may remain.
      const dir = outDir();
      const outPath = join(dir, oneStickFileName());
      const res = await buildOneStickIso({ classIso: hfsIso, outPath, files: files(), epoch: EPOCH }).then(
        (r) => ({ ok: r }),
        (e: unknown) => ({ err: e }),
      );
      if ('ok' in res) {
        expect(await bootSignature(outPath)).toEqual(await bootSignature(hfsIso));
      } else {
        expect(res.err).toBeInstanceOf(Error);
        expect(res.err).not.toBeInstanceOf(EnvironmentError);
        const msg = (res.err as Error).message;
        expect(msg).toMatch(/^xorriso exited with code \d+ building .* last stderr lines:\n {2}/);
        expect(msg).toMatch(/FAILURE|SORRY/);
        expect(msg).not.toContain(SECRET);
        expect(readdirSync(dir)).toEqual([]);
      }
      expect(stagingLeft()).toEqual([]);
    });
  });

  describe.skipIf(!HAVE_QEMU)('boots in QEMU (TCG) as the class ISO does', () => {
    type Mode = { fw: 'bios' | 'uefi'; medium: 'cd' | 'usb' };
    const MODES: Mode[] = [
      { fw: 'bios', medium: 'cd' },
      { fw: 'bios', medium: 'usb' },
      { fw: 'uefi', medium: 'cd' },
      { fw: 'uefi', medium: 'usb' },
    ];

    async function boot(iso: string, m: Mode): Promise<string> {
      const serial = join(work, `serial-${++outN}.txt`);
      const medium =
        m.medium === 'cd'
          ? ['-cdrom', iso]
          : ['-device', 'qemu-xhci', '-drive', `if=none,id=stick,file=${iso},format=raw,snapshot=on`, '-device', 'usb-storage,drive=stick,bootindex=0'];
      // prettier-ignore
      await execa('qemu-system-x86_64', [
        '-machine', 'q35', '-accel', 'tcg', '-m', '256', '-display', 'none', '-no-reboot', '-monitor', 'none',
        '-serial', `file:${serial}`, ...(m.fw === 'uefi' ? ['-bios', OVMF_FD!] : []), ...medium,
      ], { timeout: 90_000, killSignal: 'SIGKILL', cleanup: true, stdin: 'ignore', reject: false });
      const text = existsSync(serial) ? readFileSync(serial, 'latin1') : '';
      return /ONESTICK-BOOT platform=(\w+) config=(\w+)/.exec(text)?.slice(1).join(' ') ?? `no marker in ${JSON.stringify(text.slice(-300))}`;
    }

    for (const fixture of ['grub', 'kairos'] as const) {
      it(`${fixture} layout: BIOS and UEFI, as CD and as USB stick, see config.yaml`, async () => {
        const classIso = fixture === 'grub' ? grubIso : kairosIso;
        const outPath = join(outDir(), oneStickFileName());
        await buildOneStickIso({ classIso, outPath, files: files(), epoch: EPOCH });
        expect(await boot(classIso, { fw: 'bios', medium: 'cd' })).toBe('pc absent'); // the marker is not vacuous
        const modes = MODES.filter((m) => m.fw === 'bios' || HAVE_OVMF);
        const seen: string[] = [];
        for (let i = 0; i < modes.length; i += 2) seen.push(...(await Promise.all(modes.slice(i, i + 2).map((m) => boot(outPath, m)))));
        expect(seen).toEqual(modes.map((m) => `${m.fw === 'bios' ? 'pc' : 'efi'} present`));
      });
    }
  });

  describe('refusals and failures (no real xorriso needed)', () => {
    const ok = () => fakeXorriso(`ok-${++outN}`, 'exit 0');

    it('refuses names that are not plain root-level ISO-safe file names', async () => {
      const dir = outDir();
      const bad = ['a/b', '../config.yaml', '/config.yaml', '.hidden', 'con fig.yaml', '', 'x'.repeat(65), 'café.yaml', 'config.', '-rf', 'a;1', 'a*'];
      for (const name of bad) {
        await expect(buildOneStickIso({ classIso: notIso, outPath: join(dir, 'o.iso'), files: [{ name, data: SECRET }], epoch: EPOCH, xorriso: ok() }), JSON.stringify(name)).rejects.toThrow(
          /is not a plain root-level file name/,
        );
      }
      await expect(
        buildOneStickIso({ classIso: notIso, outPath: join(dir, 'o.iso'), files: [{ name: 'config.yaml', data: 'a' }, { name: 'CONFIG.YAML', data: 'b' }], epoch: EPOCH, xorriso: ok() }),
      ).rejects.toThrow(/duplicate one-stick file name "CONFIG.YAML" \(clashes with "config.yaml" ignoring case\)/);
      await expect(buildOneStickIso({ classIso: notIso, outPath: join(dir, 'o.iso'), files: [], epoch: EPOCH, xorriso: ok() })).rejects.toThrow(/at least one file/);
      await expect(buildOneStickIso({ classIso: notIso, outPath: join(dir, 'o.iso'), files: files(), epoch: -1, xorriso: ok() })).rejects.toThrow(RangeError);
      expect(readdirSync(dir)).toEqual([]);
      expect(stagingLeft()).toEqual([]);
    });

    it('refuses a file that is not an ISO9660 image', async () => {
      const dir = outDir();
      const err = await buildOneStickIso({ classIso: notIso, outPath: join(dir, 'o.iso'), files: files(), epoch: EPOCH, xorriso: ok() }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toBe(`${notIso} is not an ISO9660 image (no primary volume descriptor "CD001" at byte 32769)`);
      expect(readdirSync(dir)).toEqual([]);
      expect(stagingLeft()).toEqual([]);
    });

    it('missing xorriso is an EnvironmentError saying how to install it and where it looked', async () => {
      const dir = outDir();
      const err = await buildOneStickIso({ classIso: notIso, outPath: join(dir, 'o.iso'), files: files(), epoch: EPOCH, xorriso: '/nonexistent/xorriso' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EnvironmentError);
      expect((err as Error).message).toContain('/nonexistent/xorriso');
      expect((err as Error).message).toContain('apt-get install xorriso');

      const onPath = await buildOneStickIso({ classIso: notIso, outPath: join(dir, 'o.iso'), files: files(), epoch: EPOCH, xorriso: 'xorriso-not-installed-anywhere' }).catch((e: unknown) => e);
      expect(onPath).toBeInstanceOf(EnvironmentError);
      expect((onPath as Error).message).toMatch(/^xorriso-not-installed-anywhere not found on PATH \(searched .+\): .*apt-get install xorriso/);
      expect(readdirSync(dir)).toEqual([]);
      expect(stagingLeft()).toEqual([]);
    });

    describe.skipIf(!HAVE_TOOLS)('with a class ISO', () => {
      it('a failing xorriso: plain Error with its last stderr lines, never the data; private staging removed; nothing at outPath', async () => {
        const lines = Array.from({ length: 20 }, (_, i) => `echo "xorriso : NOTE : line ${i}" >&2`).join('\n');
        const xorriso = fakeXorriso('fails', `${lines}\necho "libisofs: FAILURE : simulated write failure" >&2\nexit 5`);
        const dir = outDir();
        const outPath = join(dir, oneStickFileName());
        const err = await buildOneStickIso({ classIso: grubIso, outPath, files: files(), epoch: EPOCH, xorriso }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(Error);
        expect(err).not.toBeInstanceOf(EnvironmentError);
        const msg = (err as Error).message;
        expect(msg).toMatch(/^xorriso exited with code 5 building /);
        expect(msg).toContain('libisofs: FAILURE : simulated write failure');
        expect(msg).toContain('line 19');
        expect(msg).not.toContain('line 8'); // only the last lines
        expect(msg).not.toContain(SECRET);
        expect(readdirSync(dir)).toEqual([]);
        expect(stagingLeft()).toEqual([]);

        // while it ran: a private directory, private files, the epoch exported
        const modes = readFileSync(join(fakeDir, 'fails', 'modes'), 'utf8').trim().split('\n');
        // one `stat DIR FILE` per -map: the directory 0700, the file 0600
        expect(modes.map((m) => m.split(' ')[0])).toEqual(['700', '600', '700', '600']);
        const staged = modes.map((m) => m.slice(4));
        expect(staged.every((p) => p.startsWith(stageRoot))).toBe(true);
        for (const p of staged) expect(existsSync(p)).toBe(false);
        expect(readFileSync(join(fakeDir, 'fails', 'env'), 'utf8').trim()).toBe(`SOURCE_DATE_EPOCH=${EPOCH}`);
        const args = readFileSync(join(fakeDir, 'fails', 'args'), 'utf8').split('\n');
        expect(args.slice(0, 6)).toEqual(['-no_rc', '-abort_on', 'SORRY', '-return_with', 'SORRY', '32']);
        expect(args).toContain('replay');
      });

      it('a hanging xorriso is killed at timeoutMs; staging removed; nothing at outPath', async () => {
        const xorriso = fakeXorriso('hangs', `echo $$ > "$d/pid"\nexec sleep 60`);
        const dir = outDir();
        const outPath = join(dir, oneStickFileName());
        const t0 = Date.now();
        const err = await buildOneStickIso({ classIso: grubIso, outPath, files: files(), epoch: EPOCH, xorriso, timeoutMs: 500 }).catch((e: unknown) => e);
        expect(Date.now() - t0).toBeLessThan(10_000);
        expect((err as Error).message).toMatch(/^xorriso timed out after 0.5 s building /);
        const pid = Number(readFileSync(join(fakeDir, 'hangs', 'pid'), 'utf8'));
        expect(() => process.kill(pid, 0)).toThrow();
        expect(readdirSync(dir)).toEqual([]);
        expect(stagingLeft()).toEqual([]);
      });
    });
  });
});
