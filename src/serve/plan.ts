// What `edgeimg serve` hands out, decided once at start: the nodes of the built sites (their
// manifests: MAC, hardware class, the user-data artifact and its sha256), which netboot assets
// each node's hardware class takes (the catalogue, through imageNeeds), and those assets from
// the image cache, each hashed against its pin now. The server only looks things up here; it
// never builds a file path from a request.

import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { planFleet } from '../catalogue/index.js';
import type { Arch, OsName } from '../catalogue/plan.js';
import { imageNeeds, type BootAsset, type ImageNeed } from '../images/assets.js';
import { cachedFile } from '../images/cache.js';
import { readLock, type ImagesLock } from '../images/lock.js';
import { resolveClassImage } from '../images/standin.js';
import { readManifest, type Manifest } from '../manifest/manifest.js';
import { EnvironmentError, UsageError, VerifyError, excerpt } from '../util/diagnostics.js';
import { sha256Hex } from '../util/fsx.js';
import { readRegularFile, readRegularFileSync } from '../util/safe-read.js';
import { artifactPathProblem } from '../verify/artifact-read.js';
import { canonicalMac } from './options.js';

/** Site IDs and node names: the catalogue schema's DNS label. */
export const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A cached netboot asset as it was when verified: served only while it still looks so. */
export interface VerifiedAsset {
  /** Its path in the image cache and key in images.lock. */
  asset: string;
  name: string;
  file: string;
  sha256: string;
  size: number;
  mtimeMs: number;
  ino: number;
  dev: number;
  /** A test stand-in (--allow-standin). */
  standin?: string;
}

export interface Netboot {
  kernel: VerifiedAsset;
  initrd: VerifiedAsset;
  /** Kairos: the live root filesystem. */
  rootfs?: VerifiedAsset;
  /** Talos: the class's pinned kernel command line, talos.platform=metal; Kairos: none. */
  args: string[];
}

/** Why a node cannot boot over the network: `reason` is shown on its console, `detail` on the laptop. */
export interface NetbootProblem {
  reason: string;
  fix: string;
  detail: string;
}

export interface PlannedNode {
  site: string;
  node: string;
  os: OsName;
  /** Talos version, or Kairos version with provider (as imageNeeds spells it). */
  version: string;
  arch: Arch;
  hardwareClass: string;
  /** aa-bb-cc-dd-ee-ff; absent when the catalogue gives none. */
  mac?: string;
  siteDir: string;
  /** The node's user-data artifact, as its manifest lists it. */
  config?: { path: string; sha256: string; bytes: number };
  /** Why the node's config will not be served (none in the manifest, confined-read refusal). */
  configProblem?: string;
  netboot?: Netboot;
  netbootProblem?: NetbootProblem;
  /** Why the node cannot be served at all (no MAC, a MAC shared with another node). */
  macProblem?: string;
}

export interface ServePlan {
  outDir: string;
  sites: string[];
  /** Every node of the served sites, in manifest order. */
  nodes: PlannedNode[];
  /** Nodes that can be served, by MAC (aa-bb-cc-dd-ee-ff). */
  byMac: Map<string, PlannedNode>;
  /** MACs more than one node claims: served to none of them. */
  sharedMacs: Map<string, PlannedNode[]>;
  /** Lines for the technician: nodes that cannot be served, or not fully. */
  warnings: string[];
}

export interface PlanOptions {
  outDir: string;
  /** Site IDs; empty with `all`. */
  sites: string[];
  all?: boolean;
  catalogueDir: string;
  cacheDir: string;
  allowStandin?: boolean;
}

/** The built sites in OUT: directories with a manifest.json (OUT/_boot and the like are not sites). */
function builtSites(outDir: string): string[] {
  let entries;
  try {
    entries = readdirSync(outDir, { withFileTypes: true });
  } catch {
    throw new EnvironmentError(`${outDir}: no such directory, so no site is built there; build first: edgeimg build --all --out ${outDir}`);
  }
  const sites = entries.filter((e) => e.isDirectory() && NAME.test(e.name) && existsSync(join(outDir, e.name, 'manifest.json'))).map((e) => e.name);
  if (sites.length === 0) throw new EnvironmentError(`${outDir}: holds no built site (no <site>/manifest.json); build first: edgeimg build --all --out ${outDir}`);
  return sites.sort();
}

