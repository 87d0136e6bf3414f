// What the throw-away servers (redis-server, nats-server, postgres, fauxqs) share as child processes:
// finding the program, a free loopback port, starting it in a process group of its own until it
// answers, the tail of its log for a one-line error, stopping it, and a registry that kills them when
// this process exits.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '../errors.ts';

/** A port nothing listens on right now on `host` (the OS picks it). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}

/** The last non-empty line of a log, for a one-line error. */
export function lastLine(log: string): string {
  const lines = log.trim().split('\n');
  return lines[lines.length - 1]?.trim() || '(no output)';
}

// Children must not outlive this process, however it ends its event loop.
const liveChildren = new Map<ChildProcess, (() => void) | undefined>();
let exitHookInstalled = false;

/**
 * Kills `child` with SIGKILL (then runs `cleanup`) if this process exits first. Returns the function
 * that forgets it, for when the child has exited on its own.
 */
export function killOnExit(child: ChildProcess, cleanup?: () => void): () => void {
  liveChildren.set(child, cleanup);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const [live, liveCleanup] of liveChildren) {
        live.kill('SIGKILL');
        liveCleanup?.();
      }
    });
  }
  return () => void liveChildren.delete(child);
}

/** The executable `name` in a PATH directory, else in `alsoIn` (in order); undefined when there is none. */
export function findOnPath(name: string, alsoIn: readonly string[] = []): string | undefined {
  for (const dir of [...(process.env['PATH'] ?? '').split(delimiter), ...alsoIn]) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** True if `url` names this machine's loopback (127.x, localhost, ::1). False for anything unparsable. */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return false;
  }
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** How to start one throw-away server and tell that it is up. */
export interface ServerProcessOptions {
  /** What messages call it, e.g. `redis-server`. */
  readonly name: string;
  /** The program and its arguments. */
  readonly command: readonly string[];
  /** Its whole environment: none of the harness's, which may hold secrets. */
  readonly env: NodeJS.ProcessEnv;
  readonly port: number;
  /** A private folder of its own, removed once it has exited (or this process exits first). */
  readonly workDir: string;
  /** True once it serves; called every `pollMs` until it does. Never throws. */
  answers(): Promise<boolean>;
  /** What it failed to do in time, for the message: `answer PING`. */
  readonly answersWhat: string;
  readonly startTimeoutMs: number;
  readonly pollMs: number;
  /** How long it gets to exit on `stopSignal` (default SIGTERM) before SIGKILL. */
  readonly stopGraceMs: number;
  readonly stopSignal?: NodeJS.Signals;
}

/** A started server: the process, and stop(), which is harmless to call twice. */
export interface ServerProcess {
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `options.command` in a process group of its own (so Ctrl-C in the terminal reaches only the
 * harness, which stops it once the result is written) and resolves once it answers. Rejects with a
 * one-line UsageError carrying its last log line if it exits or stays silent instead.
 */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const { name, command, port, workDir } = options;
  const removeDir = (): void => rmSync(workDir, { recursive: true, force: true });
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: options.env, detached: true });
  const forget = killOnExit(child, removeDir);
  let log = '';
  const keepLog = (chunk: Buffer): void => void (log = (log + chunk.toString('utf8')).slice(-2_000));
  child.stdout?.on('data', keepLog);
  child.stderr?.on('data', keepLog);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  void exited.then(() => {
    forget();
    removeDir();
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        signalGroup(child, options.stopSignal ?? 'SIGTERM');
        const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), options.stopGraceMs);
        await exited;
        clearTimeout(timer);
      }
      await exited;
    })());

  const startedAt = Date.now();
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new UsageError(`${name} exited during start (port ${port}): ${lastLine(log)}`);
    }
    if (await options.answers()) return { process: child, stop };
    if (Date.now() - startedAt > options.startTimeoutMs) {
      await stop();
      throw new UsageError(`${name} did not ${options.answersWhat} on port ${port} within ${options.startTimeoutMs} ms: ${lastLine(log)}`);
    }
    await sleep(options.pollMs);
  }
}

/** The child's whole process group (a server started through a wrapper such as setpriv included), else the child. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    child.kill(signal);
  }
}
