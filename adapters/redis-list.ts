// The Redis-list adapter: the seeds' RPUSH/LPOP queue (`simple`, at-most-once) and a reliable variant
// (`reliable`, at-least-once) with in-flight ZSET, visibility timeout, delays and a dead-letter list.
// This file holds what both modes share (keys, connections, memory, teardown); what differs is in
// redis-list-simple.ts and redis-list-reliable.ts, behind the ListMode interface.
//
// Settings read from `options.settings`:
//   endpointKind  string  what describe() reports as `endpointKind` (the CLI passes 'embedded'); default 'local'.
//
// On a Redis Cluster (a URL naming any of its nodes) each queue's keys share one hash tag, chosen so the
// run's queues spread over the masters (redis-slots.ts): `<ns>:{<queue>:<salt>}:ready` and so on, so the
// scripts and BLMOVE touch one slot. queueStats says which master and slot each queue had.
//
// LIMITATION: one command connection and one blocking connection per handle (per master on a cluster);
// `duplicate` opens two more.

import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import {
  BrokerError,
  type BrokerCapabilities,
  type BrokerOptions,
  type OutgoingMessage,
  type QueueDepth,
  type QueueSpec,
  type ReceiveOptions,
  type ReceivedMessage,
  type ServerMemory,
} from '../src/broker.ts';
import { redisKeysMemoryBytes, redisServerMemory } from '../src/services/redis-memory.ts';
import { defineAdapter, SettingsReader, type Driver, type ServerInfo } from './kit/index.ts';
import { describeRedisError } from './redis-connect-error.ts';
import {
  clusterServerMemory,
  describeRedis,
  masterOf,
  openFirstRedisClient,
  openRedisClient,
  quitQuietly,
  redisTarget,
  serverVersion,
  type RedisClient,
  type RedisTarget,
} from './redis-kit.ts';
import { ADAPTER, MAX_BATCH, type ListContext, type ListMode, type QueueKeys } from './redis-list-mode.ts';
import { MAX_DELAY_MS, RELIABLE_SCRIPTS, reliableMode } from './redis-list-reliable.ts';
import { redisServerFacts } from './redis-registry.ts';
import { simpleMode } from './redis-list-simple.ts';
import { ClusterPlacement, fitsHashTag } from './redis-slots.ts';

export { parseEnvelope } from './redis-list-reliable.ts';

export type RedisListMode = 'reliable' | 'simple';

/** Redis' own limit on one string (proto-max-bulk-len default); the envelope prefix is tiny next to it. */
const MAX_PAYLOAD_BYTES = 512 * 1024 * 1024;
/** Used when a queue was not `prepare`d. */
const DEFAULT_SPEC: Omit<QueueSpec, 'name'> = { visibilityTimeoutMs: 30_000, maxReceives: 0 };

const CAPABILITIES: Record<RedisListMode, BrokerCapabilities> = {
  reliable: {
    delivery: 'at-least-once',
    delay: true,
    maxDelayMs: MAX_DELAY_MS,
    deadLetter: true,
    visibilityTimeout: true,
    nackDelay: true,
    // Redelivered and nacked messages go to the back of the list.
    ordering: 'none',
    maxBatchSize: MAX_BATCH,
    maxPayloadBytes: MAX_PAYLOAD_BYTES,
    sharedAcrossProcesses: true,
  },
  simple: {
    delivery: 'at-most-once',
    delay: false,
    maxDelayMs: 0,
    deadLetter: false,
    visibilityTimeout: false,
    nackDelay: false,
    ordering: 'fifo',
    maxBatchSize: MAX_BATCH,
    maxPayloadBytes: MAX_PAYLOAD_BYTES,
    sharedAcrossProcesses: true,
  },
};

const MODES: Record<RedisListMode, (context: ListContext) => ListMode> = {
  simple: simpleMode,
  reliable: reliableMode,
};

/** What every handle opened from one `open` call shares. */
interface SharedState {
  readonly target: RedisTarget;
  readonly mode: RedisListMode;
  readonly namespace: string;
  readonly specs: Map<string, QueueSpec>;
  /** Server older than 6.2: no LPOP count, no BLMOVE, integer blocking timeouts. */
  readonly legacy: boolean;
  /** On a Redis Cluster: the masters, and each queue's hash tag. */
  readonly placement: ClusterPlacement | undefined;
}

