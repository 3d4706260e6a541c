// `edgeimg` as a separate process running the TypeScript sources (node --import tsx), for tests
// that need real concurrency, signals or closed pipes.
import { main } from '../../src/cli/main.js';

for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
process.exitCode = await main(process.argv.slice(2));
