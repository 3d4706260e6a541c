// What `edgeimg serve` reports: one event per request, and a summary at the end. Events name
// things (site, node, MAC, artifact path) and give sizes and sha256, never file contents: a
// config is key material, and the log is read on a shared laptop screen or kept in CI.

import { colonMac } from './options.js';
import type { ServePlan } from './plan.js';

export type RequestEventKind =
  | 'boot-script' // /boot.ipxe
  | 'node-script' // /ipxe/<mac> of a node that boots
  | 'not-booting' // /ipxe/<mac> of a node that cannot boot now (assets, served already, window over)
  | 'unknown-mac' // /ipxe/<mac> of a MAC not in the catalogue
  | 'asset' // /nb/<mac>/<kernel|initrd|squashfs>
  | 'asset-changed' // the cached file changed since it was verified: 503
  | 'config' // /config/<mac>: the node's user-data
  | 'config-refused' // already served, window over, digest mismatch, unreadable
  | 'not-found'
  | 'method-not-allowed';

export interface RequestEvent {
  time: string;
  event: RequestEventKind;
  method: string;
  /** The route's path, or the request target as sent (printable ASCII, percent-encoded, bounded). */
  path: string;
  status: number;
  /** The client's address. */
  remote: string;
  mac?: string;
  site?: string;
  node?: string;
  /** The served artifact: user-data path relative to OUT/<site>, or the image cache asset path. */
  artifact?: string;
  sha256?: string;
  /** Body bytes sent. */
  bytes?: number;
  /** Whether the body was sent to its end (false: the client went away). */
  complete?: boolean;
  /** Why, for refusals; names and sizes only. */
  message?: string;
}

export interface ServerEvent {
  time: string;
  event: 'listening' | 'window-closed' | 're-armed' | 'closing';
  message: string;
  url?: string;
  macs?: string[];
}

export type ServeEvent = RequestEvent | ServerEvent;

export interface ConfigFetch {
  time: string;
  sha256: string;
  remote: string;
}

export interface NodeSummary {
  node: string;
  mac?: string;
  /** Whether it fetched its config at least once. */
  fetched: boolean;
  /** The first fetch. */
  time?: string;
  sha256?: string;
  remote?: string;
  fetches: number;
  /** Why it could not be served, or not booted over the network. */
  problem?: string;
}

export interface ServeSummary {
  url: string;
  startedAt: string;
  endedAt: string;
  windowEndsAt: string;
  /** `window`: the serving window ran out; `closed`: stopped (Ctrl-C, SIGTERM, close()). */
  reason: 'window' | 'closed';
  sites: Array<{ site: string; nodes: NodeSummary[] }>;
  fetched: number;
  notFetched: number;
  /** MACs that asked for a script and are in no served site's catalogue. */
  unknownMacs: string[];
}

export function summarize(
  plan: ServePlan,
  fetches: ReadonlyMap<string, readonly ConfigFetch[]>,
  unknownMacs: ReadonlySet<string>,
  base: Pick<ServeSummary, 'url' | 'startedAt' | 'endedAt' | 'windowEndsAt' | 'reason'>,
): ServeSummary {
  let fetched = 0;
  let notFetched = 0;
  const sites = plan.sites.map((site) => ({
    site,
    nodes: plan.nodes
      .filter((n) => n.site === site)
      .map((n): NodeSummary => {
        const f = n.mac && !n.macProblem ? fetches.get(n.mac) ?? [] : [];
        const first = f[0];
        if (first) fetched++;
        else notFetched++;
        const problem = n.macProblem ?? n.configProblem ?? n.netbootProblem?.detail;
        return {
          node: n.node,
          ...(n.mac ? { mac: colonMac(n.mac) } : {}),
          fetched: first !== undefined,
          ...(first ? { time: first.time, sha256: first.sha256, remote: first.remote } : {}),
          fetches: f.length,
          ...(problem ? { problem } : {}),
        };
      }),
  }));
  return { ...base, sites, fetched, notFetched, unknownMacs: [...unknownMacs].sort().map(colonMac) };
}
