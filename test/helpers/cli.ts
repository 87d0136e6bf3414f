// Runs the real command line in a child process, as a user would, and reports what it printed.

import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** tsx's loader by absolute URL, so the CLI also starts from another working folder (to read its .env). */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly elapsedMs: number;
}

/** A CLI run in progress: its process, what it printed so far, and how it ended. */
export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited (killed with SIGKILL after `timeoutMs`). */
  readonly done: Promise<CliRun>;
}

/** How the CLI is started: as `npm run` starts it (`node --import tsx src/cli.ts`), or through `npm run` itself. */
export type Launch = 'node' | 'npm';

/**
 * Starts `brokerbench <args>` with `env` added to (or, with undefined, removed from) the environment.
 * It leads a process group of its own: `process.kill(-pid, signal)` reaches every process of it (npm,
 * its shell and the program under `launch: 'npm'`), as Ctrl-C in a terminal does, and the timeout kills
 * them all.
 */
export function startCli(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 60_000,
  launch: Launch = 'node',
  cwd: string = ROOT,
): CliProcess {
  const merged: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete merged[key];
    else merged[key] = value;
  }
  const [command, commandArgs] =
    launch === 'npm'
      ? ['npm', ['run', '--silent', args[0]!, '--', ...args.slice(1)]]
      : [process.execPath, ['--import', TSX_LOADER, path.join(ROOT, 'src', 'cli.ts'), ...args]];
  return startProcess(command, commandArgs, merged, timeoutMs, cwd);
}

/** `program args` leading a process group of its own, with what it prints kept; the whole group is killed after `timeoutMs`. */
export function startProcess(program: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number, cwd: string = ROOT): CliProcess {
  const started = performance.now();
  const child = spawn(program, args, { cwd, env, detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<CliRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, elapsedMs: performance.now() - started });
    });
  });
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

/** `brokerbench <args>` run to its end; see startCli. */
export function runCli(args: readonly string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000, cwd = ROOT): Promise<CliRun> {
  return startCli(args, env, timeoutMs, 'node', cwd).done;
}
