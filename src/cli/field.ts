// `edgeimg inspect` and `edgeimg flash`: the field technician's two checks on a stick.

import { flashClassStick, flashSeed } from '../field/flash.js';
import { resolveCacheDir } from '../images/cache.js';
import { inspectStick } from '../field/inspect.js';
import { UsageError } from '../util/diagnostics.js';
import { EXIT, parse, type Io } from './main.js';
import { parseArgs } from 'node:util';

function positional(args: string[], options: Parameters<typeof parse>[1], what: string): { values: Record<string, unknown>; path: string } {
  let r;
  try {
    r = parseArgs({ args, options: { ...options, debug: { type: 'boolean' }, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (r.positionals.length !== 1) throw new UsageError(`give exactly one ${what}`);
  return { values: r.values as Record<string, unknown>, path: r.positionals[0]! };
}

export async function runInspect(args: string[], io: Io): Promise<number> {
  const { values, path } = positional(
    args,
    {
      out: { type: 'string', default: 'out' },
      site: { type: 'string' },
      node: { type: 'string' },
      catalogue: { type: 'string', default: 'catalogue' },
      secrets: { type: 'string', default: process.env.EDGEIMG_SECRETS_DIR ?? 'secrets' },
    },
    'stick or image PATH',
  );
  const r = await inspectStick(path, {
    outDir: values.out as string,
    expectSite: values.site as string | undefined,
    expectNode: values.node as string | undefined,
    // the manifest compared with must be signed by the fleet key (catalogue signing.pub)
    catalogueDir: values.catalogue as string,
    secretsDir: values.secrets as string,
  });
  if (values.json) io.out(`${JSON.stringify(r)}\n`);
  const what =
    r.kind === 'seed-img' ? 'seed stick (FAT32)' : r.kind === 'seed-iso' ? 'seed ISO' : r.kind === 'kairos-stick' ? 'Kairos one-stick (live ISO + config.yaml)' : r.kind === 'class-boot' ? 'class boot stick' : 'unknown medium';
  if (r.site && r.node) {
    io.err(`${path}: ${what} for ${r.site} node ${r.node}${r.hostname ? ` (hostname ${r.hostname}` : ''}${r.mac ? `, MAC ${r.mac}` : ''}${r.hostname ? ')' : ''}${r.os ? `, ${r.os}` : ''}\n`);
  } else if (r.bootMedium) {
    const b = r.bootMedium;
    io.err(`${path}: ${what} of hardware class ${b.hardwareClass}, ${b.os} ${b.version} (${b.name})${b.standin ? ` [TEST STAND-IN ${b.standin}]` : ''}\n`);
  } else io.err(`${path}: ${what}\n`);
  for (const n of r.notes) io.err(`  ok: ${n}\n`);
  for (const p of r.problems) io.err(`  PROBLEM: ${p}\n`);
  io.err(r.ok ? `edgeimg: ${path} is the right, intact stick\n` : `edgeimg: do not use ${path}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}\n`);
  return r.ok ? EXIT.ok : EXIT.failed;
}

export async function runFlash(args: string[], io: Io): Promise<number> {
  const { values, path } = positional(
    args,
    { out: { type: 'string', default: 'out' }, site: { type: 'string' }, node: { type: 'string' }, class: { type: 'string' }, cache: { type: 'string' }, force: { type: 'boolean' } },
    'DEVICE (or image file)',
  );
  if (!values.site || (!values.node && !values.class)) throw new UsageError('give --site ID and --node NAME (a seed stick) or --class NAME (a class boot stick)');
  if (values.node && values.class) throw new UsageError('give --node (a seed stick) or --class (a class boot stick), not both');
  const tty = process.stderr.isTTY === true;
  let last = -1;
  const common = {
    outDir: values.out as string,
    site: values.site as string,
    device: path,
    force: values.force as boolean | undefined,
    progress: (phase: 'write' | 'verify', done: number, total: number) => {
      const pct = Math.floor((done / total) * 100);
      if (!tty || pct === last) return;
      last = pct;
      io.err(`\r${phase === 'write' ? 'writing  ' : 'verifying'} ${String(pct).padStart(3)}%${done === total ? '\n' : ''}`);
      if (done === total) last = -1;
    },
  };
  if (values.class) {
    const r = await flashClassStick({ ...common, hardwareClass: values.class as string, cacheDir: resolveCacheDir(values.cache as string | undefined) });
    if (values.json) io.out(`${JSON.stringify({ ok: true, ...r })}\n`);
    io.err(`edgeimg: wrote the ${values.class} boot stick (${r.name}) to ${path} (${r.bytes} bytes) and read it back: sha256 ${r.sha256} matches\n`);
    return EXIT.ok;
  }
  const r = await flashSeed({ ...common, node: values.node as string });
  if (values.json) io.out(`${JSON.stringify({ ok: true, ...r })}\n`);
  io.err(`edgeimg: wrote ${values.site}/${values.node}'s seed stick to ${path} (${r.bytes} bytes) and read it back: sha256 ${r.sha256} matches\n`);
  return EXIT.ok;
}
