// `edgeimg serve` as a library: a plain node:http server that provisions a site's nodes over
// iPXE from a laptop. Everything it answers is fixed at start (./plan.ts, ./routes.ts); a
// node's config (its user-data: cluster keys) is handed out at most once per MAC and only
// within the serving window, re-read and checked against the manifest's sha256 each time.

import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { EnvironmentError } from '../util/diagnostics.js';
import { sha256Hex } from '../util/fsx.js';
import { summarize, type ConfigFetch, type RequestEvent, type ServeEvent, type ServeSummary, type ServerEvent } from './events.js';
import { sendAsset } from './file-response.js';
import { baseUrl, bootScript, nodeScript, notBootingScript, osLabel } from './ipxe.js';
import { DEFAULT_LISTEN, DEFAULT_WINDOW_MS, MAX_WINDOW_MS, canonicalMac, colonMac, formatDuration, hostPort, parseListen, type ListenAddress } from './options.js';
import { loadServePlan, readConfigSync, type PlanOptions, type PlannedNode, type ServePlan } from './plan.js';
import { assetPath, configPath, matchRoute, routeTable, scriptPath, shownTarget, type Route } from './routes.js';

export interface ServeOptions extends PlanOptions {
  /** Default 127.0.0.1:8080; port 0 picks a free port. */
  listen?: string | ListenAddress;
  /** How long configs are served (default 2 h); afterwards every config request gets 410. */
  windowMs?: number;
  /** Each node's config at most once until serveAgain() (default true). */
  oncePerMac?: boolean;
  onEvent?: (e: ServeEvent) => void;
  /** Default 256. */
  maxConnections?: number;
  /** How long close() lets requests in flight finish before cutting them (default 2000 ms). */
  closeGraceMs?: number;
  /** A plan already loaded (loadServePlan); the plan options are then not read again. */
  plan?: ServePlan;
}

export interface RunningServer {
  /** http://addr:port as bound (the port the system chose for port 0). */
  url: string;
  address: string;
  port: number;
  plan: ServePlan;
  startedAt: Date;
  windowEndsAt: Date;
  /** 'event' (ServeEvent) for every request and state change; 'expired' when the window ends. */
  events: EventEmitter;
  /** Allow the config of `mac` (any spelling), or of every node, to be fetched once more. Returns the MACs re-armed. */
  serveAgain(mac?: string): string[];
  /** Stop accepting, let requests in flight finish (up to closeGraceMs), and summarize. */
  close(): Promise<ServeSummary>;
}

const TEXT = 'text/plain; charset=utf-8';

/** The client's address, taken when the request arrives (a finished socket no longer has one). */
const remotes = new WeakMap<IncomingMessage, string>();

function remoteOf(req: IncomingMessage): string {
  let r = remotes.get(req);
  if (r === undefined) {
    r = (req.socket.remoteAddress ?? 'unknown').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
    remotes.set(req, r);
  }
  return r;
}

