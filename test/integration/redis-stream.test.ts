// The redis-stream adapter against the real Redis on this machine (REDIS_URL or 127.0.0.1:6379), never a mock.
// Every key lives under a fresh namespace and is deleted afterwards; the Redis is shared, so no FLUSHDB.

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { redisStreamAdapter } from '../../adapters/redis-stream.ts';
import { BrokerError } from '../../src/broker.ts';
import type { Broker, BrokerOptions, QueueSpec, ReceivedMessage } from '../../src/broker.ts';

const URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const NS = `bb-rs-${randomUUID().slice(0, 8)}`;

let raw: Redis;
let broker: Broker;
const opened: Broker[] = [];
const queues: string[] = [];

function options(settings?: BrokerOptions['settings']): BrokerOptions {
  return { namespace: NS, url: URL, commandTimeoutMs: 2000, settings };
}

async function open(settings?: BrokerOptions['settings']): Promise<Broker> {
  const b = await redisStreamAdapter.open(options(settings));
  opened.push(b);
  return b;
}

/** A fresh, prepared queue on `b`, torn down after the test. */
async function freshQueue(b: Broker, spec: Partial<QueueSpec> = {}): Promise<string> {
  const name = `q-${randomUUID().slice(0, 8)}`;
  queues.push(name);
  await b.prepare({ name, visibilityTimeoutMs: 30_000, maxReceives: 0, ...spec });
  return name;
}

function streamKey(queue: string, part = 'stream'): string {
  return `${NS}:${queue}:${part}`;
}

async function scanKeys(pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await raw.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

/** Receives until `want` messages arrived or `timeoutMs` passed. */
async function receiveAll(b: Broker, queue: string, want: number, timeoutMs: number): Promise<ReceivedMessage[]> {
  const got: ReceivedMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < want && Date.now() < deadline) {
    got.push(...(await b.receive(queue, { maxMessages: want - got.length, waitMs: 200 })));
  }
  return got;
}

beforeAll(async () => {
  raw = new Redis(URL, { lazyConnect: true });
  await raw.connect();
  broker = await open();
});

afterEach(async () => {
  for (const q of queues.splice(0)) await broker.teardown(q);
});

afterAll(async () => {
  for (const b of opened) await b.close();
  const left = await scanKeys(`${NS}*`);
  if (left.length > 0) await raw.del(...left);
  await raw.quit();
});

