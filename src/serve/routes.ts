// The server's route table: every path it answers, spelled out from the plan before the first
// request. A request path is looked up as it arrives, never decoded, normalised or joined to a
// directory, so `..`, `%2e%2e`, `//`, encoded slashes, query strings and absolute-form URLs
// simply match nothing. The one pattern is /ipxe/<MAC>, where any MAC gets a script (an
// unknown one is told it is not in the catalogue).

import { canonicalMac } from './options.js';
import type { ServePlan } from './plan.js';

export type AssetRole = 'kernel' | 'initrd' | 'squashfs';

export type Route =
  | { kind: 'boot' }
  | { kind: 'script'; mac: string }
  | { kind: 'asset'; mac: string; role: AssetRole }
  | { kind: 'config'; mac: string };

export type RouteTable = ReadonlyMap<string, Route>;

export const BOOT_PATH = '/boot.ipxe';
export const scriptPath = (mac: string): string => `/ipxe/${mac}`;
export const assetPath = (mac: string, role: AssetRole): string => `/nb/${mac}/${role}`;
export const configPath = (mac: string): string => `/config/${mac}`;

/** Longest request target looked at; the longest route is under 40 characters. */
const MAX_TARGET = 256;

export function routeTable(plan: Pick<ServePlan, 'byMac'>): RouteTable {
  const t = new Map<string, Route>([[BOOT_PATH, { kind: 'boot' }]]);
  for (const [mac, n] of plan.byMac) {
    t.set(scriptPath(mac), { kind: 'script', mac });
    // a config is only for a node that boots from here: nothing else asks for it
    if (n.config && n.netboot) t.set(configPath(mac), { kind: 'config', mac });
    if (n.netboot) {
      t.set(assetPath(mac, 'kernel'), { kind: 'asset', mac, role: 'kernel' });
      t.set(assetPath(mac, 'initrd'), { kind: 'asset', mac, role: 'initrd' });
      if (n.netboot.rootfs) t.set(assetPath(mac, 'squashfs'), { kind: 'asset', mac, role: 'squashfs' });
    }
  }
  return t;
}

/** The route a request target names, or undefined (404). */
export function matchRoute(table: RouteTable, target: string): Route | undefined {
  if (target.length > MAX_TARGET) return undefined;
  const exact = table.get(target);
  if (exact) return exact;
  // /ipxe/<MAC> in another spelling (colon form, upper case), or of a MAC not in the catalogue
  if (target.startsWith('/ipxe/')) {
    const mac = canonicalMac(target.slice('/ipxe/'.length));
    if (mac) return { kind: 'script', mac };
  }
  return undefined;
}

/** A request target as a log line may show it: URL characters as they are, the rest percent-encoded, bounded. */
export function shownTarget(target: string): string {
  let out = '';
  for (const ch of target.slice(0, 120)) {
    if (/^[A-Za-z0-9._~!$&()*+,;=:@/%?#[\]-]$/.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return target.length > 120 ? `${out}...` : out;
}
