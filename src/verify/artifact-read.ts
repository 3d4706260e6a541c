// Reading the files a manifest lists, confined to the site directory: a manifest is input like
// any other (copied around on sticks, edited by hand), and a path such as ../../../../dev/zero
// once made `verify` read without end. A listed path must be relative, normalised and inside
// OUT/<site>/, reach a regular file through no symlink, and be at most MAX_ARTIFACT_BYTES.

import { lstat, realpath } from 'node:fs/promises';
import { isAbsolute, join, posix } from 'node:path';
import { excerpt } from '../util/diagnostics.js';
import { readRegularFile } from '../util/safe-read.js';

/**
 * Largest artifact `verify` reads into memory. The largest today is the 33 MiB FAT seed stick
 * image; class boot media are not per-site artifacts.
 */
export const MAX_ARTIFACT_BYTES = 256 * 1024 * 1024;

/** Longest artifact path accepted (edgeimg's own are under 40 characters). */
const MAX_PATH_CHARS = 1024;

/** Why a manifest `path` is not a plain relative path inside the site directory, if it is not. */
export function artifactPathProblem(p: string): string | undefined {
  if (p.length === 0) return 'is empty';
  if (p.length > MAX_PATH_CHARS) return `is longer than ${MAX_PATH_CHARS} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\\]/.test(p)) return 'holds a control character or a backslash';
  if (p.startsWith('/') || isAbsolute(p)) return 'is absolute; manifest paths are relative to the site directory';
  const segs = p.split('/');
  if (segs.includes('..')) return 'leaves the site directory (..)';
  if (posix.normalize(p) !== p || segs.includes('.') || segs.includes('')) return 'is not a normalised relative path';
  return undefined;
}

/** A manifest path as a message may show it: as it is when well-formed, else a bounded excerpt. */
export function shownPath(p: string): string {
  return artifactPathProblem(p) ? excerpt(p) : p;
}

/**
 * Why the artifact at manifest path `rel` may not be handed to QEMU (or read), if it may not:
 * a bad path, a symlink on the way, not a regular file. Reads nothing.
 */
export async function confinedArtifactProblem(siteDir: string, rel: string): Promise<string | undefined> {
  const bad = artifactPathProblem(rel);
  if (bad) return `path ${bad}`;
  const abs = join(siteDir, rel);
  try {
    if ((await realpath(abs)) !== join(await realpath(siteDir), rel)) return 'is, or lies under, a symbolic link';
    if (!(await lstat(abs)).isFile()) return 'is not a regular file';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : `cannot be resolved (${code})`;
  }
  return undefined;
}

/**
 * The bytes of the artifact at manifest path `rel` under `siteDir`, or why it cannot be read:
 * "missing", a bad path, a symlink, not a regular file, too large. Never follows a symlink,
 * never blocks on a FIFO, never reads a device or past MAX_ARTIFACT_BYTES.
 */
export async function readArtifact(siteDir: string, rel: string): Promise<{ data: Buffer } | { problem: string }> {
  const bad = artifactPathProblem(rel);
  if (bad) return { problem: `path ${bad}` };
  const abs = join(siteDir, rel);
  try {
    // no symlink anywhere below the site directory (O_NOFOLLOW below covers only the last name)
    if ((await realpath(abs)) !== join(await realpath(siteDir), rel)) return { problem: 'is, or lies under, a symbolic link; verify reads only regular files inside the site directory' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { problem: code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : `cannot be resolved (${code})` };
  }
  const read = await readRegularFile(abs, MAX_ARTIFACT_BYTES, 'an artifact');
  if ('problem' in read) return { problem: read.code === 'ENOENT' ? 'missing' : read.problem };
  return read;
}

