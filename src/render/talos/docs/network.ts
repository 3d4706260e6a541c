// Network documents (types/network): hostname, the primary link and its alias, the VIP,
// resolvers and time sync. They replace machine.network / machine.time, which the 1.13 schema
// no longer accepts.

import type { NicPlan } from '../../../catalogue/plan.js';
import type { RenderContext } from '../context.js';
import { typedDocument, type TalosDocument } from '../document.js';

export function hostnameConfig(ctx: RenderContext): TalosDocument[] {
  return [typedDocument('HostnameConfig', { hostname: ctx.node.hostname })];
}

/** A Go %q-compatible string literal for the ASCII text selectors hold. */
function celString(s: string): string {
  return JSON.stringify(s);
}

/** CEL (link locator) matching the NIC selector; glob() keeps v1alpha1 deviceSelector's wildcard semantics. */
export function linkSelectorCel(selector: NonNullable<NicPlan['selector']>): string {
  const terms: string[] = [];
  if (selector.hardwareAddr) terms.push(`glob(${celString(selector.hardwareAddr.toLowerCase())}, mac(link.hardware_addr))`);
  if (selector.driver) terms.push(`glob(${celString(selector.driver)}, link.driver)`);
  if (selector.busPath) terms.push(`glob(${celString(selector.busPath)}, link.bus_path)`);
  if (terms.length === 0) throw new Error('NIC selector has no fields');
  return terms.join(' && ');
}

/**
 * Only for a NIC chosen by selector: give it a stable name the other documents refer to. A
 * node with a known MAC is matched by its permanent address, which cannot pick the wrong port
 * on a board with two NICs of the same driver; otherwise the hardware class selector applies.
 */
export function linkAliasConfig(ctx: RenderContext): TalosDocument[] {
  const selector = ctx.node.hardware.nic.selector;
  if (ctx.node.hardware.nic.name || !selector) return [];
  const match = ctx.node.mac ? `mac(link.permanent_addr) == ${celString(ctx.node.mac.toLowerCase())}` : linkSelectorCel(selector);
  return [typedDocument('LinkAliasConfig', { name: ctx.linkName, selector: { match } })];
}

/** Static address on the primary link, default route via the site gateway. */
export function linkConfig(ctx: RenderContext): TalosDocument[] {
  return [
    typedDocument('LinkConfig', {
      name: ctx.linkName,
      up: true,
      addresses: [{ address: `${ctx.node.ip}/${ctx.node.prefix}` }],
      routes: [{ gateway: ctx.site.network.gateway }],
    }),
  ];
}

/** The shared API endpoint address, on control planes only. */
export function layer2VipConfig(ctx: RenderContext): TalosDocument[] {
  const vip = ctx.site.network.vip;
  if (!ctx.controlPlane || !vip) return [];
  return [typedDocument('Layer2VIPConfig', { name: vip, link: ctx.linkName })];
}

export function resolverConfig(ctx: RenderContext): TalosDocument[] {
  const { dns, searchDomains } = ctx.site.network;
  const fields: Record<string, unknown> = {};
  if (dns.length > 0) fields.nameservers = dns.map((address) => ({ address }));
  if (searchDomains.length > 0) fields.searchDomains = { domains: searchDomains };
  // From 1.14 host DNS is configured here instead of machine.features.hostDNS.
  if (ctx.contract.hostDnsInResolverConfig) fields.hostDNS = { enabled: true, forwardKubeDNSToHost: true };
  if (Object.keys(fields).length === 0) return [];
  return [typedDocument('ResolverConfig', fields)];
}

export function timeSyncConfig(ctx: RenderContext): TalosDocument[] {
  const servers = ctx.site.network.ntp;
  if (servers.length === 0) return [];
  return [typedDocument('TimeSyncConfig', { ntp: { servers } })];
}
