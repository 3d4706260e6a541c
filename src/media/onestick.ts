// One-stick ISOs for Kairos: the hardware class's live ISO with a few extra files at its root
// (the node's config.yaml above all), still bootable by BIOS and UEFI exactly as the original.
//
// Upstream facts this relies on:
//  * kairos-agent v2.24.2 pkg/constants/constants.go, GetUserConfigDirs(): the first directory
//    the agent reads user configuration from is /run/initramfs/live, where the live medium is
//    mounted, so a config.yaml at the ISO root is picked up by the live system (and the installer).
//    The live medium is found by its volume label COS_LIVE (kairos-agent's constants.ISOLabel),
//    so the label must survive: xorriso's replay re-issues `-volid` from the loaded image.
//  * AuroraBoot does the same in its "custom ISO" path: pkg/ops/iso.go InjectISO() runs
//    `xorriso -indev kairos.iso -outdev kairos.iso.custom.iso -map <dir> / -boot_image any replay`.
//  * `-boot_image any replay` (xorriso >= 1.5.4) re-executes what `-report_el_torito cmd` reports
//    for the loaded image: the El Torito catalog (BIOS and UEFI entries, boot info tables), the
//    MBR/GPT/APM system area, the appended EFI partition Kairos ISOs carry (kairos-agent's
//    GetDefaultXorrisoBooloaderArgs: `-append_partition 2 0xef ... efi_path=--interval:
//    appended_partition_2:all::`), and `-volume_date uuid` of the original, so the new image keeps
//    the original's volume dates and with them its filesystem UUID (what GRUB's
//    `search --fs-uuid` and blkid see).
//
// Determinism (same class ISO + files + epoch => same bytes; checked by the tests):
//  * volume dates, boot catalog date and isohybrid MBR id come from the replayed uuid;
//  * `-boot_image any gpt_disk_guid=volume_date_uuid`: the GPT disk and partition GUIDs are
//    otherwise random on every run;
//  * the added files get uid/gid 0, a fixed mode and all of atime/mtime/ctime = epoch through
//    -chown/-chgrp/-chmod/-alter_date (their disk copies would leak the builder's uid and the
//    ctime of staging, which utimes cannot set);
//  * `-iso_nowtime =epoch` for any node xorriso creates without a disk source;
//  * `-volume_date all_file_dates default` keeps the original files' dates as loaded (the
//    SOURCE_DATE_EPOCH we also export would otherwise set their atime/ctime to their mtime);
//  * `-no_rc`: no startup file may change settings; Joliet is written exactly when the class ISO
//    has a Joliet tree (xorriso does not carry that over from a loaded image by itself).
//
// Nothing here prints or logs file contents: the staged files hold secrets. Error messages quote
// only xorriso's own last stderr lines (it reports paths and events, never data).

import { isoLookupName, peekIso } from './iso9660/peek.js';
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, mkdtemp, open, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { EnvironmentError } from '../util/diagnostics.js';

export interface OneStickFile {
  /** Root-level name only, e.g. 'config.yaml', 'EDGEIMG.TXT'. */
  name: string;
  data: Uint8Array | string;
  /**
   * Rock Ridge mode in the ISO (owner root): 0o400 by default, since config.yaml holds secrets;
   * 0o444 for files meant to be read on a workstation (e.g. EDGEIMG.TXT).
   */
  mode?: 0o400 | 0o444;
}

export interface OneStickOptions {
  /** Path to the class live ISO (read-only; never modified). */
  classIso: string;
  /** Where to write; written to a temp file beside it, fsync'ed, then renamed; mode 0600. */
  outPath: string;
  files: OneStickFile[];
  /** SOURCE_DATE_EPOCH seconds: every timestamp xorriso writes for the added files. */
  epoch: number;
  /** xorriso binary (a path, or a name looked up on PATH); default 'xorriso'. */
  xorriso?: string;
  /** Default 120000. */
  timeoutMs?: number;
}

export const ONE_STICK_FILE_NAME = 'kairos-stick.iso';

