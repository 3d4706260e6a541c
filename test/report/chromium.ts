// Headless Chromium (Debian's `chromium`) for the report's page tests: each run in its own
// process group with a hard timeout, the whole group killed when it ends (renderer and
// zygote processes included), so a hung browser can neither stall the suite nor outlive it.

import { spawn } from 'node:child_process';
import { toolPath, requireTool } from '../helpers/tools.js';

/** The browser's path, or undefined (with the loud skip warning; a failure under CI). */
export function findChromium(): string | undefined {
  const name = ['chromium', 'chromium-browser'].find((c) => toolPath(c) !== undefined);
  if (name) return toolPath(name);
  requireTool('chromium'); // throws under CI, warns otherwise
  return undefined;
}

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-extensions',
  '--hide-scrollbars',
  '--mute-audio',
];

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export interface ChromiumRun {
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

/** Runs chromium with `args` (after the headless flags and a private profile directory). */
export async function runChromium(bin: string, userDataDir: string, args: string[], timeoutMs = 90_000): Promise<ChromiumRun> {
  const t0 = performance.now();
  const child = spawn(bin, [...FLAGS, `--user-data-dir=${userDataDir}`, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid);
  }, timeoutMs);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (c) => resolve(c));
    });
    const ms = performance.now() - t0;
    killGroup(child.pid); // helpers left behind by the browser process
    // the pipes close once every process holding them is gone
    await new Promise<void>((resolve) => (child.stdout.closed && child.stderr.closed ? resolve() : child.on('close', () => resolve())));
    const stderr = Buffer.concat(err).toString('utf8');
    if (timedOut) throw new Error(`chromium did not finish within ${timeoutMs / 1000} s: ${args.join(' ')}\n${stderr.slice(-2000)}`);
    if (code !== 0) throw new Error(`chromium exited with ${code}: ${args.join(' ')}\n${stderr.slice(-2000)}`);
    return { stdout: Buffer.concat(out).toString('utf8'), stderr, ms };
  } finally {
    clearTimeout(timer);
    killGroup(child.pid);
  }
}

/** The site list's groups (one <section> each: country and region) of a dumped report page. */
export function groupsOf(dom: string): Array<{ hidden: boolean; html: string }> {
  const list = dom.slice(dom.indexOf('<div id="sites"'));
  return list
    .split('<section')
    .slice(1)
    .map((html) => ({ hidden: /^[^>]*\bhidden=""/.test(html), html }));
}

/** The site rows of a dumped report page: id and whether the row (or its chunk or group) is hidden. */
export function rowsOf(dom: string): Array<{ site: string; hidden: boolean; attrs: string }> {
  const rows: Array<{ site: string; hidden: boolean; attrs: string }> = [];
  for (const group of groupsOf(dom)) {
    for (const chunk of group.html.split('<div class="k"').slice(1)) {
      const chunkHidden = group.hidden || /^[^>]*\bhidden=""/.test(chunk);
      for (const m of chunk.matchAll(/<tr (data-c="[^>]*)><td[^>]*>([^<]*)<\/td>/g)) {
        rows.push({ site: m[2]!, hidden: chunkHidden || /\bhidden=""/.test(m[1]!), attrs: m[1]! });
      }
    }
  }
  return rows;
}