async function siteManifest(outDir: string, site: string): Promise<Manifest> {
  const dir = join(outDir, site);
  const file = join(dir, 'manifest.json');
  if (!existsSync(file)) throw new EnvironmentError(`${file}: site ${site} is not built; build it first: edgeimg build --site ${site} --out ${outDir}`);
  let m: Manifest;
  try {
    m = await readManifest(dir);
  } catch (err) {
    throw new VerifyError(`${(err as Error).message}; rebuild it: edgeimg build --site ${site} --out ${outDir}`);
  }
  if (m.site !== site) throw new VerifyError(`${file}: is the manifest of site ${excerpt(m.site)}, not ${site}`);
  if (m.os !== 'talos' && m.os !== 'kairos') throw new VerifyError(`${file}: unknown os ${excerpt(m.os)}`);
  return m;
}

/** Kernel arguments iPXE passes as they are: no `${` expansion, no `||`/`&&`/`;`, no quotes. */
const SAFE_ARG = /^[A-Za-z0-9._,:=/+@%[\]-]+$/;

/**
 * Talos over PXE: the class's pinned cmdline (schematic kernel args included) with
 * talos.platform=metal. The nocloud platform reads its seed from a `cidata` volume or from the
 * SMBIOS serial (siderolabs/talos internal/app/machined/pkg/runtime/v1alpha1/platform/nocloud),
 * neither of which a PXE boot has; on metal, Talos downloads its machine configuration from
 * the URL in `talos.config` (Talos docs, "Acquiring machine configuration": "For the metal
 * platform, Talos can download machine configuration from a specified URL (kernel argument
 * talos.config)"; PXE guide: talos.platform=metal, slab_nomerge, pti=on).
 */
export function talosMetalArgs(cmdline: string): string[] | { problem: string } {
  const args = cmdline.split(/\s+/).filter((a) => a.length > 0);
  const bad = args.find((a) => !SAFE_ARG.test(a));
  if (bad !== undefined) return { problem: `holds a kernel argument iPXE would not pass as it is: ${excerpt(bad, 40)}` };
  const out = args.filter((a) => !a.startsWith('talos.config='));
  const at = out.findIndex((a) => a.startsWith('talos.platform='));
  if (at >= 0) out[at] = 'talos.platform=metal';
  else out.push('talos.platform=metal');
  return out;
}

interface Verifier {
  lock: ImagesLock;
  cacheDir: string;
  allowStandin: boolean;
  done: Map<string, Promise<VerifiedAsset>>;
}

/** Hash the cached asset against its pin, and remember what the file looked like then. */
function verifyAsset(v: Verifier, a: BootAsset): Promise<VerifiedAsset> {
  let p = v.done.get(a.path);
  if (!p) {
    p = (async () => {
      const file = cachedFile(v.cacheDir, a.path);
      const before = await lstat(file).catch(() => undefined);
      const img = await resolveClassImage(v.cacheDir, v.lock, a.path, { allowStandin: v.allowStandin });
      const after = await lstat(img.file);
      if (!before || before.size !== after.size || before.mtimeMs !== after.mtimeMs || before.ino !== after.ino || after.size !== img.digest.size) {
        throw new VerifyError(`${img.file}: changed while it was being verified; start serve again`);
      }
      return {
        asset: a.path,
        name: a.name,
        file: img.file,
        sha256: img.digest.sha256,
        size: img.digest.size,
        mtimeMs: after.mtimeMs,
        ino: after.ino,
        dev: after.dev,
        ...(img.standin ? { standin: img.standin.standin } : {}),
      };
    })();
    v.done.set(a.path, p);
  }
  return p;
}

const MAX_CMDLINE_BYTES = 64 * 1024;

async function readCmdline(asset: VerifiedAsset): Promise<string> {
  const r = await readRegularFile(asset.file, MAX_CMDLINE_BYTES, 'a kernel command line');
  if ('problem' in r) throw new VerifyError(`${asset.file}: ${r.problem}`);
  // the bytes read now must be the bytes verified
  if (sha256Hex(r.data) !== asset.sha256) throw new VerifyError(`${asset.file}: changed since it was verified; start serve again`);
  return r.data.toString('utf8');
}

function describeNeed(n: Pick<ImageNeed, 'hardwareClass' | 'os' | 'version'>): string {
  return `class ${n.hardwareClass} (${n.os} ${n.version})`;
}

