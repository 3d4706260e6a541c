// A tiny bounded-concurrency map: runs `fn` over `items` with at most `limit` calls in flight
// (used for `verify --jobs N`: N QEMU boots at a time). Results keep input order.

import { availableParallelism } from 'node:os';
import { UsageError } from './diagnostics.js';

/** Default for `--jobs`: the number of CPUs this process may use. */
export function defaultJobs(): number {
  return Math.max(1, availableParallelism());
}

/** Parses a `--jobs` value: a positive integer; undefined/empty means the default. */
export function parseJobs(value: string | undefined): number {
  if (value === undefined || value === '') return defaultJobs();
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) {
    throw new UsageError(`--jobs must be a positive integer, got "${value}"`);
  }
  return Number(value);
}

export interface MapLimitOptions {
  /** When aborted, no further items are started; in-flight calls are awaited, then it rejects. */
  signal?: AbortSignal;
}

/**
 * Maps `items` through `fn` with at most `limit` concurrent calls. On the first rejection no
 * new items are started; the calls already running are awaited (so no work is left running in
 * the background) and then the first error is thrown.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  opts: MapLimitOptions = {},
): Promise<R[]> {
  const n = items.length;
  const width = Math.max(1, Math.min(Number.isFinite(limit) ? Math.floor(limit) : n, n));
  const results = new Array<R>(n);
  let next = 0;
  let failed = false;
  let firstError: unknown;

  const worker = async (): Promise<void> => {
    while (!failed && next < n) {
      if (opts.signal?.aborted) {
        if (!failed) {
          failed = true;
          firstError = opts.signal.reason ?? new Error('aborted');
        }
        return;
      }
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        if (!failed) {
          failed = true;
          firstError = err;
        }
      }
    }
  };

  await Promise.all(Array.from({ length: n === 0 ? 0 : width }, worker));
  if (failed) throw firstError;
  return results;
}
