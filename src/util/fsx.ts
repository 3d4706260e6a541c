import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile, open } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Write a file so that its final name only ever holds complete content: write a sibling
 * temporary file, fsync it, then rename over the target. A crash leaves at most a stray
 * `.edgeimg-tmp-*` file, never a truncated artifact under its real name.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.edgeimg-tmp-${basename(path)}-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode); // umask must not widen or narrow what we asked for
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function writeFileAtomicSecret(path: string, data: string | Uint8Array): Promise<void> {
  await writeFileAtomic(path, data, 0o600);
}

export { writeFile };
