// Redis Streams with a consumer group: XADD to publish, XREADGROUP to receive, XACK (+XDEL) to ack,
// XAUTOCLAIM for redelivery after the visibility timeout, a ZSET for delays and a stream for dead letters.
// The group's reads, housekeeping and depth are in redis-stream-group.ts.
//
// Settings read from `options.settings`:
//   maxLength        number   XADD MAXLEN ~ n (approximate trimming; trims pending entries too). 0/undefined = none.
//   deleteOnAck      boolean  XACK then XDEL in one pipeline, so the stream does not grow without bound. Default true.
//   endpointKind     string   What describe() reports as endpointKind. Default 'local'.
//   claimIntervalMs  number   Least time between two housekeeping rounds (promote due delays, XAUTOCLAIM idle
//                             entries) per handle and queue. Default visibilityTimeoutMs / 4, clamped to 10..100.
//
// Keys per queue: `${ns}:${queue}:stream`, `…:delayed` (ZSET, score = due epoch ms), `…:dead` (stream); on a
// Redis Cluster (a URL naming any of its nodes) `${ns}:{<queue>:<salt>}:stream` and so on: one hash tag per
// queue, chosen so the run's queues spread over the masters (redis-slots.ts); queueStats says where each was.
// Group `${ns}-g`, created from id 0; one consumer name per handle. Delays use this host's wall clock (Date.now()).
// Redis ends a BLOCK on its cron tick (every 100 ms at the default hz 10): delays and redeliveries land that late.
//
// Receive count: a stream entry's delivery counter lives in the group's pending list and dies with the entry.
// Redelivery after the visibility timeout keeps the entry, so the counter (XPENDING times_delivered) is enough.
// A nack removes the entry (XACK + XDEL) and writes the body again, directly into the stream (delay 0) or into
// the delayed ZSET, with a field `n` holding the receives so far; every delivery reports times_delivered + n.
// That makes a nacked message visible at once (it does not wait for a claim round) and keeps its count raised.
// A nack of a message already received maxReceives times sends it to the dead stream instead.
//
// Fan-out (ConsumerGroups): openGroup(name) gives a handle reading as group `${ns}-${name}`, created on
// prepare; such handles ack without XDEL, since other groups may not have read the entry yet.
// The Lua is in adapters/lua/stream-*.lua, loaded through redis-kit.ts as redis-list's is.
//
// LIMITATION: one connection per handle carries the blocking XREADGROUP and the acks alike, so an ack
// sent on a handle that is waiting in a read is answered when that read returns.

import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { BrokerError, PartialSettleError } from '../src/broker.ts';
import type { BrokerCapabilities, BrokerOptions, OutgoingMessage, QueueDepth, QueueSpec, ReceivedMessage, ReceiveOptions, ServerMemory } from '../src/broker.ts';
import { redisKeysMemoryBytes, redisServerMemory } from '../src/services/redis-memory.ts';
import { defineAdapter, SettingsReader, type Driver, type ServerInfo } from './kit/index.ts';
import { describeRedisError } from './redis-connect-error.ts';
import {
  checkPipeline,
  clusterServerMemory,
  describeRedis,
  masterOf,
  openFirstRedisClient,
  openRedisClient,
  quitQuietly,
  redisTarget,
  runScript,
  type RedisClient,
  type RedisTarget,
} from './redis-kit.ts';
import { redisServerFacts } from './redis-registry.ts';
import { ClusterPlacement, fitsHashTag } from './redis-slots.ts';
import { groupDepth, housekeep, NACK, readGroup, STREAM_SCRIPTS, type GroupReader, type StreamKeys } from './redis-stream-group.ts';

const NAME = 'redis-stream';
const MODE = 'group';

const CAPABILITIES: BrokerCapabilities = {
  delivery: 'at-least-once',
  delay: true,
  maxDelayMs: 7 * 24 * 3600 * 1000,
  deadLetter: true,
  visibilityTimeout: true,
  nackDelay: true,
  ordering: 'none',
  maxBatchSize: 10_000,
  maxPayloadBytes: 512 * 1024 * 1024,
  sharedAcrossProcesses: true,
};

interface Settings {
  readonly maxLength: number;
  readonly deleteOnAck: boolean;
  readonly claimIntervalMs: number | undefined;
}

