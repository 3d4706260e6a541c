// The boot image cache per hardware class: what each class needs (./assets.ts), what is cached
// and pinned (./cache.ts, ./lock.ts), filling it offline (importImages) or online (pullImages,
// ./pull.ts). See docs/images.md.

import { basename } from 'node:path';
import { planFleet } from '../catalogue/index.js';
import type { OsName } from '../catalogue/plan.js';
import { UsageError } from '../util/diagnostics.js';
import { DEFAULT_SOURCES, imageNeeds, type AssetSources, type AssetUse, type BootAsset, type ImageNeed } from './assets.js';
import { assetState, pinMismatch, readFileChunks, storeAsset, type AssetStatus } from './cache.js';
import { readLock, writePins, type ImagesLock, type Pin } from './lock.js';
import { DEFAULT_TIMEOUT_MS, pullAssets, type HttpOptions, type PullResult } from './pull.js';
import { installStandins, readStandinLock, standinMarker, type InstalledStandin, type StandinKind } from './standin.js';

export * from './assets.js';
export * from './cache.js';
export * from './lock.js';
export * from './pull.js';
export * from './standin.js';

export interface Selection {
  hardwareClass?: string;
  os?: OsName;
  /** Talos version, or a Kairos version (v3.5.1) or version key (v3.5.1-k3sv1.33.4+k3s1). */
  version?: string;
}

const describe = (n: ImageNeed): string => `${n.os} ${n.version}${n.kairos ? ` (${n.kairos.flavor})` : ''}`;

/** The needs a selection names; a selection that names nothing is a usage error saying what exists. */
export function selectNeeds(needs: ImageNeed[], sel: Selection, knownClasses: readonly string[]): ImageNeed[] {
  let out = needs;
  if (sel.hardwareClass !== undefined) {
    if (!knownClasses.includes(sel.hardwareClass)) {
      throw new UsageError(`unknown hardware class "${sel.hardwareClass}" (known: ${[...knownClasses].sort().join(', ') || 'none'})`);
    }
    out = out.filter((n) => n.hardwareClass === sel.hardwareClass);
    if (out.length === 0) throw new UsageError(`hardware class ${sel.hardwareClass} is used by no site, so it needs no boot images`);
  }
  const before = out;
  if (sel.os !== undefined) out = out.filter((n) => n.os === sel.os);
  if (sel.version !== undefined) out = out.filter((n) => n.version === sel.version || n.kairos?.version === sel.version);
  if (out.length === 0) {
    const what = [sel.hardwareClass ? `hardware class ${sel.hardwareClass}` : 'any hardware class', sel.os, sel.version].filter(Boolean).join(' with ');
    throw new UsageError(`no site runs ${what} (in use: ${[...new Set(before.map((n) => `${n.hardwareClass} ${describe(n)}`))].join('; ') || 'nothing'})`);
  }
  return out;
}

async function fleetNeeds(catalogueDir: string, sources: AssetSources): Promise<{ needs: ImageNeed[]; classes: string[] }> {
  const { plans, catalogue } = await planFleet(catalogueDir);
  return { needs: imageNeeds(plans, sources), classes: [...catalogue.hardware.keys()] };
}

// ------------------------------------------------------------------------------------------
// list
// ------------------------------------------------------------------------------------------

export interface ListedAsset extends BootAsset {
  status: AssetStatus;
  pin?: Pin;
  /** What the cached file hashes to. */
  actual?: { sha256: string; size: number };
  problem?: string;
  /** A cached, unpinned file that is a stand-in pinned in the cache's standin.lock. */
  standin?: StandinKind | 'netboot';
}

export interface ListedNeed extends Omit<ImageNeed, 'assets'> {
  assets: ListedAsset[];
}

export interface ListReport {
  cache: string;
  lock: string;
  needs: ListedNeed[];
  /** Pins in images.lock that no site needs (kept; delete them by hand). */
  unusedPins: string[];
  counts: Record<AssetStatus, number>;
  /** No cached file contradicts its pin. */
  ok: boolean;
  /** Every asset is cached and matches its pin. */
  complete: boolean;
}

export interface ListOptions extends Selection {
  catalogueDir: string;
  cacheDir: string;
  sources?: Partial<AssetSources>;
}

