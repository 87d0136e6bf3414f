// Redis Streams with a consumer group: XADD to publish, XREADGROUP to receive, XACK (+XDEL) to ack,
// XAUTOCLAIM for redelivery after the visibility timeout, a ZSET for delays and a stream for dead letters.
//
// Settings read from `options.settings`:
//   maxLength        number   XADD MAXLEN ~ n (approximate trimming; trims pending entries too). 0/undefined = none.
//   deleteOnAck      boolean  XACK then XDEL in one pipeline, so the stream does not grow without bound. Default true.
//   endpointKind     string   What describe() reports as endpointKind. Default 'local'.
//   claimIntervalMs  number   Least time between two housekeeping rounds (promote due delays, XAUTOCLAIM idle
//                             entries) per handle and queue. Default visibilityTimeoutMs / 4, clamped to 10..100.
//
// Keys per queue: `${ns}:${queue}:stream`, `…:delayed` (ZSET, score = due epoch ms), `…:dead` (stream).
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
import { Redis, Command } from 'ioredis';
import { BrokerError, PartialSettleError } from '../src/broker.ts';
import type {
  Broker,
  BrokerAdapter,
  BrokerCapabilities,
  BrokerInfo,
  BrokerOptions,
  OutgoingMessage,
  QueueDepth,
  QueueSpec,
  ReceivedMessage,
  ReceiveOptions,
  ConsumerGroups,
  MemoryReporting,
  ServerMemory,
} from '../src/broker.ts';
import { redactUrl } from '../src/redact.ts';
import { redisServerFacts } from './redis-registry.ts';
import { redisKeysMemoryBytes, redisServerMemory } from '../src/services/redis-memory.ts';
import { describeRedisError } from './redis-connect-error.ts';
import { connectRedis, createRedisClient, endpointKindSetting, loadLua, runScript } from './redis-kit.ts';

const NAME = 'redis-stream';
const MODE = 'group';
const MAX_DELAY_MS = 7 * 24 * 3600 * 1000;
const MAX_BATCH = 10_000;
/** Most delayed entries one housekeeping round moves into the stream, so a receive never stalls Redis. */
const PROMOTE_LIMIT = 1000;
/** Least extra time a blocking read gets before the client gives up on the connection. */
const BLOCK_SLACK_MS = 1000;

const CAPABILITIES: BrokerCapabilities = {
  delivery: 'at-least-once',
  delay: true,
  maxDelayMs: MAX_DELAY_MS,
  deadLetter: true,
  visibilityTimeout: true,
  nackDelay: true,
  ordering: 'none',
  maxBatchSize: MAX_BATCH,
  maxPayloadBytes: 512 * 1024 * 1024,
  sharedAcrossProcesses: true,
};

type EndpointKind = BrokerInfo['endpointKind'];

// ---------------------------------------------------------------------------------------------- Lua

const HOUSEKEEP = loadLua('bbStreamHousekeep', 'stream-housekeep.lua');
const NACK = loadLua('bbStreamNack', 'stream-nack.lua');
const SCRIPTS = [HOUSEKEEP, NACK] as const;

// ------------------------------------------------------------------------------------------ settings

interface Settings {
  readonly maxLength: number;
  readonly deleteOnAck: boolean;
  readonly endpointKind: EndpointKind;
  readonly claimIntervalMs: number | undefined;
}

function fail(operation: string, message: string, cause?: unknown): BrokerError {
  return new BrokerError(NAME, operation, message, cause === undefined ? undefined : { cause });
}

function numberSetting(raw: BrokerOptions['settings'], key: string): number | undefined {
  const value = raw?.[key];
  if (value === undefined || value === '') return undefined;
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  if (!Number.isFinite(n) || n < 0) throw fail('open', `setting ${key} must be a number >= 0, got ${String(value)}`);
  return n;
}

function readSettings(raw: BrokerOptions['settings']): Settings {
  const del = raw?.['deleteOnAck'];
  let deleteOnAck = true;
  if (del === false || del === 'false' || del === '0' || del === 0) deleteOnAck = false;
  else if (!(del === undefined || del === true || del === 'true' || del === '1' || del === 1)) {
    throw fail('open', `setting deleteOnAck must be true or false, got ${String(del)}`);
  }
  return {
    maxLength: Math.floor(numberSetting(raw, 'maxLength') ?? 0),
    deleteOnAck,
    endpointKind: endpointKindSetting(NAME, raw),
    claimIntervalMs: numberSetting(raw, 'claimIntervalMs'),
  };
}

