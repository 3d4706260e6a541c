// Reading a file named by user input (a catalogue, an overlay path, a manifest entry) without
// letting the name decide what kind of thing gets read: the final path component must not be a
// symlink (O_NOFOLLOW), a FIFO is opened non-blocking so opening it cannot hang (O_NONBLOCK), the
// opened descriptor must be a regular file (fstat), and at most `maxBytes` are ever read, so
// /dev/zero, /dev/urandom or a FIFO fail at once instead of hanging or filling memory.

import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';

export type SafeRead = { data: Buffer } | { problem: string; code?: string };

// O_NOFOLLOW and O_NONBLOCK do not exist on Windows; there neither symlinks nor FIFOs are opened by name.
const FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/** "1 MiB", "4 MiB", "512 KiB", or bytes. */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

/** What a non-regular file is, for messages. */
export function fileTypeOf(st: Pick<Stats, 'isDirectory' | 'isFIFO' | 'isCharacterDevice' | 'isBlockDevice' | 'isSocket' | 'isSymbolicLink'>): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function openProblem(err: unknown): { problem: string; code?: string } {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return { problem: 'not found', code };
    case 'ELOOP': // O_NOFOLLOW on a symlink (Linux); macOS and the BSDs say EMLINK
    case 'EMLINK':
      return { problem: 'is a symbolic link; symlinks are not followed', code };
    case 'ENXIO': // a FIFO without a writer, opened O_NONBLOCK for writing, or a socket
      return { problem: 'is not a regular file', code };
    case 'EISDIR':
      return { problem: 'is a directory, not a file', code };
    default:
      return { problem: `cannot be opened (${code ?? (err as Error).message})`, code };
  }
}

function tooBig(size: number, maxBytes: number, what: string): string {
  return `is ${size} bytes, over the ${formatBytes(maxBytes)} limit for ${what}`;
}

/**
 * Read a regular file of at most `maxBytes`. Never follows a symlink in the last component,
 * never blocks on a FIFO, never reads a device; `what` names the limit in messages
 * ("catalogue files", "manifest.json").
 */
export function readRegularFileSync(path: string, maxBytes: number, what: string): SafeRead {
  let fd: number;
  try {
    fd = openSync(path, FLAGS);
  } catch (err) {
    return openProblem(err);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { problem: `is ${fileTypeOf(st)}, not a regular file` };
    if (st.size > maxBytes) return { problem: tooBig(st.size, maxBytes, what) };
    // read to EOF, but never more than maxBytes + 1 (a file growing while read)
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(st.size > total ? st.size - total + 1 : 1 << 16, maxBytes + 1 - total, 1 << 20));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(n === buf.length ? buf : buf.subarray(0, n));
      total += n;
      if (total > maxBytes) return { problem: tooBig(total, maxBytes, what) };
    }
    return { data: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total) };
  } catch (err) {
    return { problem: `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  } finally {
    closeSync(fd);
  }
}

/** `readRegularFileSync`, asynchronously. */
export async function readRegularFile(path: string, maxBytes: number, what: string): Promise<SafeRead> {
  let fh;
  try {
    fh = await open(path, FLAGS);
  } catch (err) {
    return openProblem(err);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { problem: `is ${fileTypeOf(st)}, not a regular file` };
    if (st.size > maxBytes) return { problem: tooBig(st.size, maxBytes, what) };
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(st.size > total ? st.size - total + 1 : 1 << 16, maxBytes + 1 - total, 1 << 24));
      const { bytesRead: n } = await fh.read(buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(n === buf.length ? buf : buf.subarray(0, n));
      total += n;
      if (total > maxBytes) return { problem: tooBig(total, maxBytes, what) };
    }
    return { data: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total) };
  } catch (err) {
    return { problem: `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  } finally {
    await fh.close();
  }
}