export async function listImages(opts: ListOptions): Promise<ListReport> {
  const { needs: all, classes } = await fleetNeeds(opts.catalogueDir, { ...DEFAULT_SOURCES, ...opts.sources });
  const needs = opts.hardwareClass || opts.os || opts.version ? selectNeeds(all, opts, classes) : all;
  const lock = readLock(opts.catalogueDir);
  const standins = readStandinLock(opts.cacheDir);
  const states = new Map<string, Awaited<ReturnType<typeof assetState>>>();
  const counts: Record<AssetStatus, number> = { ok: 0, mismatch: 0, 'cached-unpinned': 0, missing: 0, 'not-pinned': 0 };
  const listed: ListedNeed[] = [];
  for (const need of needs) {
    const assets: ListedAsset[] = [];
    for (const a of need.assets) {
      let s = states.get(a.path);
      if (!s) {
        s = await assetState(opts.cacheDir, a.path, lock.pins.get(a.path));
        states.set(a.path, s);
        counts[s.status]++;
      }
      const sp = s.status === 'cached-unpinned' ? standins.pins.get(a.path) : undefined;
      const standin = sp && s.actual && pinMismatch(sp, s.actual) === undefined ? (standinMarker(s.file)?.standin ?? 'netboot') : undefined;
      assets.push({
        ...a,
        status: s.status,
        ...(s.pin ? { pin: s.pin } : {}),
        ...(s.actual ? { actual: s.actual } : {}),
        ...(s.problem ? { problem: s.problem } : {}),
        ...(standin ? { standin } : {}),
      });
    }
    listed.push({ ...need, assets });
  }
  const used = new Set(all.flatMap((n) => n.assets.map((a) => a.path)));
  return {
    cache: opts.cacheDir,
    lock: lock.path,
    needs: listed,
    unusedPins: [...lock.pins.keys()].filter((k) => !used.has(k)).sort(),
    counts,
    ok: counts.mismatch === 0,
    complete: states.size === counts.ok,
  };
}

// ------------------------------------------------------------------------------------------
// import
// ------------------------------------------------------------------------------------------

export interface ImportOptions extends Selection {
  catalogueDir: string;
  cacheDir: string;
  files: string[];
  /** Treat the (single) file as this asset name instead of its own file name. */
  as?: string;
  repin?: boolean;
  locked?: boolean;
  log?: (line: string) => void;
}

export interface ImportedFile {
  file: string;
  path: string;
  status: 'imported' | 'refused';
  sha256: string;
  size: number;
  pinned?: 'new' | 'kept' | 'replaced';
  message?: string;
}

export interface ImportReport {
  ok: boolean;
  cache: string;
  lock: string;
  files: ImportedFile[];
}

/** Which asset each file is, by its name (or --as); every file is matched before any is copied. */
function matchFiles(needs: ImageNeed[], files: string[], as: string | undefined): Array<{ file: string; asset: BootAsset }> {
  if (files.length === 0) throw new UsageError('give the files to import: edgeimg images import --class NAME FILE...');
  if (as !== undefined && files.length !== 1) throw new UsageError('--as names one file: give exactly one FILE with it');
  const byName = new Map<string, Map<string, BootAsset>>();
  for (const n of needs) for (const a of n.assets) byName.set(a.name, (byName.get(a.name) ?? new Map()).set(a.path, a));
  return files.map((file) => {
    const name = as ?? basename(file);
    const matches = [...(byName.get(name)?.values() ?? [])];
    if (matches.length === 0) {
      const expected = [...byName.keys()].sort().join(', ');
      throw new UsageError(`${file}: ${as ? `--as ${as}` : `"${name}"`} is not an asset of the selection (${needs.map((n) => `${n.hardwareClass} ${describe(n)}`).join('; ')}); expected one of: ${expected} (rename the file, or use --as NAME)`);
    }
    if (matches.length > 1) {
      throw new UsageError(`${file}: "${name}" is an asset of several versions (${matches.map((m) => m.path).join(', ')}); choose one with --os and --version`);
    }
    return { file, asset: matches[0]! };
  });
}

