// Fleet builds spread sites over worker threads: rendering and the many small file writes of a
// 3,400-site fleet would otherwise leave one of the cores idle. Each worker runs the same
// runSiteJob as the in-process path, so both paths produce the same bytes. Workers are started
// before the catalogue is planned, so their start-up overlaps the main thread's loading.

import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { EnvironmentError, UsageError } from '../util/diagnostics.js';
import type { SiteJob, SiteOutcome } from './site.js';

export type WorkerMessage =
  | { type: 'log'; line: string }
  | { type: 'done'; index: number; outcome: SiteOutcome }
  | { type: 'error'; index: number; name: string; message: string; stack?: string };

const workerUrl = new URL('./worker.js', import.meta.url);

/** Workers only pay off for fleet-sized builds, and need the compiled worker script. */
export function defaultWorkers(jobs: number): number {
  if (!existsSync(fileURLToPath(workerUrl))) return 1;
  const forced = Number(process.env.EDGEIMG_WORKERS);
  if (Number.isInteger(forced) && forced >= 1) return forced;
  return jobs < 16 ? 1 : Math.min(availableParallelism(), 8);
}

export class WorkerPool {
  private readonly workers: Worker[];

  constructor(count: number) {
    this.workers = Array.from({ length: count }, () => new Worker(workerUrl));
  }

  get size(): number {
    return this.workers.length;
  }

  /** Runs every job on the pool; outcomes keep the jobs' order. The first error stops feeding. */
  async run(jobs: SiteJob[], log: (line: string) => void, onDone?: (index: number) => void): Promise<SiteOutcome[]> {
    const outcomes = new Array<SiteOutcome>(jobs.length);
    let next = 0;
    let failure: Error | undefined;
    const drive = (worker: Worker): Promise<void> =>
      new Promise((resolveRun, rejectRun) => {
        const onMessage = (m: WorkerMessage): void => {
          if (m.type === 'log') return log(m.line);
          if (m.type === 'done') {
            outcomes[m.index] = m.outcome;
            onDone?.(m.index);
          } else failure ??= rebuildError(m);
          feed();
        };
        const onError = (err: Error): void => {
          failure ??= err;
          cleanup();
          rejectRun(err);
        };
        const cleanup = (): void => {
          worker.off('message', onMessage);
          worker.off('error', onError);
        };
        const feed = (): void => {
          if (failure || next >= jobs.length) {
            cleanup();
            resolveRun();
            return;
          }
          const index = next++;
          worker.postMessage({ index, job: jobs[index] });
        };
        worker.on('message', onMessage);
        worker.on('error', onError);
        feed();
      });
    await Promise.all(this.workers.map(drive));
    if (failure) throw failure;
    return outcomes;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Errors cross the thread boundary as data; give them back their class (and exit code). */
function rebuildError(m: Extract<WorkerMessage, { type: 'error' }>): Error {
  const ctor = m.name === 'EnvironmentError' ? EnvironmentError : m.name === 'UsageError' ? UsageError : Error;
  const err = new ctor(m.message);
  if (m.stack) err.stack = m.stack;
  return err;
}