describe('redis-stream adapter', () => {
  it('delivers 3,000 messages to 3 consumers with nothing lost and no duplicates', async () => {
    const queue = await freshQueue(broker);
    const consumers = await Promise.all([broker.duplicate(), broker.duplicate(), broker.duplicate()]);
    opened.push(...consumers);
    const total = 3000;
    for (let start = 0; start < total; start += 500) {
      await broker.publish(
        queue,
        Array.from({ length: 500 }, (_, k) => ({ body: `m-${start + k}` })),
      );
    }
    const seen = new Map<string, number>();
    let received = 0;
    const deadline = Date.now() + 20_000;
    await Promise.all(
      consumers.map(async (c) => {
        while (received < total && Date.now() < deadline) {
          const batch = await c.receive(queue, { maxMessages: 100, waitMs: 100 });
          for (const m of batch) {
            seen.set(m.body, (seen.get(m.body) ?? 0) + 1);
            expect(m.receiveCount).toBe(1);
          }
          received += batch.length;
          await c.ack(queue, batch);
        }
      }),
    );
    expect(seen.size).toBe(total);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(received).toBe(total);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
    // deleteOnAck (the default) removes acked entries: the stream does not grow.
    expect(await raw.xlen(streamKey(queue))).toBe(0);
  });

  it('redelivers an unacked message after the visibility timeout with receiveCount 2', async () => {
    const queue = await freshQueue(broker, { visibilityTimeoutMs: 300 });
    await broker.publish(queue, [{ body: 'late' }]);
    const [first] = await broker.receive(queue, { maxMessages: 10, waitMs: 1000 });
    expect(first).toMatchObject({ body: 'late', receiveCount: 1 });
    expect(await broker.receive(queue, { maxMessages: 10, waitMs: 0 })).toEqual([]);
    await sleep(350);
    const again = await broker.receive(queue, { maxMessages: 10, waitMs: 1000 });
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ body: 'late', receiveCount: 2, receipt: first!.receipt });
    await broker.ack(queue, again);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });

  it('moves a message to the dead stream once it was received more than maxReceives times', async () => {
    const queue = await freshQueue(broker, { visibilityTimeoutMs: 200, maxReceives: 2 });
    await broker.publish(queue, [{ body: 'poison' }]);
    const counts: number[] = [];
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (await broker.depth(queue)).dead === 0) {
      for (const m of await broker.receive(queue, { maxMessages: 1, waitMs: 100 })) counts.push(m.receiveCount);
    }
    expect(counts).toEqual([1, 2]);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 1 });
    const dead = await raw.xrange(streamKey(queue, 'dead'), '-', '+');
    expect(dead[0]?.[1]).toEqual(['b', 'poison', 'n', '2']);
  });

  it('dead-letters on nack after maxReceives receives', async () => {
    const queue = await freshQueue(broker, { maxReceives: 2 });
    await broker.publish(queue, [{ body: 'nacked' }]);
    const first = await receiveAll(broker, queue, 1, 2000);
    await broker.nack(queue, first, 0);
    const second = await receiveAll(broker, queue, 1, 2000);
    expect(second[0]).toMatchObject({ body: 'nacked', receiveCount: 2 });
    await broker.nack(queue, second, 0);
    expect(await broker.receive(queue, { maxMessages: 1, waitMs: 100 })).toEqual([]);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 1 });
  });

  it('nack without delay makes the message receivable at once, its count raised', async () => {
    const queue = await freshQueue(broker, { visibilityTimeoutMs: 30_000 });
    await broker.publish(queue, [{ body: 'again' }]);
    const first = await receiveAll(broker, queue, 1, 2000);
    await broker.nack(queue, first, 0);
    const second = await broker.receive(queue, { maxMessages: 10, waitMs: 1000 });
    expect(second).toHaveLength(1);
    expect(second[0]).toMatchObject({ body: 'again', receiveCount: 2 });
    await broker.nack(queue, second, 0);
    const third = await broker.receive(queue, { maxMessages: 10, waitMs: 1000 });
    expect(third[0]).toMatchObject({ body: 'again', receiveCount: 3 });
    await broker.ack(queue, third);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });

  it('nack with a delay holds the message back until the delay ran out', async () => {
    const queue = await freshQueue(broker, { visibilityTimeoutMs: 30_000 });
    await broker.publish(queue, [{ body: 'later' }]);
    const first = await receiveAll(broker, queue, 1, 2000);
    const nackedAt = Date.now();
    await broker.nack(queue, first, 400);
    expect(await broker.receive(queue, { maxMessages: 10, waitMs: 0 })).toEqual([]);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 1, dead: 0 });
    const second = await receiveAll(broker, queue, 1, 3000);
    expect(Date.now() - nackedAt).toBeGreaterThanOrEqual(390);
    expect(second[0]).toMatchObject({ body: 'later', receiveCount: 2 });
    await broker.ack(queue, second);
  });

  it('does not deliver a delayed publish before its time', async () => {
    const queue = await freshQueue(broker);
    const other = await broker.duplicate();
    opened.push(other);
    const publishedAt = Date.now();
    await broker.publish(queue, [{ body: 'delayed', delayMs: 500 }, { body: 'delayed', delayMs: 500 }, { body: 'now' }]);
    // Received on another handle, which learns of the delay only from Redis.
    const early = await other.receive(queue, { maxMessages: 10, waitMs: 200 });
    expect(early.map((m) => m.body)).toEqual(['now']);
    expect((await broker.depth(queue)).delayed).toBe(2);
    const late = await receiveAll(other, queue, 2, 3000);
    expect(Date.now() - publishedAt).toBeGreaterThanOrEqual(490);
    expect(late.map((m) => [m.body, m.receiveCount])).toEqual([
      ['delayed', 1],
      ['delayed', 1],
    ]);
    await other.ack(queue, [...early, ...late]);
  });

  it('trims the stream approximately to maxLength', async () => {
    const trimming = await open({ maxLength: 100 });
    const queue = await freshQueue(trimming);
    for (let i = 0; i < 4; i++) {
      await trimming.publish(queue, Array.from({ length: 500 }, (_, k) => ({ body: `t-${i}-${k}` })));
    }
    const length = await raw.xlen(streamKey(queue));
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThan(400);
  });

  it('counts ready, in-flight, delayed and dead messages', async () => {
    const queue = await freshQueue(broker);
    await broker.publish(queue, [
      ...Array.from({ length: 10 }, (_, k) => ({ body: `d-${k}` })),
      { body: 'far', delayMs: 60_000 },
      { body: 'far', delayMs: 60_000 },
    ]);
    expect(await broker.depth(queue)).toEqual({ ready: 10, inFlight: 0, delayed: 2, dead: 0 });
    const got = await receiveAll(broker, queue, 3, 2000);
    expect(await broker.depth(queue)).toEqual({ ready: 7, inFlight: 3, delayed: 2, dead: 0 });
    await broker.ack(queue, got.slice(0, 2));
    expect(await broker.depth(queue)).toEqual({ ready: 7, inFlight: 1, delayed: 2, dead: 0 });
    await broker.purge(queue);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
    // The queue survives a purge.
    await broker.publish(queue, [{ body: 'after-purge' }]);
    expect((await receiveAll(broker, queue, 1, 2000)).map((m) => m.body)).toEqual(['after-purge']);
  });

  it('keeps acked entries when deleteOnAck is false', async () => {
    const keeping = await open({ deleteOnAck: false });
    const queue = await freshQueue(keeping);
    await keeping.publish(queue, [{ body: 'a' }, { body: 'b' }]);
    await keeping.ack(queue, await receiveAll(keeping, queue, 2, 2000));
    expect(await raw.xlen(streamKey(queue))).toBe(2);
    expect(await keeping.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });

  it('teardown leaves no key behind and can run twice', async () => {
    const queue = `q-${randomUUID().slice(0, 8)}`;
    await broker.prepare({ name: queue, visibilityTimeoutMs: 30_000, maxReceives: 1 });
    await broker.publish(queue, [{ body: 'x' }, { body: 'y', delayMs: 60_000 }, { body: 'z' }]);
    const got = await receiveAll(broker, queue, 2, 2000);
    await broker.nack(queue, got, 0); // maxReceives 1: both go to the dead stream
    expect((await broker.depth(queue)).dead).toBe(2);
    expect((await scanKeys(`${NS}:${queue}:*`)).sort()).toEqual(
      [streamKey(queue), streamKey(queue, 'delayed'), streamKey(queue, 'dead')].sort(),
    );
    await broker.teardown(queue);
    await broker.teardown(queue);
    expect(await scanKeys(`${NS}:${queue}*`)).toEqual([]);
  });

  it('describes itself without secrets', async () => {
    const info = await broker.describe();
    expect(info).toMatchObject({ name: 'redis-stream', mode: 'group', endpointKind: 'local' });
    expect(info.serverVersion).toMatch(/^\d+\.\d+/);
    const kinded = await open({ endpointKind: 'docker' });
    expect((await kinded.describe()).endpointKind).toBe('docker');
  });

  it('closing twice is harmless', async () => {
    const b = await redisStreamAdapter.open(options());
    await b.close();
    await b.close();
  });

  it('rejects an unreachable server quickly with a BrokerError naming redis-stream and no password', async () => {
    const started = Date.now();
    const error = await redisStreamAdapter
      .open({ ...options(), url: 'redis://:hunter2@127.0.0.1:9' })
      .then(() => undefined, (e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error).toBeInstanceOf(BrokerError);
    const e = error as BrokerError;
    expect(e.adapter).toBe('redis-stream');
    expect(e.operation).toBe('connect');
    expect(e.message).toContain('redis://:***@127.0.0.1:9');
    expect(e.message).toContain('ECONNREFUSED');
    expect(e.message).not.toContain('hunter2');
  });

  it('a blocking receive on an empty queue returns [] after about waitMs', async () => {
    const queue = await freshQueue(broker, { visibilityTimeoutMs: 300 });
    const started = Date.now();
    expect(await broker.receive(queue, { maxMessages: 10, waitMs: 400 })).toEqual([]);
    const elapsed = Date.now() - started;
    // Sanity bounds only: it blocked rather than returning at once, and it did not hang.
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(3000);
  });

  it('a block longer than commandTimeoutMs is not cut short by it', async () => {
    const b = await redisStreamAdapter.open({ ...options({ claimIntervalMs: 5000 }), commandTimeoutMs: 200 });
    opened.push(b);
    const queue = await freshQueue(b);
    const started = Date.now();
    expect(await b.receive(queue, { maxMessages: 1, waitMs: 1200 })).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1100);
  });

  it('rejects receive on a queue that was never prepared', async () => {
    await expect(broker.receive('never-prepared', { maxMessages: 1, waitMs: 0 })).rejects.toThrow(BrokerError);
  });
});
