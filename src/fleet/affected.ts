// `edgeimg affected`: the sites whose build inputs differ between two git revisions of the
// catalogue repository. Each revision's tree is read with `git archive` into a private
// temporary directory (the work tree, index and refs are never touched), planned like a
// build plans it, and each site's catalogue input lines (src/build/inputs.ts catalogueLines:
// the resolved plan, the content of the overlays it takes, its class boot image pins) plus the
// fleet signing key the catalogue pins are compared. No secrets are read: a secrets change
// touches one site and an incremental build finds it on its own.
//
// Because the comparison is of meaning (the resolved plan), a comment or layout edit lists no
// site, an edited hardware class lists every site whose nodes use it, and a fleet default
// lists every site.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { execa } from 'execa';
import { planFleet } from '../catalogue/index.js';
import { bootDigestLines, pinnedClassSticks } from '../build/boot-media.js';
import { catalogueLines, overlayDigestsOf } from '../build/inputs.js';
import { stickKeyOf } from '../build/site.js';
import { CatalogueError, EnvironmentError, UsageError, type Diagnostic } from '../util/diagnostics.js';
import { sha256Hex } from '../util/fsx.js';

export interface AffectedOptions {
  /** The catalogue directory as in the work tree (default ./catalogue); its repository is used. */
  catalogueDir?: string;
  base: string;
  /** Default HEAD. */
  head?: string;
  /** Shard size cap for a CI matrix: at most this many shards (default 256, GitHub's matrix limit). */
  maxJobs?: number;
  /** Where git runs (default: the catalogue directory). */
  cwd?: string;
}

export interface AffectedShard {
  index: number;
  count: number;
  shard: string;
  sites: string[];
  /** `--site a --site b`: ready for a build or verify command line. */
  siteArgs: string;
}

export interface AffectedResult {
  ok: true;
  base: string;
  head: string;
  /** The catalogue's path inside the repository. */
  catalogue: string;
  /** Every site of head whose inputs differ from base (new sites included), sorted. */
  sites: string[];
  /** Sites in base that head no longer has. */
  removed: string[];
  /** True when every site of head is listed (a fleet-wide change). */
  all: boolean;
  changes: Array<{ site: string; reasons: string[] }>;
  shards: AffectedShard[];
  /** Sites in head (for the "N of M" line). */
  total: number;
}

interface RevisionPlan {
  sites: Map<string, { lines: string[]; inputFiles: string[] }>;
  /** Catalogue diagnostics when the revision's catalogue is invalid. */
  invalid?: Diagnostic[];
}

async function git(cwd: string, args: string[]): Promise<string> {
  try {
    const r = await execa('git', args, { cwd, timeout: 120_000, stripFinalNewline: true, maxBuffer: 64 << 20 });
    return r.stdout;
  } catch (err) {
    const e = err as { code?: string; stderr?: string; shortMessage?: string };
    if (e.code === 'ENOENT') throw new EnvironmentError('git is not installed (apt-get install git): edgeimg affected reads the catalogue with git');
    throw err;
  }
}

