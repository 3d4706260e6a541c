// Build worker thread: receives site jobs, runs them, reports outcomes. Overlay files are
// re-read here (a handful of small files) because parsed documents do not cross threads.
import { parentPort } from 'node:worker_threads';
import { OverlayCache } from '../catalogue/overlays.js';
import { runSiteJob, type SiteJob } from './site.js';
import type { WorkerMessage } from './workers.js';

const port = parentPort!;
const overlays = new OverlayCache();
const post = (m: WorkerMessage): void => port.postMessage(m);

port.on('message', async ({ index, job }: { index: number; job: SiteJob }) => {
  try {
    for (const node of job.plan.nodes) {
      for (const o of node.overlays) overlays.load(o.path, { file: o.display, line: 1, col: 1, abs: o.path });
    }
    const outcome = await runSiteJob(job, overlays, (line) => post({ type: 'log', line }));
    post({ type: 'done', index, outcome });
  } catch (err) {
    const e = err as Error;
    post({ type: 'error', index, name: e?.name ?? 'Error', message: e?.message ?? String(err), stack: e?.stack });
  }
});