/** The netboot assets of a node's (class, OS version), verified; or why it cannot netboot. */
async function netbootOf(v: Verifier, need: ImageNeed): Promise<Netboot | NetbootProblem> {
  const nb = need.assets.filter((a) => a.use === 'netboot');
  const of = (kind: BootAsset['kind']): BootAsset | undefined => nb.find((a) => a.kind === kind);
  const kernel = of('kernel');
  const initrd = of('initramfs');
  const rootfs = need.os === 'kairos' ? of('rootfs') : undefined;
  const cmdline = need.os === 'talos' ? of('cmdline') : undefined;
  if (!kernel || !initrd || (need.os === 'kairos' && !rootfs) || (need.os === 'talos' && !cmdline)) {
    const why = need.notes.find((n) => /netboot|SBC|device image/.test(n)) ?? 'it has no netboot assets';
    return {
      reason: `hardware class ${need.hardwareClass} cannot boot over the network`,
      fix: 'boot it from its stick (see the field sheet)',
      detail: `${describeNeed(need)}: no netboot assets: ${why}`,
    };
  }
  const wanted = [kernel, initrd, ...(rootfs ? [rootfs] : []), ...(cmdline ? [cmdline] : [])];
  const got: VerifiedAsset[] = [];
  for (const a of wanted) {
    try {
      got.push(await verifyAsset(v, a));
    } catch (err) {
      const missing = err instanceof EnvironmentError;
      return {
        reason: `netboot file ${a.name} of ${describeNeed(need)} is ${missing ? 'not in the image cache' : 'refused: it does not match its pin'}`,
        fix: missing
          ? `edgeimg images pull --class ${need.hardwareClass} --only netboot, or edgeimg images import --class ${need.hardwareClass} FILE, then start serve again`
          : `edgeimg images list --class ${need.hardwareClass} says why; import or pull a good copy`,
        detail: `${describeNeed(need)}: ${(err as Error).message}`,
      };
    }
  }
  let args: string[] = [];
  if (cmdline) {
    const asset = got[got.length - 1]!;
    try {
      const r = talosMetalArgs(await readCmdline(asset));
      if ('problem' in r) throw new VerifyError(`${asset.file}: ${r.problem}`);
      args = r;
    } catch (err) {
      return { reason: `netboot file ${cmdline.name} of ${describeNeed(need)} cannot be used`, fix: 'see the serve log on the laptop', detail: `${describeNeed(need)}: ${(err as Error).message}` };
    }
  }
  return { kernel: got[0]!, initrd: got[1]!, ...(rootfs ? { rootfs: got[2]! } : {}), args };
}

/** Largest node config served (Talos machine configs are about 15 KiB). */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/**
 * A node's user-data, confined as src/verify/artifact-read.ts reads artifacts (a normalised
 * relative path, no symlink below the site directory, a regular file, bounded), but
 * synchronously: the libuv thread pool is busy with the reads of every netboot download in
 * flight, and a config behind them waited hundreds of milliseconds for a 15 KiB read that takes
 * microseconds from the page cache.
 */
