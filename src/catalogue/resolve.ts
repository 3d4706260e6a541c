// Resolution: fleet defaults, then hardware class, then site profile, then site, then node,
// into one fully explicit SitePlan per site. Every problem found becomes a positioned
// diagnostic; resolution carries on so that one run reports everything.

import { dirname, resolve as resolvePath } from 'node:path';
import type { Diagnostic, SourcePos } from '../util/diagnostics.js';
import { sha256Hex } from '../util/fsx.js';
import { bare, excerpt, excerptList } from './excerpt.js';
import { confinementFor, readCatalogueFile, referenceMessage, type Confinement } from './files.js';
import { formatIpv4, isHostInSubnet, offsetAddress, parseCidr, parseIpv4, type Subnet } from './ip.js';
import { displayPath } from './load.js';
import { OverlayCache } from './overlays.js';
import type { HardwarePlan, NodePlan, OverlayRef, RegistryPlan, SitePlan } from './plan.js';
import type { Catalogue, Entry, HardwareSpec, NodeSpec, SiteSpec } from './types.js';
import type { YamlDoc } from './yaml.js';
import { ageRecipientProblem } from '../secrets/age.js';

export const SITE_MIRROR_REF = '${site.mirror}';

/** A hostname is one DNS label (RFC 1035): at most 63 characters. */
export const MAX_HOSTNAME_CHARS = 63;

export interface ResolveResult {
  plans: SitePlan[];
  diagnostics: Diagnostic[];
  /** Suspicious but buildable (severity 'warning'); `--strict` makes them errors. */
  warnings: Diagnostic[];
  overlays: OverlayCache;
}

interface Ctx {
  cat: Catalogue;
  /** Where referenced files (overlays, the CA bundle) may be read from. */
  confinement: Confinement;
  diags: Diagnostic[];
  warnings: Diagnostic[];
  overlays: OverlayCache;
  hardware: Map<string, HardwarePlan | null>;
  /** Every node resolved so far, including those of sites with other errors, for fleet-wide checks. */
  allNodes: Array<{ site: string; node: NodePlan }>;
  caBundle?: { pem: string; file: string };
  ageRecipients: string[];
}

const at = (doc: YamlDoc, path: string): SourcePos & { abs: string } => ({ ...doc.pos.value(path), abs: docAbs(doc) });
function docAbs(doc: YamlDoc): string {
  return (doc as YamlDoc & { abs?: string }).abs ?? resolvePath(doc.file);
}

/** Resolve every site in the catalogue (sorted by id) and run the fleet-wide checks. */
export function resolveCatalogue(cat: Catalogue): ResolveResult {
  const confinement = confinementFor(cat.root, displayPath);
  const ctx: Ctx = { cat, confinement, diags: [], warnings: [], overlays: new OverlayCache(confinement), hardware: new Map(), allNodes: [], ageRecipients: [] };
  const plans: SitePlan[] = [];
  if (!cat.fleet) return { plans, diagnostics: ctx.diags, warnings: ctx.warnings, overlays: ctx.overlays };
  ctx.caBundle = loadCaBundle(ctx);
  ctx.ageRecipients = loadAgeRecipients(ctx);
  for (const id of [...cat.sites.keys()].sort()) {
    const plan = resolveSite(ctx, cat.sites.get(id)!);
    if (plan) plans.push(plan);
  }
  checkFleetUniqueness(ctx.allNodes, ctx.diags);
  return { plans, diagnostics: ctx.diags, warnings: ctx.warnings, overlays: ctx.overlays };
}

