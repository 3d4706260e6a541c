// `edgeimg inspect` and `edgeimg flash`: the field technician's two checks on a stick.

import { flashSeed } from '../field/flash.js';
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
  const { values, path } = positional(args, { out: { type: 'string', default: 'out' }, site: { type: 'string' }, node: { type: 'string' } }, 'stick or image PATH');
  const r = await inspectStick(path, { outDir: values.out as string, expectSite: values.site as string | undefined, expectNode: values.node as string | undefined });
  if (values.json) io.out(`${JSON.stringify(r)}\n`);
  const what = r.kind === 'seed-img' ? 'seed stick (FAT32)' : r.kind === 'seed-iso' ? 'seed ISO' : 'unknown medium';
  if (r.site && r.node) {
    io.err(`${path}: ${what} for ${r.site} node ${r.node}${r.hostname ? ` (hostname ${r.hostname}` : ''}${r.mac ? `, MAC ${r.mac}` : ''}${r.hostname ? ')' : ''}${r.os ? `, ${r.os}` : ''}\n`);
  } else io.err(`${path}: ${what}\n`);
  for (const n of r.notes) io.err(`  ok: ${n}\n`);
  for (const p of r.problems) io.err(`  PROBLEM: ${p}\n`);
  io.err(r.ok ? `edgeimg: ${path} is the right, intact stick\n` : `edgeimg: do not use ${path}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}\n`);
  return r.ok ? EXIT.ok : EXIT.failed;
}

export async function runFlash(args: string[], io: Io): Promise<number> {
  const { values, path } = positional(
    args,
    { out: { type: 'string', default: 'out' }, site: { type: 'string' }, node: { type: 'string' }, force: { type: 'boolean' } },
    'DEVICE (or image file)',
  );
  if (!values.site || !values.node) throw new UsageError('give --site ID and --node NAME');
  const tty = process.stderr.isTTY === true;
  let last = -1;
  const r = await flashSeed({
    outDir: values.out as string,
    site: values.site as string,
    node: values.node as string,
    device: path,
    force: values.force as boolean | undefined,
    progress: (phase, done, total) => {
      const pct = Math.floor((done / total) * 100);
      if (!tty || pct === last) return;
      last = pct;
      io.err(`\r${phase === 'write' ? 'writing  ' : 'verifying'} ${String(pct).padStart(3)}%${done === total ? '\n' : ''}`);
      if (done === total) last = -1;
    },
  });
  if (values.json) io.out(`${JSON.stringify({ ok: true, ...r })}\n`);
  io.err(`edgeimg: wrote ${values.site}/${values.node}'s seed stick to ${path} (${r.bytes} bytes) and read it back: sha256 ${r.sha256} matches\n`);
  return EXIT.ok;
}
