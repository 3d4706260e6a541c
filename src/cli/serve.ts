// `edgeimg serve`: argument parsing and output only (src/serve/).

import { networkInterfaces } from 'node:os';
import { resolveCacheDir } from '../images/cache.js';
import { DEFAULT_WINDOW_MS, formatDuration, hostPort, isLoopback, isWildcard, parseDuration, parseListen } from '../serve/options.js';
import { startServer } from '../serve/server.js';
import type { RequestEvent, ServeEvent, ServeSummary } from '../serve/events.js';
import { osLabel } from '../serve/ipxe.js';
import type { ServePlan } from '../serve/plan.js';
import { plural, UsageError } from '../util/diagnostics.js';
import { EXIT, parse, type Io } from './main.js';
import { dnsmasqProxyConfig, locateIpxeBinaries } from '../serve/dnsmasq.js';
import { writeFileSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { EnvironmentError } from '../util/diagnostics.js';

/**
 * The dnsmasq proxyDHCP + TFTP configuration for the interface holding `address` (the store LAN
 * side of the laptop): PXE clients get iPXE by TFTP, iPXE gets `url`/boot.ipxe. Returns the path.
 */
function writeDnsmasqConf(file: string, address: string, url: string): string {
  const iface = lanAddresses('IPv4').find((a) => a.address === address)?.iface;
  if (!iface) throw new EnvironmentError(`no network interface of this machine has the address ${address} (ip address shows them)`);
  const bins = locateIpxeBinaries();
  const tftpRoot = dirname(bins.efi ?? bins.bios!);
  const path = resolve(file);
  try {
    writeFileSync(path, dnsmasqProxyConfig({ interface: iface, serverAddress: address, httpUrl: url, tftpRoot }), { mode: 0o644 });
  } catch (err) {
    throw new EnvironmentError(`cannot write ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return path;
}

/** The machine's own non-loopback addresses, for saying where nodes can reach the server. */
function lanAddresses(family?: 'IPv4' | 'IPv6'): Array<{ address: string; iface: string }> {
  const out: Array<{ address: string; iface: string }> = [];
  for (const [iface, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.internal || (family && a.family !== family) || a.address.startsWith('fe80:')) continue;
      out.push({ address: a.address, iface });
    }
  }
  return out;
}

function reachability(host: string, port: number): string[] {
  const url = (h: string): string => `http://${hostPort(h, port)}`;
  if (isWildcard(host)) {
    const lan = lanAddresses(host === '0.0.0.0' ? 'IPv4' : undefined);
    return [
      `listening on every address of this machine (${hostPort(host, port)}): EVERY HOST ON THESE NETWORKS CAN REACH IT:`,
      ...(lan.length > 0 ? lan.map((a) => `  ${url(a.address)}  (${a.iface})`) : ['  (no network interface is up besides loopback)']),
    ];
  }
  if (isLoopback(host)) {
    const lan = lanAddresses('IPv4');
    return [
      `listening on ${url(host)}: only this machine can reach it, so nodes cannot boot from it.`,
      `  To serve nodes, listen on the laptop's address on their network${lan.length > 0 ? `: ${lan.map((a) => `--listen ${hostPort(a.address, port || 8080)}`).join(' or ')}` : ' (--listen ADDR:PORT)'}`,
    ];
  }
  return [`listening on ${url(host)}: every host on that network (and any routed to it) can reach it`];
}

function clock(iso: string): string {
  return new Date(iso).toTimeString().slice(0, 8);
}

function eventLine(e: ServeEvent): string {
  if (!('status' in e)) return `${clock(e.time)} ${e.message}`;
  const r: RequestEvent = e;
  const subject = r.site ? ` ${r.site}/${r.node}` : r.mac ? ` ${r.mac}` : '';
  const what =
    r.event === 'config'
      ? ` config ${r.artifact} sha256 ${r.sha256} ${r.bytes} bytes${r.complete === false ? ' (CUT OFF)' : ''}`
      : r.event === 'asset'
        ? ` ${r.artifact?.split('/').pop()} ${r.bytes} bytes${r.complete === false ? ' (cut off)' : ''}`
        : '';
  const why = r.message && r.event !== 'config' ? `: ${r.message}` : r.message ? ` (${r.message})` : '';
  return `${clock(r.time)} ${r.remote} ${r.method} ${r.path} ${r.status}${subject}${what}${r.event === 'asset' || r.event === 'config' ? '' : ` [${r.event}]`}${why}`;
}

function planLines(plan: ServePlan): string[] {
  const lines: string[] = [];
  for (const n of plan.nodes) {
    const state = n.macProblem
      ? 'CANNOT BE SERVED (see below)'
      : n.netbootProblem
        ? 'CANNOT BOOT OVER THE NETWORK (see below)'
        : n.configProblem
          ? 'netboot ready, but its CONFIG WILL NOT BE SERVED (see below)'
          : 'ready';
    const standin = n.netboot && (n.netboot.kernel.standin ?? n.netboot.initrd.standin) ? ' [TEST STAND-IN images]' : '';
    lines.push(`  ${n.site}/${n.node}  ${n.mac ? n.mac.replace(/-/g, ':') : 'no MAC'}  ${osLabel(n)}  ${n.hardwareClass}: ${state}${standin}`);
  }
  return lines;
}

function summaryLines(s: ServeSummary): string[] {
  const lines = [`edgeimg serve: stopped (${s.reason === 'window' ? 'the serving window is over' : 'closed'}); ${s.fetched} of ${s.fetched + s.notFetched} nodes fetched their config`];
  for (const site of s.sites) {
    const got = site.nodes.filter((n) => n.fetched).length;
    lines.push(`  ${site.site}: ${got} of ${plural(site.nodes.length, 'node')} fetched their config`);
    for (const n of site.nodes) {
      const mac = n.mac ?? 'no MAC';
      if (n.fetched) lines.push(`    ${n.node}  ${mac}  fetched ${clock(n.time!)} by ${n.remote}, sha256 ${n.sha256}${n.fetches > 1 ? ` (${n.fetches} times)` : ''}`);
      else lines.push(`    ${n.node}  ${mac}  NOT fetched${n.problem ? ` (${n.problem})` : ''}`);
    }
  }
  if (s.unknownMacs.length > 0) lines.push(`  MACs not in the catalogue that asked to boot: ${s.unknownMacs.join(', ')}`);
  return lines;
}

export async function runServe(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    site: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    out: { type: 'string', default: 'out' },
    catalogue: { type: 'string', default: 'catalogue' },
    cache: { type: 'string' },
    listen: { type: 'string', default: '127.0.0.1:8080' },
    for: { type: 'string' },
    'allow-standin': { type: 'boolean' },
    'serve-again': { type: 'boolean' },
    'require-all': { type: 'boolean' },
    'dnsmasq-conf': { type: 'string' },
    events: { type: 'boolean' },
  });
  const sites = values.site ?? [];
  if (values.all && sites.length > 0) throw new UsageError('give --site ID (repeatable) or --all, not both');
  if (!values.all && sites.length === 0) throw new UsageError('give --site ID (repeatable) or --all: the sites whose nodes to serve');
  const listen = parseListen(values.listen!);
  if (values['dnsmasq-conf'] !== undefined && (isWildcard(listen.host) || isLoopback(listen.host))) {
    throw new UsageError('--dnsmasq-conf needs --listen on the laptop\'s address on the nodes\' network (not 0.0.0.0 or 127.0.0.1): the proxyDHCP answers on that interface and hands out that address');
  }
  const windowMs = values.for !== undefined ? parseDuration(values.for) : DEFAULT_WINDOW_MS;
  // --json: one result object on stdout at the end (the contract); --events: one JSON line per
  // event on stdout as it happens, for automation that watches a serve session
  const json = values.json === true;
  const eventsOut = values.events === true;
  const say = (s: string): void => io.err(`${s}\n`);

  say(`edgeimg serve: reading ${values.all ? 'every built site' : plural(sites.length, 'site')} in ${values.out} and verifying the netboot files against their pins`);
  const server = await startServer({
    outDir: values.out!,
    sites,
    all: values.all === true,
    catalogueDir: values.catalogue!,
    cacheDir: resolveCacheDir(values.cache),
    allowStandin: values['allow-standin'] === true,
    oncePerMac: values['serve-again'] !== true,
    listen,
    windowMs,
    onEvent: (e) => {
      say(eventLine(e));
      if (eventsOut) io.out(`${JSON.stringify(e)}\n`);
    },
  });
  if (values['dnsmasq-conf'] !== undefined) {
    try {
      const file = writeDnsmasqConf(values['dnsmasq-conf'], server.address, server.url);
      say(`edgeimg serve: wrote the proxyDHCP + TFTP configuration ${file}; as root, next to the store's own DHCP server: dnsmasq --conf-file=${file} --no-daemon (docs/pxe.md)`);
    } catch (err) {
      await server.close();
      throw err;
    }
  }
  const plan = server.plan;
  say(`edgeimg serve: ${plural(plan.sites.length, 'site')} (${plan.sites.join(', ')}), ${plural(plan.byMac.size, 'node')} to serve:`);
  for (const l of planLines(plan)) say(l);
  for (const w of plan.warnings) say(`edgeimg: warning: ${w}`);
  for (const l of reachability(server.address, server.port)) say(l);
  const reach = isWildcard(server.address) ? (lanAddresses('IPv4')[0]?.address ?? server.address) : server.address;
  say(`  iPXE: point the DHCP bootfile at http://${hostPort(reach, server.port)}/boot.ipxe, or at the iPXE prompt: dhcp && chain http://${hostPort(reach, server.port)}/boot.ipxe`);
  say(
    values['serve-again']
      ? `  --serve-again: configs are served on EVERY request for ${formatDuration(windowMs)}: anyone on the network who knows a node's MAC can fetch its keys`
      : `  each node's config is served once, for ${formatDuration(windowMs)} (until ${server.windowEndsAt.toTimeString().slice(0, 5)}); kill -USR2 ${process.pid} re-arms every config`,
  );
  say('  Ctrl-C stops and prints which nodes fetched their config');

  const summary = await new Promise<ServeSummary>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('SIGHUP', stop);
      process.off('SIGUSR2', rearm);
      server.events.off('expired', stop);
      void server.close().then(done);
    };
    const rearm = (): void => {
      const macs = server.serveAgain();
      if (macs.length === 0) say(`${new Date().toTimeString().slice(0, 8)} SIGUSR2: no config was spent; nothing to re-arm`);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // the terminal went away: stop serving keys rather than go on unattended
    process.once('SIGHUP', stop);
    process.on('SIGUSR2', rearm);
    server.events.once('expired', stop);
  });
  for (const l of summaryLines(summary)) say(l);
  const failed = values['require-all'] === true && summary.notFetched > 0;
  if (json) io.out(`${JSON.stringify({ event: 'summary', ok: !failed, ...summary })}\n`);
  if (failed) say(`edgeimg serve: --require-all: ${plural(summary.notFetched, 'node')} did not fetch ${summary.notFetched === 1 ? 'its' : 'their'} config`);
  return failed ? EXIT.failed : EXIT.ok;
}
