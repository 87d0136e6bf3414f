// The Redis-list adapter: the seeds' RPUSH/LPOP queue (`simple`, at-most-once) and a reliable variant
// (`reliable`, at-least-once) with in-flight ZSET, visibility timeout, delays and a dead-letter list.
//
// Settings read from `options.settings`:
//   endpointKind  string  what describe() reports as `endpointKind` (the CLI passes 'embedded'); default 'local'.

import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import {
  BrokerError,
  PartialSettleError,
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
import { describeRedisError, explainRedisConnectError } from './redis-connect-error.ts';

const ADAPTER = 'redis-list';

export type RedisListMode = 'reliable' | 'simple';

/** Most messages per publish/receive call; also the most values sent in one RPUSH/ZADD/ZREM. */
const MAX_BATCH = 10_000;
/** Values per multi-value command, so no single command holds the server for long. */
const CHUNK = 1_000;
/** Redis' own limit on one string (proto-max-bulk-len default); the envelope prefix is tiny next to it. */
const MAX_PAYLOAD_BYTES = 512 * 1024 * 1024;
/** Longest publish delay accepted in reliable mode: 7 days. */
const MAX_DELAY_MS = 7 * 24 * 3600 * 1000;
/** Most delayed and most expired in-flight entries one receive call moves, so a backlog never stalls it. */
const PROMOTE_LIMIT = 1_000;
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

// Reliable-mode envelopes are "id:receiveCount:body": id is unique per message and has no ':',
// receiveCount is how many times the message was delivered so far (0 when published).

const RECEIVE_LUA = `
-- Promote due delayed entries, requeue or dead-letter expired in-flight ones, then move up to
-- ARGV[2] ready entries to in-flight with their receive count raised by one.
-- KEYS[1] ready list     envelopes "id:receiveCount:body"
-- KEYS[2] inflight zset  member = envelope of the current delivery, score = visibility deadline (epoch ms)
-- KEYS[3] delayed zset   member = envelope, score = due time (epoch ms)
-- KEYS[4] dead list      envelopes that reached maxReceives
-- ARGV[1] now, epoch ms (the client's clock, so the script stays deterministic)
-- ARGV[2] most messages to return
-- ARGV[3] visibility timeout, ms
-- ARGV[4] maxReceives (0 = never dead-letter)
-- ARGV[5] most delayed entries and most expired in-flight entries to move in this call
-- ARGV[6] an id prefix unique to this call (no ':'), for ready entries that are not envelopes
-- Returns { nextDue, envelope... }: nextDue is '' unless nothing was returned; then it is the earliest
-- delayed due time or in-flight deadline (epoch ms), or '' if there is none, to bound the client's wait.
local now = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local deadline = now + tonumber(ARGV[3])
local maxReceives = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])

-- unpack() has a stack limit: send long argument lists in chunks (of an even size, for ZADD pairs).
local function callAll(cmd, key, items)
  for i = 1, #items, 500 do
    redis.call(cmd, key, unpack(items, i, math.min(i + 499, #items)))
  end
end

-- The receive count of an envelope and the positions of its two ':'; nil for anything else (a body
-- someone pushed without the envelope), which must never stop the script half-way.
local function countOf(envelope)
  local a = string.find(envelope, ':', 1, true)
  if not a then return nil end
  local b = string.find(envelope, ':', a + 1, true)
  if not b then return nil end
  local digits = string.sub(envelope, a + 1, b - 1)
  if not string.match(digits, '^%d+$') then return nil end
  return tonumber(digits), a, b
end

local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
if #due > 0 then
  callAll('ZREM', KEYS[3], due)
  callAll('RPUSH', KEYS[1], due)
end

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
if #expired > 0 then
  callAll('ZREM', KEYS[2], expired)
  local back, dead = {}, {}
  for _, e in ipairs(expired) do
    local count = countOf(e)
    if maxReceives > 0 and count ~= nil and count >= maxReceives then dead[#dead + 1] = e else back[#back + 1] = e end
  end
  if #back > 0 then callAll('RPUSH', KEYS[1], back) end
  if #dead > 0 then callAll('RPUSH', KEYS[4], dead) end
end

local out = { '' }
local popped = redis.call('LRANGE', KEYS[1], 0, want - 1)
if #popped > 0 then
  redis.call('LTRIM', KEYS[1], #popped, -1)
  local zargs, dead = {}, {}
  for i, e in ipairs(popped) do
    local count, a, b = countOf(e)
    if count == nil then
      -- Not an envelope (a raw RPUSH by someone else): wrap it as a first delivery, so a consumer sees it
      -- and can ack it, instead of an error on every receive from here on.
      local member = ARGV[6] .. i .. ':1:' .. e
      zargs[#zargs + 1] = deadline
      zargs[#zargs + 1] = member
      out[#out + 1] = member
    elseif maxReceives > 0 and count >= maxReceives then
      dead[#dead + 1] = e
    else
      local member = string.sub(e, 1, a) .. (count + 1) .. string.sub(e, b)
      zargs[#zargs + 1] = deadline
      zargs[#zargs + 1] = member
      out[#out + 1] = member
    end
  end
  if #zargs > 0 then callAll('ZADD', KEYS[2], zargs) end
  if #dead > 0 then callAll('RPUSH', KEYS[4], dead) end
end

if #out == 1 then
  local d = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  local f = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if d[2] then out[1] = d[2] end
  if f[2] and (out[1] == '' or tonumber(f[2]) < tonumber(out[1])) then out[1] = f[2] end
end
return out
`;

const NACK_LUA = `
-- Give in-flight messages back: to ready at once, to delayed when ARGV[1] > 0, or to dead when they
-- were already delivered maxReceives times. Receipts no longer in flight (timed out) are skipped.
-- KEYS[1] ready list, KEYS[2] inflight zset, KEYS[3] delayed zset, KEYS[4] dead list (as in receive)
-- ARGV[1] due time, epoch ms (0 = requeue at once)
-- ARGV[2] maxReceives (0 = never dead-letter)
-- ARGV[3..n] receipts: in-flight members "id:receiveCount:body"
-- Returns how many receipts were still in flight.
local due = tonumber(ARGV[1])
local maxReceives = tonumber(ARGV[2])
local moved = 0
for i = 3, #ARGV do
  local e = ARGV[i]
  if redis.call('ZREM', KEYS[2], e) == 1 then
    moved = moved + 1
    -- A member that is not an envelope (written by someone else) has no count: requeue it rather than
    -- fail here, after the ZREM, and lose it.
    local a = string.find(e, ':', 1, true)
    local b = a and string.find(e, ':', a + 1, true)
    local count = b and tonumber(string.sub(e, a + 1, b - 1))
    if maxReceives > 0 and count and count >= maxReceives then
      redis.call('RPUSH', KEYS[4], e)
    elseif due > 0 then
      redis.call('ZADD', KEYS[3], due, e)
    else
      redis.call('RPUSH', KEYS[1], e)
    end
  end
end
return moved
`;

type ScriptArg = string | number;

/** The ioredis client with the scripts above defined on it (EVALSHA, falling back to EVAL once). */
type ScriptedRedis = Redis & {
  bbReceive(...args: ScriptArg[]): Promise<string[]>;
  bbNack(...args: ScriptArg[]): Promise<number>;
};

interface QueueKeys {
  readonly ready: string;
  readonly inflight: string;
  readonly delayed: string;
  readonly dead: string;
}

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

const ENDPOINT_KINDS: readonly BrokerInfo['endpointKind'][] = ['local', 'embedded', 'docker', 'localstack', 'aws', 'other'];

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
  const kindSetting = options.settings?.['endpointKind'];
  const endpointKind = ENDPOINT_KINDS.find((kind) => kind === kindSetting) ?? 'local';

  const [main, blocking] = await connectPair(options.url, options.commandTimeoutMs);
  let version: string;
  try {
    version = await serverVersion(main);
  } catch (error) {
    main.disconnect();
    blocking.disconnect();
    throw new BrokerError(ADAPTER, 'connect', `INFO failed: ${messageOf(error)}`, { cause: error });
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

/** Parses a reliable-mode envelope or receipt "id:receiveCount:body". Exported for tests and tools. */
export function parseEnvelope(envelope: string): { id: string; receiveCount: number; body: string } {
  const a = envelope.indexOf(':');
  const b = envelope.indexOf(':', a + 1);
  return { id: envelope.slice(0, a), receiveCount: Number(envelope.slice(a + 1, b)), body: envelope.slice(b + 1) };
}

class RedisListBroker implements Broker, MemoryReporting {
  readonly capabilities: BrokerCapabilities;
  readonly #shared: SharedState;
  /** Every non-blocking command, with commandTimeoutMs. */
  readonly #redis: ScriptedRedis;
  /** Blocking waits only (BLPOP/BLMOVE): no commandTimeout, bounded by the wait plus a grace instead. */
  readonly #blocking: Redis;
  readonly #keys = new Map<string, QueueKeys>();
  /** Message ids are this handle's random prefix plus a counter: unique without a round trip. */
  readonly #idPrefix = `${BigInt('0x' + randomBytes(8).toString('hex')).toString(36)}-`;
  #idCounter = 0;
  #closing: Promise<void> | undefined;

  constructor(shared: SharedState, redis: Redis, blocking: Redis) {
    this.#shared = shared;
    this.#redis = redis as ScriptedRedis;
    this.#blocking = blocking;
    this.capabilities = CAPABILITIES[shared.mode];
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
    // Lists and sorted sets spring into being on first write: nothing to create on the server.
    this.#shared.specs.set(spec.name, { ...spec });
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    this.#assertOpen('publish');
    const count = messages.length;
    if (count === 0) return;
    if (count > MAX_BATCH) throw new BrokerError(ADAPTER, 'publish', `batch of ${count} is over the limit of ${MAX_BATCH}`);
    const keys = this.#keysFor(queue);
    const ready: string[] = new Array<string>(count);
    let readyCount = 0;
    let delayed: ScriptArg[] | undefined;
    if (this.#shared.mode === 'simple') {
      for (let i = 0; i < count; i++) {
        const message = messages[i]!;
        if (message.delayMs !== undefined && message.delayMs > 0) {
          throw new BrokerError(ADAPTER, 'publish', 'simple mode cannot delay messages; use --mode reliable');
        }
        ready[readyCount++] = message.body;
      }
    } else {
      const prefix = this.#idPrefix;
      const now = Date.now();
      for (let i = 0; i < count; i++) {
        const message = messages[i]!;
        const envelope = `${prefix}${(this.#idCounter++).toString(36)}:0:${message.body}`;
        const delayMs = message.delayMs;
        if (delayMs !== undefined && delayMs > 0) {
          if (delayMs > MAX_DELAY_MS) throw new BrokerError(ADAPTER, 'publish', `delayMs ${delayMs} is over the limit of ${MAX_DELAY_MS}`);
          (delayed ??= []).push(now + delayMs, envelope);
        } else {
          ready[readyCount++] = envelope;
        }
      }
    }
    ready.length = readyCount;
    try {
      if (delayed === undefined && readyCount <= CHUNK) {
        await this.#redis.rpush(keys.ready, ...ready);
        return;
      }
      const pipeline = this.#redis.pipeline();
      for (let i = 0; i < readyCount; i += CHUNK) pipeline.rpush(keys.ready, ...ready.slice(i, i + CHUNK));
      if (delayed !== undefined) {
        for (let i = 0; i < delayed.length; i += 2 * CHUNK) pipeline.zadd(keys.delayed, ...delayed.slice(i, i + 2 * CHUNK));
      }
      checkPipeline(await pipeline.exec());
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
    const keys = this.#keysFor(queue);
    try {
      return this.#shared.mode === 'simple'
        ? await this.#receiveSimple(keys, maxMessages, waitMs)
        : await this.#receiveReliable(keys, this.#specFor(queue), maxMessages, waitMs);
    } catch (error) {
      // close() during a blocking wait ends the wait, not the consumer loop.
      if (this.#closing !== undefined) return [];
      throw this.#error('receive', error);
    }
  }

  async ack(queue: string, messages: readonly ReceivedMessage[]): Promise<void> {
    this.#assertOpen('ack');
    // Simple mode: LPOP already removed them.
    if (this.#shared.mode === 'simple' || messages.length === 0) return;
    const key = this.#keysFor(queue).inflight;
    const receipts = messages.map((message) => message.receipt);
    try {
      if (receipts.length <= CHUNK) {
        await this.#redis.zrem(key, ...receipts);
        return;
      }
      const pipeline = this.#redis.pipeline();
      for (let i = 0; i < receipts.length; i += CHUNK) pipeline.zrem(key, ...receipts.slice(i, i + CHUNK));
      checkChunks('ack', messages, await pipeline.exec());
    } catch (error) {
      throw this.#error('ack', error);
    }
  }

  async nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    if (messages.length === 0) return;
    this.#assertOpen('nack');
    const keys = this.#keysFor(queue);
    try {
      if (this.#shared.mode === 'simple') {
        // No delay support: the bodies go back at once (capabilities.nackDelay is false).
        const pipeline = this.#redis.pipeline();
        for (let i = 0; i < messages.length; i += CHUNK) {
          pipeline.rpush(keys.ready, ...messages.slice(i, i + CHUNK).map((message) => message.body));
        }
        checkChunks('nack', messages, await pipeline.exec());
        return;
      }
      const due = retryDelayMs > 0 ? Date.now() + retryDelayMs : 0;
      const { maxReceives } = this.#specFor(queue);
      const calls: Promise<number>[] = [];
      for (let i = 0; i < messages.length; i += CHUNK) {
        const receipts = messages.slice(i, i + CHUNK).map((message) => message.receipt);
        calls.push(this.#redis.bbNack(keys.ready, keys.inflight, keys.delayed, keys.dead, due, maxReceives, ...receipts));
      }
      const results = await Promise.allSettled(calls);
      checkChunks('nack', messages, results.map((r) => (r.status === 'fulfilled' ? [null, r.value] : [toError(r.reason), null])));
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

  /** MEMORY USAGE of the queue's ready list, in-flight and delayed sets and dead list. */
  async queueMemoryBytes(queue: string): Promise<number> {
    this.#assertOpen('memory');
    const keys = this.#keysFor(queue);
    try {
      return await redisKeysMemoryBytes(this.#redis, [keys.ready, keys.inflight, keys.delayed, keys.dead]);
    } catch (error) {
      throw this.#error('memory', error);
    }
  }

  async depth(queue: string): Promise<QueueDepth> {
    this.#assertOpen('depth');
    const keys = this.#keysFor(queue);
    try {
      if (this.#shared.mode === 'simple') {
        return { ready: await this.#redis.llen(keys.ready), inFlight: 0, delayed: 0, dead: 0 };
      }
      const replies = checkPipeline(
        await this.#redis.pipeline().llen(keys.ready).zcard(keys.inflight).zcard(keys.delayed).llen(keys.dead).exec(),
      );
      const [ready, inFlight, delayed, dead] = replies.map(Number) as [number, number, number, number];
      return { ready, inFlight, delayed, dead };
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
      this.#closing = quietly(this.#redis);
    }
    return this.#closing;
  }

  async #receiveSimple(keys: QueueKeys, maxMessages: number, waitMs: number): Promise<ReceivedMessage[]> {
    let bodies = await this.#popSimple(keys.ready, maxMessages);
    if (bodies.length === 0) {
      if (!(waitMs > 0)) return [];
      const popped = await this.#blocking.blpop(keys.ready, this.#blockSeconds(waitMs));
      if (popped === null) return [];
      bodies = maxMessages > 1 ? await this.#popSimple(keys.ready, maxMessages - 1) : [];
      bodies.unshift(popped[1]);
    }
    const messages = new Array<ReceivedMessage>(bodies.length);
    for (let i = 0; i < bodies.length; i++) messages[i] = { body: bodies[i]!, receiveCount: 1, receipt: '' };
    return messages;
  }

  async #popSimple(key: string, count: number): Promise<string[]> {
    if (!this.#shared.legacy) return (await this.#redis.lpop(key, count)) ?? [];
    // Before 6.2 LPOP takes no count: read and trim in one transaction instead.
    const replies = checkPipeline(await this.#redis.multi().lrange(key, 0, count - 1).ltrim(key, count, -1).exec());
    return replies[0] as string[];
  }

  async #receiveReliable(keys: QueueKeys, spec: Omit<QueueSpec, 'name'>, maxMessages: number, waitMs: number): Promise<ReceivedMessage[]> {
    const deadline = Date.now() + Math.max(0, waitMs);
    for (;;) {
      const reply = await this.#redis.bbReceive(
        keys.ready, keys.inflight, keys.delayed, keys.dead,
        Date.now(), maxMessages, spec.visibilityTimeoutMs, spec.maxReceives, PROMOTE_LIMIT,
        `${this.#idPrefix}r${(this.#idCounter++).toString(36)}.`,
      );
      if (reply.length > 1) return toReliableMessages(reply);
      const now = Date.now();
      let waitForMs = deadline - now;
      if (waitForMs <= 0) return [];
      const nextDue = reply[0] ? Number(reply[0]) : Number.NaN;
      if (nextDue - now < waitForMs) waitForMs = nextDue - now;
      // Wake when anything lands in ready (an atomic peek that leaves the list as it is), or when the
      // earliest delayed or in-flight entry falls due; then run the script again.
      if (waitForMs > 0) await this.#waitForReady(keys.ready, waitForMs);
      if (this.#closing !== undefined) return [];
    }
  }

  async #waitForReady(key: string, waitMs: number): Promise<void> {
    const seconds = this.#blockSeconds(waitMs);
    if (this.#shared.legacy) await this.#blocking.brpoplpush(key, key, seconds);
    else await this.#blocking.blmove(key, key, 'LEFT', 'LEFT', seconds);
  }

  /** A blocking timeout in seconds that is never 0 (0 blocks forever) and rounds up, not down. */
  #blockSeconds(waitMs: number): string {
    if (this.#shared.legacy) return String(Math.max(1, Math.ceil(waitMs / 1000)));
    return (Math.max(2, Math.ceil(waitMs)) / 1000).toFixed(3);
  }

  async #deleteKeys(operation: string, queue: string): Promise<void> {
    const keys = this.#keysFor(queue);
    try {
      await this.#redis.del(keys.ready, keys.inflight, keys.delayed, keys.dead);
    } catch (error) {
      throw this.#error(operation, error);
    }
  }

  #keysFor(queue: string): QueueKeys {
    let keys = this.#keys.get(queue);
    if (keys === undefined) {
      const base = `${this.#shared.namespace}:${queue}:`;
      keys = { ready: `${base}ready`, inflight: `${base}inflight`, delayed: `${base}delayed`, dead: `${base}dead` };
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
    return new BrokerError(ADAPTER, operation, messageOf(error), { cause: error });
  }
}

function toReliableMessages(reply: string[]): ReceivedMessage[] {
  const messages = new Array<ReceivedMessage>(reply.length - 1);
  for (let i = 1; i < reply.length; i++) {
    const envelope = reply[i]!;
    const a = envelope.indexOf(':');
    const b = envelope.indexOf(':', a + 1);
    let receiveCount = 0;
    for (let j = a + 1; j < b; j++) receiveCount = receiveCount * 10 + envelope.charCodeAt(j) - 48;
    messages[i - 1] = { body: envelope.slice(b + 1), receiveCount, receipt: envelope };
  }
  return messages;
}

function parseMode(mode: string, operation: string): RedisListMode {
  const lower = mode.toLowerCase();
  if (lower === 'reliable' || lower === 'simple') return lower;
  throw new BrokerError(ADAPTER, operation, `unknown mode "${mode}"; use reliable or simple`);
}

/** Opens the command connection and the blocking-wait connection of one handle. */
async function connectPair(url: string, commandTimeoutMs: number): Promise<[Redis, Redis]> {
  const main = createClient(url, commandTimeoutMs, false);
  const blocking = createClient(url, commandTimeoutMs, true);
  const results = await Promise.allSettled([connect(main, url, commandTimeoutMs), connect(blocking, url, commandTimeoutMs)]);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) {
    main.disconnect();
    blocking.disconnect();
    throw failed.reason;
  }
  return [main, blocking];
}

function createClient(url: string, commandTimeoutMs: number, forBlocking: boolean): Redis {
  let everReady = false;
  const options: RedisOptions = {
    lazyConnect: true,
    connectTimeout: commandTimeoutMs,
    // Without an offline queue a command on a dead connection fails at once instead of piling up.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Fail the first connect at once; after that, reconnect with back-off (0.1, 0.2, 0.4 … 1 s) for as
    // long as the handle is open: the run's own limits (--timeout, the publish outage limit) decide when
    // to give up, and commands in the meantime fail at once and are counted.
    retryStrategy: (times) => (everReady ? Math.min(100 * 2 ** (times - 1), 1_000) : null),
    scripts: forBlocking
      ? {}
      : { bbReceive: { lua: RECEIVE_LUA, numberOfKeys: 4 }, bbNack: { lua: NACK_LUA, numberOfKeys: 4 } },
  };
  if (forBlocking) {
    // No commandTimeout: a wait may last longer than any command. The client-side bound is the
    // command's own timeout plus the grace.
    options.blockingTimeout = commandTimeoutMs;
    options.blockingTimeoutGrace = commandTimeoutMs;
  } else {
    options.commandTimeout = commandTimeoutMs;
  }
  const client = new Redis(url, options);
  client.on('ready', () => {
    everReady = true;
  });
  return client;
}

/** Connects within commandTimeoutMs or rejects with the one-line BrokerError users see. */
async function connect(client: Redis, url: string, commandTimeoutMs: number): Promise<void> {
  let lastError: unknown;
  const onError = (error: unknown): void => {
    lastError = error;
  };
  client.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`connect timed out: no answer within ${commandTimeoutMs} ms`)), commandTimeoutMs + 250);
      }),
    ]);
  } catch (error) {
    client.disconnect();
    // An error the server or the socket gave says more than our own timer running out.
    const cause = lastError ?? error;
    throw new BrokerError(ADAPTER, 'connect', explainRedisConnectError(url, cause, commandTimeoutMs), { cause });
  } finally {
    clearTimeout(timer);
  }
}

