// Serve benchmark: 50 clients at once, each fetching what a netbooting node fetches (a 10 MiB
// kernel, a 50 MiB initrd, then its small config), from `edgeimg serve` and, in the same run,
// from nginx serving the same files (one worker: edgeimg serve is one event loop). The clients
// run in a separate process with keep-alive agents. Configs are re-armed (oncePerMac: false) so
// that every client gets one. Prints and returns one `bench:` line. A benchmark, not a test.
//
//   node --import tsx bench/serve.ts

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { linkSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startServer } from '../src/serve/server.js';
import { buildServeFixture } from '../test/serve/fixture.js';

const CLIENTS = Number(process.env.BENCH_SERVE_CLIENTS ?? 50);
const KERNEL_MIB = 10;
const INITRD_MIB = 50;
const ROUNDS = 2;
const NGINX_TIMEOUT_MS = 10 * 60_000;

const log = (s: string): void => void process.stderr.write(`bench: ${s}\n`);

interface Load {
  bytes: number;
  seconds: number;
  configMs: number[];
}

/** The load generator, run as its own process so it does not share the server's event loop. */
const CLIENT_JS = `
import http from 'node:http';
const [base, pathsJson, clients] = process.argv.slice(1);
const paths = JSON.parse(pathsJson);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(clients) });
const get = (p) => new Promise((ok, fail) => {
  const t0 = performance.now();
  http.get(base + p, { agent }, (res) => {
    let n = 0;
    res.on('data', (c) => (n += c.length));
    res.on('end', () => (res.statusCode === 200 ? ok({ n, ms: performance.now() - t0 }) : fail(new Error(p + ': HTTP ' + res.statusCode))));
    res.on('error', fail);
  }).on('error', fail);
});
const t0 = performance.now();
const rs = await Promise.all(Array.from({ length: Number(clients) }, async (_, i) => {
  const p = paths[i % paths.length];
  const k = await get(p.kernel);
  const r = await get(p.initrd);
  const c = await get(p.config);
  return { bytes: k.n + r.n + c.n, configMs: c.ms };
}));
const seconds = (performance.now() - t0) / 1000;
agent.destroy();
process.stdout.write(JSON.stringify({ bytes: rs.reduce((a, r) => a + r.bytes, 0), seconds, configMs: rs.map((r) => r.configMs) }));
`;

interface NodePaths {
  kernel: string;
  initrd: string;
  config: string;
}

function runLoad(base: string, paths: NodePaths[]): Promise<Load> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT_JS, base, JSON.stringify(paths), String(CLIENTS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 5 * 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) ok(JSON.parse(out) as Load);
      else fail(new Error(`load generator failed (${code}): ${err}`));
    });
  });
}

function p99(ms: number[]): number {
  const s = [...ms].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(s.length * 0.99) - 1)] ?? NaN;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}

async function waitForPort(port: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const up = await new Promise<boolean>((ok) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), ok(true)));
      c.once('error', () => ok(false));
    });
    if (up) return true;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  return false;
}

/** nginx on PATH, installed with apt-get when missing (as root); undefined when unavailable. */
function nginxBinary(): string | undefined {
  const which = (): string | undefined => {
    for (const p of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) if (spawnSync(p, ['-v']).status === 0) return p;
    return undefined;
  };
  const have = which();
  if (have || process.getuid?.() !== 0) return have;
  log('installing nginx (apt-get install nginx-light)');
  for (const pkg of ['nginx-light', 'nginx']) {
    const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, stdio: 'ignore', timeout: 10 * 60_000 });
    if (r.status === 0) break;
  }
  return which();
}

