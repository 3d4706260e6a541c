#!/usr/bin/env node
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// A closed stdout or stderr (a pipe whose reader went away) must never kill a build halfway
// through swapping sites into place: the writes fail, the work goes on.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});

/**
 * The CLI: the bundle npm run build makes (dist/edgeimg.cjs, loaded with its V8 code cache: a
 * fraction of the start-up of ~230 separate modules, docs/decisions.md "Start-up"), unless tsc
 * rewrote dist/ after it was made, or --debug asks for stack traces with readable file names and
 * lines; then the modules tsc wrote. A tsc run writes dist/cli/main.js many seconds after it
 * starts; a copy of dist/ that does not keep times (cp -r) writes the two files within
 * milliseconds of each other, in either order: hence the 2 s.
 */
async function cli() {
  const bundle = new URL('../dist/edgeimg.cjs', import.meta.url);
  try {
    const modulesWritten = statSync(new URL('../dist/cli/main.js', import.meta.url)).mtimeMs;
    if (!process.argv.includes('--debug') && statSync(bundle).mtimeMs + 2000 >= modulesWritten) {
      const { requireWithCodeCache } = await import('../dist/util/code-cache.js');
      return requireWithCodeCache(fileURLToPath(bundle));
    }
  } catch (err) {
    if (err?.code !== 'ENOENT') throw err;
  }
  return import('../dist/cli/main.js');
}

process.exitCode = await (await cli()).main(process.argv.slice(2));
