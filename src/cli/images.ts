// `edgeimg images list | import | pull`: argument parsing and printing only (src/images/).

import type { ParseArgsConfig } from 'node:util';
import type { OsName } from '../catalogue/plan.js';
import {
  installStandinImages,
  importImages,
  listImages,
  pullImages,
  resolveCacheDir,
  type AssetStatus,
  type AssetUse,
  type ImportReport,
  type ListReport,
  type PullReport,
} from '../images/index.js';
import { plural, UsageError } from '../util/diagnostics.js';
import { EXIT, type Io } from './main.js';
import { parseWithPositionals, withJson } from './common.js';

type Options = NonNullable<ParseArgsConfig['options']>;

const common = {
  catalogue: { type: 'string', default: 'catalogue' },
  cache: { type: 'string' },
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
} as const;

const selection = {
  class: { type: 'string' },
  os: { type: 'string' },
  version: { type: 'string' },
} as const;

const parse = <T extends Options>(args: string[], options: T) => parseWithPositionals(common, args, options);

function noPositionals(positionals: string[], sub: string): void {
  if (positionals.length > 0) throw new UsageError(`images ${sub} takes no arguments, got "${positionals[0]}"`);
}

function osOf(v: string | undefined): OsName | undefined {
  if (v === undefined) return undefined;
  if (v !== 'talos' && v !== 'kairos') throw new UsageError(`--os accepts talos or kairos, got "${v}"`);
  return v;
}



export async function runImages(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'list':
      return runList(rest, io);
    case 'import':
      return runImport(rest, io);
    case 'pull':
      return runPull(rest, io);
    case 'standin':
      return runStandin(rest, io);
    case undefined:
      throw new UsageError('images needs a subcommand: list, import or pull (edgeimg images --help)');
    default:
      throw new UsageError(`unknown images subcommand "${sub}" (list, import, pull or standin)`);
  }
}

const LABEL: Record<AssetStatus, string> = {
  ok: 'ok',
  mismatch: 'MISMATCH',
  'cached-unpinned': 'cached, not pinned',
  missing: 'missing',
  'not-pinned': 'not pinned',
};

function printList(r: ListReport, io: Io): void {
  const lines: string[] = [`cache ${r.cache}`, `lock  ${r.lock}`];
  for (const n of r.needs) {
    lines.push('');
    lines.push(`${n.hardwareClass}  ${n.os} ${n.version}  (${n.arch} ${n.firmware}; ${plural(n.sites.length, 'site')}, ${plural(n.nodes, 'node')}: ${n.sites.join(', ')})`);
    if (n.talos) lines.push(`  schematic ${n.talos.schematicId}  (installer ${n.talos.installerImage})`);
    if (n.kairos) lines.push(`  release ${n.kairos.stem}${n.kairos.baseImage ? `  (base image ${n.kairos.baseImage})` : ''}`);
    for (const a of n.assets) {
      lines.push(`  ${(a.standin ? `STAND-IN ${a.standin.replace(/-like$/, '')}` : LABEL[a.status]).padEnd(18)} ${a.use.padEnd(7)} ${a.name}`);
      lines.push(`  ${''.padEnd(18)} ${''.padEnd(7)} ${a.url ?? `import only: ${a.source ?? 'no download'}`}`);
      if (a.status === 'mismatch') {
        lines.push(
          `  ${''.padEnd(18)} ${''.padEnd(7)} refused: ${a.problem ?? `expected sha256 ${a.pin!.sha256} (${a.pin!.size} bytes), cached file has ${a.actual!.sha256} (${a.actual!.size} bytes)`}`,
        );
      }
    }
    for (const note of n.notes) lines.push(`  note: ${note}`);
  }
  const c = r.counts;
  const total = Object.values(c).reduce((a, b) => a + b, 0);
  lines.push('');
  lines.push(
    `${plural(total, 'asset')}: ${c.ok} ok, ${c.mismatch} mismatch, ${c['cached-unpinned']} cached but not pinned, ${c.missing} pinned but missing, ${c['not-pinned']} neither cached nor pinned`,
  );
  if (r.unusedPins.length > 0) lines.push(`${plural(r.unusedPins.length, 'pin')} in ${r.lock} no site needs: ${r.unusedPins.join(', ')}`);
  io.out(`${lines.join('\n')}\n`);
}

async function runList(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { ...selection, check: { type: 'boolean' }, factory: { type: 'string' }, 'kairos-releases': { type: 'string' } });
  noPositionals(positionals, 'list');
  const report = await withJson(values.json, io, () =>
    listImages({
      catalogueDir: values.catalogue!,
      cacheDir: resolveCacheDir(values.cache),
      ...(values.class ? { hardwareClass: values.class } : {}),
      ...(values.os ? { os: osOf(values.os) } : {}),
      ...(values.version ? { version: values.version } : {}),
      sources: {
        ...(values.factory ? { factory: values.factory } : {}),
        ...(values['kairos-releases'] ? { kairosReleases: values['kairos-releases'] } : {}),
      },
    }),
  );
  const failed = !report.ok || (values.check === true && !report.complete);
  if (values.json) io.out(`${JSON.stringify({ ...report, ok: !failed })}\n`);
  else printList(report, io);
  if (!report.ok) io.err(`edgeimg: ${plural(report.counts.mismatch, 'cached file')} refused: ${report.counts.mismatch === 1 ? 'it does' : 'they do'} not match images.lock (import or pull a good copy)\n`);
  else if (failed) io.err('edgeimg: --check: not every asset is cached and pinned\n');
  return failed ? EXIT.failed : EXIT.ok;
}