/** File name of the per-node one-stick ISO in a node's output directory. */
export function oneStickFileName(): string {
  return ONE_STICK_FILE_NAME;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const SECTOR = 2048;
/** Volume descriptors scanned from sector 16 before giving up on a terminator. */
const MAX_DESCRIPTORS = 64;
/** Joliet names hold 64 UCS-2 characters. */
const MAX_NAME = 64;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** ISO9660 directory-record years are 1900 + one byte. */
const MAX_EPOCH = Date.UTC(2156, 0, 1) / 1000 - 1;
/** How many of xorriso's last stderr lines an error quotes, and how long each may be. */
const STDERR_LINES = 12;
const STDERR_LINE_MAX = 300;

// ---------------------------------------------------------------------------------------
// The class ISO's volume descriptors

export interface LiveIsoInfo {
  volumeId: string;
  /** An El Torito boot record is present (type 0, "EL TORITO SPECIFICATION"). */
  elTorito: boolean;
  /** A Joliet supplementary volume descriptor is present. */
  joliet: boolean;
}

/**
 * Read the volume descriptor set of an ISO image (ECMA-119 §8; El Torito 1.0 §2.0; Joliet
 * escape sequences %/@ %/C %/E). Throws a plain Error when the file is not ISO9660.
 */
export async function inspectLiveIso(path: string): Promise<LiveIsoInfo> {
  const fh = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    const sector = Buffer.alloc(SECTOR);
    const readSector = async (lba: number): Promise<boolean> => {
      let got = 0;
      while (got < SECTOR) {
        const { bytesRead } = await fh.read(sector, got, SECTOR - got, lba * SECTOR + got);
        if (bytesRead === 0) return false;
        got += bytesRead;
      }
      return true;
    };
    if (!(await readSector(16)) || sector.toString('latin1', 1, 6) !== 'CD001' || sector.readUInt8(0) !== 1) {
      throw new Error(`${path} is not an ISO9660 image (no primary volume descriptor "CD001" at byte 32769)`);
    }
    const volumeId = sector.toString('latin1', 40, 72).replace(/[ \0]+$/, '');
    let elTorito = false;
    let joliet = false;
    for (let i = 1; i < MAX_DESCRIPTORS; i++) {
      if (!(await readSector(16 + i)) || sector.toString('latin1', 1, 6) !== 'CD001') break;
      const type = sector.readUInt8(0);
      if (type === 255) break;
      if (type === 0 && sector.toString('latin1', 7, 39).replace(/\0+$/, '') === 'EL TORITO SPECIFICATION') elTorito = true;
      if (type === 2 && ['%/@', '%/C', '%/E'].includes(sector.toString('latin1', 88, 91))) joliet = true;
    }
    return { volumeId, elTorito, joliet };
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------------------
// Checks

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new Error(`one-stick file name must be a string, got ${typeof name}`);
  const shown = JSON.stringify(name.length > MAX_NAME + 8 ? `${name.slice(0, MAX_NAME + 8)}…` : name);
  if (!NAME_RE.test(name) || name.length > MAX_NAME || name.endsWith('.')) {
    throw new Error(
      `one-stick file name ${shown} is not a plain root-level file name: use 1-${MAX_NAME} characters ` +
        'A-Z a-z 0-9 . _ -, starting with a letter or digit and not ending with a dot (no directories)',
    );
  }
}

function checkOptions(o: OneStickOptions): { files: Array<{ name: string; data: Uint8Array; mode: 0o400 | 0o444 }>; timeoutMs: number } {
  if (!Number.isSafeInteger(o.epoch) || o.epoch < 0 || o.epoch > MAX_EPOCH) {
    throw new RangeError(`epoch must be an integer number of seconds from 0 to ${MAX_EPOCH}, got ${String(o.epoch)}`);
  }
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) throw new RangeError(`timeoutMs must be a positive integer, got ${String(timeoutMs)}`);
  if (!Array.isArray(o.files) || o.files.length === 0) throw new Error('a one-stick ISO needs at least one file to add (e.g. config.yaml)');
  const seen = new Map<string, string>();
  const files = o.files.map((f) => {
    if (f === null || typeof f !== 'object') throw new Error('one-stick files must be { name, data } objects');
    checkName(f.name);
    // ISO9660 and Joliet readers compare names without case
    const prev = seen.get(f.name.toUpperCase());
    if (prev !== undefined) {
      throw new Error(`duplicate one-stick file name ${JSON.stringify(f.name)}${prev !== f.name ? ` (clashes with ${JSON.stringify(prev)} ignoring case)` : ''}`);
    }
    seen.set(f.name.toUpperCase(), f.name);
    const mode = f.mode ?? 0o400;
    if (mode !== 0o400 && mode !== 0o444) throw new Error(`one-stick file ${JSON.stringify(f.name)}: mode must be 0o400 or 0o444`);
    let data: Uint8Array;
    if (typeof f.data === 'string') data = Buffer.from(f.data, 'utf8');
    else if (f.data instanceof Uint8Array) data = f.data;
    else throw new Error(`one-stick file ${JSON.stringify(f.name)}: data must be a string or a Uint8Array`);
    return { name: f.name, data, mode };
  });
  // byte order of names, so the command line (and the output) never depends on the caller's order
  files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { files, timeoutMs };
}

