// What both Redis adapters share: one way to open a client (options, first connect within the command
// timeout, the one-line error), one way to load their Lua (files under adapters/lua/, defined on the
// client as ioredis commands, so each call is an EVALSHA that falls back to EVAL once after a NOSCRIPT),
// one reading of the options they both take, and the describe() they both give.
//
// LIMITATION: one `--- @include "file.lua"` level only (an included file includes nothing), and a
// script's number of keys is read from its header, so a KEYS[n] not listed there is not passed.

import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { BrokerError, type BrokerOptions } from '../src/broker.ts';
import { redactUrl } from '../src/redact.ts';
import { backoffMs, withTimeout, type EndpointKind, type ServerInfo, type SettingsReader } from './kit/index.ts';
import { explainRedisConnectError } from './redis-connect-error.ts';

/** A Lua script from adapters/lua/, with the name of the client command that runs it. */
export interface LuaScript {
  /** The command ioredis defines on each client opened with this script, e.g. `bbListReceive`. */
  readonly command: string;
  readonly lua: string;
  readonly numberOfKeys: number;
}

export type ScriptArg = string | number;

const INCLUDE = /^--- @include "([\w.-]+\.lua)"$/m;

/**
 * Reads adapters/lua/`file` and checks its header: a script opens with comment lines naming every
 * KEYS[n] and ARGV[n], and the highest KEYS[n] there is the number of keys each call passes.
 */
