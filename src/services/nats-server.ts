// Where NATS comes from: NATS_URL, else the server already on 127.0.0.1:4222, else a throw-away
// `nats-server -js` started from PATH for this process only (its store in a temporary directory,
// removed on stop, killed on exit).

import { mkdtempSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.ts';
import { findOnPath, freePort, isLoopbackUrl, startServerProcess } from './children.ts';

/** A NATS server to talk to, and how to let go of it. */
export interface NatsEndpoint {
  /** E.g. `nats://127.0.0.1:4222`. May hold a token or password: redact before showing. */
  url: string;
  /** `local`: a loopback server someone else runs; `embedded`: started here; `other`: anything else. */
  kind: 'local' | 'embedded' | 'other';
  /** Stops what this process started; a no-op for servers it did not start. Calling it twice is harmless. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const DEFAULT_PORT = 4222;
/** How long the default server gets to send its INFO line before we look elsewhere. */
const PROBE_TIMEOUT_MS = 500;
/** How long a started nats-server gets to answer with JetStream on. */
const START_TIMEOUT_MS = 10_000;
/** How long a stopped nats-server gets to exit on SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 3_000;

export const HOW_TO_START_NATS = 'start one with `nats-server -js` or `docker compose up -d nats`, or set NATS_URL';

/**
 * NATS_URL set -> use it (kind `local` if its host is loopback, else `other`).
 * Else if 127.0.0.1:4222 sends its INFO line within ~500 ms -> `local`.
 * Else start `nats-server -js` from PATH on a free loopback port -> `embedded`; stop() kills it and removes its store.
 * Throws a one-line `UsageError` saying how to get a server when none of these works.
 */
export async function resolveNats(env: { NATS_URL?: string | undefined }): Promise<NatsEndpoint> {
  const noop = async (): Promise<void> => {};
  const given = env.NATS_URL?.trim();
  if (given) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(given) && !/^(nats|tls):\/\//i.test(given)) {
      throw new UsageError(`NATS_URL "${given.replace(/\/\/[^@/]*@/, '//***@')}" is not a nats:// or tls:// URL, e.g. nats://127.0.0.1:4222`);
    }
    return { url: given, kind: isLoopbackUrl(given) ? 'local' : 'other', stop: noop };
  }
  if (await natsAnswers(HOST, DEFAULT_PORT, PROBE_TIMEOUT_MS)) return { url: `nats://${HOST}:${DEFAULT_PORT}`, kind: 'local', stop: noop };
  if (findOnPath('nats-server') === undefined) {
    throw new UsageError(`no NATS: nothing answers on ${HOST}:${DEFAULT_PORT} and nats-server is not on PATH; ${HOW_TO_START_NATS}`);
  }
  const server = await startNatsServer();
  return { url: server.url, kind: 'embedded', stop: server.stop };
}

/**
 * Starts a throw-away `nats-server -js` on a free loopback port, in a process group of its own, its
 * JetStream store in a private temporary directory. Resolves once it answers with JetStream on;
 * rejects with a one-line UsageError (the server's last log line) if it exits or stays silent instead.
 */
export async function startNatsServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const binary = findOnPath('nats-server');
  if (binary === undefined) throw new UsageError(`nats-server is not on PATH; ${HOW_TO_START_NATS}`);
  const port = await freePort(HOST);
  const dir = mkdtempSync(join(tmpdir(), 'brokerbench-nats-'));
  const server = await startServerProcess({
    name: 'nats-server',
    command: [binary, '-a', HOST, '-p', String(port), '-js', '-sd', dir],
    env: {},
    port,
    workDir: dir,
    answers: () => natsAnswers(HOST, port, PROBE_TIMEOUT_MS, true),
    answersWhat: 'answer with JetStream on',
    startTimeoutMs: START_TIMEOUT_MS,
    pollMs: 25,
    stopGraceMs: STOP_GRACE_MS,
  });
  return { url: `nats://${HOST}:${port}`, stop: server.stop };
}

/** True if a NATS server on host:port sends its INFO line (with JetStream on, if `jetStream`) within timeoutMs. Never throws. */
export function natsAnswers(host: string, port: number, timeoutMs: number, jetStream = false): Promise<boolean> {
  return new Promise((resolve) => {
    let reply = '';
    const socket = createConnection({ host, port });
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) finish(reply.startsWith('INFO ') && (!jetStream || /"jetstream"\s*:\s*true/.test(reply)));
    });
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
  });
}