/** Copy files into the cache (hashing on the way); pins are checked, and written when new. */
export async function importImages(opts: ImportOptions): Promise<ImportReport> {
  if (!opts.hardwareClass) throw new UsageError('give --class NAME: the hardware class the files are for');
  const { needs: all, classes } = await fleetNeeds(opts.catalogueDir, DEFAULT_SOURCES);
  const needs = selectNeeds(all, opts, classes);
  const matched = matchFiles(needs, opts.files, opts.as);
  const lock = readLock(opts.catalogueDir);
  const report: ImportReport = { ok: true, cache: opts.cacheDir, lock: lock.path, files: [] };
  const changes = new Map<string, Pin>();
  try {
    for (const { file, asset } of matched) {
      // a pin written by an earlier file of this run counts as the pin
      const pin = changes.get(asset.path) ?? lock.pins.get(asset.path);
      if (!pin && opts.locked) {
        report.ok = false;
        report.files.push({ file, path: asset.path, status: 'refused', sha256: '', size: 0, message: `${file}: refused: ${asset.path} is not pinned in ${lock.path}, and --locked allows no new pins` });
        continue;
      }
      const stored = await storeAsset(opts.cacheDir, asset.path, readFileChunks(file), (d) => {
        if (!pin || opts.repin) return undefined;
        const diff = pinMismatch(pin, d);
        return diff === undefined ? undefined : `${file}: refused: does not match the pin of ${asset.path} in ${lock.path}: ${diff}`;
      });
      const d = stored.digest;
      if (!stored.stored) {
        report.ok = false;
        report.files.push({ file, path: asset.path, status: 'refused', sha256: d.sha256, size: d.size, message: stored.refused });
        continue;
      }
      const pinned = !pin ? 'new' : pinMismatch(pin, d) === undefined ? 'kept' : 'replaced';
      if (pinned !== 'kept') changes.set(asset.path, { sha256: d.sha256, size: d.size });
      opts.log?.(`${file} -> ${stored.file}: sha256 ${d.sha256}, ${d.size} bytes${pinned === 'kept' ? ', matches its pin' : `, pin ${pinned}`}`);
      report.files.push({ file, path: asset.path, status: 'imported', sha256: d.sha256, size: d.size, pinned });
    }
  } finally {
    if (changes.size > 0) writePins(opts.catalogueDir, changes);
  }
  return report;
}

// ------------------------------------------------------------------------------------------
// pull
// ------------------------------------------------------------------------------------------

export interface PullImagesOptions extends Selection {
  catalogueDir: string;
  cacheDir: string;
  sources?: Partial<AssetSources>;
  only?: AssetUse;
  timeoutMs?: number;
  locked?: boolean;
  repin?: boolean;
  log?: (line: string) => void;
  fetch?: HttpOptions['fetch'];
}

export interface PullReport extends Omit<PullResult, 'pins'> {
  cache: string;
  lock: string;
}

/**
 * Register and download what the selection needs. New pins are written to images.lock even when
 * the pull stops on an environment problem half way (what was downloaded and checked stays).
 */
export async function pullImages(opts: PullImagesOptions): Promise<PullReport> {
  const sources: AssetSources = { ...DEFAULT_SOURCES, ...opts.sources };
  const { needs: all, classes } = await fleetNeeds(opts.catalogueDir, sources);
  const needs = opts.hardwareClass || opts.os || opts.version ? selectNeeds(all, opts, classes) : all;
  const lock: ImagesLock = readLock(opts.catalogueDir);
  const result: PullResult = { ok: true, schematics: [], assets: [], pins: new Map() };
  try {
    await pullAssets(
      { needs, ...(opts.only ? { only: opts.only } : {}) },
      {
        cacheDir: opts.cacheDir,
        lock,
        factory: sources.factory,
        http: { timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, ...(opts.fetch ? { fetch: opts.fetch } : {}) },
        ...(opts.locked ? { locked: true } : {}),
        ...(opts.repin ? { repin: true } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      },
      result,
    );
  } finally {
    if (result.pins.size > 0) writePins(opts.catalogueDir, result.pins);
  }
  const { pins: _pins, ...rest } = result;
  return { ...rest, cache: opts.cacheDir, lock: lock.path };
}

// ------------------------------------------------------------------------------------------
// stand-ins (test images; see ./standin.ts)
// ------------------------------------------------------------------------------------------

export interface StandinOptions {
  catalogueDir: string;
  cacheDir: string;
  from: string;
  probeDir?: string;
  log?: (line: string) => void;
}

/** Fill the cache with the stand-in of every class boot asset the catalogue's sites need. */
export async function installStandinImages(opts: StandinOptions): Promise<InstalledStandin[]> {
  const { needs } = await fleetNeeds(opts.catalogueDir, DEFAULT_SOURCES);
  return installStandins({ catalogueDir: opts.catalogueDir, cacheDir: opts.cacheDir, from: opts.from, needs, ...(opts.probeDir ? { probeDir: opts.probeDir } : {}), ...(opts.log ? { log: opts.log } : {}) });
}
