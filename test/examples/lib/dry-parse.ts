// Runs an edgeimg command line through the real CLI up to its argument parser and stops there:
// the command's own option table (node:util parseArgs, strict) decides whether every flag exists
// and takes a value or not, and nothing is built, verified or pushed.
//
// A test file wires it in with
//   vi.mock('../../src/cli/main.js', async (original) => (await import('./lib/dry-parse.js')).stopAtParse(await original()));
// so that every command module's `parse` (imported from ./main.js) is the stopping one.

import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as MainModule from '../../../src/cli/main.js';

export type ParseOutcome = { ok: true; values: Record<string, unknown> } | { ok: false; message: string };

class DryRunStop extends Error {
  constructor() {
    super('dry parse: stopped after argument parsing');
  }
}

const state: { last?: ParseOutcome; main?: typeof MainModule.main } = {};

/** The module that replaces src/cli/main.ts: the real one with a `parse` that stops the command. */
export function stopAtParse(real: typeof MainModule): typeof MainModule {
  state.main = real.main;
  return {
    ...real,
    parse: ((args: string[], options: Parameters<typeof real.parse>[1]) => {
      try {
        state.last = { ok: true, values: real.parse(args, options).values as Record<string, unknown> };
      } catch (err) {
        state.last = { ok: false, message: (err as Error).message };
      }
      throw new DryRunStop();
    }) as typeof real.parse,
  };
}

const CLI_DIR = fileURLToPath(new URL('../../../src/cli/', import.meta.url));
let commandsLoaded = false;

/**
 * Imports every command module from here first. A command module that the real main() imported
 * itself would be bound to the real main module (vitest hands the original to modules in an
 * import cycle with it) and so to the real `parse`: the command would run.
 */
async function loadCommandModules(): Promise<void> {
  if (commandsLoaded) return;
  for (const f of readdirSync(CLI_DIR).filter((n) => n.endsWith('.ts') && n !== 'main.ts').sort()) {
    await import(/* @vite-ignore */ new URL(f.replace(/\.ts$/, '.js'), new URL('../../../src/cli/', import.meta.url)).href);
  }
  commandsLoaded = true;
}

/** Parses `argv` (without "edgeimg") the way `edgeimg` would, without running the command. */
export async function dryParse(argv: string[]): Promise<ParseOutcome> {
  if (!state.main) await import('../../../src/cli/main.js'); // loads the mocked module
  if (!state.main) throw new Error('dry-parse: src/cli/main.js is not mocked with stopAtParse (see the header)');
  await loadCommandModules();
  state.last = undefined;
  let err = '';
  // a command that got past the stop must not reach the network (publish, images pull)
  const realFetch = globalThis.fetch;
  globalThis.fetch = (() => Promise.reject(new Error('dry parse: no network'))) as typeof fetch;
  try {
    await state.main(argv, { out: () => {}, err: (s) => (err += s) });
  } finally {
    globalThis.fetch = realFetch;
  }
  if (state.last) return state.last;
  // the command failed before its parser ran: an unknown command, or a command that parses
  // its arguments some other way (then this check must learn it)
  return { ok: false, message: `edgeimg ${argv[0] ?? ''} did not reach its argument parser: ${err.split('\n')[0]}` };
}