/** A prepared queue, shared by every handle of one `open`. */
interface QueueState extends StreamKeys {
  readonly spec: QueueSpec;
  readonly claimIntervalMs: number;
  /** Earliest known due time in the delayed ZSET (epoch ms); another process's delays are seen on the next round. */
  nextDueAtMs: number;
}

/** What one handle remembers per queue. */
interface HandleQueueState {
  cursor: string;
  housekeepAtMs: number;
}

interface Shared {
  readonly target: RedisTarget;
  /** On a Redis Cluster: the masters, and each queue's hash tag (set by the first connection of the open). */
  placement: ClusterPlacement | undefined;
  readonly namespace: string;
  readonly settings: Settings;
  readonly group: string;
  readonly queues: Map<string, QueueState>;
}

export const redisStreamAdapter = defineAdapter({
  name: NAME,
  aliases: ['REDIS_STREAM', 'REDIS-STREAM', 'STREAM'],
  modes: { [MODE]: CAPABILITIES },
  defaultMode: MODE,
  async connect(options: BrokerOptions): Promise<Driver> {
    const reader = new SettingsReader(NAME, options.settings);
    const shared: Shared = {
      target: redisTarget(NAME, options, reader),
      placement: undefined,
      namespace: options.namespace,
      settings: {
        maxLength: Math.floor(reader.number('maxLength', { min: 0 }) ?? 0),
        deleteOnAck: reader.boolean('deleteOnAck', true),
        claimIntervalMs: reader.number('claimIntervalMs', { min: 0 }),
      },
      group: `${options.namespace}-g`,
      queues: new Map(),
    };
    return new RedisStreamDriver(shared, await connectFirst(shared));
  },
  ...redisServerFacts,
  flagSettings: { maxlen: { setting: 'maxLength', purpose: 'trims a Redis stream' } },
});

function keysOf({ namespace, placement }: Shared, queue: string): StreamKeys {
  if (placement !== undefined && !fitsHashTag(queue)) throw new Error(`queue name "${queue}" must not contain '{' or '}' on a Redis Cluster (they mark a hash tag)`);
  const base = placement === undefined ? `${namespace}:${queue}` : `${namespace}:{${placement.tag(queue)}}`;
  return { stream: `${base}:stream`, delayed: `${base}:delayed`, dead: `${base}:dead` };
}

/** One connection per handle (a Cluster client on a cluster): XREADGROUP BLOCK runs on it too, with a timeout of its own (see readGroup). */
function connect({ target, placement }: Shared): Promise<RedisClient> {
  return openRedisClient(NAME, { url: target.url, commandTimeoutMs: target.commandTimeoutMs, scripts: STREAM_SCRIPTS, cluster: placement !== undefined });
}

/** The first connection of an open: it finds out whether the URL names a cluster, and if so where its slots are. */
async function connectFirst(shared: Shared): Promise<RedisClient> {
  const { url, commandTimeoutMs } = shared.target;
  const first = await openFirstRedisClient(NAME, { url, commandTimeoutMs, scripts: STREAM_SCRIPTS });
  if (!first.cluster) return first.client;
  const client = (await openRedisClient(NAME, { url, commandTimeoutMs, scripts: STREAM_SCRIPTS, cluster: true })) as Cluster;
  if (!fitsHashTag(shared.namespace)) {
    client.disconnect();
    throw new BrokerError(NAME, 'connect', `namespace "${shared.namespace}" must not contain '{' or '}' on a Redis Cluster (they mark a hash tag)`);
  }
  shared.placement = new ClusterPlacement(client.slots);
  return client;
}

class RedisStreamDriver implements Driver {
  readonly #shared: Shared;
  readonly #redis: RedisClient;
  readonly #reader: GroupReader;
  readonly #handleQueues = new Map<string, HandleQueueState>();
  #delaySeq = 0;
  #closed = false;
  /** On a cluster only: which master and slot each queue had (QueueStats). */
  declare readonly queueStats?: (queue: string) => Promise<Readonly<Record<string, number>>>;

