// The redis-list adapter against the real Redis: both delivery modes, redelivery, delays, dead
// letters, depth, cleanup and connection errors.

import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerError, type Broker, type ReceivedMessage } from '../../src/broker.ts';
import { redisListAdapter } from '../../adapters/redis-list.ts';
import { keysWithPrefix, openRedisListFixture, redisUrl, uniqueNamespace, type RedisListFixture } from '../helpers/redis.ts';
import { freePort } from '../../src/services/children.ts';

const fixtures: RedisListFixture[] = [];

async function open(...args: Parameters<typeof openRedisListFixture>): Promise<RedisListFixture> {
  const fixture = await openRedisListFixture(...args);
  fixtures.push(fixture);
  return fixture;
}

afterEach(async () => {
  await Promise.all(fixtures.splice(0).map((fixture) => fixture.cleanup()));
});

function bodies(count: number, prefix = 'm'): { body: string }[] {
  return Array.from({ length: count }, (_, i) => ({ body: `${prefix}-${i}:${'x'.repeat(20)}` }));
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; elapsedMs: number }> {
  const startedAt = Date.now();
  const value = await run();
  return { value, elapsedMs: Date.now() - startedAt };
}

describe.each(['reliable', 'simple'] as const)('redis-list %s', (mode) => {
  it('delivers 3,000 messages to 3 concurrent consumers with nothing lost or duplicated', async () => {
    const { broker, queue, others } = await open(mode);
    const total = 3_000;
    const consumers: Broker[] = [];
    for (let i = 0; i < 3; i++) consumers.push(await broker.duplicate());
    others.push(...consumers);

    const seen: string[] = [];
    const deadline = Date.now() + 30_000;
    const consume = async (consumer: Broker): Promise<void> => {
      while (seen.length < total && Date.now() < deadline) {
        const received = await consumer.receive(queue, { maxMessages: 64, waitMs: 100 });
        for (const message of received) seen.push(message.body);
        await consumer.ack(queue, received);
      }
    };
    const consuming = Promise.all(consumers.map(consume));
    const messages = bodies(total);
    for (let i = 0; i < total; i += 250) await broker.publish(queue, messages.slice(i, i + 250));
    await consuming;

    expect(seen.length).toBe(total);
    expect(new Set(seen).size).toBe(total);
    expect(new Set(seen)).toEqual(new Set(messages.map((message) => message.body)));
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
    expect(await broker.receive(queue, { maxMessages: 10, waitMs: 50 })).toEqual([]);
  });

  it('returns [] from a blocking receive on an empty queue after about waitMs', async () => {
    const { broker, queue } = await open(mode);
    const waitMs = 500;
    const { value, elapsedMs } = await timed(() => broker.receive(queue, { maxMessages: 10, waitMs }));
    expect(value).toEqual([]);
    expect(elapsedMs).toBeGreaterThanOrEqual(waitMs * 0.8);
    expect(elapsedMs).toBeLessThan(waitMs + 1_000);
  });

  it('wakes a blocked receive as soon as a message is published', async () => {
    const { broker, queue, others } = await open(mode);
    const consumer = await broker.duplicate();
    others.push(consumer);
    const receiving = timed(() => consumer.receive(queue, { maxMessages: 10, waitMs: 5_000 }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await broker.publish(queue, [{ body: 'wake' }]);
    const { value, elapsedMs } = await receiving;
    expect(value.map((message) => message.body)).toEqual(['wake']);
    expect(value[0]?.receiveCount).toBe(1);
    expect(elapsedMs).toBeLessThan(2_000);
  });

  it('keeps bodies with colons, unicode and emptiness intact', async () => {
    const { broker, queue } = await open(mode);
    const sent = ['', 'a:b:c', '7:7:7', 'héllo ✓ 🚀', '{"json":[1,2]}'];
    await broker.publish(queue, sent.map((body) => ({ body })));
    const received = await broker.receive(queue, { maxMessages: 10, waitMs: 100 });
    expect(received.map((message) => message.body).sort()).toEqual([...sent].sort());
  });

  it('leaves no key behind after teardown, and teardown and close are idempotent', async () => {
    const { broker, queue, namespace } = await open(mode, { visibilityTimeoutMs: 10_000 });
    await broker.publish(queue, bodies(20));
    if (mode === 'reliable') await broker.publish(queue, [{ body: 'later', delayMs: 60_000 }]);
    const received = await broker.receive(queue, { maxMessages: 5, waitMs: 100 });
    expect(received).toHaveLength(5);
    expect((await keysWithPrefix(namespace)).length).toBeGreaterThan(0);

    await broker.teardown(queue);
    await broker.teardown(queue);
    expect(await keysWithPrefix(namespace)).toEqual([]);
    await broker.close();
    await broker.close();
    await expect(broker.depth(queue)).rejects.toBeInstanceOf(BrokerError);
  });

  it('purge drops every message and keeps the queue usable', async () => {
    const { broker, queue } = await open(mode);
    await broker.publish(queue, bodies(30));
    await broker.receive(queue, { maxMessages: 10, waitMs: 100 });
    await broker.purge(queue);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
    await broker.publish(queue, [{ body: 'after' }]);
    const received = await broker.receive(queue, { maxMessages: 10, waitMs: 100 });
    expect(received.map((message) => message.body)).toEqual(['after']);
  });

  it('describes itself without a password', async () => {
    const { broker } = await open(mode);
    const info = await broker.describe();
    expect(info).toMatchObject({ name: 'redis-list', mode, endpointKind: 'local' });
    expect(info.serverVersion).toMatch(/^\d+\.\d+/);
    expect(info.endpoint).toContain('redis://');
  });

  it('rejects fast with a BrokerError naming redis-list and connect when nothing listens', async () => {
    const port = await freePort('127.0.0.1');
    const { value: error, elapsedMs } = await timed(() =>
      redisListAdapter
        .open({ namespace: uniqueNamespace(), mode, url: `redis://:hunter2@127.0.0.1:${port}`, commandTimeoutMs: 1_000 })
        .then(
          () => undefined,
          (reason: unknown) => reason,
        ),
    );
    expect(error).toBeInstanceOf(BrokerError);
    const message = (error as Error).message;
    expect(message).toContain('redis-list connect');
    expect(message).toContain('ECONNREFUSED');
    expect(message).toContain(`127.0.0.1:${port}`);
    expect(message).not.toContain('hunter2');
    expect(elapsedMs).toBeLessThan(3_000);
  });
});

describe('redis-list reliable', () => {
  it('redelivers a message whose consumer never acks after the visibility timeout, with receiveCount 2', async () => {
    const { broker, queue, others } = await open('reliable', { visibilityTimeoutMs: 300 });
    const dying = await broker.duplicate();
    const survivor = await broker.duplicate();
    others.push(dying, survivor);
    await broker.publish(queue, bodies(5));

    const first = await dying.receive(queue, { maxMessages: 10, waitMs: 100 });
    expect(first).toHaveLength(5);
    expect(first.every((message) => message.receiveCount === 1)).toBe(true);
    await dying.close();
    expect(await broker.depth(queue)).toMatchObject({ ready: 0, inFlight: 5 });

    const { value: again, elapsedMs } = await timed(() => survivor.receive(queue, { maxMessages: 10, waitMs: 3_000 }));
    expect(again.map((message) => message.body).sort()).toEqual(first.map((message) => message.body).sort());
    expect(again.every((message) => message.receiveCount === 2)).toBe(true);
    expect(elapsedMs).toBeGreaterThanOrEqual(150);
    await survivor.ack(queue, again);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });

  it('does not let a late ack remove the redelivered copy', async () => {
    const { broker, queue } = await open('reliable', { visibilityTimeoutMs: 200 });
    await broker.publish(queue, [{ body: 'late' }]);
    const first = await broker.receive(queue, { maxMessages: 1, waitMs: 100 });
    const second = await broker.receive(queue, { maxMessages: 1, waitMs: 2_000 });
    expect(second[0]?.receiveCount).toBe(2);
    await broker.ack(queue, first);
    expect(await broker.depth(queue)).toMatchObject({ inFlight: 1 });
    await broker.ack(queue, second);
    expect(await broker.depth(queue)).toMatchObject({ inFlight: 0, ready: 0 });
  });

  it('acks by a receipt of a few bytes whatever the body, and keeps nothing of an acked message', async () => {
    const { broker, namespace, queue } = await open('reliable');
    const body = `big:${'y'.repeat(100_000)}`;
    await broker.publish(queue, [{ body }]);
    const [message] = await broker.receive(queue, { maxMessages: 1, waitMs: 100 });
    expect(message?.body).toBe(body);
    // The receipt is what every ack sends: the body must not travel back with it.
    expect(message!.receipt.length).toBeLessThan(64);
    await broker.ack(queue, [message!]);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
    expect(await keysWithPrefix(`${namespace}:${queue}:`)).toEqual([]);
  });

  it('moves a message to the dead list after maxReceives deliveries', async () => {
    const { broker, queue } = await open('reliable', { visibilityTimeoutMs: 200, maxReceives: 2 });
    await broker.publish(queue, [{ body: 'poison' }]);
    const first = await broker.receive(queue, { maxMessages: 1, waitMs: 100 });
    expect(first[0]?.receiveCount).toBe(1);
    const second = await broker.receive(queue, { maxMessages: 1, waitMs: 2_000 });
    expect(second[0]?.receiveCount).toBe(2);
    expect(await broker.receive(queue, { maxMessages: 1, waitMs: 600 })).toEqual([]);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 1 });
  });

  it('dead-letters on nack once maxReceives is reached', async () => {
    const { broker, queue } = await open('reliable', { maxReceives: 1 });
    await broker.publish(queue, [{ body: 'once' }]);
    const received = await broker.receive(queue, { maxMessages: 1, waitMs: 100 });
    await broker.nack(queue, received, 0);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 1 });
  });

  it('redelivers a nacked message at once, or no earlier than its retry delay, keeping its receive count', async () => {
    const { broker, queue } = await open('reliable');
    await broker.publish(queue, [{ body: 'retry' }]);
    const first = await broker.receive(queue, { maxMessages: 1, waitMs: 100 });
    await broker.nack(queue, first, 0);
    const second = await broker.receive(queue, { maxMessages: 1, waitMs: 100 });
    expect(second.map((message) => [message.body, message.receiveCount])).toEqual([['retry', 2]]);

    const delayMs = 400;
    const nackedAt = Date.now();
    await broker.nack(queue, second, delayMs);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 1, dead: 0 });
    const third = await broker.receive(queue, { maxMessages: 1, waitMs: 3_000 });
    expect(Date.now() - nackedAt).toBeGreaterThanOrEqual(delayMs);
    expect(third.map((message) => [message.body, message.receiveCount])).toEqual([['retry', 3]]);
  });

  it('delivers a delayed publish no earlier than its delay', async () => {
    const { broker, queue } = await open('reliable');
    const delayMs = 400;
    const publishedAt = Date.now();
    await broker.publish(queue, [{ body: 'soon', delayMs }, { body: 'now' }]);
    expect(await broker.depth(queue)).toEqual({ ready: 1, inFlight: 0, delayed: 1, dead: 0 });
    const now = await broker.receive(queue, { maxMessages: 10, waitMs: 0 });
    expect(now.map((message) => message.body)).toEqual(['now']);
    const soon = await broker.receive(queue, { maxMessages: 10, waitMs: 3_000 });
    expect(Date.now() - publishedAt).toBeGreaterThanOrEqual(delayMs);
    expect(soon.map((message) => [message.body, message.receiveCount])).toEqual([['soon', 1]]);
  });

  it('counts ready, in-flight, delayed and dead messages', async () => {
    const { broker, queue } = await open('reliable');
    await broker.publish(queue, bodies(10));
    await broker.publish(queue, [{ body: 'd1', delayMs: 60_000 }, { body: 'd2', delayMs: 60_000 }]);
    const received = await broker.receive(queue, { maxMessages: 4, waitMs: 100 });
    expect(received).toHaveLength(4);
    expect(await broker.depth(queue)).toEqual({ ready: 6, inFlight: 4, delayed: 2, dead: 0 });
    await broker.ack(queue, received);
    expect(await broker.depth(queue)).toEqual({ ready: 6, inFlight: 0, delayed: 2, dead: 0 });
  });

  it('requeues a nacked in-flight member that is not an envelope instead of dropping it half-way', async () => {
    const { broker, namespace, queue } = await open('reliable', { maxReceives: 3 });
    // Someone else's write: the nack script must not fail after its ZREM and lose the member.
    const raw = new Redis(redisUrl(), { lazyConnect: true, maxRetriesPerRequest: 0 });
    await raw.connect();
    try {
      await raw.zadd(`${namespace}:${queue}:inflight`, Date.now() + 60_000, 'not-an-envelope');
    } finally {
      await raw.quit();
    }
    await broker.nack(queue, [{ body: '', receiveCount: 1, receipt: 'not-an-envelope' }], 0);
    expect(await broker.depth(queue)).toEqual({ ready: 1, inFlight: 0, delayed: 0, dead: 0 });
  });

  it('handles batches larger than one command chunk', async () => {
    const { broker, queue } = await open('reliable');
    await broker.publish(queue, bodies(2_500));
    const received: ReceivedMessage[] = [];
    while (received.length < 2_500) {
      const batch = await broker.receive(queue, { maxMessages: 10_000, waitMs: 100 });
      if (batch.length === 0) break;
      received.push(...batch);
    }
    expect(new Set(received.map((message) => message.body)).size).toBe(2_500);
    await broker.nack(queue, received, 0);
    expect(await broker.depth(queue)).toMatchObject({ ready: 2_500, inFlight: 0 });
  });
});

