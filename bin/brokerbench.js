#!/usr/bin/env node
// `brokerbench …` (and `npx brokerbench …`): runs src/cli.ts under tsx's loader, found from this
// package's own folder so it works from any working directory, and prints nothing of its own, so
// `compare --format json > out.json` is JSON (`npm run` prints a banner first). Signals are passed on
// and the program's exit code (or the signal it died of) is this process's.

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const loader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const child = spawn(process.execPath, ['--import', loader, cli, ...process.argv.slice(2)], { stdio: 'inherit' });

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
// A Ctrl-C in a terminal reaches the child too (same process group); the CLI takes a second copy
// within 500 ms as the same keypress. A `kill` of this process alone reaches the child only this way.
const forward = (signal) => child.kill(signal);
for (const signal of SIGNALS) process.on(signal, forward);

child.on('error', (error) => {
  process.stderr.write(`brokerbench: cannot start node (${error.message})\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  for (const name of SIGNALS) process.off(name, forward);
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