  constructor(shared: Shared, redis: RedisClient) {
    this.#shared = shared;
    this.#redis = redis;
    this.#reader = { redis, group: shared.group, consumer: `c-${randomBytes(6).toString('hex')}` };
    const placement = shared.placement;
    if (placement !== undefined && redis instanceof Cluster) {
      this.queueStats = async (queue) => {
        keysOf(shared, queue);
        const slot = placement.slot(queue);
        return { [`slot of ${queue} on ${masterOf(redis, slot).key}`]: slot };
      };
    }
  }

  explain(error: unknown): string {
    return describeRedisError(error);
  }

  describe(): Promise<ServerInfo> {
    return describeRedis(this.#redis, this.#shared.target, this.#shared.placement?.masters);
  }

  async prepare(spec: QueueSpec): Promise<void> {
    const keys = keysOf(this.#shared, spec.name);
    try {
      // From 0, not $: anything published before prepare is still delivered.
      await this.#redis.xgroup('CREATE', keys.stream, this.#shared.group, '0', 'MKSTREAM');
    } catch (error) {
      if (!describeRedisError(error).startsWith('BUSYGROUP')) throw error;
    }
    const interval = this.#shared.settings.claimIntervalMs ?? Math.min(100, Math.max(10, Math.floor(spec.visibilityTimeoutMs / 4)));
    this.#shared.queues.set(spec.name, { spec, ...keys, claimIntervalMs: interval, nextDueAtMs: 0 });
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    const { stream, delayed } = keysOf(this.#shared, queue);
    const maxLen = this.#shared.settings.maxLength;
    const pipeline = this.#redis.pipeline();
    let now = 0;
    let earliestDue = Infinity;
    for (const message of messages) {
      const delayMs = message.delayMs ?? 0;
      if (delayMs > 0) {
        if (now === 0) now = Date.now();
        const due = now + delayMs;
        if (due < earliestDue) earliestDue = due;
        // The uid keeps equal bodies apart in the ZSET; it never contains ':'.
        const uid = `${this.#reader.consumer}-${(this.#delaySeq++).toString(36)}`;
        pipeline.zadd(delayed, due, `${uid}:0:${message.body}`);
      } else if (maxLen > 0) {
        pipeline.xadd(stream, 'MAXLEN', '~', maxLen, '*', 'b', message.body);
      } else {
        pipeline.xadd(stream, '*', 'b', message.body);
      }
    }
    checkPipeline(await pipeline.exec());
    const state = this.#shared.queues.get(queue);
    if (state && earliestDue < state.nextDueAtMs) state.nextDueAtMs = earliestDue;
  }

  async receive(queue: string, { maxMessages: count, waitMs }: ReceiveOptions): Promise<ReceivedMessage[]> {
    const state = this.#queue(queue, 'receive');
    let handle = this.#handleQueues.get(queue);
    if (!handle) {
      handle = { cursor: '0-0', housekeepAtMs: 0 };
      this.#handleQueues.set(queue, handle);
    }
    const deadline = Date.now() + waitMs;
    try {
      for (;;) {
        let now = Date.now();
        if (now >= handle.housekeepAtMs || now >= state.nextDueAtMs) {
          const { spec } = state;
          const round = { visibilityTimeoutMs: spec.visibilityTimeoutMs, maxReceives: spec.maxReceives, maxLength: this.#shared.settings.maxLength, cursor: handle.cursor };
          const result = await housekeep(this.#reader, state, round, count, now);
          handle.cursor = result.cursor;
          handle.housekeepAtMs = Date.now() + state.claimIntervalMs;
          state.nextDueAtMs = result.nextDueAtMs;
          if (result.claimed.length > 0) return result.claimed;
          now = Date.now();
        }
        const remaining = deadline - now;
        const blockMs = Math.floor(Math.min(remaining, handle.housekeepAtMs - now, state.nextDueAtMs - now));
        const received = await readGroup(this.#reader, state.stream, count, blockMs, this.#shared.target.commandTimeoutMs);
        if (received.length > 0 || Date.now() >= deadline) return received;
      }
    } catch (error) {
      // The group is gone (the server restarted without persistence, or someone deleted the stream):
      // make it again so the next receive works; this one still fails, and is counted.
      if (!this.#closed && describeRedisError(error).startsWith('NOGROUP')) await this.#recreateGroup(state);
      throw error;
    }
  }

  async #recreateGroup(state: QueueState): Promise<void> {
    try {
      await this.#redis.xgroup('CREATE', state.stream, this.#shared.group, '0', 'MKSTREAM');
    } catch {
      // BUSYGROUP (another consumer was first) or the server is still away: the next receive tries again.
    }
  }

  async ack(queue: string, messages: readonly ReceivedMessage[]): Promise<void> {
    const { stream } = keysOf(this.#shared, queue);
    const ids = new Array<string>(messages.length);
    for (let i = 0; i < messages.length; i++) ids[i] = messages[i]!.receipt;
    const pipeline = this.#redis.pipeline().xack(stream, this.#shared.group, ...ids);
    if (this.#shared.settings.deleteOnAck) pipeline.xdel(stream, ...ids);
    const results = await pipeline.exec();
    if (!results) throw new Error('pipeline was discarded');
    const failure = results.find(([error]) => error !== null)?.[0];
    if (!failure) return;
    // Either step alone settles the entries: acked ones leave the pending list, deleted ones are dropped
    // from it unread at the next claim round. Neither is ever delivered again.
    if (results.every(([error]) => error !== null)) throw failure;
    throw new PartialSettleError(NAME, 'ack', `${failure.message} (the entries are settled all the same)`, messages, { cause: failure });
  }

  async nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    const state = this.#queue(queue, 'nack');
    const due = retryDelayMs > 0 ? Date.now() + Math.ceil(retryDelayMs) : 0;
    const args: (string | number)[] = [this.#shared.group, due, state.spec.maxReceives, this.#shared.settings.maxLength];
    for (const m of messages) args.push(m.receipt, m.receiveCount, m.body);
    await runScript(this.#redis, NACK, [state.stream, state.delayed, state.dead], args);
    if (due > 0 && due < state.nextDueAtMs) state.nextDueAtMs = due;
  }

  depth(queue: string): Promise<QueueDepth> {
    return groupDepth(this.#redis, keysOf(this.#shared, queue), this.#shared.group);
  }

  async purge(queue: string): Promise<void> {
    const { stream, delayed, dead } = keysOf(this.#shared, queue);
    checkPipeline(await this.#redis.multi().del(stream, delayed, dead).xgroup('CREATE', stream, this.#shared.group, '0', 'MKSTREAM').exec());
  }

  async teardown(queue: string): Promise<void> {
    const { stream, delayed, dead } = keysOf(this.#shared, queue);
    await this.#redis.del(stream, delayed, dead);
    this.#shared.queues.delete(queue);
    this.#handleQueues.delete(queue);
  }

  async duplicate(): Promise<Driver> {
    return new RedisStreamDriver(this.#shared, await connect(this.#shared));
  }

  async openGroup(group: string): Promise<Driver> {
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(group)) throw new BrokerError(NAME, 'openGroup', `group name "${group}" must be 1 to 40 letters, digits, '-' or '_'`);
    const shared: Shared = {
      ...this.#shared,
      group: `${this.#shared.namespace}-${group}`,
      settings: { ...this.#shared.settings, deleteOnAck: false },
      queues: new Map(),
    };
    return new RedisStreamDriver(shared, await connect(shared));
  }

  serverMemory(): Promise<ServerMemory> {
    const redis = this.#redis;
    return redis instanceof Cluster ? clusterServerMemory(redis, redisServerMemory) : redisServerMemory(redis);
  }

  /** MEMORY USAGE of the queue's stream (its consumer groups and pending lists included), delayed set and dead stream (on its master, on a cluster). */
  queueMemoryBytes(queue: string): Promise<number> {
    const { stream, delayed, dead } = keysOf(this.#shared, queue);
    const redis = this.#redis;
    if (!(redis instanceof Cluster)) return redisKeysMemoryBytes(redis, [stream, delayed, dead]);
    const { key, node } = masterOf(redis, this.#shared.placement!.slot(queue));
    if (node === undefined) throw new Error(`no connection to ${key}, the master of queue ${queue}`);
    return redisKeysMemoryBytes(node, [stream, delayed, dead]);
  }

  close(): Promise<void> {
    this.#closed = true;
    return quitQuietly(this.#redis);
  }

  #queue(queue: string, operation: string): QueueState {
    const state = this.#shared.queues.get(queue);
    if (!state) throw new BrokerError(NAME, operation, `queue ${queue} is not prepared; call prepare first`);
    return state;
  }
}