export function loadLua(command: string, file: string): LuaScript {
  const read = (name: string): string => readFileSync(new URL(`./lua/${name}`, import.meta.url), 'utf8');
  let lua = read(file);
  const include = INCLUDE.exec(lua);
  if (include) lua = lua.replace(INCLUDE, () => read(include[1]!));
  const header = lua.slice(0, lua.search(/^(?!--)/m));
  const keys = [...header.matchAll(/^-- KEYS\[(\d+)\]/gm)].map((match) => Number(match[1]));
  if (keys.length === 0 || !/^-- ARGV\[\d+/m.test(header)) throw new Error(`adapters/lua/${file}: the opening comment must list its KEYS[n] and ARGV[n]`);
  return { command, lua, numberOfKeys: Math.max(...keys) };
}

/** Runs `script` on a client opened with it (see `createRedisClient`). */
export function runScript<T>(client: Redis, script: LuaScript, keys: readonly string[], args: readonly ScriptArg[]): Promise<T> {
  const run = (client as unknown as Record<string, (...all: ScriptArg[]) => Promise<T>>)[script.command];
  if (run === undefined) throw new Error(`script ${script.command} is not defined on this client`);
  return run.call(client, ...keys, ...args);
}

export interface ClientOptions {
  readonly url: string;
  readonly commandTimeoutMs: number;
  /** For BLPOP/BLMOVE only: no commandTimeout (a wait may last longer than any command). */
  readonly blocking?: boolean;
  readonly scripts?: readonly LuaScript[];
}

/** A client that is not connected yet; `connectRedis` connects it. */
export function createRedisClient(options: ClientOptions): Redis {
  const { url, commandTimeoutMs } = options;
  let everReady = false;
  const redisOptions: RedisOptions = {
    lazyConnect: true,
    connectTimeout: commandTimeoutMs,
    // Without an offline queue and without retries a command on a dead connection fails at once, and
    // is counted, instead of piling up or being sent twice after a reconnect (an XADD or RPUSH resent
    // after its reply was lost would publish the message twice). Both adapters want that alike.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Fail the first connect at once; after that, reconnect with back-off (0.1, 0.2, 0.4 … 1 s) for as
    // long as the handle is open: the run's own limits (--timeout, the publish outage limit) decide when
    // to give up, and commands in the meantime fail at once and are counted.
    retryStrategy: (times) => (everReady ? backoffMs(times, 100, 1_000) : null),
    scripts: Object.fromEntries((options.scripts ?? []).map((s) => [s.command, { lua: s.lua, numberOfKeys: s.numberOfKeys }])),
  };
  if (options.blocking) {
    // The client-side bound of a wait is the command's own timeout plus the grace.
    redisOptions.blockingTimeout = commandTimeoutMs;
    redisOptions.blockingTimeoutGrace = commandTimeoutMs;
  } else {
    redisOptions.commandTimeout = commandTimeoutMs;
  }
  const client = new Redis(url, redisOptions);
  client.on('ready', () => {
    everReady = true;
  });
  if (options.scripts?.length) scriptsOf.set(client, options.scripts);
  return client;
}

/** The scripts a client was made with, loaded into the server as it connects. */
const scriptsOf = new WeakMap<Redis, readonly LuaScript[]>();

/** Connects within commandTimeoutMs or rejects with the one-line BrokerError users see. */
export async function connectRedis(adapter: string, client: Redis, url: string, commandTimeoutMs: number): Promise<Redis> {
  let lastError: unknown;
  client.on('error', (error: unknown) => {
    lastError = error;
  });
  try {
    // A server that accepts and never answers is cut off here, not left to hang; the grace lets the
    // client's own connect timeout, which says more, come first.
    await withTimeout(commandTimeoutMs + 250, 'connect', async () => {
      await client.connect();
      // Scripts loaded up front: a first call then needs no NOSCRIPT round trip, which a failure in the
      // same pipeline (a connection the server drops) could otherwise turn into an error for all of it.
      // Best effort: a user whose ACL allows EVAL but not SCRIPT still runs them, by the EVAL fallback.
      await Promise.all((scriptsOf.get(client) ?? []).map((script) => client.script('LOAD', script.lua).catch(() => undefined)));
    });
    return client;
  } catch (error) {
    client.disconnect();
    // An error the server or the socket gave says more than our own timer running out.
    const cause = lastError ?? error;
    throw new BrokerError(adapter, 'connect', explainRedisConnectError(url, cause, commandTimeoutMs), { cause });
  }
}

/** A client made with `options` and connected (see `createRedisClient` and `connectRedis`). */
export function openRedisClient(adapter: string, options: ClientOptions): Promise<Redis> {
  return connectRedis(adapter, createRedisClient(options), options.url, options.commandTimeoutMs);
}

/** Where a Redis adapter connects, read once from its options. */
export interface RedisTarget {
  readonly url: string;
  readonly commandTimeoutMs: number;
  /** What describe() reports (the CLI passes `embedded` for a throw-away server); default `local`. */
  readonly endpointKind: EndpointKind;
}

/** The options both Redis adapters read: the URL, which they cannot do without, and `endpointKind`. */
export function redisTarget(adapter: string, options: BrokerOptions, settings: SettingsReader): RedisTarget {
  if (!options.url) throw new BrokerError(adapter, 'connect', 'no Redis URL given; set REDIS_URL (e.g. redis://127.0.0.1:6379)');
  return { url: options.url, commandTimeoutMs: options.commandTimeoutMs, endpointKind: settings.endpointKind('local') };
}

/** What describe() reports of a Redis server: its version, and where it is without the password. */
export async function describeRedis(client: Redis, target: RedisTarget): Promise<ServerInfo> {
  return { serverVersion: await serverVersion(client), endpoint: redactUrl(target.url), endpointKind: target.endpointKind };
}

export async function serverVersion(client: Redis): Promise<string> {
  const info = await client.info('server');
  return /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown';
}

/** QUIT, or cut the connection when QUIT cannot be sent. */
export async function quitQuietly(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

/** Throws the first error of a pipeline; returns the replies. */
export function checkPipeline(results: [Error | null, unknown][] | null): unknown[] {
  if (results === null) throw new Error('pipeline aborted');
  const replies = new Array<unknown>(results.length);
  for (let i = 0; i < results.length; i++) {
    const [error, reply] = results[i]!;
    if (error) throw error;
    replies[i] = reply;
  }
  return replies;
}
