// Sticks and images as the field tools see them: a regular image file or a block device, its
// size, whether it is mounted or holds the running system. Linux block devices are described
// through /sys and /proc; elsewhere only image files are supported.

import { closeSync, constants, existsSync, fstatSync, openSync, readFileSync, readSync, realpathSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { EnvironmentError } from '../util/diagnostics.js';

export interface Target {
  path: string;
  kind: 'file' | 'block';
  /** Bytes (a block device's capacity, a file's length). */
  size: number;
  /** The kernel name of a block device (sdb, loop0). */
  name?: string;
}

const major = (rdev: number): number => Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
const minor = (rdev: number): number => Number(BigInt(rdev) & 0xffn) | Number((BigInt(rdev) >> 12n) & ~0xffn);

function blockName(st: Stats): string | undefined {
  try {
    const link = readFileSync(`/sys/dev/block/${major(st.rdev)}:${minor(st.rdev)}/uevent`, 'utf8');
    return /^DEVNAME=(.+)$/m.exec(link)?.[1];
  } catch {
    return undefined;
  }
}

/** Describe PATH: an existing block device or regular file (for writing, a missing file is allowed). */
export function describeTarget(path: string, opts: { mayNotExist?: boolean } = {}): Target {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && opts.mayNotExist) return { path, kind: 'file', size: 0 };
    throw err;
  }
  if (st.isFile()) return { path, kind: 'file', size: st.size };
  if (!st.isBlockDevice()) throw new EnvironmentError(`${path} is neither a block device nor an image file`);
  const name = blockName(st) ?? basename(path);
  let sectors = NaN;
  try {
    sectors = Number(readFileSync(`/sys/class/block/${name}/size`, 'utf8').trim());
  } catch {
    // not Linux, or no sysfs: size unknown
  }
  return { path, kind: 'block', size: Number.isFinite(sectors) ? sectors * 512 : 0, name };
}

/** The whole disk a block device belongs to (sdb for sdb1), by sysfs. */
function diskOf(name: string): string {
  try {
    const real = realpathSync(`/sys/class/block/${name}`);
    if (existsSync(join(real, 'partition'))) return basename(dirname(real));
  } catch {
    // no sysfs entry: take the name as it is
  }
  return name;
}

/** Every disk (whole-disk kernel name) with a mounted filesystem, and the one holding "/". */
export function mountedDisks(): { mounted: Map<string, string>; root?: string } {
  const mounted = new Map<string, string>();
  let root: string | undefined;
  let info = '';
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return { mounted };
  }
  for (const line of info.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const [maj, min] = (f[2] ?? '').split(':');
    let name: string | undefined;
    try {
      name = /^DEVNAME=(.+)$/m.exec(readFileSync(`/sys/dev/block/${maj}:${min}/uevent`, 'utf8'))?.[1];
    } catch {
      name = undefined;
    }
    if (!name) continue;
    const disk = diskOf(name);
    if (!mounted.has(disk)) mounted.set(disk, f[4] ?? '?');
    if (f[4] === '/') root = disk;
  }
  return { mounted, root };
}

/** Read up to `length` bytes from the start of a file or device, never past `max`. */
export function readHead(path: string, length: number): Buffer {
  const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const st = fstatSync(fd);
    if (!st.isFile() && !st.isBlockDevice()) throw new EnvironmentError(`${path} is neither a block device nor an image file`);
    const buf = Buffer.alloc(length);
    let off = 0;
    while (off < length) {
      const n = readSync(fd, buf, off, Math.min(4 << 20, length - off), off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}
