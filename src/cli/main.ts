// The edgeimg command: argument parsing and output only. Everything it does is a library
// call a CI script could make itself (see src/index.ts).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CatalogueError, EnvironmentError, UsageError, VerifyError } from '../util/diagnostics.js';
import { generator } from '../version.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, environment: 3 } as const;

const USAGE = `Usage:
  edgeimg validate [--catalogue DIR] [--strict] [--json]
  edgeimg build (--site ID [--site ID ...] | --all [--shard K/N]) [--catalogue DIR] [--out DIR]
                [--secrets DIR] [--media iso,img] [--strict] [--json]
  edgeimg verify --site ID [--site ID ...] [--out DIR] [--boot] [--jobs N] [--timeout S]
                [--junit FILE] [--json]

Options:
  --catalogue DIR   catalogue directory (default ./catalogue)
  --out DIR         output directory (default ./out)
  --secrets DIR     site secrets directory, kept out of git (default ./secrets, or $EDGEIMG_SECRETS_DIR)
  --media LIST      seed media to bake per node: iso (default), img, or iso,img
  --strict          treat catalogue warnings (e.g. an install disk that can name a USB stick) as errors
  --jobs N          QEMU boots at a time (default: number of cores)
  --timeout S       hard limit per QEMU boot in seconds (default 120)
  --json            print one machine-readable result object on stdout
  --debug           show stack traces for unexpected errors
Exit: 0 ok, 1 invalid catalogue or failed check, 2 usage error, 3 missing host tool or environment problem.`;

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

type Options = NonNullable<ParseArgsConfig['options']>;
const common = { debug: { type: 'boolean' }, json: { type: 'boolean' } } as const;

export function parse<T extends Options>(args: string[], options: T): ReturnType<typeof parseArgs<{ args: string[]; options: T & typeof common; strict: true }>> {
  try {
    return parseArgs({ args, options: { ...options, ...common }, allowPositionals: false, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  const debug = rest.includes('--debug');
  try {
    switch (command) {
      // each command loads only its own modules: `build` never pays for the verifier
      case 'validate':
        return await (await import('./validate.js')).runValidate(rest, io);
      case 'build':
        return await (await import('./build.js')).runBuild(rest, io);
      case 'verify':
        return await (await import('./verify.js')).runVerify(rest, io);
      case '--version':
      case 'version':
        io.out(`${generator().version}\n`);
        return EXIT.ok;
      case '--help':
      case '-h':
      case 'help':
        io.out(`${USAGE}\n`);
        return EXIT.ok;
      default:
        throw new UsageError(command ? `unknown command "${command}"` : 'no command given');
    }
  } catch (err) {
    return report(err, io, debug);
  }
}

function report(err: unknown, io: Io, debug: boolean): number {
  if (err instanceof CatalogueError) {
    io.err(`${err.message}\n`);
    io.err(`edgeimg: ${err.diagnostics.length} error${err.diagnostics.length === 1 ? '' : 's'}; nothing was written\n`);
    return EXIT.failed;
  }
  if (err instanceof UsageError) {
    io.err(`edgeimg: ${err.message}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  if (err instanceof EnvironmentError) {
    io.err(`edgeimg: ${err.message}\n`);
    return EXIT.environment;
  }
  if (err instanceof VerifyError) {
    io.err(`edgeimg: ${err.message}\n`);
    return EXIT.failed;
  }
  const e = err as Error;
  io.err(`edgeimg: ${debug && e?.stack ? e.stack : `internal error: ${e?.message ?? String(err)}`}\n`);
  if (!debug) io.err('edgeimg: run again with --debug for details\n');
  return EXIT.failed;
}