function listenError(err: NodeJS.ErrnoException, at: string): Error {
  switch (err.code) {
    case 'EADDRINUSE':
      return new EnvironmentError(`cannot listen on ${at}: the address is already in use (another edgeimg serve, or a web server?); stop it or choose another port with --listen ADDR:PORT`);
    case 'EADDRNOTAVAIL':
      return new EnvironmentError(`cannot listen on ${at}: no network interface of this machine has that address (ip address shows them)`);
    case 'EACCES':
      return new EnvironmentError(`cannot listen on ${at}: permission denied (ports below 1024 need root; use e.g. --listen ADDR:8080)`);
    default:
      return new EnvironmentError(`cannot listen on ${at}: ${err.code ?? err.message}`);
  }
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const listen = typeof opts.listen === 'string' ? parseListen(opts.listen) : opts.listen ?? DEFAULT_LISTEN;
  const windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
  if (!(windowMs > 0 && windowMs <= MAX_WINDOW_MS)) throw new RangeError(`windowMs must be within (0, ${MAX_WINDOW_MS}]`);
  const oncePerMac = opts.oncePerMac !== false;
  const graceMs = opts.closeGraceMs ?? 2000;
  const plan = opts.plan ?? (await loadServePlan(opts));
  const table = routeTable(plan);
  const events = new EventEmitter();
  /** Every config fetch, for the summary. */
  const fetches = new Map<string, ConfigFetch[]>();
  /** MACs whose config is spent (once per MAC) until serveAgain(). */
  const spent = new Set<string>();
  const unknownMacs = new Set<string>();
  let expired = false;
  let closing: Promise<ServeSummary> | undefined;

  const emit = (e: ServeEvent): void => {
    // a failing log (a closed stdout) must not fail the node's request
    try {
      opts.onEvent?.(e);
    } catch {
      // dropped
    }
    try {
      events.emit('event', e);
    } catch {
      // dropped
    }
  };
  const now = (): string => new Date().toISOString();

  const server: Server = createServer({ maxHeaderSize: 8192, requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 });
  server.maxConnections = opts.maxConnections ?? 256;
  server.maxHeadersCount = 64;
  server.maxRequestsPerSocket = 1000;
  // a stalled download is cut after a minute without progress
  server.setTimeout(60_000, (s: Socket) => s.destroy());

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    remoteOf(req);
    handle(req, res).catch(() => {
      // every answer is decided above; this is a failure to write it (the socket is gone)
      if (!res.headersSent) plain(res, req, 503, 'temporarily unavailable\n');
      else res.destroy();
    });
  });

  function plain(res: ServerResponse, req: IncomingMessage, status: number, body: string, extra: Record<string, string> = {}): void {
    res.writeHead(status, { 'Content-Type': TEXT, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...extra });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  function script(res: ServerResponse, req: IncomingMessage, body: string): void {
    plain(res, req, 200, body);
  }

  function event(req: IncomingMessage, e: Omit<RequestEvent, 'time' | 'method' | 'remote'>): void {
    emit({ time: now(), method: req.method ?? '?', remote: remoteOf(req), ...e });
  }

  const who = (n: PlannedNode): { mac: string; site: string; node: string } => ({ mac: colonMac(n.mac!), site: n.site, node: n.node });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = req.url ?? '';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      plain(res, req, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
      event(req, { event: 'method-not-allowed', path: shownTarget(target), status: 405 });
      return;
    }
    const route = matchRoute(table, target);
    if (!route) {
      plain(res, req, 404, 'not found\n');
      event(req, { event: 'not-found', path: shownTarget(target), status: 404 });
      return;
    }
    const base = baseUrl(req.headers.host, req.socket.localAddress, req.socket.localPort);
    switch (route.kind) {
      case 'boot':
        script(res, req, bootScript(base));
        event(req, { event: 'boot-script', path: target, status: 200 });
        return;
      case 'script':
        return nodeScriptFor(req, res, route, base);
      case 'asset':
        return assetFor(req, res, route);
      case 'config':
        return configFor(req, res, route);
    }
  }

  function nodeScriptFor(req: IncomingMessage, res: ServerResponse, route: Extract<Route, { kind: 'script' }>, base: string): void {
    const path = scriptPath(route.mac);
    const n = plan.byMac.get(route.mac);
    const mac = colonMac(route.mac);
    if (!n) {
      const shared = plan.sharedMacs.get(route.mac);
      const lines = shared
        ? [`MAC ${mac} is given to several nodes (${shared.map((x) => `${x.site}/${x.node}`).join(', ')}) in the catalogue: not booting`, 'fix the catalogue and rebuild']
        : [`MAC ${mac} is not in the catalogue of ${plan.sites.join(', ')}: not booting`];
      unknownMacs.add(route.mac);
      script(res, req, notBootingScript(shared ? 'MAC of several nodes' : 'unknown MAC', lines));
      event(req, { event: 'unknown-mac', path, status: 200, mac, message: shared ? 'MAC of several nodes: not booting' : `not in the catalogue of ${plan.sites.join(', ')}: not booting` });
      return;
    }
    const refuse = (why: string, lines: string[]): void => {
      script(res, req, notBootingScript(`${n.site} node ${n.node}: ${why}`, [`${n.site} node ${n.node} (MAC ${mac}): ${why}: not booting`, ...lines]));
      event(req, { event: 'not-booting', path, status: 200, ...who(n), message: why });
    };
    if (!n.netboot) return refuse(n.netbootProblem?.reason ?? 'no netboot assets', [`on the laptop: ${n.netbootProblem?.fix ?? 'see the serve log'}`]);
    if (!n.config || n.configProblem) return refuse('its config cannot be served', ['on the laptop: see the serve log']);
    if (expired) return refuse('the serving window is over', ['on the laptop: start edgeimg serve again to provision it']);
    if (oncePerMac && spent.has(route.mac)) {
      // installed already: hand back to the firmware, which boots the disk
      return refuse('its config was served already', ['the firmware boots the next device (the installed disk)', 'to install it again, re-arm it on the laptop: kill -USR2 the serve process, or restart serve']);
    }
    script(res, req, nodeScript(base, route.mac, n, n.netboot));
    event(req, { event: 'node-script', path, status: 200, ...who(n), message: `${osLabel(n)}, class ${n.hardwareClass}` });
  }

  async function assetFor(req: IncomingMessage, res: ServerResponse, route: Extract<Route, { kind: 'asset' }>): Promise<void> {
    const n = plan.byMac.get(route.mac)!;
    const nb = n.netboot!;
    const a = route.role === 'kernel' ? nb.kernel : route.role === 'initrd' ? nb.initrd : nb.rootfs!;
    const path = assetPath(route.mac, route.role);
    const r = await sendAsset(req, res, a, { 'Cache-Control': 'no-store' });
    if ('changed' in r) {
      plain(res, req, 503, 'netboot file changed since it was verified; restart edgeimg serve\n');
      event(req, { event: 'asset-changed', path, status: 503, ...who(n), artifact: a.asset, message: `${a.name} ${r.changed}; restart serve to verify it again` });
      return;
    }
    event(req, { event: 'asset', path, status: r.status, ...who(n), artifact: a.asset, sha256: a.sha256, bytes: r.bytes, complete: r.complete });
  }

  async function configFor(req: IncomingMessage, res: ServerResponse, route: Extract<Route, { kind: 'config' }>): Promise<void> {
    const n = plan.byMac.get(route.mac)!;
    const c = n.config!;
    const path = configPath(route.mac);
    const refused = (status: number, body: string, message: string): void => {
      plain(res, req, status, body);
      event(req, { event: 'config-refused', path, status, ...who(n), artifact: c.path, message });
    };
    if (expired) return refused(410, 'gone: the serving window is over\n', 'the serving window is over');
    if (oncePerMac && spent.has(route.mac)) return refused(410, 'gone: this config was served already\n', 'already served (once per MAC; re-arm with SIGUSR2 or serveAgain)');
    // read, check and spend with no await in between: two requests at once get one config
    const read = readConfigSync(n.siteDir, c.path);
    if ('problem' in read) return refused(503, 'config unavailable\n', `${c.path}: ${read.problem}`);
    if (read.data.byteLength !== c.bytes || sha256Hex(read.data) !== c.sha256) {
      return refused(503, 'config unavailable\n', `${c.path} does not match its sha256 in the manifest: changed since the build; rebuild the site`);
    }
    const head = req.method === 'HEAD';
    if (!head) {
      spent.add(route.mac);
      fetches.set(route.mac, [...(fetches.get(route.mac) ?? []), { time: now(), sha256: c.sha256, remote: remoteOf(req) }]);
    }
    res.writeHead(200, { 'Content-Type': TEXT, 'Content-Length': read.data.byteLength, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    const complete = await new Promise<boolean>((done) => {
      res.once('finish', () => done(true));
      res.once('close', () => done(res.writableFinished));
      res.end(head ? undefined : read.data);
    });
    event(req, {
      event: 'config',
      path,
      status: 200,
      ...who(n),
      artifact: c.path,
      sha256: c.sha256,
      bytes: head ? 0 : read.data.byteLength,
      complete,
      ...(complete ? {} : { message: 'the transfer was cut off; the config counts as served (re-arm with SIGUSR2 or serveAgain)' }),
    });
  }

  // listen
  const at = hostPort(listen.host, listen.port);
  await new Promise<void>((ok, fail) => {
    const onError = (err: NodeJS.ErrnoException): void => fail(listenError(err, at));
    server.once('error', onError);
    server.listen({ host: listen.host, port: listen.port, exclusive: true }, () => {
      server.off('error', onError);
      ok();
    });
  });
  server.on('error', () => {}); // after listening, errors are per connection
  const bound = server.address() as AddressInfo;
  const url = `http://${hostPort(bound.address, bound.port)}`;
  const startedAt = new Date();
  const windowEndsAt = new Date(startedAt.getTime() + windowMs);
  const timer = setTimeout(() => {
    expired = true;
    emit({ time: now(), event: 'window-closed', message: `the serving window of ${formatDuration(windowMs)} is over: configs are no longer served` });
    events.emit('expired');
  }, windowMs);
  timer.unref();
  setImmediate(() =>
    emit({ time: now(), event: 'listening', url, message: `listening on ${url}; configs served ${oncePerMac ? 'once per node' : 'on every request'} until ${windowEndsAt.toISOString()}` } satisfies ServerEvent),
  );

  return {
    url,
    address: bound.address,
    port: bound.port,
    plan,
    startedAt,
    windowEndsAt,
    events,
    serveAgain(mac?: string): string[] {
      let macs: string[];
      if (mac === undefined) macs = [...spent];
      else {
        const m = canonicalMac(mac);
        macs = m !== undefined && spent.has(m) ? [m] : [];
      }
      for (const m of macs) spent.delete(m);
      if (macs.length > 0) emit({ time: now(), event: 're-armed', macs: macs.map(colonMac), message: `configs may be fetched once more by ${macs.map(colonMac).join(', ')}` });
      return macs.map(colonMac);
    },
    close(): Promise<ServeSummary> {
      closing ??= (async () => {
        clearTimeout(timer);
        const reason = expired ? 'window' : 'closed';
        emit({ time: now(), event: 'closing', message: 'no longer accepting connections' });
        const done = new Promise<void>((ok) => server.close(() => ok()));
        server.closeIdleConnections();
        const cut = setTimeout(() => server.closeAllConnections(), graceMs);
        await done;
        clearTimeout(cut);
        return summarize(plan, fetches, unknownMacs, {
          url,
          startedAt: startedAt.toISOString(),
          endedAt: now(),
          windowEndsAt: windowEndsAt.toISOString(),
          reason,
        });
      })();
      return closing;
    },
  };
}