function loadCaBundle(ctx: Ctx): { pem: string; file: string } | undefined {
  const fleet = ctx.cat.fleet!;
  const ref = fleet.spec.registries?.caBundle;
  if (!ref) return undefined;
  const abs = resolvePath(dirname(docAbs(fleet.doc)), ref);
  const read = readCatalogueFile(abs, ctx.confinement);
  if ('problem' in read) {
    ctx.diags.push({ ...fleet.doc.pos.value('/spec/registries/caBundle'), message: referenceMessage('CA bundle file', ref, read) });
    return undefined;
  }
  const pem = read.data.toString('utf8');
  if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(pem)) {
    ctx.diags.push({ ...fleet.doc.pos.value('/spec/registries/caBundle'), message: `${bare(ref)} holds no PEM certificate` });
    return undefined;
  }
  if (/PRIVATE KEY/.test(pem)) {
    ctx.diags.push({ ...fleet.doc.pos.value('/spec/registries/caBundle'), message: `${bare(ref)} contains a private key; a CA bundle must hold certificates only` });
    return undefined;
  }
  ctx.cat.fileDigests.set(abs, sha256Hex(read.data));
  return { pem: pem.endsWith('\n') ? pem : `${pem}\n`, file: abs };
}

function overlayRefs(ctx: Ctx, level: OverlayRef['level'], refs: string[] | undefined, doc: YamlDoc, path: string): OverlayRef[] {
  const out: OverlayRef[] = [];
  (refs ?? []).forEach((ref, i) => {
    const { overlay, diagnostics } = ctx.overlays.load(ref, at(doc, `${path}/${i}`));
    ctx.diags.push(...diagnostics);
    if (overlay) {
      out.push({ level, path: overlay.path, display: overlay.display });
      ctx.cat.fileDigests.set(overlay.path, overlay.sha256); // the build's input digest need not read it again
    }
  });
  return out;
}

function resolveHardware(ctx: Ctx, name: string, ref: { doc: YamlDoc; path: string }): HardwarePlan | undefined {
  const entry = ctx.cat.hardware.get(name);
  if (!entry) {
    const known = excerptList([...ctx.cat.hardware.keys()].sort()) || 'none defined';
    ctx.diags.push({ ...ref.doc.pos.value(ref.path), message: `unknown hardware class ${excerpt(name)} (known: ${known})` });
    return undefined;
  }
  if (!ctx.hardware.has(name)) {
    ctx.hardware.set(name, hardwarePlan(entry));
    ctx.warnings.push(...installDiskWarnings(entry));
  }
  return ctx.hardware.get(name) ?? undefined;
}

function hardwarePlan(entry: Entry<HardwareSpec>): HardwarePlan {
  const s = entry.spec;
  return {
    name: entry.name,
    arch: s.arch,
    firmware: s.firmware,
    disk: structuredClone(s.installDisk),
    nic: structuredClone(s.nic),
    factory: {
      extensions: [...(s.talos?.extensions ?? [])],
      extraKernelArgs: [...(s.talos?.extraKernelArgs ?? [])],
      ...(s.talos?.overlay ? { overlay: structuredClone(s.talos.overlay) } : {}),
    },
    ...(s.kairos?.baseImage ? { kairosBaseImage: s.kairos.baseImage } : {}),
    source: entry.doc.pos.value('/metadata/name'),
  };
}

/**
 * `/dev/sdX` is whichever SCSI-class disk the kernel enumerates first, and a USB stick is one:
 * with the boot or seed stick plugged in, the installer may be pointed at it.
 */
function installDiskWarnings(entry: Entry<HardwareSpec>): Diagnostic[] {
  const path = entry.spec.installDisk.path;
  if (path === undefined || !/^\/dev\/sd[a-z]+$/.test(path)) return [];
  return [
    {
      ...entry.doc.pos.value('/spec/installDisk/path'),
      severity: 'warning',
      message: `hardware class ${entry.name}: install disk ${bare(path)} can name a USB stick (the boot or seed stick enumerates as /dev/sdX too); use a stable /dev/disk/by-path/... path or an installDisk selector`,
    },
  ];
}