// ------------------------------------------------------------------------------------------- state

/** A prepared queue, shared by every handle of one `open`. */
interface QueueState {
  readonly spec: QueueSpec;
  readonly stream: string;
  readonly delayed: string;
  readonly dead: string;
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
  readonly url: string;
  readonly options: BrokerOptions;
  readonly settings: Settings;
  readonly group: string;
  readonly queues: Map<string, QueueState>;
}

function keysOf(namespace: string, queue: string): { stream: string; delayed: string; dead: string } {
  const base = `${namespace}:${queue}`;
  return { stream: `${base}:stream`, delayed: `${base}:delayed`, dead: `${base}:dead` };
}

function errorText(error: unknown): string {
  return describeRedisError(error);
}

/** One connection per handle: XREADGROUP BLOCK runs on it too, with a per-command timeout (see #readGroup). */
function connect(shared: Shared): Promise<Redis> {
  const { url } = shared;
  const { commandTimeoutMs } = shared.options;
  return connectRedis(NAME, createRedisClient({ url, commandTimeoutMs, scripts: SCRIPTS }), url, commandTimeoutMs);
}

// ------------------------------------------------------------------------------------------ broker

class RedisStreamBroker implements Broker, MemoryReporting, ConsumerGroups {
  readonly capabilities = CAPABILITIES;
  readonly #shared: Shared;
  readonly #redis: Redis;
  readonly #consumer = `c-${randomBytes(6).toString('hex')}`;
  readonly #handleQueues = new Map<string, HandleQueueState>();
  #delaySeq = 0;
  #closed = false;

  constructor(shared: Shared, redis: Redis) {
    this.#shared = shared;
    this.#redis = redis;
  }

