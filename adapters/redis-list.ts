// The Redis-list adapter: the seeds' RPUSH/LPOP queue (`simple`, at-most-once) and a reliable variant
// (`reliable`, at-least-once) with in-flight ZSET, visibility timeout, delays and a dead-letter list.
// This file holds what both modes share (checks, keys, connections, memory, teardown); what differs is
// in redis-list-simple.ts and redis-list-reliable.ts, behind the ListMode interface.
//
// Settings read from `options.settings`:
//   endpointKind  string  what describe() reports as `endpointKind` (the CLI passes 'embedded'); default 'local'.
//
// LIMITATION: one command connection and one blocking connection per handle; `duplicate` opens two more.

import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  BrokerError,
  type Broker,
  type BrokerAdapter,
  type BrokerCapabilities,
  type BrokerInfo,
  type BrokerOptions,
  type OutgoingMessage,
  type QueueDepth,
  type QueueSpec,
  type ReceiveOptions,
  type ReceivedMessage,
  type MemoryReporting,
  type ServerMemory,
} from '../src/broker.ts';
import { redactUrl } from '../src/redact.ts';
import { redisServerFacts } from './redis-registry.ts';
import { redisKeysMemoryBytes, redisServerMemory } from '../src/services/redis-memory.ts';
import { describeRedisError } from './redis-connect-error.ts';
import { connectRedis, createRedisClient, endpointKindSetting, quitQuietly, serverVersion } from './redis-kit.ts';
import { ADAPTER, MAX_BATCH, type ListContext, type ListMode, type QueueKeys } from './redis-list-mode.ts';
import { MAX_DELAY_MS, RELIABLE_SCRIPTS, reliableMode } from './redis-list-reliable.ts';
import { simpleMode } from './redis-list-simple.ts';

export { parseEnvelope } from './redis-list-reliable.ts';

export type RedisListMode = 'reliable' | 'simple';

/** Redis' own limit on one string (proto-max-bulk-len default); the envelope prefix is tiny next to it. */
const MAX_PAYLOAD_BYTES = 512 * 1024 * 1024;
/** Used when a queue was not `prepare`d. */
const DEFAULT_SPEC: Omit<QueueSpec, 'name'> = { visibilityTimeoutMs: 30_000, maxReceives: 0 };

const CAPABILITIES: Record<RedisListMode, BrokerCapabilities> = {
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
};

const MODES: Record<RedisListMode, (context: ListContext) => ListMode> = {
  simple: simpleMode,
  reliable: reliableMode,
};

/** What every handle opened from one `open` call shares. */
interface SharedState {
  readonly url: string;
  readonly mode: RedisListMode;
  readonly namespace: string;
  readonly commandTimeoutMs: number;
  readonly endpointKind: BrokerInfo['endpointKind'];
  readonly specs: Map<string, QueueSpec>;
  /** Server older than 6.2: no LPOP count, no BLMOVE, integer blocking timeouts. */
  readonly legacy: boolean;
}

export const redisListAdapter: BrokerAdapter = {
  name: ADAPTER,
  aliases: ['REDIS', 'REDIS_LIST', 'REDIS-LIST'],
  modes: ['reliable', 'simple'],
  defaultMode: 'reliable',
  capabilities(mode: string): BrokerCapabilities {
    return CAPABILITIES[parseMode(mode, 'capabilities')];
  },
  open: openRedisList,
  ...redisServerFacts,
};

/** Connects to `options.url` and returns a handle; rejects with a `BrokerError` saying what to do. */
export async function openRedisList(options: BrokerOptions): Promise<Broker> {
  const mode = parseMode(options.mode ?? 'reliable', 'connect');
  if (!options.url) throw new BrokerError(ADAPTER, 'connect', 'no Redis URL given; set REDIS_URL (e.g. redis://127.0.0.1:6379)');
  if (!(options.commandTimeoutMs > 0)) throw new BrokerError(ADAPTER, 'connect', 'commandTimeoutMs must be a positive number of ms');
  const endpointKind = endpointKindSetting(ADAPTER, options.settings);

  const [main, blocking] = await connectPair(options.url, options.commandTimeoutMs);
  let version: string;
  try {
    version = await serverVersion(main);
  } catch (error) {
    main.disconnect();
    blocking.disconnect();
    throw new BrokerError(ADAPTER, 'connect', `INFO failed: ${describeRedisError(error)}`, { cause: error });
  }
  const shared: SharedState = {
    url: options.url,
    mode,
    namespace: options.namespace,
    commandTimeoutMs: options.commandTimeoutMs,
    endpointKind,
    specs: new Map(),
    legacy: compareVersions(version, '6.2.0') < 0,
  };
  return new RedisListBroker(shared, main, blocking);
}