const INSTALL_HINT = 'install it with `apt-get install xorriso` (Debian/Ubuntu; `dnf install xorriso` on Fedora)';

/** Absolute path of the xorriso binary, or EnvironmentError naming where it was looked for. */
export async function resolveXorriso(bin = 'xorriso', env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const usable = async (p: string): Promise<boolean> => {
    try {
      await access(p, constants.X_OK);
      return (await stat(p)).isFile();
    } catch {
      return false;
    }
  };
  if (bin.includes('/')) {
    const p = resolve(bin);
    if (await usable(p)) return p;
    throw new EnvironmentError(`xorriso not found at ${p}: one-stick ISOs need xorriso (>= 1.5.4); ${INSTALL_HINT}`);
  }
  const dirs = (env['PATH'] ?? '').split(delimiter).filter(Boolean);
  for (const d of dirs) {
    const p = join(resolve(d), bin);
    if (await usable(p)) return p;
  }
  throw new EnvironmentError(
    `${bin} not found on PATH (searched ${dirs.length > 0 ? dirs.join(delimiter) : 'an empty PATH'}): one-stick ISOs need xorriso (>= 1.5.4); ${INSTALL_HINT}`,
  );
}

// ---------------------------------------------------------------------------------------
// The xorriso command line

/**
 * xorriso's arguments for one build. `stageDir` holds the files under their own names; paths are
 * absolute. Exported for the tests and the report; buildOneStickIso() is the only caller.
 */
export function xorrisoArgs(a: {
  classIso: string;
  outTmp: string;
  stageDir: string;
  files: ReadonlyArray<{ name: string; mode: 0o400 | 0o444 }>;
  epoch: number;
  joliet: boolean;
}): string[] {
  const t = `=${a.epoch}`;
  const isoPaths = a.files.map((f) => `/${f.name}`);
  const args = [
    '-no_rc', // no startup files (/etc/xorriso/xorriso.conf, ~/.xorrisorc)
    '-abort_on', 'SORRY', // preemptive as a start argument: any SORRY or worse stops before writing
    '-return_with', 'SORRY', '32',
    '-indev', `stdio:${a.classIso}`,
    '-outdev', `stdio:${a.outTmp}`,
    '-boot_image', 'any', 'replay',
    '-boot_image', 'any', 'gpt_disk_guid=volume_date_uuid',
    '-volume_date', 'all_file_dates', 'default',
    '-iso_nowtime', t,
    '-joliet', a.joliet ? 'on' : 'off',
    // No `-overwrite off`: replay re-inserts a visible boot catalog (grub-mkrescue's
    // /boot.catalog) at commit, which that setting refuses. buildOneStickIso() refuses a name
    // the class ISO already has at its root before xorriso runs.
  ];
  for (const f of a.files) args.push('-map', join(a.stageDir, f.name), `/${f.name}`);
  args.push('-chown', '0', ...isoPaths, '--', '-chgrp', '0', ...isoPaths, '--');
  for (const mode of [0o400, 0o444] as const) {
    const paths = a.files.filter((f) => f.mode === mode).map((f) => `/${f.name}`);
    if (paths.length > 0) args.push('-chmod', `0${mode.toString(8)}`, ...paths, '--');
  }
  // last: -chown/-chmod update ctime; "b-c" sets atime+mtime, then "c" sets ctime
  args.push('-alter_date', 'b-c', t, ...isoPaths, '--', '-alter_date', 'c', t, ...isoPaths, '--');
  args.push('-commit');
  return args;
}

function stderrTail(stderr: unknown): string {
  const text = typeof stderr === 'string' ? stderr : '';
  const lines = text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
    .slice(-STDERR_LINES)
    .map((l) => (l.length > STDERR_LINE_MAX ? `${l.slice(0, STDERR_LINE_MAX)}…` : l));
  return lines.length > 0 ? `\n  ${lines.join('\n  ')}` : ' (no output on stderr)';
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // best effort: not every filesystem allows fsync on a directory
  }
}

/** fsync a file and return its sha256 and size. */
async function syncAndHash(path: string): Promise<{ sha256: string; bytes: number }> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
    const hash = createHash('sha256');
    const buf = Buffer.alloc(1 << 20);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return { sha256: hash.digest('hex'), bytes: pos };
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------------------
// Build

/**
 * Write a per-node copy of a class live ISO with `files` added at its root, boot equipment
 * replayed by xorriso. Throws EnvironmentError when xorriso is missing, a plain Error for an
 * unusable class ISO, a bad file name, a name the class ISO already has, or a failed xorriso run.
 * On any failure nothing is left at outPath (an existing file there is not touched) and the
 * staging directory is gone.
 */
