// Sending a verified netboot asset: opened without following a symlink, checked against what
// was verified at start (size, mtime, inode: a file swapped or rewritten since is refused, 503),
// then streamed from that same descriptor, never read into memory. One byte range
// (`Range: bytes=a-b`, `a-`, `-n`) is honoured with 206; several ranges are answered with the
// whole file (RFC 9110 §14.2 lets a server ignore Range); a range that is malformed or starts
// past the end is 416 with `Content-Range: bytes */SIZE`.

import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { VerifiedAsset } from './plan.js';

export type ByteRange = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/** The range a `Range` header asks of a file of `size` bytes (end inclusive). */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return { kind: 'full' };
  const h = header.trim();
  if (!/^bytes=/i.test(h)) return { kind: 'full' }; // another unit: ignored
  const spec = h.slice('bytes='.length).trim();
  if (spec.includes(',')) return { kind: 'full' };
  const m = /^(\d{0,15})-(\d{0,15})$/.exec(spec);
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'unsatisfiable' };
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || (m[2] !== '' && Number(m[2]) < start)) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

export type SendResult = { status: number; bytes: number; complete: boolean } | { changed: string };

const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/** Why the file is no longer what was verified, or undefined. */
async function changedSince(fh: FileHandle, a: VerifiedAsset): Promise<string | undefined> {
  const st = await fh.stat();
  if (!st.isFile()) return 'is no longer a regular file';
  if (st.size !== a.size) return `is ${st.size} bytes now, ${a.size} when verified`;
  if (st.mtimeMs !== a.mtimeMs || st.ino !== a.ino || st.dev !== a.dev) return 'was modified or replaced since it was verified';
  return undefined;
}

/**
 * Answer `req` with the asset, or report that it changed (the caller answers 503). `headers`
 * are added to every answer.
 */
export async function sendAsset(req: IncomingMessage, res: ServerResponse, a: VerifiedAsset, headers: Record<string, string>): Promise<SendResult> {
  let fh: FileHandle;
  try {
    fh = await open(a.file, READ_FLAGS);
  } catch (err) {
    return { changed: `cannot be opened now (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  let streaming = false;
  try {
    const changed = await changedSince(fh, a);
    if (changed) return { changed };
    const etag = `"${a.sha256}"`;
    const ifRange = req.headers['if-range'];
    const range = ifRange !== undefined && ifRange !== etag ? { kind: 'full' as const } : parseRange(req.headers.range, a.size);
    const common = { ...headers, 'Accept-Ranges': 'bytes', ETag: etag };
    if (range.kind === 'unsatisfiable') {
      const body = 'range not satisfiable\n';
      res.writeHead(416, { ...common, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Range': `bytes */${a.size}`, 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return { status: 416, bytes: 0, complete: true };
    }
    const start = range.kind === 'partial' ? range.start : 0;
    const end = range.kind === 'partial' ? range.end : a.size - 1;
    const length = end - start + 1;
    const status = range.kind === 'partial' ? 206 : 200;
    res.writeHead(status, {
      ...common,
      'Content-Type': 'application/octet-stream',
      'Content-Length': length,
      ...(range.kind === 'partial' ? { 'Content-Range': `bytes ${start}-${end}/${a.size}` } : {}),
    });
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return { status, bytes: 0, complete: true };
    }
    streaming = true;
    const stream = fh.createReadStream({ start, end, highWaterMark: 256 * 1024, autoClose: true });
    try {
      await pipeline(stream, res);
      return { status, bytes: stream.bytesRead, complete: stream.bytesRead === length };
    } catch {
      // the client went away (or the file could not be read): the response is cut short
      res.destroy();
      return { status, bytes: stream.bytesRead, complete: false };
    }
  } finally {
    if (!streaming) await fh.close().catch(() => {});
  }
}