export const redisListAdapter = defineAdapter({
  name: ADAPTER,
  aliases: ['REDIS', 'REDIS_LIST', 'REDIS-LIST'],
  modes: CAPABILITIES,
  defaultMode: 'reliable',
  limits: { noDelay: 'simple mode cannot delay messages; use --mode reliable' },
  connect: openRedisList,
  ...redisServerFacts,
});

/** Connects to `options.url` (one Redis, or any node of a cluster); rejects with a `BrokerError` saying what to do. */
async function openRedisList(options: BrokerOptions, mode: string): Promise<Driver> {
  const target = redisTarget(ADAPTER, options, new SettingsReader(ADAPTER, options.settings));
  const first = await openFirstRedisClient(ADAPTER, { url: target.url, commandTimeoutMs: target.commandTimeoutMs, scripts: RELIABLE_SCRIPTS });
  const [main, blocking] = await connectPair(target, first.cluster, first.cluster ? undefined : first.client);
  if (main instanceof Cluster && !fitsHashTag(options.namespace)) {
    main.disconnect();
    blocking.disconnect();
    throw new BrokerError(ADAPTER, 'connect', `namespace "${options.namespace}" must not contain '{' or '}' on a Redis Cluster (they mark a hash tag)`);
  }
  let version: string;
  try {
    version = await serverVersion(main);
  } catch (error) {
    main.disconnect();
    blocking.disconnect();
    throw new BrokerError(ADAPTER, 'connect', `INFO failed: ${describeRedisError(error)}`, { cause: error });
  }
  const shared: SharedState = {
    target,
    mode: mode as RedisListMode,
    namespace: options.namespace,
    specs: new Map(),
    legacy: compareVersions(version, '6.2.0') < 0,
    placement: main instanceof Cluster ? new ClusterPlacement(main.slots) : undefined,
  };
  return new RedisListDriver(shared, main, blocking);
}

class RedisListDriver implements Driver {
  readonly #shared: SharedState;
  readonly #redis: RedisClient;
  /** Blocking waits only (BLPOP/BLMOVE): no commandTimeout, bounded by the wait plus a grace instead. */
  readonly #blocking: RedisClient;
  readonly #mode: ListMode;
  readonly #keys = new Map<string, QueueKeys>();
  #closed = false;
  /** On a cluster only: which master and slot each queue had (QueueStats). */
  declare readonly queueStats?: (queue: string) => Promise<Readonly<Record<string, number>>>;

