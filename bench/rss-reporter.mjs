// Preloaded into the benchmarked CLI process: reports its peak RSS (KiB) on stderr at exit.
import { writeSync } from 'node:fs';

process.on('exit', () => {
  writeSync(2, `EDGEIMG_BENCH_MAXRSS=${process.resourceUsage().maxRSS}\n`);
});