  async describe(): Promise<BrokerInfo> {
    let info: string;
    try {
      info = await this.#redis.info('server');
    } catch (error) {
      throw fail('describe', errorText(error), error);
    }
    return {
      name: NAME,
      mode: MODE,
      serverVersion: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
      endpoint: redactUrl(this.#shared.url),
      endpointKind: this.#shared.settings.endpointKind,
    };
  }

  async prepare(spec: QueueSpec): Promise<void> {
    if (!spec.name) throw fail('prepare', 'queue name is empty');
    if (!(spec.visibilityTimeoutMs > 0)) throw fail('prepare', 'visibilityTimeoutMs must be > 0');
    if (!(spec.maxReceives >= 0)) throw fail('prepare', 'maxReceives must be >= 0');
    const keys = keysOf(this.#shared.options.namespace, spec.name);
    try {
      // From 0, not $: anything published before prepare is still delivered.
      await this.#redis.xgroup('CREATE', keys.stream, this.#shared.group, '0', 'MKSTREAM');
    } catch (error) {
      if (!errorText(error).startsWith('BUSYGROUP')) throw fail('prepare', errorText(error), error);
    }
    const interval =
      this.#shared.settings.claimIntervalMs ?? Math.min(100, Math.max(10, Math.floor(spec.visibilityTimeoutMs / 4)));
    this.#shared.queues.set(spec.name, { spec, ...keys, claimIntervalMs: interval, nextDueAtMs: 0 });
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    if (messages.length > MAX_BATCH) throw fail('publish', `at most ${MAX_BATCH} messages per batch, got ${messages.length}`);
    const { stream, delayed } = keysOf(this.#shared.options.namespace, queue);
    const maxLen = this.#shared.settings.maxLength;
    const pipeline = this.#redis.pipeline();
    let now = 0;
    let earliestDue = Infinity;
    for (const message of messages) {
      const delayMs = message.delayMs ?? 0;
      if (delayMs > 0) {
        if (delayMs > MAX_DELAY_MS) throw fail('publish', `delayMs ${delayMs} exceeds the ${MAX_DELAY_MS} ms maximum`);
        if (now === 0) now = Date.now();
        const due = now + delayMs;
        if (due < earliestDue) earliestDue = due;
        // The uid keeps equal bodies apart in the ZSET; it never contains ':'.
        const uid = `${this.#consumer}-${(this.#delaySeq++).toString(36)}`;
        pipeline.zadd(delayed, due, `${uid}:0:${message.body}`);
      } else if (maxLen > 0) {
        pipeline.xadd(stream, 'MAXLEN', '~', maxLen, '*', 'b', message.body);
      } else {
        pipeline.xadd(stream, '*', 'b', message.body);
      }
    }
    await this.#exec('publish', pipeline);
    const state = this.#shared.queues.get(queue);
    if (state && earliestDue < state.nextDueAtMs) state.nextDueAtMs = earliestDue;
  }

  async receive(queue: string, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    if (this.#closed) throw fail('receive', 'handle is closed');
    const state = this.#queue(queue, 'receive');
    const count = options.maxMessages;
    if (!(count >= 1 && count <= MAX_BATCH)) throw fail('receive', `maxMessages must be 1..${MAX_BATCH}, got ${count}`);
    let handle = this.#handleQueues.get(queue);
    if (!handle) {
      handle = { cursor: '0-0', housekeepAtMs: 0 };
      this.#handleQueues.set(queue, handle);
    }
    const deadline = Date.now() + Math.max(0, options.waitMs);
    try {
      for (;;) {
        let now = Date.now();
        if (now >= handle.housekeepAtMs || now >= state.nextDueAtMs) {
          const claimed = await this.#housekeep(state, handle, count, now);
          if (claimed.length > 0) return claimed;
          now = Date.now();
        }
        const remaining = deadline - now;
        const blockMs = Math.floor(Math.min(remaining, handle.housekeepAtMs - now, state.nextDueAtMs - now));
        const received = await this.#readGroup(state.stream, count, blockMs);
        if (received.length > 0 || Date.now() >= deadline) return received;
      }
    } catch (error) {
      // close() during a wait ends the wait, not the consumer loop (as the other adapters do).
      if (this.#closed) return [];
      if (error instanceof BrokerError) throw error;
      // The group is gone (the server restarted without persistence, or someone deleted the stream):
      // make it again so the next receive works; this one still fails, and is counted.
      if (errorText(error).startsWith('NOGROUP')) await this.#recreateGroup(state);
      throw fail('receive', errorText(error), error);
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
    if (messages.length === 0) return;
    const { stream } = keysOf(this.#shared.options.namespace, queue);
    const ids = new Array<string>(messages.length);
    for (let i = 0; i < messages.length; i++) ids[i] = messages[i]!.receipt;
    const pipeline = this.#redis.pipeline().xack(stream, this.#shared.group, ...ids);
    if (this.#shared.settings.deleteOnAck) pipeline.xdel(stream, ...ids);
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
    } catch (error) {
      throw fail('ack', errorText(error), error);
    }
    if (!results) throw fail('ack', 'pipeline was discarded');
    const failure = results.find(([error]) => error !== null)?.[0];
    if (!failure) return;
    // Either step alone settles the entries: acked ones leave the pending list, deleted ones are dropped
    // from it unread at the next claim round. Neither is ever delivered again.
    if (results.every(([error]) => error !== null)) throw fail('ack', failure.message, failure);
    throw new PartialSettleError(NAME, 'ack', `${failure.message} (the entries are settled all the same)`, messages, { cause: failure });
  }

  async nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    if (messages.length === 0) return;
    const state = this.#queue(queue, 'nack');
    if (!(retryDelayMs >= 0 && retryDelayMs <= MAX_DELAY_MS)) {
      throw fail('nack', `retryDelayMs must be 0..${MAX_DELAY_MS}, got ${retryDelayMs}`);
    }
    const due = retryDelayMs > 0 ? Date.now() + Math.ceil(retryDelayMs) : 0;
    const args: (string | number)[] = [
      this.#shared.group,
      due,
      state.spec.maxReceives,
      this.#shared.settings.maxLength,
    ];
    for (const m of messages) args.push(m.receipt, m.receiveCount, m.body);
    try {
      await runScript(this.#redis, NACK, [state.stream, state.delayed, state.dead], args);
    } catch (error) {
      throw fail('nack', errorText(error), error);
    }
    if (due > 0 && due < state.nextDueAtMs) state.nextDueAtMs = due;
  }

  async depth(queue: string): Promise<QueueDepth> {
    const { stream, delayed, dead } = keysOf(this.#shared.options.namespace, queue);
    const group = this.#shared.group;
    const results = await this.#redis
      .pipeline()
      .xinfo('GROUPS', stream)
      .xpending(stream, group)
      .zcard(delayed)
      .xlen(dead)
      .xlen(stream)
      .exec();
    if (!results) throw fail('depth', 'pipeline was discarded');
    const [infoR, pendingR, delayedR, deadR, lenR] = results;
    const streamLength = Number(lenR?.[1] ?? 0);
    if (infoR?.[0] && /no such key/i.test(infoR[0].message)) {
      return { ready: 0, inFlight: 0, delayed: Number(delayedR?.[1] ?? 0), dead: Number(deadR?.[1] ?? 0) };
    }
    for (const r of results) if (r[0]) throw fail('depth', r[0].message, r[0]);
    const inFlight = Number((pendingR?.[1] as unknown[] | undefined)?.[0] ?? 0);
    let ready: number | undefined;
    let lastDeliveredId = '0-0';
    for (const g of infoR?.[1] as unknown[][]) {
      const fields = new Map<string, unknown>();
      for (let i = 0; i + 1 < g.length; i += 2) fields.set(String(g[i]), g[i + 1]);
      if (fields.get('name') !== group) continue;
      lastDeliveredId = String(fields.get('last-delivered-id') ?? '0-0');
      const lag = fields.get('lag');
      if (typeof lag === 'number') ready = lag;
    }
    // Lag is null when deletions fragment the stream (or absent before Redis 7): count what follows the group's cursor.
    if (ready === undefined) ready = streamLength === 0 ? 0 : await this.#countAfter(stream, lastDeliveredId);
    return { ready, inFlight, delayed: Number(delayedR?.[1] ?? 0), dead: Number(deadR?.[1] ?? 0) };
  }

  async purge(queue: string): Promise<void> {
    const { stream, delayed, dead } = keysOf(this.#shared.options.namespace, queue);
    const multi = this.#redis
      .multi()
      .del(stream, delayed, dead)
      .xgroup('CREATE', stream, this.#shared.group, '0', 'MKSTREAM');
    await this.#exec('purge', multi);
  }

  async teardown(queue: string): Promise<void> {
    const { stream, delayed, dead } = keysOf(this.#shared.options.namespace, queue);
    try {
      await this.#redis.del(stream, delayed, dead);
    } catch (error) {
      throw fail('teardown', errorText(error), error);
    }
    this.#shared.queues.delete(queue);
    this.#handleQueues.delete(queue);
  }

  async duplicate(): Promise<Broker> {
    if (this.#closed) throw fail('duplicate', 'handle is closed');
    return new RedisStreamBroker(this.#shared, await connect(this.#shared));
  }

  async openGroup(group: string): Promise<Broker> {
    if (this.#closed) throw fail('openGroup', 'handle is closed');
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(group)) throw fail('openGroup', `group name "${group}" must be 1 to 40 letters, digits, '-' or '_'`);
    const shared: Shared = {
      ...this.#shared,
      group: `${this.#shared.options.namespace}-${group}`,
      settings: { ...this.#shared.settings, deleteOnAck: false },
      queues: new Map(),
    };
    return new RedisStreamBroker(shared, await connect(shared));
  }

  async serverMemory(): Promise<ServerMemory> {
    try {
      return await redisServerMemory(this.#redis);
    } catch (error) {
      throw fail('memory', errorText(error), error);
    }
  }

  /** MEMORY USAGE of the queue's stream (its consumer groups and pending lists included), delayed set and dead stream. */
  async queueMemoryBytes(queue: string): Promise<number> {
    const { stream, delayed, dead } = keysOf(this.#shared.options.namespace, queue);
    try {
      return await redisKeysMemoryBytes(this.#redis, [stream, delayed, dead]);
    } catch (error) {
      throw fail('memory', errorText(error), error);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#redis.quit();
    } catch {
      // Already gone: nothing left to close.
    }
    this.#redis.disconnect();
  }

  // ---------------------------------------------------------------------------------------- private

  #queue(queue: string, operation: string): QueueState {
    const state = this.#shared.queues.get(queue);
    if (!state) throw fail(operation, `queue ${queue} is not prepared; call prepare first`);
    return state;
  }

  async #exec(operation: string, pipeline: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
    } catch (error) {
      throw fail(operation, errorText(error), error);
    }
    if (!results) throw fail(operation, 'pipeline was discarded');
    for (const [error] of results) if (error) throw fail(operation, error.message, error);
    return results;
  }

  async #housekeep(state: QueueState, handle: HandleQueueState, count: number, now: number): Promise<ReceivedMessage[]> {
    const reply = await runScript<[string, string, (string | number)[]]>(
      this.#redis,
      HOUSEKEEP,
      [state.stream, state.delayed, state.dead],
      [
        this.#shared.group,
        this.#consumer,
        state.spec.visibilityTimeoutMs,
        count,
        handle.cursor,
        now,
        PROMOTE_LIMIT,
        state.spec.maxReceives,
        this.#shared.settings.maxLength,
      ],
    );
    handle.cursor = reply[0];
    handle.housekeepAtMs = Date.now() + state.claimIntervalMs;
    state.nextDueAtMs = reply[1] === '' ? Infinity : Number(reply[1]);
    const flat = reply[2];
    const out = new Array<ReceivedMessage>(flat.length / 3);
    for (let i = 0, j = 0; i < flat.length; i += 3, j++) {
      out[j] = { receipt: flat[i] as string, body: flat[i + 1] as string, receiveCount: flat[i + 2] as number };
    }
    return out;
  }

  /** XREADGROUP `>`; blocks up to blockMs when >= 1. The command timeout covers the block plus the usual limit. */
  async #readGroup(stream: string, count: number, blockMs: number): Promise<ReceivedMessage[]> {
    let reply: unknown;
    if (blockMs >= 1) {
      const command = new Command(
        'xreadgroup',
        ['GROUP', this.#shared.group, this.#consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', stream, '>'],
        { replyEncoding: 'utf8' },
      );
      // Armed first, so the connection-wide commandTimeout (which would cut the block short) is not applied.
      // Redis ends a block on its cron tick (100 ms at the default hz 10), hence at least a second of slack.
      command.setTimeout(blockMs + Math.max(this.#shared.options.commandTimeoutMs, BLOCK_SLACK_MS));
      reply = await this.#redis.sendCommand(command);
    } else {
      reply = await this.#redis.call('XREADGROUP', 'GROUP', this.#shared.group, this.#consumer, 'COUNT', count, 'STREAMS', stream, '>');
    }
    if (!reply) return [];
    const entries = (reply as [string, [string, string[] | null][]][])[0]![1];
    const out = new Array<ReceivedMessage>(entries.length);
    let n = 0;
    for (let i = 0; i < entries.length; i++) {
      const [id, fields] = entries[i]!;
      if (!fields) continue;
      if (fields.length === 2) {
        out[n++] = { body: fields[1]!, receiveCount: 1, receipt: id };
      } else {
        let body = '';
        let prior = 0;
        for (let f = 0; f + 1 < fields.length; f += 2) {
          if (fields[f] === 'b') body = fields[f + 1]!;
          else if (fields[f] === 'n') prior = Number(fields[f + 1]);
        }
        out[n++] = { body, receiveCount: 1 + prior, receipt: id };
      }
    }
    out.length = n;
    return out;
  }

  async #countAfter(stream: string, lastId: string): Promise<number> {
    let total = 0;
    let from = lastId === '0-0' ? '-' : `(${lastId}`;
    for (;;) {
      const page = (await this.#redis.call('XRANGE', stream, from, '+', 'COUNT', 10_000)) as [string, unknown][];
      total += page.length;
      if (page.length < 10_000) return total;
      from = `(${page[page.length - 1]![0]}`;
    }
  }
}

// -------------------------------------------------------------------------------------------- adapter

export const redisStreamAdapter: BrokerAdapter = {
  name: NAME,
  aliases: ['REDIS_STREAM', 'REDIS-STREAM', 'STREAM'],
  modes: [MODE],
  defaultMode: MODE,
  capabilities(mode: string): BrokerCapabilities {
    if (mode !== MODE) throw fail('capabilities', `unknown mode "${mode}"; use ${MODE}`);
    return CAPABILITIES;
  },
  async open(options: BrokerOptions): Promise<Broker> {
    if (options.mode !== undefined && options.mode !== MODE) {
      throw fail('open', `unknown mode "${options.mode}"; use ${MODE}`);
    }
    if (!options.url) throw fail('open', 'no Redis URL; set REDIS_URL, e.g. redis://127.0.0.1:6379');
    if (!options.namespace) throw fail('open', 'namespace is empty');
    const shared: Shared = {
      url: options.url,
      options,
      settings: readSettings(options.settings),
      group: `${options.namespace}-g`,
      queues: new Map(),
    };
    return new RedisStreamBroker(shared, await connect(shared));
  },
  ...redisServerFacts,
  flagSettings: { maxlen: { setting: 'maxLength', purpose: 'trims a Redis stream' } },
};
