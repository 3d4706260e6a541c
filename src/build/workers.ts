// Fleet builds spread sites over worker threads: rendering and the many small file writes of a
// 3,400-site fleet would otherwise leave one of the cores idle. Each worker runs the same
// runSiteJob as the in-process path, so both paths produce the same bytes.

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
  const forced = Number(process.env.EDGEIMG_WORKERS);
  if (Number.isInteger(forced) && forced >= 1) return existsSync(fileURLToPath(workerUrl)) ? forced : 1;
  if (jobs < 16 || !existsSync(fileURLToPath(workerUrl))) return 1;
  return Math.min(availableParallelism(), 8);
}

export async function runInWorkers(jobs: SiteJob[], count: number, log: (line: string) => void): Promise<SiteOutcome[]> {
  const outcomes = new Array<SiteOutcome>(jobs.length);
  let next = 0;
  let failure: Error | undefined;
  const runOne = (): Promise<void> =>
    new Promise((resolveRun, rejectRun) => {
      const worker = new Worker(workerUrl);
      const feed = (): void => {
        if (failure || next >= jobs.length) {
          void worker.terminate().then(() => resolveRun());
          return;
        }
        const index = next++;
        worker.postMessage({ index, job: jobs[index] });
      };
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'log') log(m.line);
        else if (m.type === 'done') {
          outcomes[m.index] = m.outcome;
          feed();
        } else {
          failure ??= rebuildError(m);
          feed();
        }
      });
      worker.on('error', (err) => {
        failure ??= err;
        rejectRun(err);
      });
      feed();
    });
  await Promise.all(Array.from({ length: Math.min(count, jobs.length) }, runOne));
  if (failure) throw failure;
  return outcomes;
}

/** Errors cross the thread boundary as data; give them back their class (and exit code). */
function rebuildError(m: Extract<WorkerMessage, { type: 'error' }>): Error {
  const ctor = m.name === 'EnvironmentError' ? EnvironmentError : m.name === 'UsageError' ? UsageError : Error;
  const err = new ctor(m.message);
  if (m.stack) err.stack = m.stack;
  return err;
}

