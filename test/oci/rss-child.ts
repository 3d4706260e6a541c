// `edgeimg ARGS` in a process of its own that reports its peak resident memory on its last
// stderr line (MAX_RSS_KB n): for the test that pushing or pulling a file far larger than a
// chunk never holds the file in memory.
import { main } from '../../src/cli/main.js';

const code = await main(process.argv.slice(2));
process.stderr.write(`\nMAX_RSS_KB ${process.resourceUsage().maxRSS}\n`);
process.exitCode = code;
