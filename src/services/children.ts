// What the embedded servers (redis-server, fauxqs) share as child processes: a free loopback port,
// the tail of a log for error messages, and a registry that kills them when this process exits.

import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

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