describe('redis-list simple', () => {
  it('loses what a consumer popped and never acked: at-most-once', async () => {
    const { broker, queue, others } = await open('simple', { visibilityTimeoutMs: 300 });
    const dying = await broker.duplicate();
    others.push(dying);
    await broker.publish(queue, bodies(5));
    const popped = await dying.receive(queue, { maxMessages: 10, waitMs: 100 });
    expect(popped).toHaveLength(5);
    expect(popped.every((message) => message.receiveCount === 1)).toBe(true);
    await dying.close();

    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
    expect(await broker.receive(queue, { maxMessages: 10, waitMs: 600 })).toEqual([]);
  });

  it('requeues nacked bodies at once', async () => {
    const { broker, queue } = await open('simple');
    await broker.publish(queue, [{ body: 'again' }]);
    const first = await broker.receive(queue, { maxMessages: 1, waitMs: 100 });
    await broker.nack(queue, first, 1_000);
    const second = await broker.receive(queue, { maxMessages: 1, waitMs: 100 });
    expect(second.map((message) => message.body)).toEqual(['again']);
  });

  it('refuses delayed messages, which it cannot honour', async () => {
    const { broker, queue } = await open('simple');
    await expect(broker.publish(queue, [{ body: 'x', delayMs: 100 }])).rejects.toBeInstanceOf(BrokerError);
  });

  it('declares what it cannot do', () => {
    expect(redisListAdapter.capabilities('simple')).toMatchObject({ delivery: 'at-most-once', delay: false, ordering: 'fifo' });
    expect(redisListAdapter.capabilities('reliable')).toMatchObject({ delivery: 'at-least-once', delay: true, deadLetter: true });
    expect(() => redisListAdapter.capabilities('bogus')).toThrow(BrokerError);
    expect(redisUrl()).toMatch(/^rediss?:\/\//);
  });
});
