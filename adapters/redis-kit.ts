// What both Redis adapters share: one way to open a client (options, first connect within the command
// timeout, the one-line error), one way to load their Lua (files under adapters/lua/, defined on the
// client as ioredis commands, so each call is an EVALSHA that falls back to EVAL once after a NOSCRIPT),
// one reading of the options they both take, and the describe() they both give. A URL that names a node
// of a Redis Cluster (INFO cluster says cluster_enabled:1) is opened with ioredis's Cluster client
// instead, with the same options for every node; the helpers at the end read the cluster's masters.
//
// LIMITATION: one `--- @include "file.lua"` level only (an included file includes nothing), and a
// script's number of keys is read from its header, so a KEYS[n] not listed there is not passed. A
// cluster is reached through the one node its URL names (the others are found from it), on database 0.

import { readFileSync } from 'node:fs';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { BrokerError, type BrokerOptions, type ServerMemory } from '../src/broker.ts';
import { redactUrl } from '../src/redact.ts';
import { backoffMs, withTimeout, type EndpointKind, type ServerInfo, type SettingsReader } from './kit/index.ts';
import { describeRedisError, explainRedisConnectError } from './redis-connect-error.ts';

/** A Lua script from adapters/lua/, with the name of the client command that runs it. */
export interface LuaScript {
  /** The command ioredis defines on each client opened with this script, e.g. `bbListReceive`. */
  readonly command: string;
  readonly lua: string;
  readonly numberOfKeys: number;
}

export type ScriptArg = string | number;

/** A connection to one Redis, or to a Redis Cluster (one connection per master, made as commands need them). */
export type RedisClient = Redis | Cluster;

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
export function runScript<T>(client: RedisClient, script: LuaScript, keys: readonly string[], args: readonly ScriptArg[]): Promise<T> {
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
  /** The URL names a node of a Redis Cluster: open a Cluster client (see `isClusterNode`). */
  readonly cluster?: boolean;
}

