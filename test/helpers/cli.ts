// Runs the real command line in a child process, as a user would, and reports what it printed.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url));

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

/**
 * Starts `brokerbench <args>` with `env` added to (or, with undefined, removed from) the environment.
 * It leads a process group of its own: `process.kill(-pid, signal)` reaches tsx's launcher and the
 * program together, as Ctrl-C in a terminal does, and the timeout kills both (not the launcher alone).
 */
export function startCli(args: readonly string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): CliProcess {
  const merged: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete merged[key];
    else merged[key] = value;
  }
  const started = performance.now();
  // tsx's own CLI forwards SIGINT/SIGTERM to the program it runs, so signals reach src/cli.ts.
  const child = spawn(process.execPath, [TSX, 'src/cli.ts', ...args], { cwd: ROOT, env: merged, detached: true });
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
export function runCli(args: readonly string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): Promise<CliRun> {
  return startCli(args, env, timeoutMs).done;
}