async function resolveRev(cwd: string, ref: string, flag: string): Promise<string> {
  try {
    return await git(cwd, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`]);
  } catch (err) {
    if (err instanceof EnvironmentError) throw err;
    throw new UsageError(
      `${flag} ${ref}: no such commit in ${cwd} (a shallow clone lacks history: fetch it, e.g. actions/checkout with fetch-depth: 0, or git fetch origin ${ref})`,
    );
  }
}

/** Read a revision's tree into `dir` with git archive (nothing in the repository changes). */
async function extract(cwd: string, rev: string, dir: string): Promise<void> {
  const tar = `${dir}.tar`;
  await git(cwd, ['archive', '--format=tar', '-o', tar, rev]);
  await execa('tar', ['-x', '--no-same-owner', '--no-same-permissions', '-f', tar, '-C', dir], { timeout: 300_000 });
  await rm(tar, { force: true });
}

async function planRevision(treeRoot: string, catalogueRel: string, fleetPub: (root: string) => string | undefined): Promise<RevisionPlan> {
  const catDir = join(treeRoot, catalogueRel);
  if (!existsSync(catDir)) return { sites: new Map(), invalid: [{ file: catalogueRel, line: 1, col: 1, message: 'catalogue directory not found in this revision' }] };
  let planned;
  try {
    planned = await planFleet(catDir);
  } catch (err) {
    if (err instanceof CatalogueError) return { sites: new Map(), invalid: err.diagnostics };
    throw err;
  }
  const { catalogue, plans, overlays } = planned;
  const sticks = pinnedClassSticks(plans, catDir);
  const signer = fleetPub(catDir);
  const sites = new Map<string, { lines: string[]; inputFiles: string[] }>();
  for (const plan of plans) {
    const extra = bootDigestLines(plan, sticks, (n) => stickKeyOf(plan, n));
    const lines = catalogueLines({ root: catalogue.root, overlayDigests: overlayDigestsOf([plan], (p) => overlays.get(p)) }, plan, extra);
    if (signer) lines.push(`signer ${signer}`);
    sites.set(plan.id, { lines, inputFiles: plan.inputFiles.map((f) => relative(treeRoot, f)) });
  }
  return { sites };
}

/** The fleet public key the catalogue pins (catalogue/signing.pub), as its digest. */
function pinnedSigner(catDir: string): string | undefined {
  const p = join(catDir, 'signing.pub');
  return existsSync(p) ? sha256Hex(readFileSync(p, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')) : undefined;
}

/** Why a site's lines differ, in words, with the changed files it reads. */
function reasonsOf(before: string[], after: string[], changedFiles: Set<string>, inputFiles: string[]): string[] {
  const key = (l: string): string => l.split(' ').slice(0, l.startsWith('boot ') || l.startsWith('overlay ') ? 2 : 1).join(' ');
  const b = new Map(before.map((l) => [key(l), l]));
  const a = new Map(after.map((l) => [key(l), l]));
  const out: string[] = [];
  for (const k of new Set([...b.keys(), ...a.keys()])) {
    if (b.get(k) === a.get(k)) continue;
    if (k === 'plan') {
      const files = inputFiles.filter((f) => changedFiles.has(f));
      out.push(files.length > 0 ? `catalogue: ${files.join(', ')}` : 'resolved site plan');
    } else if (k.startsWith('overlay ')) out.push(`${!b.has(k) ? 'overlay added' : !a.has(k) ? 'overlay removed' : 'overlay'}: ${k.slice('overlay '.length)}`);
    else if (k.startsWith('boot ')) out.push(`class boot image pin: ${k.slice('boot '.length)}`);
    else if (k === 'signer') out.push('fleet signing key (signing.pub)');
    else out.push(k);
  }
  return out;
}

export function shardsOf(sites: string[], maxJobs: number): AffectedShard[] {
  const count = Math.min(maxJobs, sites.length);
  const shards: AffectedShard[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    // contiguous, sizes differing by at most one
    const size = Math.floor(sites.length / count) + (i < sites.length % count ? 1 : 0);
    const part = sites.slice(at, at + size);
    at += size;
    shards.push({ index: i + 1, count, shard: `${i + 1}/${count}`, sites: part, siteArgs: part.map((s) => `--site ${s}`).join(' ') });
  }
  return shards;
}

export async function affected(opts: AffectedOptions): Promise<AffectedResult> {
  const catalogueDir = resolve(opts.catalogueDir ?? 'catalogue');
  const maxJobs = opts.maxJobs ?? 256;
  if (!Number.isInteger(maxJobs) || maxJobs < 1) throw new UsageError(`--max-jobs must be a whole number >= 1, got ${opts.maxJobs}`);
  const cwd = resolve(opts.cwd ?? (existsSync(catalogueDir) ? catalogueDir : '.'));
  let top: string;
  try {
    top = await git(cwd, ['rev-parse', '--show-toplevel']);
  } catch (err) {
    if (err instanceof EnvironmentError) throw err;
    throw new EnvironmentError(`${cwd} is not inside a git repository: edgeimg affected compares two git revisions of the catalogue`);
  }
  const catalogueRel = relative(top, catalogueDir);
  if (catalogueRel.startsWith('..') || isAbsolute(catalogueRel)) throw new UsageError(`--catalogue ${opts.catalogueDir} is not inside the repository ${top}`);
  const base = await resolveRev(top, opts.base, '--base');
  const head = await resolveRev(top, opts.head ?? 'HEAD', '--head');
  const work = await mkdtemp(join(tmpdir(), 'edgeimg-affected-'));
  try {
    const trees = { base: join(work, 'base'), head: join(work, 'head') };
    await Promise.all([mkdir(trees.base), mkdir(trees.head)]);
    await Promise.all([extract(top, base, trees.base), extract(top, head, trees.head)]);
    const changedFiles = new Set((await git(top, ['diff', '--name-only', '-z', base, head])).split('\0').filter(Boolean));
    const before = await planRevision(trees.base, catalogueRel || '.', pinnedSigner);
    const after = await planRevision(trees.head, catalogueRel || '.', pinnedSigner);
    if (after.invalid) {
      // the head revision's catalogue does not build: say where, as validate would
      // the temporary tree's paths read as paths in the repository
      const strip = (text: string): string => text.split(`${trees.head}/`).join('').split(`${relative(process.cwd(), trees.head)}/`).join('');
      throw new CatalogueError(after.invalid.map((d) => ({ ...d, file: strip(d.file), message: strip(d.message) })));
    }
    const changes: AffectedResult['changes'] = [];
    for (const [site, a] of after.sites) {
      const b = before.sites.get(site);
      if (!b) changes.push({ site, reasons: [before.invalid ? 'the base revision has no valid catalogue' : 'new site'] });
      else {
        const reasons = reasonsOf(b.lines, a.lines, changedFiles, a.inputFiles);
        if (reasons.length > 0) changes.push({ site, reasons });
      }
    }
    changes.sort((x, y) => (x.site < y.site ? -1 : x.site > y.site ? 1 : 0));
    const sites = changes.map((c) => c.site);
    const removed = [...before.sites.keys()].filter((s) => !after.sites.has(s)).sort();
    return {
      ok: true,
      base,
      head,
      catalogue: catalogueRel || '.',
      sites,
      removed,
      all: sites.length > 0 && sites.length === after.sites.size,
      changes,
      shards: shardsOf(sites, maxJobs),
      total: after.sites.size,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

