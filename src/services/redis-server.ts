// Where Redis comes from: REDIS_URL, else the Redis already on 127.0.0.1:6379, else a throw-away
// redis-server started from PATH for this process only (no persistence, killed on stop and on exit).

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.ts';
import { redactUrl } from '../redact.ts';
import { findOnPath, freePort, isLoopbackUrl, startServerProcess } from './children.ts';

/** A Redis to talk to, and how to let go of it. */
export interface RedisEndpoint {
  /** Connection string, e.g. `redis://127.0.0.1:6379`. May hold a password: redact before showing. */
  url: string;
  /** `local`: a loopback server someone else runs; `embedded`: started here; `other`: anything else. */
  kind: 'local' | 'embedded' | 'other';
  /** Stops what this process started; a no-op for servers it did not start. */
  stop(): Promise<void>;
}

/** A redis-server child started by `startRedisServer`. */
export interface StartedRedisServer {
  url: string;
  port: number;
  /** Kills the server and waits for it to exit. Calling it twice is harmless. */
  stop(): Promise<void>;
  process: ChildProcess;
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 6379;
/** How long the default Redis gets to answer PING before we look elsewhere. */
const PROBE_TIMEOUT_MS = 500;
/** How long a started redis-server gets to answer PING. */
const START_TIMEOUT_MS = 5_000;
/** How long a stopped redis-server gets to exit on SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 3_000;

const NO_REDIS_MESSAGE =
  'no Redis: nothing answers on 127.0.0.1:6379 and redis-server is not on PATH; install it (apt-get install redis-server), run `docker compose up -d redis`, or set REDIS_URL';

/**
 * REDIS_URL set -> use it (kind `local` if its host is loopback, else `other`; stop is a no-op).
 * Else if 127.0.0.1:6379 answers PING within ~500 ms -> `local`.
 * Else start `redis-server` from PATH on a free loopback port -> `embedded`; stop() kills it.
 * Throws a `UsageError` saying how to get a Redis when none of these works.
 */
export async function resolveRedis(env: { REDIS_URL?: string | undefined }): Promise<RedisEndpoint> {
  const noop = async (): Promise<void> => {};
  const fromEnv = env.REDIS_URL?.trim();
  if (fromEnv) {
    // A URL of another kind (http://, unix://…) would be read by ioredis as host and port regardless.
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(fromEnv)?.[1]?.toLowerCase();
    if (scheme !== undefined && scheme !== 'redis' && scheme !== 'rediss') {
      throw new UsageError(`REDIS_URL "${redactUrl(fromEnv)}" is not a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379`);
    }
    checkRedisUrl(fromEnv);
    return { url: fromEnv, kind: isLoopbackUrl(fromEnv) ? 'local' : 'other', stop: noop };
  }
  if (await pingRedis(DEFAULT_HOST, DEFAULT_PORT, PROBE_TIMEOUT_MS)) {
    return { url: `redis://${DEFAULT_HOST}:${DEFAULT_PORT}`, kind: 'local', stop: noop };
  }
  if (findOnPath('redis-server') === undefined) throw new UsageError(NO_REDIS_MESSAGE);
  const server = await startRedisServer();
  return { url: server.url, kind: 'embedded', stop: server.stop };
}

/**
 * Starts a throw-away redis-server on a loopback port (a free one unless `port` is given), with no
 * persistence and a private temporary working directory; `args` are appended (and so win), e.g.
 * `['--maxmemory', '10mb']` or `['--appendonly', 'yes']`. Resolves once it answers PING; rejects with a
 * one-line UsageError (the server's last log line) if it exits or stays silent for 5 s instead.
 */
export async function startRedisServer(
  options: { port?: number; args?: readonly string[] } = {},
): Promise<StartedRedisServer> {
  const binary = findOnPath('redis-server');
  if (binary === undefined) {
    throw new UsageError(
      'redis-server is not on PATH; install it (apt-get install redis-server) or run `docker compose up -d redis`',
    );
  }
  const port = options.port ?? (await freePort(DEFAULT_HOST));
  const dir = mkdtempSync(join(tmpdir(), 'brokerbench-redis-'));
  const args = [
    '--port', String(port),
    '--bind', DEFAULT_HOST,
    '--protected-mode', 'yes',
    '--save', '',
    '--appendonly', 'no',
    '--daemonize', 'no',
    '--dir', dir,
    ...(options.args ?? []),
  ];
  const server = await startServerProcess({
    name: 'redis-server',
    command: [binary, ...args],
    env: {},
    port,
    workDir: dir,
    // A server started with --requirepass answers PING with -NOAUTH: that is up, too.
    answers: () => pingRedis(DEFAULT_HOST, port, PROBE_TIMEOUT_MS, true),
    answersWhat: 'answer PING',
    startTimeoutMs: START_TIMEOUT_MS,
    pollMs: 25,
    stopGraceMs: STOP_GRACE_MS,
  });
  return { url: `redis://${DEFAULT_HOST}:${port}`, port, stop: server.stop, process: server.process };
}

/**
 * True if a Redis on host:port answers PING with +PONG (or, with `authRequiredOk`, with -NOAUTH) within
 * timeoutMs. Never throws, never hangs.
 */
export function pingRedis(host: string, port: number, timeoutMs: number, authRequiredOk = false): Promise<boolean> {
  return new Promise((resolve) => {
    let reply = '';
    const socket = createConnection({ host, port });
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG') || (authRequiredOk && reply.startsWith('-NOAUTH')));
    });
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
  });
}

const ENCODE_HINT = 'percent-encode it (/ %2F, ? %3F, # %23, @ %40, % %25), e.g. redis://:p%40ss%2Fw0rd@127.0.0.1:6379';

/**
 * Refuses a REDIS_URL that URL parsers read in different ways, before any client sees it: generated
 * passwords often hold `/ # ? @ %`, and unencoded they make the host, port or database something else
 * (ioredis then selected database NaN, and the runtime's warning printed the whole URL). The message
 * never repeats the URL's user name or password.
 */
export function checkRedisUrl(url: string): void {
  const afterScheme = url.indexOf('://') + 3;
  const at = url.lastIndexOf('@');
  if (at >= afterScheme) {
    const userinfo = url.slice(afterScheme, at);
    if (/[/?#@]/.test(userinfo) || /%(?![0-9a-fA-F]{2})/.test(userinfo)) {
      throw new UsageError(`REDIS_URL: its user name or password has a character URLs reserve; ${ENCODE_HINT}`);
    }
  }
  let parsed: URL;
  try {
    parsed = new URL(url.includes('://') ? url : `redis://${url}`);
  } catch {
    throw new UsageError(`REDIS_URL "${redactUrl(url)}" is not a valid URL, e.g. redis://127.0.0.1:6379; if its password has / ? # @ or %, ${ENCODE_HINT}`);
  }
  const database = parsed.pathname.replace(/^\//, '');
  if (database !== '' && !/^\d+$/.test(database)) {
    throw new UsageError(`REDIS_URL "${redactUrl(url)}" names database "${database}", which is not a number (redis://host:6379/0)`);
  }
}