/** nginx in the foreground, in its own process group, on 127.0.0.1:port serving `root`. */
async function startNginx(bin: string, dir: string, root: string, port: number): Promise<{ url: string; stop(): Promise<void> }> {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    [
      ...(process.getuid?.() === 0 ? ['user root;'] : []),
      'daemon off;',
      'worker_processes 1;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} warn;`,
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      '  sendfile on; tcp_nopush on;',
      '  keepalive_timeout 5s; keepalive_requests 1000;',
      '  default_type application/octet-stream;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, 'tmp', t)};`),
      `  server { listen 127.0.0.1:${port}; root ${root}; autoindex off; location / { } }`,
      '}',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(bin, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { detached: true, stdio: 'ignore' });
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const kill = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // gone
    }
  };
  const hard = setTimeout(() => kill('SIGKILL'), NGINX_TIMEOUT_MS);
  hard.unref();
  const stop = async (): Promise<void> => {
    clearTimeout(hard);
    kill('SIGTERM');
    const t = setTimeout(() => kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  if (!(await waitForPort(port, 5000))) {
    await stop();
    throw new Error(`nginx did not start on 127.0.0.1:${port} (see ${join(dir, 'error.log')})`);
  }
  return { url: `http://127.0.0.1:${port}`, stop };
}

export async function serveBench(): Promise<string> {
  log(`serve: building store-0412 and plant-0031 with ${KERNEL_MIB} MiB kernels and ${INITRD_MIB} MiB initrds`);
  const f = await buildServeFixture({ sites: ['store-0412', 'plant-0031'], bytes: { kernel: KERNEL_MIB << 20, initramfs: INITRD_MIB << 20 } });
  try {
    const server = await startServer({ outDir: f.out, sites: f.sites, catalogueDir: f.catalogue, cacheDir: f.cache, listen: '127.0.0.1:0', oncePerMac: false });
    const macs = [...server.plan.byMac.keys()];
    const paths = macs.map((m) => ({ kernel: `/nb/${m}/kernel`, initrd: `/nb/${m}/initrd`, config: `/config/${m}` }));

    // the same files, at the same paths, for nginx (hard links: no copy)
    const root = join(f.root, 'nginx-root');
    for (const m of macs) {
      const n = server.plan.byMac.get(m)!;
      mkdirSync(join(root, 'nb', m), { recursive: true });
      mkdirSync(join(root, 'config'), { recursive: true });
      linkSync(n.netboot!.kernel.file, join(root, 'nb', m, 'kernel'));
      linkSync(n.netboot!.initrd.file, join(root, 'nb', m, 'initrd'));
      linkSync(join(n.siteDir, n.config!.path), join(root, 'config', m));
    }
    const bin = nginxBinary();
    const nginx = bin ? await startNginx(bin, join(f.root, 'nginx'), root, await freePort()) : undefined;
    if (!bin) log('serve: nginx not available: its figures are NA');

    let best: Load | undefined;
    let bestNginx: Load | undefined;
    let peakRss = process.memoryUsage().rss;
    const baseRss = peakRss;
    const sample = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
    try {
      // alternate, and keep each server's better round: the machine is shared and noisy
      for (let round = 0; round < ROUNDS; round++) {
        const e = await runLoad(server.url, paths);
        if (!best || e.seconds < best.seconds) best = e;
        if (nginx) {
          const n = await runLoad(nginx.url, paths);
          if (!bestNginx || n.seconds < bestNginx.seconds) bestNginx = n;
        }
      }
    } finally {
      clearInterval(sample);
      await nginx?.stop();
      await server.close();
    }
    const mibs = (l: Load): number => l.bytes / (1 << 20) / l.seconds;
    const e = best!;
    const n = bestNginx;
    const line =
      `bench: serve clients=${CLIENTS} kernel_mib=${KERNEL_MIB} initrd_mib=${INITRD_MIB} total_mib=${(e.bytes / (1 << 20)).toFixed(0)} seconds=${e.seconds.toFixed(2)} ` +
      `throughput_mib_s=${mibs(e).toFixed(0)} nginx_mib_s=${n ? mibs(n).toFixed(0) : 'NA'} ratio=${n ? (mibs(e) / mibs(n)).toFixed(2) : 'NA'} ` +
      `p99_config_ms=${p99(e.configMs).toFixed(1)} nginx_p99_config_ms=${n ? p99(n.configMs).toFixed(1) : 'NA'} rss_delta_mib=${((peakRss - baseRss) / (1 << 20)).toFixed(0)}`;
    process.stdout.write(`${line}\n`);
    return line;
  } finally {
    f.cleanup();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await serveBench();
}