function resolveSite(ctx: Ctx, site: Entry<SiteSpec>): SitePlan | undefined {
  const { cat, diags } = ctx;
  const fleet = cat.fleet!;
  const s = site.spec;
  const sdoc = site.doc;
  const errorsBefore = diags.length;
  const inputFiles = new Set<string>([docAbs(fleet.doc), docAbs(sdoc)]);
  if (ctx.caBundle) inputFiles.add(ctx.caBundle.file);

  const profile = s.profile ? cat.profiles.get(s.profile) : undefined;
  if (s.profile && !profile) {
    const known = excerptList([...cat.profiles.keys()].sort()) || 'none defined';
    diags.push({ ...sdoc.pos.value('/spec/profile'), message: `unknown site profile ${excerpt(s.profile)} (known: ${known})` });
  }
  if (profile) inputFiles.add(docAbs(profile.doc));

  const os = s.os ?? fleet.spec.os;
  const talosVersion = s.talos?.version ?? fleet.spec.talos?.version;
  const talosMinor = talosVersion?.startsWith('v1.14.') ? '1.14' : '1.13';
  const subnetParsed = parseCidr(s.subnet);
  let subnet: Subnet | undefined;
  if ('error' in subnetParsed) diags.push({ ...sdoc.pos.value('/spec/subnet'), message: `subnet ${subnetParsed.error}` });
  else subnet = subnetParsed;

  // An address is either explicit (checked against the subnet) or an offset inside it.
  const address = (explicit: string | undefined, offset: number | undefined, where: SourcePos, what: string): number | undefined => {
    if (!subnet) return undefined;
    if (explicit !== undefined) {
      const ip = parseIpv4(explicit);
      if (ip === undefined) diags.push({ ...where, message: `${what} ${excerpt(explicit)} is not an IPv4 address` });
      else if (!isHostInSubnet(subnet, ip)) {
        diags.push({ ...where, message: `${what} ${explicit} is outside the site subnet ${s.subnet}` });
      } else return ip;
      return undefined;
    }
    if (offset !== undefined) {
      const ip = offsetAddress(subnet, offset);
      if (ip === undefined) diags.push({ ...where, message: `${what} offset ${offset} is outside the site subnet ${s.subnet}` });
      return ip;
    }
    return undefined;
  };

  const gwWhere = s.gateway !== undefined ? sdoc.pos.value('/spec/gateway') : profile?.doc.pos.value('/spec/gatewayOffset') ?? sdoc.pos.value('/spec');
  const gateway = address(s.gateway, profile?.spec.gatewayOffset, gwWhere, 'gateway');
  if (subnet && s.gateway === undefined && profile?.spec.gatewayOffset === undefined) {
    diags.push({ ...sdoc.pos.value('/spec'), message: 'site has no gateway: set spec.gateway or the profile gatewayOffset' });
  }
  const vipWhere = s.vip !== undefined ? sdoc.pos.value('/spec/vip') : profile?.doc.pos.value('/spec/vipOffset') ?? sdoc.pos.value('/spec');
  const vip = address(s.vip, profile?.spec.vipOffset, vipWhere, 'VIP');

  let localMirror: string | undefined = s.mirror;
  if (!localMirror && profile?.spec.mirror && subnet) {
    const m = profile.spec.mirror;
    const ip = address(undefined, m.offset, profile.doc.pos.value('/spec/mirror/offset'), 'mirror');
    if (ip !== undefined) localMirror = `${m.scheme ?? 'https'}://${formatIpv4(ip)}${m.port ? `:${m.port}` : ''}`;
  }

  // Nodes: profile nodes first (in profile order), overridden by site entries of the same name;
  // site entries with new names add nodes.
  const merged: Array<{ spec: NodeSpec; from: YamlDoc; path: string; overrideFrom?: { doc: YamlDoc; path: string; spec: NodeSpec } }> = [];
  profile?.spec.nodes.forEach((n, i) => merged.push({ spec: { ...n }, from: profile.doc, path: `/spec/nodes/${i}` }));
  const siteNames = new Map<string, number>();
  (s.nodes ?? []).forEach((n, i) => {
    const path = `/spec/nodes/${i}`;
    const dup = siteNames.get(n.name);
    if (dup !== undefined) {
      diags.push({ ...sdoc.pos.value(`${path}/name`), message: `duplicate node name ${excerpt(n.name)} in site ${site.name}` });
      return;
    }
    siteNames.set(n.name, i);
    const base = merged.find((m) => m.spec.name === n.name);
    if (base) {
      const { name: _n, ...rest } = n;
      Object.assign(base.spec, rest);
      if (n.labels) base.spec.labels = { ...(base.spec.labels ?? {}), ...n.labels };
      base.overrideFrom = { doc: sdoc, path, spec: n };
      // an explicit address replaces the profile's offset
      if (n.address !== undefined && n.offset === undefined) delete base.spec.offset;
    } else merged.push({ spec: { ...n }, from: sdoc, path });
  });
  if (merged.length === 0) diags.push({ ...sdoc.pos.value('/spec'), message: `site ${site.name} has no nodes: set spec.profile or spec.nodes` });

  const fleetOverlays = overlayRefs(ctx, 'fleet', fleet.spec.overlays, fleet.doc, '/spec/overlays');
  const siteOverlays = overlayRefs(ctx, 'site', s.overlays, sdoc, '/spec/overlays');
  const hwOverlayCache = new Map<string, OverlayRef[]>();

  const nodes: NodePlan[] = [];
  for (const m of merged) {
    const n = m.spec;
    // positions: prefer where the site overrode a field, else where the profile set it
    const pos = (field: string): SourcePos => {
      if (m.overrideFrom && (m.overrideFrom.spec as unknown as Record<string, unknown>)[field] !== undefined) {
        return m.overrideFrom.doc.pos.value(`${m.overrideFrom.path}/${field}`);
      }
      return m.from.pos.value(`${m.path}/${field}`);
    };
    // where a node field was written: the site's override wins over the profile's node entry
    const fieldRef = (field: keyof NodeSpec): { doc: YamlDoc; path: string } | undefined => {
      if (m.overrideFrom && m.overrideFrom.spec[field] !== undefined) return { doc: m.overrideFrom.doc, path: `${m.overrideFrom.path}/${field}` };
      if (n[field] !== undefined) return { doc: m.from, path: `${m.path}/${field}` };
      return undefined;
    };
    const nodeWhere = m.overrideFrom ? m.overrideFrom.doc.pos.value(`${m.overrideFrom.path}/name`) : m.from.pos.value(`${m.path}/name`);
    if (!n.role) diags.push({ ...nodeWhere, message: `node "${n.name}" has no role (controlplane or worker)` });
    const hwName = n.hardwareClass ?? profile?.spec.hardwareClass;
    let hw: HardwarePlan | undefined;
    if (!hwName) diags.push({ ...nodeWhere, message: `node "${n.name}" has no hardware class: set hardwareClass or use a profile` });
    else {
      const hwRef = fieldRef('hardwareClass') ?? { doc: profile!.doc, path: '/spec/hardwareClass' };
      hw = resolveHardware(ctx, hwName, hwRef);
      const hwEntry = cat.hardware.get(hwName);
      if (hwEntry) inputFiles.add(docAbs(hwEntry.doc));
    }
    if (n.address === undefined && n.offset === undefined) {
      diags.push({ ...nodeWhere, message: `node "${n.name}" has no address: set address or offset` });
    }
    const ip = address(n.address, n.offset, pos(n.address !== undefined ? 'address' : 'offset'), `node ${n.name} address`);
    if (hw) checkNicMatch(ctx, { os, nodeName: n.name, mac: n.mac, hw, where: nodeWhere });
    // An explicit hostname is a DNS label by the schema; the default joins two labels, which
    // together can exceed the 63 characters a label (and a Linux hostname) may have.
    const hostname = n.hostname ?? `${site.name}-${n.name}`;
    if (n.hostname === undefined && hostname.length > MAX_HOSTNAME_CHARS) {
      diags.push({
        ...nodeWhere,
        message: `node "${n.name}" has the default hostname ${hostname} (site id, "-", node name), ${hostname.length} characters; a hostname is one DNS label of at most ${MAX_HOSTNAME_CHARS}: shorten the site id or node name, or set hostname`,
      });
    }
    if (!hw || !n.role || ip === undefined || !subnet) continue;
    let hwOverlays = hwOverlayCache.get(hw.name);
    if (!hwOverlays) {
      const e = cat.hardware.get(hw.name)!;
      hwOverlays = overlayRefs(ctx, 'hardware', e.spec.overlays, e.doc, '/spec/overlays');
      hwOverlayCache.set(hw.name, hwOverlays);
    }
    const ovRef = fieldRef('overlays');
    const nodeOverlays = ovRef ? overlayRefs(ctx, 'node', n.overlays, ovRef.doc, ovRef.path) : [];
    nodes.push({
      name: n.name,
      hostname,
      role: n.role,
      hardware: hw,
      ...(n.mac ? { mac: n.mac.toLowerCase() } : {}),
      ip: formatIpv4(ip),
      prefix: subnet.prefix,
      labels: { ...(n.labels ?? {}) },
      overlays: [...fleetOverlays, ...hwOverlays, ...siteOverlays, ...nodeOverlays].filter((o) => ctx.overlays.appliesTo(o.path, os, n.role!, talosMinor)),
      source: nodeWhere,
    });
  }
  for (const o of nodes.flatMap((n) => n.overlays)) inputFiles.add(o.path);
  for (const node of nodes) ctx.allNodes.push({ site: site.name, node });

  // Addresses inside the site must not collide with each other, the gateway or the VIP.
  const taken = new Map<string, string>();
  if (gateway !== undefined) taken.set(formatIpv4(gateway), 'the gateway');
  for (const n of nodes) {
    const other = taken.get(n.ip);
    if (other) diags.push({ ...n.source, message: `node ${n.name} address ${n.ip} collides with ${other}` });
    else taken.set(n.ip, `node ${n.name}`);
  }
  if (vip !== undefined) {
    const other = taken.get(formatIpv4(vip));
    if (other) diags.push({ ...vipWhere, message: `VIP ${formatIpv4(vip)} collides with ${other}` });
  }

  const controlPlanes = nodes.filter((n) => n.role === 'controlplane');
  if (nodes.length > 0 && controlPlanes.length === 0 && nodes.length === merged.length) {
    diags.push({
      ...sdoc.pos.value('/metadata/name'),
      message: os === 'talos' ? `Talos site ${site.name} has no control plane node` : `Kairos site ${site.name} has no server (controlplane) node`,
    });
  }

  const talosV = { ...fleet.spec.talos, ...s.talos };
  const kairosV = { ...fleet.spec.kairos, ...s.kairos };
  const versionPos = (key: string): SourcePos => (s[key as 'talos'] ? sdoc.pos.value(`/spec/${key}`) : fleet.doc.pos.value(`/spec/${key}`) ?? sdoc.pos.value('/spec'));
  let talos: SitePlan['talos'];
  let kairos: SitePlan['kairos'];
  if (os === 'talos') {
    if (!talosV.version || !talosV.kubernetesVersion) {
      diags.push({ ...versionPos('talos'), message: `Talos site ${site.name} needs talos.version and talos.kubernetesVersion (fleet or site)` });
    } else {
      talos = {
        version: talosV.version,
        minor: talosMinor,
        kubernetesVersion: talosV.kubernetesVersion.startsWith('v') ? talosV.kubernetesVersion : `v${talosV.kubernetesVersion}`,
      };
    }
  } else if (!kairosV.version || !kairosV.flavor || !kairosV.provider || !kairosV.providerVersion) {
    diags.push({ ...versionPos('kairos'), message: `Kairos site ${site.name} needs kairos.version, flavor, provider and providerVersion (fleet or site)` });
  } else {
    kairos = { version: kairosV.version, flavor: kairosV.flavor, provider: kairosV.provider, providerVersion: kairosV.providerVersion };
  }

  const registries = resolveRegistries(ctx, localMirror, site);
  if (diags.length > errorsBefore || !subnet || gateway === undefined) return undefined;

  const firstCp = controlPlanes[0]!;
  const endpointHost = vip !== undefined ? formatIpv4(vip) : firstCp.ip;
  return {
    id: site.name,
    os,
    ...(talos ? { talos } : {}),
    ...(kairos ? { kairos } : {}),
    clusterName: site.name,
    network: {
      subnet: s.subnet,
      prefix: subnet.prefix,
      gateway: formatIpv4(gateway),
      ...(vip !== undefined ? { vip: formatIpv4(vip) } : {}),
      dns: [...(fleet.spec.dns?.servers ?? [])],
      searchDomains: [...(fleet.spec.dns?.searchDomains ?? [])],
      ntp: [...(fleet.spec.ntp ?? [])],
    },
    cluster: {
      podCidrs: [...(fleet.spec.cluster?.podCidrs ?? ['10.244.0.0/16'])],
      serviceCidrs: [...(fleet.spec.cluster?.serviceCidrs ?? ['10.96.0.0/12'])],
      endpoint: `https://${endpointHost}:6443`,
      allowSchedulingOnControlPlanes: s.schedulable ?? profile?.spec.schedulable ?? nodes.every((n) => n.role === 'controlplane'),
    },
    registries,
    ...(localMirror ? { localMirror } : {}),
    sshKeys: [...(fleet.spec.sshKeys ?? [])],
    secrets: { ageRecipients: [...ctx.ageRecipients] },
    labels: { ...site.labels },
    overlays: [...fleetOverlays, ...siteOverlays].filter((o) => ctx.overlays.appliesTo(o.path, os, undefined, talosMinor)),
    nodes,
    source: sdoc.pos.value('/metadata/name'),
    inputFiles: [...inputFiles].sort(),
  };
}