async function serverVersion(client: Redis): Promise<string> {
  const info = await client.info('server');
  const match = /^redis_version:(\S+)/m.exec(info);
  return match?.[1] ?? 'unknown';
}

async function quietly(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

/**
 * Throws the first error of the chunked calls that settle `messages` (CHUNK per call, in order): a
 * PartialSettleError listing the messages of the chunks that succeeded when any did, else that error.
 */
function checkChunks(operation: string, messages: readonly ReceivedMessage[], results: [Error | null, unknown][] | null): void {
  if (results === null) throw new Error('pipeline aborted');
  const settled: ReceivedMessage[] = [];
  let first: Error | undefined;
  for (let i = 0; i < results.length; i++) {
    const [error] = results[i]!;
    if (error) first ??= error;
    else settled.push(...messages.slice(i * CHUNK, (i + 1) * CHUNK));
  }
  if (first === undefined) return;
  if (settled.length === 0) throw first;
  throw new PartialSettleError(
    ADAPTER,
    operation,
    `${messages.length - settled.length} of ${messages.length} failed (${messageOf(first)}); the other ${settled.length} succeeded`,
    settled,
    { cause: first },
  );
}

function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

/** Throws the first error of a pipeline; returns the replies. */
function checkPipeline(results: [Error | null, unknown][] | null): unknown[] {
  if (results === null) throw new Error('pipeline aborted');
  const replies = new Array<unknown>(results.length);
  for (let i = 0; i < results.length; i++) {
    const [error, reply] = results[i]!;
    if (error) throw error;
    replies[i] = reply;
  }
  return replies;
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

function messageOf(error: unknown): string {
  return describeRedisError(error);
}