export function readConfigSync(siteDir: string, rel: string): { data: Buffer } | { problem: string } {
  const bad = artifactPathProblem(rel);
  if (bad) return { problem: `path ${bad}` };
  const abs = join(siteDir, rel);
  try {
    if (realpathSync(abs) !== join(realpathSync(siteDir), rel)) return { problem: 'is, or lies under, a symbolic link' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { problem: code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : `cannot be resolved (${code})` };
  }
  const r = readRegularFileSync(abs, MAX_CONFIG_BYTES, 'a node config');
  if ('problem' in r) return { problem: r.code === 'ENOENT' ? 'missing' : r.problem };
  return r;
}

/** The node's user-data artifact from its manifest, checked (confined, digest) now. */
function configOf(siteDir: string, m: Manifest, node: string): Pick<PlannedNode, 'config' | 'configProblem'> {
  const a = m.artifacts.find((x) => x.kind === 'user-data' && x.node === node);
  if (!a) return { configProblem: 'the manifest lists no user-data for it' };
  const bad = artifactPathProblem(a.path);
  if (bad) return { configProblem: `its user-data path ${bad}` };
  if (!/^[0-9a-f]{64}$/.test(a.sha256)) return { configProblem: 'its user-data has no valid sha256 in the manifest' };
  const config = { path: a.path, sha256: a.sha256, bytes: a.bytes };
  const read = readConfigSync(siteDir, a.path);
  if ('problem' in read) return { config, configProblem: `${a.path}: ${read.problem}` };
  if (sha256Hex(read.data) !== a.sha256 || read.data.byteLength !== a.bytes) return { config, configProblem: `${a.path} does not match its sha256 in the manifest (changed since the build; rebuild the site)` };
  return { config };
}

/**
 * Read the built sites and the catalogue, verify every netboot asset the nodes take, and say
 * which node gets what. Throws EnvironmentError (exit 3) for a site that is not built or a
 * missing catalogue; a node that cannot be served is a warning, not an error.
 */
export async function loadServePlan(o: PlanOptions): Promise<ServePlan> {
  const outDir = resolve(o.outDir);
  for (const s of o.sites) if (!NAME.test(s)) throw new UsageError(`--site ${excerpt(s)} is not a site ID`);
  const sites = o.all ? builtSites(outDir) : [...new Set(o.sites)];
  if (sites.length === 0) throw new UsageError('give --site ID (repeatable) or --all');
  if (!existsSync(o.catalogueDir) || !statSync(o.catalogueDir).isDirectory()) {
    throw new EnvironmentError(`${resolve(o.catalogueDir)}: no catalogue there; serve reads images.lock and each hardware class's netboot assets from the catalogue the sites were built from (--catalogue DIR)`);
  }
  const manifests = new Map<string, Manifest>();
  for (const s of sites) manifests.set(s, await siteManifest(outDir, s));
  const { plans } = await planFleet(o.catalogueDir);
  const needs = imageNeeds(plans.filter((p) => manifests.has(p.id)));
  const v: Verifier = { lock: readLock(o.catalogueDir), cacheDir: o.cacheDir, allowStandin: o.allowStandin === true, done: new Map() };
  const byNeed = new Map<ImageNeed, Promise<Netboot | NetbootProblem>>();

  const nodes: PlannedNode[] = [];
  const warnings: string[] = [];
  for (const site of sites) {
    const m = manifests.get(site)!;
    const siteDir = join(outDir, site);
    const inCatalogue = plans.some((p) => p.id === site);
    for (const n of m.nodes) {
      const mac = typeof n.mac === 'string' ? canonicalMac(n.mac) : undefined;
      const need = needs.find((x) => x.sites.includes(site) && x.hardwareClass === n.hardwareClass && x.os === m.os);
      const node: PlannedNode = {
        site,
        node: n.name,
        os: m.os,
        version: need?.version ?? m.osVersion,
        arch: n.arch,
        hardwareClass: n.hardwareClass,
        ...(mac ? { mac } : {}),
        siteDir,
      };
      if (!NAME.test(n.name)) node.macProblem = `node name ${excerpt(n.name)} is not a DNS label`;
      else if (n.mac === undefined) node.macProblem = 'the catalogue gives it no MAC, so a network boot cannot tell it from other machines; give it one (nodes[].mac) and rebuild';
      else if (!mac) node.macProblem = `its MAC ${excerpt(n.mac)} is not a MAC address`;
      Object.assign(node, configOf(siteDir, m, n.name));
      const boot = m.bootMedia?.find((b) => b.hardwareClass === n.hardwareClass);
      const needBoot = need?.assets.find((a) => a.use === 'boot');
      if (!need) {
        node.netbootProblem = {
          reason: `the catalogue has no hardware class ${n.hardwareClass} for site ${site}`,
          fix: 'serve with the catalogue the site was built from, or rebuild the site',
          detail: inCatalogue ? `site ${site} in the catalogue no longer has ${m.os} nodes of class ${n.hardwareClass}; rebuild the site` : `site ${site} is not in the catalogue ${resolve(o.catalogueDir)}`,
        };
      } else if (boot && needBoot && boot.asset !== needBoot.path) {
        node.netbootProblem = {
          reason: `site ${site} was built for another ${n.hardwareClass} image than the catalogue now names`,
          fix: `rebuild the site: edgeimg build --site ${site}`,
          detail: `the manifest names ${boot.asset}, the catalogue ${needBoot.path}; rebuild the site (edgeimg build --site ${site})`,
        };
      } else {
        let p = byNeed.get(need);
        if (!p) byNeed.set(need, (p = netbootOf(v, need)));
        const r = await p;
        if ('reason' in r) node.netbootProblem = r;
        else node.netboot = r;
      }
      nodes.push(node);
    }
  }

  const claims = new Map<string, PlannedNode[]>();
  for (const n of nodes) if (n.mac && !n.macProblem) claims.set(n.mac, [...(claims.get(n.mac) ?? []), n]);
  const byMac = new Map<string, PlannedNode>();
  const sharedMacs = new Map<string, PlannedNode[]>();
  for (const [mac, ns] of claims) {
    if (ns.length === 1) byMac.set(mac, ns[0]!);
    else {
      sharedMacs.set(mac, ns);
      for (const n of ns) n.macProblem = `its MAC ${mac} is also that of ${ns.filter((x) => x !== n).map((x) => `${x.site}/${x.node}`).join(', ')}; none of them is served`;
    }
  }
  for (const n of nodes) {
    const who = `${n.site}/${n.node}`;
    if (n.macProblem) warnings.push(`${who}: cannot be served: ${n.macProblem}`);
    else {
      if (n.netbootProblem) warnings.push(`${who}: cannot boot over the network: ${n.netbootProblem.detail}`);
      if (n.configProblem) warnings.push(`${who}: its config will not be served: ${n.configProblem}`);
    }
  }
  return { outDir, sites, nodes, byMac, sharedMacs, warnings };
}