/** The fleet's age recipients for site secrets; each must be a well-formed age1… bech32 string. */
function loadAgeRecipients(ctx: Ctx): string[] {
  const fleet = ctx.cat.fleet!;
  const list = fleet.spec.secrets?.ageRecipients ?? [];
  const out: string[] = [];
  list.forEach((r, i) => {
    const problem = typeof r === 'string' ? ageRecipientProblem(r) : 'must be a string';
    if (problem) ctx.diags.push({ ...fleet.doc.pos.value(`/spec/secrets/ageRecipients/${i}`), message: `age recipient ${excerpt(r)} ${problem}` });
    else out.push(r);
  });
  return out;
}

/**
 * Every node is addressed statically, so whatever reads the address must find the right NIC:
 * - Talos' NoCloud parser and cloud-init match a NIC by name or MAC only (a driver or bus-path
 *   selector is dropped, or applied to every port of that driver), so a class that picks its
 *   NIC by selector needs each node's MAC;
 * - installed Kairos boots with predictable interface names (kairos-init adds net.ifnames=1), so
 *   a kernel name such as eth0 never exists there.
 * See test/conformance/talos-network.test.ts and kairos-network.test.ts.
 */
function checkNicMatch(ctx: Ctx, a: { os: string; nodeName: string; mac: string | undefined; hw: HardwarePlan; where: SourcePos }): void {
  if (a.mac !== undefined) return;
  const nic = a.hw.nic;
  if (nic.name === undefined) {
    const how = Object.entries(nic.selector ?? {}).map(([k, v]) => `${k} ${bare(v)}`).join(', ');
    ctx.diags.push({
      ...a.where,
      message: `node "${a.nodeName}" needs a mac: hardware class ${a.hw.name} selects its NIC by selector (${how}), but network-config readers (Talos NoCloud, cloud-init) match a NIC only by name or MAC, so the static address could land on no port or on every port of that driver`,
    });
  } else if (a.os === 'kairos' && /^eth\d+$/.test(nic.name)) {
    ctx.diags.push({
      ...a.where,
      message: `node "${a.nodeName}" needs a mac: installed Kairos boots with predictable interface names (net.ifnames=1), so hardware class ${a.hw.name}'s NIC name ${excerpt(nic.name)} never exists there; give the node's MAC, or name the NIC by its predictable name (e.g. enp1s0)`,
    });
  }
}

