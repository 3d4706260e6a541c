// CommonJS files loaded with V8's code cache. Node 20 keeps no compile cache for modules
// (module.enableCompileCache arrived in Node 22), so every start parsed and compiled the CLI
// again, and the large precompiled validators on their first call. The CLI bundle
// (dist/edgeimg.cjs, scripts/bundle.ts) and the files in dist/precompiled/ are loaded through
// here: compiled by vm.Script with the cache in dist/.code-cache/, which `npm run build` writes
// after a warm-up run, so it holds every function a `validate` and a one-site `build` compile,
// not only the top level. A cache is used only for the bytes it was made from (it starts with their
// sha256: V8 itself compares no more than the source's length) and by the V8 that made it
// (V8 rejects others); otherwise the file is compiled as usual, only slower.

import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, relative } from 'node:path';
import vm from 'node:vm';
import { packagePath, packageRoot } from './paths.js';

interface Loaded {
  script: vm.Script;
  digest: Buffer;
  module: { exports: unknown };
  /** The cache was given to V8 and accepted. */
  cached: boolean;
}

// one registry per process, shared by bin/edgeimg.js's copy of this module and the bundle's
const REGISTRY = Symbol.for('edgeimg.codeCache');
const holder = globalThis as { [REGISTRY]?: Map<string, Loaded> };
const registry: Map<string, Loaded> = (holder[REGISTRY] ??= new Map());

export function codeCacheDir(): string {
  return packagePath('dist', '.code-cache');
}

/** The cache file of `file`: its path below the package root, flattened. */
function cacheFile(file: string): string {
  const rel = relative(packageRoot(), file).split(/[\\/]/).join('%');
  return `${codeCacheDir()}/${rel}.v8cache`;
}

/** The V8 data cached for exactly these source bytes, if any. */
function readCache(file: string, digest: Buffer): Buffer | undefined {
  let data: Buffer;
  try {
    data = readFileSync(cacheFile(file));
  } catch {
    return undefined;
  }
  return data.length > digest.length && data.subarray(0, digest.length).equals(digest) ? data.subarray(digest.length) : undefined;
}

/**
 * `require(file)` for a CommonJS file (absolute path), compiled with its code cache when there
 * is one. Loaded once per process, like require.
 */
export function requireWithCodeCache(file: string): unknown {
  const hit = registry.get(file);
  if (hit) return hit.module.exports;
  const bytes = readFileSync(file);
  const digest = createHash('sha256').update(bytes).digest();
  const source = bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8'); // the same string; latin1 decodes ~5x faster
  const cachedData = readCache(file, digest);
  // the wrapper on the file's first line keeps line numbers in stack traces
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData,
    // the bundle has no import() of its own; should a dependency have one, it goes to Node's loader
    ...(vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER ? { importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER } : {}),
  });
  const module = { exports: {} as unknown };
  registry.set(file, { script, digest, module, cached: cachedData !== undefined && !script.cachedDataRejected });
  const wrapper = script.runInThisContext() as (e: unknown, r: NodeRequire, m: { exports: unknown }, f: string, d: string) => void;
  try {
    wrapper(module.exports, createRequire(file), module, file, dirname(file));
  } catch (err) {
    registry.delete(file);
    throw err;
  }
  return module.exports;
}

/** Files loaded so far, and whether each ran from its cache. */
export function codeCacheReport(): Array<{ file: string; cached: boolean }> {
  return [...registry].map(([file, l]) => ({ file, cached: l.cached }));
}

/** Writes the cache of every file loaded so far, with every function compiled until now. */
export function writeCodeCaches(): string[] {
  mkdirSync(codeCacheDir(), { recursive: true });
  const written: string[] = [];
  for (const [file, { script, digest }] of registry) {
    if (!existsSync(file)) continue;
    const target = cacheFile(file);
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, Buffer.concat([digest, script.createCachedData()]));
    renameSync(tmp, target);
    written.push(target);
  }
  return written;
}
