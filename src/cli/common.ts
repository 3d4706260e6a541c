// What several commands share: the --json failure object and parsing with positionals.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { OutputError } from '../build/output.js';
import { CatalogueError, EnvironmentError, UsageError } from '../util/diagnostics.js';
import type { Io } from './main.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The one result object --json promises on stdout, for a failure. `extra` goes after `ok`. */
export function failureJson(err: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const kind =
    err instanceof CatalogueError ? 'catalogue' : err instanceof OutputError ? 'output' : err instanceof UsageError ? 'usage' : err instanceof EnvironmentError ? 'environment' : 'internal';
  return {
    ok: false,
    ...extra,
    error: kind,
    ...(err instanceof CatalogueError ? { diagnostics: err.diagnostics, ...(err.wrote ? { wrote: err.wrote } : {}) } : { message: (err as Error)?.message ?? String(err) }),
  };
}

/** --json promises one result object on stdout, failures included. */
export async function withJson<T>(json: boolean | undefined, io: Io, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (json) io.out(`${JSON.stringify(failureJson(err))}\n`);
    throw err;
  }
}

/** parseArgs with a command's shared options and positionals; a parse error is a usage error. */
export function parseWithPositionals<C extends Options, T extends Options>(
  shared: C,
  args: string[],
  options: T,
): ReturnType<typeof parseArgs<{ args: string[]; options: C & T; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args, options: { ...shared, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