  constructor(shared: SharedState, redis: RedisClient, blocking: RedisClient) {
    this.#shared = shared;
    this.#redis = redis;
    this.#blocking = blocking;
    if (shared.placement !== undefined && redis instanceof Cluster) {
      const placement = shared.placement;
      this.queueStats = async (queue) => {
        this.#keysFor(queue);
        const slot = placement.slot(queue);
        return { [`slot of ${queue} on ${masterOf(redis, slot).key}`]: slot };
      };
    }
    const idPrefix = `${BigInt('0x' + randomBytes(8).toString('hex')).toString(36)}-`;
    let idCounter = 0;
    this.#mode = MODES[shared.mode]({
      redis,
      blocking,
      legacy: shared.legacy,
      nextId: () => `${idPrefix}${(idCounter++).toString(36)}`,
      closing: () => this.#closed,
    });
  }

  explain(error: unknown): string {
    return describeRedisError(error);
  }

  describe(): Promise<ServerInfo> {
    return describeRedis(this.#redis, this.#shared.target, this.#shared.placement?.masters);
  }

  async prepare(spec: QueueSpec): Promise<void> {
    // Leftovers are found by pattern (SCAN MATCH namespace*): a '*' in a name would match other runs' keys.
    if (spec.name.includes('*')) throw new BrokerError(ADAPTER, 'prepare', `queue name "${spec.name}" must not contain '*'`);
    this.#keysFor(spec.name);
    // Lists, sorted sets and hashes spring into being on first write: nothing to create on the server.
    this.#shared.specs.set(spec.name, { ...spec });
  }

  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    return this.#mode.publish(this.#keysFor(queue), messages);
  }

  receive(queue: string, { maxMessages, waitMs }: ReceiveOptions): Promise<ReceivedMessage[]> {
    return this.#mode.receive(this.#keysFor(queue), this.#specFor(queue), maxMessages, waitMs);
  }

  ack(queue: string, messages: readonly ReceivedMessage[]): Promise<void> {
    return this.#mode.ack(this.#keysFor(queue), messages);
  }

  nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    return this.#mode.nack(this.#keysFor(queue), this.#specFor(queue), messages, retryDelayMs);
  }

  depth(queue: string): Promise<QueueDepth> {
    return this.#mode.depth(this.#keysFor(queue));
  }

  serverMemory(): Promise<ServerMemory> {
    const redis = this.#redis;
    return redis instanceof Cluster ? clusterServerMemory(redis, redisServerMemory) : redisServerMemory(redis);
  }

  /** MEMORY USAGE of the queue's ready list, in-flight set and bodies, delayed set and dead list (on its master, on a cluster). */
  queueMemoryBytes(queue: string): Promise<number> {
    const keys = allKeys(this.#keysFor(queue));
    const redis = this.#redis;
    if (!(redis instanceof Cluster)) return redisKeysMemoryBytes(redis, keys);
    const { key, node } = masterOf(redis, this.#shared.placement!.slot(queue));
    if (node === undefined) throw new Error(`no connection to ${key}, the master of queue ${queue}`);
    return redisKeysMemoryBytes(node, keys);
  }

  async purge(queue: string): Promise<void> {
    await this.#redis.del(...allKeys(this.#keysFor(queue)));
  }

  async teardown(queue: string): Promise<void> {
    await this.#redis.del(...allKeys(this.#keysFor(queue)));
    this.#shared.specs.delete(queue);
    this.#keys.delete(queue);
  }

  async duplicate(): Promise<Driver> {
    const [main, blocking] = await connectPair(this.#shared.target, this.#shared.placement !== undefined);
    return new RedisListDriver(this.#shared, main, blocking);
  }

  close(): Promise<void> {
    this.#closed = true;
    // The blocking connection is cut, not QUIT: a QUIT would queue behind a wait in progress.
    this.#blocking.disconnect();
    return quitQuietly(this.#redis);
  }

  #keysFor(queue: string): QueueKeys {
    let keys = this.#keys.get(queue);
    if (keys === undefined) {
      const { placement, namespace } = this.#shared;
      if (placement !== undefined && !fitsHashTag(queue)) throw new Error(`queue name "${queue}" must not contain '{' or '}' on a Redis Cluster (they mark a hash tag)`);
      const base = placement === undefined ? `${namespace}:${queue}:` : `${namespace}:{${placement.tag(queue)}}:`;
      keys = { ready: `${base}ready`, inflight: `${base}inflight`, delayed: `${base}delayed`, dead: `${base}dead`, bodies: `${base}bodies` };
      this.#keys.set(queue, keys);
    }
    return keys;
  }

  #specFor(queue: string): Omit<QueueSpec, 'name'> {
    return this.#shared.specs.get(queue) ?? DEFAULT_SPEC;
  }
}

function allKeys(keys: QueueKeys): string[] {
  return [keys.ready, keys.inflight, keys.bodies, keys.delayed, keys.dead];
}

/**
 * Opens the command connection (with the reliable scripts) and the blocking-wait connection of one
 * handle, Cluster clients on a cluster; `main`, if given, is a command connection already open.
 */
async function connectPair({ url, commandTimeoutMs }: RedisTarget, cluster: boolean, main?: RedisClient): Promise<[RedisClient, RedisClient]> {
  const results = await Promise.allSettled([
    main ?? openRedisClient(ADAPTER, { url, commandTimeoutMs, scripts: RELIABLE_SCRIPTS, cluster }),
    openRedisClient(ADAPTER, { url, commandTimeoutMs, blocking: true, cluster }),
  ]);
  const [first, blocking] = results;
  if (first.status === 'fulfilled' && blocking.status === 'fulfilled') return [first.value, blocking.value];
  for (const result of results) if (result.status === 'fulfilled') result.value.disconnect();
  throw results.find((result) => result.status === 'rejected')!.reason;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (Number.isNaN(d)) return 0;
    if (d !== 0) return d;
  }
  return 0;
}