function resolveRegistries(ctx: Ctx, localMirror: string | undefined, site: Entry<SiteSpec>): RegistryPlan {
  const fleet = ctx.cat.fleet!;
  const mirrors: RegistryPlan['mirrors'] = [];
  const tlsHosts = new Set<string>();
  const spec = fleet.spec.registries?.mirrors ?? {};
  for (const registry of Object.keys(spec).sort()) {
    const endpoints: string[] = [];
    const entry = spec[registry]!;
    const list = Array.isArray(entry) ? entry : entry.endpoints;
    const fallback = Array.isArray(entry) ? true : entry.fallback !== false;
    const base = `/spec/registries/mirrors/${registry.replace(/~/g, '~0').replace(/\//g, '~1')}${Array.isArray(entry) ? '' : '/endpoints'}`;
    list.forEach((ep, i) => {
      const where = fleet.doc.pos.value(`${base}/${i}`);
      if (ep === SITE_MIRROR_REF) {
        if (!localMirror) {
          ctx.diags.push({ ...site.doc.pos.value('/metadata/name'), message: `site ${site.name} has no local mirror, but ${displayPath(docAbs(fleet.doc))}:${where.line} uses ${SITE_MIRROR_REF}` });
          return;
        }
        endpoints.push(localMirror);
        if (localMirror.startsWith('https://')) tlsHosts.add(new URL(localMirror).host);
        return;
      }
      let url: URL | undefined;
      try {
        url = new URL(ep);
      } catch {
        url = undefined;
      }
      if (!url || !/^https?:$/.test(url.protocol)) {
        ctx.diags.push({ ...where, message: `registry endpoint ${excerpt(ep)} must be an http(s) URL or ${SITE_MIRROR_REF}` });
        return;
      }
      endpoints.push(ep);
    });
    // containerd (and Talos, k3s, k0s through it) falls back to the upstream registry after the
    // listed endpoints unless told not to, so an explicit upstream at the end is redundant.
    if (fallback) while (endpoints.length > 1 && isUpstreamEndpoint(registry, endpoints[endpoints.length - 1]!)) endpoints.pop();
    if (endpoints.length > 0) mirrors.push({ registry, endpoints, fallback });
  }
  const caBundle = ctx.caBundle?.pem ?? '';
  return { mirrors, caBundle, tlsHosts: caBundle ? [...tlsHosts].sort() : [] };
}