export async function buildOneStickIso(o: OneStickOptions): Promise<{ sha256: string; bytes: number }> {
  const { files, timeoutMs } = checkOptions(o);
  const classIso = resolve(o.classIso);
  const outPath = resolve(o.outPath);
  const xorriso = await resolveXorriso(o.xorriso ?? 'xorriso');

  const info = await inspectLiveIso(classIso);
  // a one-stick build adds files and never replaces one of the class ISO's own (Rock Ridge
  // names at the root, compared as ISO9660 lookups do: case-insensitively)
  const root = peekIso(classIso)?.rootFiles;
  for (const f of files) {
    if (root?.has(isoLookupName(f.name))) {
      throw new Error(`${classIso} already has /${f.name} at its root; a one-stick build adds files and never replaces the class ISO's own (use another name, or a class ISO without that file)`);
    }
  }
  if (!info.elTorito) {
    throw new Error(`${classIso} has no El Torito boot record: it is not a bootable live ISO (expected the hardware class's Kairos live ISO)`);
  }
  const outSt = await stat(outPath).catch(() => undefined);
  const inSt = await stat(classIso);
  if (outPath === classIso || (outSt && outSt.dev === inSt.dev && outSt.ino === inSt.ino)) {
    throw new Error(`one-stick output ${outPath} is the class ISO itself: the class ISO is never modified`);
  }

  const outTmp = join(dirname(outPath), `.${basename(outPath)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let stageDir: string | undefined;
  let renamed = false;
  try {
    stageDir = await mkdtemp(join(tmpdir(), 'edgeimg-onestick-'));
    await chmod(stageDir, 0o700);
    for (const f of files) {
      const p = join(stageDir, f.name);
      await writeFile(p, f.data, { mode: 0o600, flag: 'wx' });
      await chmod(p, 0o600);
      await utimes(p, o.epoch, o.epoch);
    }
    // created empty and private before xorriso opens it: the image holds the secrets too
    await (await open(outTmp, 'wx', 0o600)).close();
    await chmod(outTmp, 0o600);

    const args = xorrisoArgs({ classIso, outTmp, stageDir, files, epoch: o.epoch, joliet: info.joliet });
    const r = await execa(xorriso, args, {
      timeout: timeoutMs,
      killSignal: 'SIGTERM',
      forceKillAfterDelay: 2000,
      cleanup: true,
      reject: false,
      stdin: 'ignore',
      env: { SOURCE_DATE_EPOCH: String(o.epoch), LC_ALL: 'C', TZ: 'UTC' },
      maxBuffer: 16 * 1024 * 1024,
    });
    if (r.timedOut) {
      throw new Error(`xorriso timed out after ${timeoutMs / 1000} s building ${outPath} (killed); last stderr lines:${stderrTail(r.stderr)}`);
    }
    if (r.code === 'ENOENT' || r.code === 'EACCES') {
      throw new EnvironmentError(`xorriso could not be started from ${xorriso} (${r.code}); ${INSTALL_HINT}`);
    }
    if (r.failed || r.exitCode !== 0) {
      const how = r.signal ? `was killed by ${r.signal}` : `exited with code ${String(r.exitCode)}`;
      const clash = /While grafting '([^']*)' : file object exists/.exec(typeof r.stderr === 'string' ? r.stderr : '');
      if (clash) {
        throw new Error(
          `${classIso} already has ${clash[1]} at its root; a one-stick build adds files and never replaces the class ISO's own ` +
            `(use another name, or a class ISO without that file). xorriso ${how}; last stderr lines:${stderrTail(r.stderr)}`,
        );
      }
      throw new Error(`xorriso ${how} building ${outPath} from ${classIso}; last stderr lines:${stderrTail(r.stderr)}`);
    }

    // xorriso reported success; make sure what it wrote is still a bootable live ISO
    const out = await inspectLiveIso(outTmp);
    if (!out.elTorito || out.volumeId !== info.volumeId) {
      throw new Error(
        `xorriso's output for ${outPath} lost ${!out.elTorito ? 'the El Torito boot record' : `the volume id (${JSON.stringify(out.volumeId)}, expected ${JSON.stringify(info.volumeId)})`}`,
      );
    }
    await chmod(outTmp, 0o600);
    const result = await syncAndHash(outTmp);
    await rename(outTmp, outPath);
    renamed = true;
    await fsyncDir(dirname(outPath));
    return result;
  } finally {
    if (!renamed) await rm(outTmp, { force: true });
    if (stageDir !== undefined) await rm(stageDir, { recursive: true, force: true });
  }
}