class RedisListBroker implements Broker, MemoryReporting {
  readonly capabilities: BrokerCapabilities;
  readonly #shared: SharedState;
  readonly #redis: Redis;
  /** Blocking waits only (BLPOP/BLMOVE): no commandTimeout, bounded by the wait plus a grace instead. */
  readonly #blocking: Redis;
  readonly #mode: ListMode;
  readonly #keys = new Map<string, QueueKeys>();
  #closing: Promise<void> | undefined;

  constructor(shared: SharedState, redis: Redis, blocking: Redis) {
    this.#shared = shared;
    this.#redis = redis;
    this.#blocking = blocking;
    this.capabilities = CAPABILITIES[shared.mode];
    const idPrefix = `${BigInt('0x' + randomBytes(8).toString('hex')).toString(36)}-`;
    let idCounter = 0;
    this.#mode = MODES[shared.mode]({
      redis,
      blocking,
      legacy: shared.legacy,
      nextId: () => `${idPrefix}${(idCounter++).toString(36)}`,
      closing: () => this.#closing !== undefined,
    });
  }

  async describe(): Promise<BrokerInfo> {
    this.#assertOpen('describe');
    let version: string;
    try {
      version = await serverVersion(this.#redis);
    } catch (error) {
      throw this.#error('describe', error);
    }
    return {
      name: ADAPTER,
      mode: this.#shared.mode,
      serverVersion: version,
      endpoint: redactUrl(this.#shared.url),
      endpointKind: this.#shared.endpointKind,
    };
  }

  async prepare(spec: QueueSpec): Promise<void> {
    this.#assertOpen('prepare');
    if (!spec.name || spec.name.includes('*')) throw new BrokerError(ADAPTER, 'prepare', `bad queue name "${spec.name}"`);
    if (!(spec.visibilityTimeoutMs > 0)) throw new BrokerError(ADAPTER, 'prepare', 'visibilityTimeoutMs must be > 0');
    if (!(spec.maxReceives >= 0)) throw new BrokerError(ADAPTER, 'prepare', 'maxReceives must be >= 0');
    // Lists, sorted sets and hashes spring into being on first write: nothing to create on the server.
    this.#shared.specs.set(spec.name, { ...spec });
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    this.#assertOpen('publish');
    const count = messages.length;
    if (count === 0) return;
    if (count > MAX_BATCH) throw new BrokerError(ADAPTER, 'publish', `batch of ${count} is over the limit of ${MAX_BATCH}`);
    try {
      await this.#mode.publish(this.#keysFor(queue), messages);
    } catch (error) {
      throw this.#error('publish', error);
    }
  }

  async receive(queue: string, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    this.#assertOpen('receive');
    const { maxMessages, waitMs } = options;
    if (!Number.isInteger(maxMessages) || maxMessages < 1 || maxMessages > MAX_BATCH) {
      throw new BrokerError(ADAPTER, 'receive', `maxMessages must be an integer from 1 to ${MAX_BATCH}, got ${maxMessages}`);
    }
    try {
      return await this.#mode.receive(this.#keysFor(queue), this.#specFor(queue), maxMessages, waitMs);
    } catch (error) {
      // close() during a blocking wait ends the wait, not the consumer loop.
      if (this.#closing !== undefined) return [];
      throw this.#error('receive', error);
    }
  }

  async ack(queue: string, messages: readonly ReceivedMessage[]): Promise<void> {
    this.#assertOpen('ack');
    if (messages.length === 0) return;
    try {
      await this.#mode.ack(this.#keysFor(queue), messages);
    } catch (error) {
      throw this.#error('ack', error);
    }
  }

  async nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    if (messages.length === 0) return;
    this.#assertOpen('nack');
    try {
      await this.#mode.nack(this.#keysFor(queue), this.#specFor(queue), messages, retryDelayMs);
    } catch (error) {
      throw this.#error('nack', error);
    }
  }

  async serverMemory(): Promise<ServerMemory> {
    this.#assertOpen('memory');
    try {
      return await redisServerMemory(this.#redis);
    } catch (error) {
      throw this.#error('memory', error);
    }
  }

  /** MEMORY USAGE of the queue's ready list, in-flight set and bodies, delayed set and dead list. */
  async queueMemoryBytes(queue: string): Promise<number> {
    this.#assertOpen('memory');
    const keys = this.#keysFor(queue);
    try {
      return await redisKeysMemoryBytes(this.#redis, [keys.ready, keys.inflight, keys.bodies, keys.delayed, keys.dead]);
    } catch (error) {
      throw this.#error('memory', error);
    }
  }

  async depth(queue: string): Promise<QueueDepth> {
    this.#assertOpen('depth');
    try {
      return await this.#mode.depth(this.#keysFor(queue));
    } catch (error) {
      throw this.#error('depth', error);
    }
  }

  async purge(queue: string): Promise<void> {
    this.#assertOpen('purge');
    await this.#deleteKeys('purge', queue);
  }

  async teardown(queue: string): Promise<void> {
    this.#assertOpen('teardown');
    await this.#deleteKeys('teardown', queue);
    this.#shared.specs.delete(queue);
    this.#keys.delete(queue);
  }

  async duplicate(): Promise<Broker> {
    this.#assertOpen('duplicate');
    const [main, blocking] = await connectPair(this.#shared.url, this.#shared.commandTimeoutMs);
    return new RedisListBroker(this.#shared, main, blocking);
  }

  close(): Promise<void> {
    if (this.#closing === undefined) {
      // The blocking connection is cut, not QUIT: a QUIT would queue behind a wait in progress.
      this.#blocking.disconnect();
      this.#closing = quitQuietly(this.#redis);
    }
    return this.#closing;
  }

  async #deleteKeys(operation: string, queue: string): Promise<void> {
    const keys = this.#keysFor(queue);
    try {
      await this.#redis.del(keys.ready, keys.inflight, keys.bodies, keys.delayed, keys.dead);
    } catch (error) {
      throw this.#error(operation, error);
    }
  }

  #keysFor(queue: string): QueueKeys {
    let keys = this.#keys.get(queue);
    if (keys === undefined) {
      const base = `${this.#shared.namespace}:${queue}:`;
      keys = { ready: `${base}ready`, inflight: `${base}inflight`, delayed: `${base}delayed`, dead: `${base}dead`, bodies: `${base}bodies` };
      this.#keys.set(queue, keys);
    }
    return keys;
  }

  #specFor(queue: string): Omit<QueueSpec, 'name'> {
    return this.#shared.specs.get(queue) ?? DEFAULT_SPEC;
  }

  #assertOpen(operation: string): void {
    if (this.#closing !== undefined) throw new BrokerError(ADAPTER, operation, 'the handle is closed');
  }

  #error(operation: string, error: unknown): BrokerError {
    if (error instanceof BrokerError) return error;
    return new BrokerError(ADAPTER, operation, describeRedisError(error), { cause: error });
  }
}

function parseMode(mode: string, operation: string): RedisListMode {
  const lower = mode.toLowerCase();
  if (lower === 'reliable' || lower === 'simple') return lower;
  throw new BrokerError(ADAPTER, operation, `unknown mode "${mode}"; use reliable or simple`);
}

/** Opens the command connection (with the reliable scripts) and the blocking-wait connection of one handle. */
async function connectPair(url: string, commandTimeoutMs: number): Promise<[Redis, Redis]> {
  const main = createRedisClient({ url, commandTimeoutMs, scripts: RELIABLE_SCRIPTS });
  const blocking = createRedisClient({ url, commandTimeoutMs, blocking: true });
  const results = await Promise.allSettled([
    connectRedis(ADAPTER, main, url, commandTimeoutMs),
    connectRedis(ADAPTER, blocking, url, commandTimeoutMs),
  ]);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) {
    main.disconnect();
    blocking.disconnect();
    throw failed.reason;
  }
  return [main, blocking];
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