/** A client that is not connected yet; `connectRedis` connects it. */
export function createRedisClient(options: ClientOptions): RedisClient {
  if (options.cluster) return createClusterClient(options);
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

/**
 * A Cluster client made as `createRedisClient` makes a plain one: the URL's node is where it starts, its
 * password and TLS go to every node, and every node's connection has the same timeouts. A command whose
 * connection closed fails at once (no failover retry), as on one Redis; a redirection (MOVED, ASK) or a
 * cluster that is down for a moment (CLUSTERDOWN, TRYAGAIN: the command did not run) is followed.
 */
function createClusterClient(options: ClientOptions): Cluster {
  const { url, commandTimeoutMs } = options;
  const seed = clusterSeed(url);
  let everReady = false;
  const nodeOptions: NonNullable<ClusterOptions['redisOptions']> = {
    ...seed.options,
    connectTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 0,
    ...(options.blocking ? { blockingTimeout: commandTimeoutMs, blockingTimeoutGrace: commandTimeoutMs } : { commandTimeout: commandTimeoutMs }),
  };
  const client = new Cluster([seed.node], {
    lazyConnect: true,
    enableOfflineQueue: false,
    retryDelayOnFailover: 0,
    slotsRefreshTimeout: commandTimeoutMs,
    // As for one Redis: fail the first connect at once, then reconnect with back-off while the handle is open.
    clusterRetryStrategy: (times) => (everReady ? backoffMs(times, 100, 1_000) : null),
    scripts: Object.fromEntries((options.scripts ?? []).map((s) => [s.command, { lua: s.lua, numberOfKeys: s.numberOfKeys }])),
    redisOptions: nodeOptions,
  });
  client.on('ready', () => {
    everReady = true;
  });
  if (options.scripts?.length) scriptsOf.set(client, options.scripts);
  return client;
}

/** The scripts a client was made with, loaded into the server as it connects. */
const scriptsOf = new WeakMap<RedisClient, readonly LuaScript[]>();

/** Connects within commandTimeoutMs or rejects with the one-line BrokerError users see. */
export async function connectRedis<C extends RedisClient>(adapter: string, client: C, url: string, commandTimeoutMs: number): Promise<C> {
  let lastError: unknown;
  client.on('error', (error: unknown) => {
    lastError = error;
  });
  try {
    // A server that accepts and never answers is cut off here, not left to hang; the grace lets the
    // client's own connect timeout, which says more, come first.
    await withTimeout(commandTimeoutMs + 250, 'connect', async () => {
      await client.connect();
      // Scripts loaded up front (on every master of a cluster): a first call then needs no NOSCRIPT round
      // trip, which a failure in the same pipeline (a connection the server drops) could otherwise turn into
      // an error for all of it. Best effort: a user whose ACL allows EVAL but not SCRIPT still runs them, by
      // the EVAL fallback (as on a master that restarted empty).
      const servers: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
      const scripts = scriptsOf.get(client) ?? [];
      await Promise.all(servers.flatMap((server) => scripts.map((script) => server.script('LOAD', script.lua).catch(() => undefined))));
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
export function openRedisClient(adapter: string, options: ClientOptions): Promise<RedisClient> {
  return connectRedis(adapter, createRedisClient(options), options.url, options.commandTimeoutMs);
}

/** True if `client`'s server is a node of a Redis Cluster (INFO cluster: cluster_enabled:1). */
export async function isClusterNode(client: Redis): Promise<boolean> {
  return /^cluster_enabled:1\b/m.test(await client.info('cluster'));
}

/**
 * The first client of an open: a plain one on the URL (with `options`), which is kept when its server
 * is one Redis; when it is a node of a cluster, it is closed and `cluster` says to open Cluster clients.
 */
export async function openFirstRedisClient(adapter: string, options: ClientOptions): Promise<{ client: Redis; cluster: false } | { cluster: true }> {
  const client = (await openRedisClient(adapter, { ...options, cluster: false })) as Redis;
  let cluster: boolean;
  try {
    cluster = await isClusterNode(client);
  } catch (error) {
    client.disconnect();
    throw new BrokerError(adapter, 'connect', `INFO cluster failed: ${describeRedisError(error)}`, { cause: error });
  }
  if (!cluster) return { client, cluster };
  await quitQuietly(client);
  return { cluster };
}

/**
 * Where a Cluster client starts (the node `url` names) and what every node's connection takes from the
 * URL: user, password, TLS. Throws for a URL naming a database other than 0, which a cluster lacks.
 */
export function clusterSeed(url: string): { node: { host: string; port: number }; options: NonNullable<ClusterOptions['redisOptions']> } {
  const parsed = new URL(url);
  const database = parsed.pathname.replace(/^\//, '');
  if (database !== '' && database !== '0') throw new Error(`a Redis Cluster has database 0 only; ${redactUrl(url)} names database ${database}`);
  return {
    node: { host: parsed.hostname, port: Number(parsed.port || 6379) },
    options: {
      ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
      ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
      ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  };
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

/** What describe() reports of a Redis server: its version, and where it is without the password (a cluster: how many masters). */
export async function describeRedis(client: RedisClient, target: RedisTarget, masters?: number): Promise<ServerInfo> {
  const endpoint = redactUrl(target.url) + (masters === undefined ? '' : ` (cluster of ${masters} masters)`);
  return { serverVersion: await serverVersion(client), endpoint, endpointKind: target.endpointKind };
}

export async function serverVersion(client: RedisClient): Promise<string> {
  const info = await client.info('server');
  return /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown';
}

/** QUIT, or cut the connection when QUIT cannot be sent. */
export async function quitQuietly(client: RedisClient): Promise<void> {
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

/** The master serving `slot` now (`host:port`, and its connection), as the Cluster client last read the slot map. */
export function masterOf(cluster: Cluster, slot: number): { key: string; node: Redis | undefined } {
  const key = cluster.slots[slot]?.[0] ?? 'unknown';
  const node = cluster.nodes('master').find((redis) => `${redis.options.host}:${redis.options.port}` === key);
  return { key, node };
}

/** The whole cluster's memory: used_memory and maxmemory of its masters added up, the first one's policy. */
export async function clusterServerMemory(cluster: Cluster, read: (node: Redis) => Promise<ServerMemory>): Promise<ServerMemory> {
  const each = await Promise.all(cluster.nodes('master').map(read));
  return {
    usedBytes: each.reduce((sum, memory) => sum + memory.usedBytes, 0),
    maxBytes: each.reduce((sum, memory) => sum + memory.maxBytes, 0),
    policy: each[0]?.policy ?? 'unknown',
  };
}
