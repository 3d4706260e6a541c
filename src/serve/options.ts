// The values `edgeimg serve` takes from its user: where to listen, for how long, and MAC
// addresses in the spellings people and iPXE use. Parsed once, strictly: a serve that listens
// somewhere the technician did not ask for, or longer, is the failure to avoid.

import { isIP } from 'node:net';
import { UsageError, excerpt } from '../util/diagnostics.js';

export interface ListenAddress {
  /** An IP literal (IPv6 without brackets) or `localhost`. */
  host: string;
  /** 0: the system picks a free port. */
  port: number;
}

export const DEFAULT_LISTEN: ListenAddress = { host: '127.0.0.1', port: 8080 };

/** `ADDR:PORT`: `127.0.0.1:8080`, `0.0.0.0:8080`, `[::1]:8080`, `localhost:0`. */
export function parseListen(s: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+|localhost)):(\d{1,5})$/.exec(s);
  const host = m?.[1] ?? m?.[2];
  const port = m ? Number(m[3]) : NaN;
  if (!m || host === undefined || (host !== 'localhost' && isIP(host) === 0) || (m[1] !== undefined && isIP(m[1]) !== 6) || port > 65535) {
    throw new UsageError(`--listen takes ADDR:PORT with an IP address (127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080; port 0 picks a free one), got ${excerpt(s)}`);
  }
  return { host, port };
}

/** `http://host:port` with IPv6 hosts bracketed. */
export function hostPort(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** Whether the address accepts connections from every interface. */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0';
}

/** Whether only this machine can reach the address. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host) || /^::ffff:127\./i.test(host);
}

/** Longest serving window accepted; also under the 2^31 ms a Node timer can wait. */
export const MAX_WINDOW_MS = 7 * 24 * 3600 * 1000;
export const DEFAULT_WINDOW_MS = 2 * 3600 * 1000;

const UNIT_MS: Record<string, number> = { h: 3600_000, m: 60_000, s: 1000 };

/** `90s`, `30m`, `2h`, `1h30m`: a serving window. A bare number has no unit and is refused. */
export function parseDuration(s: string): number {
  const parts = /^(?:\d{1,6}[hms])+$/.test(s) ? [...s.matchAll(/(\d+)([hms])/g)] : [];
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_MS[p[2]!]!, 0);
  if (parts.length === 0 || ms <= 0 || ms > MAX_WINDOW_MS) {
    throw new UsageError(`--for takes a duration such as 90s, 30m, 2h or 1h30m (more than 0, at most 7 days), got ${excerpt(s)}`);
  }
  return ms;
}

/** "2 h", "30 min", "1 h 30 min", "90 s" */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return [h ? `${h} h` : '', m ? `${m} min` : '', r || s === 0 ? `${r} s` : ''].filter(Boolean).join(' ');
}

const HEX = '[0-9A-Fa-f]{2}';
const MAC_ANY = new RegExp(`^${HEX}([-:])${HEX}(?:\\1${HEX}){4}$`);

/**
 * A MAC as `aa-bb-cc-dd-ee-ff` (iPXE's `${mac:hexhyp}`), from the colon or hyphen form in
 * either case; undefined for anything else.
 */
export function canonicalMac(s: string): string | undefined {
  return MAC_ANY.test(s) ? s.toLowerCase().replace(/:/g, '-') : undefined;
}

/** `aa:bb:cc:dd:ee:ff`, as the catalogue and the field sheet write it. */
export function colonMac(hyphenated: string): string {
  return hyphenated.replace(/-/g, ':');
}