function printImport(r: ImportReport, io: Io): void {
  for (const f of r.files) if (f.status === 'refused') io.err(`edgeimg: ${f.message}\n`);
  const imported = r.files.filter((f) => f.status === 'imported').length;
  const refused = r.files.length - imported;
  io.err(`edgeimg: imported ${plural(imported, 'file')} into ${r.cache}${refused ? `, refused ${refused}` : ''}\n`);
}

async function runImport(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { ...selection, as: { type: 'string' }, pin: { type: 'boolean' }, locked: { type: 'boolean' } });
  if (values.pin && values.locked) throw new UsageError('--pin and --locked contradict each other');
  const report = await withJson(values.json, io, () =>
    importImages({
      catalogueDir: values.catalogue!,
      cacheDir: resolveCacheDir(values.cache),
      files: positionals,
      ...(values.class ? { hardwareClass: values.class } : {}),
      ...(values.os ? { os: osOf(values.os) } : {}),
      ...(values.version ? { version: values.version } : {}),
      ...(values.as ? { as: values.as } : {}),
      ...(values.pin ? { repin: true } : {}),
      ...(values.locked ? { locked: true } : {}),
      log: (line) => io.err(`edgeimg: ${line}\n`),
    }),
  );
  printImport(report, io);
  if (values.json) io.out(`${JSON.stringify(report)}\n`);
  return report.ok ? EXIT.ok : EXIT.failed;
}

function printPull(r: PullReport, io: Io): void {
  for (const s of r.schematics) {
    if (s.status === 'id-mismatch') {
      io.err(
        `edgeimg: ${s.url}: the factory registered schematic ${s.returnedId} for ${s.classes.join(', ')}, but edgeimg computed ${s.id}: the installer images in the rendered configs would not match; nothing of ${s.classes.length === 1 ? 'this class' : 'these classes'} was downloaded\n`,
      );
    }
  }
  for (const a of r.assets) {
    if (a.status === 'refused') io.err(`edgeimg: ${a.message}\n`);
    if (a.status === 'import-only') io.err(`edgeimg: ${a.path}: no download; ${a.message}\n`);
  }
  const n = (s: string): number => r.assets.filter((a) => a.status === s).length;
  io.err(
    `edgeimg: pull ${r.ok ? 'done' : 'FAILED'}: ${plural(r.schematics.filter((s) => s.status === 'registered').length, 'schematic')} registered, ${n('downloaded')} downloaded, ${n('cached')} already cached, ${n('refused')} refused, ${n('skipped') + n('import-only')} skipped\n`,
  );
}

async function runPull(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    ...selection,
    factory: { type: 'string' },
    'kairos-releases': { type: 'string' },
    only: { type: 'string' },
    timeout: { type: 'string' },
    pin: { type: 'boolean' },
    locked: { type: 'boolean' },
  });
  noPositionals(positionals, 'pull');
  if (values.pin && values.locked) throw new UsageError('--pin and --locked contradict each other');
  if (values.only !== undefined && values.only !== 'boot' && values.only !== 'netboot') throw new UsageError(`--only accepts boot or netboot, got "${values.only}"`);
  const timeoutS = values.timeout === undefined ? 30 : Number(values.timeout);
  if (!(timeoutS > 0)) throw new UsageError(`--timeout must be a positive number of seconds, got "${values.timeout}"`);
  for (const [flag, url] of [['--factory', values.factory], ['--kairos-releases', values['kairos-releases']]] as const) {
    if (url !== undefined && !/^https?:\/\/[^/]/.test(url)) throw new UsageError(`${flag} must be an http:// or https:// URL, got "${url}"`);
  }
  const report = await withJson(values.json, io, () =>
    pullImages({
      catalogueDir: values.catalogue!,
      cacheDir: resolveCacheDir(values.cache),
      ...(values.class ? { hardwareClass: values.class } : {}),
      ...(values.os ? { os: osOf(values.os) } : {}),
      ...(values.version ? { version: values.version } : {}),
      sources: {
        ...(values.factory ? { factory: values.factory } : {}),
        ...(values['kairos-releases'] ? { kairosReleases: values['kairos-releases'] } : {}),
      },
      ...(values.only ? { only: values.only as AssetUse } : {}),
      timeoutMs: timeoutS * 1000,
      ...(values.pin ? { repin: true } : {}),
      ...(values.locked ? { locked: true } : {}),
      log: (line) => io.err(`edgeimg: ${line}\n`),
    }),
  );
  printPull(report, io);
  if (values.json) io.out(`${JSON.stringify(report)}\n`);
  return report.ok ? EXIT.ok : EXIT.failed;
}

async function runStandin(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { from: { type: 'string', default: 'images/cache/standin' }, probe: { type: 'string' } });
  noPositionals(positionals, 'standin');
  const rows = await withJson(values.json, io, () =>
    installStandinImages({
      catalogueDir: values.catalogue!,
      cacheDir: resolveCacheDir(values.cache),
      from: values.from!,
      ...(values.probe ? { probeDir: values.probe } : {}),
      log: (line) => io.err(`edgeimg: ${line}\n`),
    }),
  );
  for (const r of rows) if (r.status === 'skipped') io.err(`edgeimg: ${r.hardwareClass} (${r.os} ${r.version}): no stand-in: ${r.reason}\n`);
  const n = rows.filter((r) => r.status === 'installed').length;
  io.err(`edgeimg: ${plural(n, 'stand-in boot image')} in the cache, pinned in its standin.lock (test images, not Talos or Kairos)\n`);
  if (values.json) io.out(`${JSON.stringify({ ok: true, standins: rows })}\n`);
  return EXIT.ok;
}