/** Whether `endpoint` is the registry itself (docker.io is served from registry-1.docker.io). */
export function isUpstreamEndpoint(registry: string, endpoint: string): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  if (url.protocol !== 'https:' || (url.pathname !== '/' && url.pathname !== '/v2' && url.pathname !== '/v2/')) return false;
  const hosts = registry === 'docker.io' ? ['docker.io', 'registry-1.docker.io', 'index.docker.io'] : [registry];
  return hosts.includes(url.host);
}

/** Hostnames, MACs and addresses must be unique across the whole fleet. */
function checkFleetUniqueness(all: Array<{ site: string; node: NodePlan }>, diags: Diagnostic[]): void {
  const check = (what: string, key: (n: NodePlan) => string | undefined): void => {
    const seen = new Map<string, { site: string; node: NodePlan }>();
    for (const entry of all) {
      const k = key(entry.node);
      if (k === undefined) continue;
      const prev = seen.get(k);
      if (!prev) {
        seen.set(k, entry);
        continue;
      }
      const p = prev.node.source;
      diags.push({
        ...entry.node.source,
        message: `duplicate ${what} ${k}: node ${entry.site}/${entry.node.name} and ${prev.site}/${prev.node.name} (${p.file}:${p.line}:${p.col})`,
      });
    }
  };
  check('node name', (n) => n.hostname);
  check('MAC', (n) => n.mac);
  check('address', (n) => n.ip);
}
