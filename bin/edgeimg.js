#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

// A closed stdout or stderr (a pipe whose reader went away) must never kill a build halfway
// through swapping sites into place: the writes fail, the work goes on.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});

process.exitCode = await main(process.argv.slice(2));
