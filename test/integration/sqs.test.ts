// The sqs adapter against a real SQS endpoint (the embedded fauxqs unless SQS_ENDPOINT is set): batching,
// concurrent consumers, redelivery, nack delays, dead letters, delays, depth, cleanup and errors.

import { afterEach, describe, expect, it } from 'vitest';
import { BrokerError, type Broker, type ReceivedMessage } from '../../src/broker.ts';
import { isRequestCounting, sqsAdapter, type RequestCounting } from '../../adapters/sqs.ts';
import { openSqs, queuesWithPrefix, uniqueNamespace, useSqsEndpoint, type SqsFixture } from '../helpers/sqs.ts';

const endpoint = useSqsEndpoint();
const fixtures: SqsFixture[] = [];

async function open(...args: Parameters<typeof openSqs> extends [unknown, ...infer Rest] ? Rest : never): Promise<SqsFixture> {
  const fixture = await openSqs(endpoint(), ...args);
  fixtures.push(fixture);
  return fixture;
}

afterEach(async () => {
  await Promise.all(fixtures.splice(0).map((fixture) => fixture.cleanup()));
});

function bodies(count: number, prefix = 'm'): { body: string }[] {
  return Array.from({ length: count }, (_, i) => ({ body: `${prefix}-${i}` }));
}

function counter(broker: Broker): RequestCounting {
  if (!isRequestCounting(broker)) throw new Error('the sqs broker should count its requests');
  return broker;
}

/** Receives until `count` messages arrived or `timeoutMs` passed. */
async function receiveAll(broker: Broker, queue: string, count: number, timeoutMs = 10_000): Promise<ReceivedMessage[]> {
  const received: ReceivedMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (received.length < count && Date.now() < deadline) {
    received.push(...(await broker.receive(queue, { maxMessages: 10, waitMs: 1_000 })));
  }
  return received;
}

/** Like receiveAll, acking each batch before the next receive: a FIFO group is locked while any of it is in flight. */
async function receiveAndAck(broker: Broker, queue: string, count: number, timeoutMs = 10_000): Promise<ReceivedMessage[]> {
  const received: ReceivedMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (received.length < count && Date.now() < deadline) {
    const batch = await broker.receive(queue, { maxMessages: 10, waitMs: 1_000 });
    received.push(...batch);
    await broker.ack(queue, batch);
  }
  return received;
}

describe('sqs standard', () => {
  it('describes itself as the endpoint it was opened on', async () => {
    const { broker } = await open('standard');
    const info = await broker.describe();
    expect(info).toMatchObject({ name: 'sqs', mode: 'standard', endpointKind: endpoint().kind, serverVersion: endpoint().version });
    expect(info.endpoint).toContain(endpoint().endpoint ?? 'amazonaws.com');
  });

  it('round-trips a message and acks it away', async () => {
    const { broker, queue } = await open('standard');
    await broker.publish(queue, [{ body: 'hello {"json": true} ünïcødé' }]);
    const [message, ...rest] = await broker.receive(queue, { maxMessages: 10, waitMs: 2_000 });
    expect(rest).toEqual([]);
    expect(message).toMatchObject({ body: 'hello {"json": true} ünïcødé', receiveCount: 1 });
    expect(message!.receipt).not.toBe('');
    await broker.ack(queue, [message!]);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
    expect(await broker.receive(queue, { maxMessages: 10, waitMs: 0 })).toEqual([]);
  });

  it('delivers 2,000 messages to 3 concurrent consumers with nothing lost or duplicated', async () => {
    const { broker, queue, others } = await open('standard');
    const total = 2_000;
    const consumers: Broker[] = [];
    for (let i = 0; i < 3; i++) consumers.push(await broker.duplicate());
    others.push(...consumers);

    const seen: string[] = [];
    const perConsumer = [0, 0, 0];
    const deadline = Date.now() + 45_000;
    const consume = async (consumer: Broker, index: number): Promise<void> => {
      while (seen.length < total && Date.now() < deadline) {
        const received = await consumer.receive(queue, { maxMessages: 10, waitMs: 1_000 });
        for (const message of received) seen.push(message.body);
        perConsumer[index]! += received.length;
        await consumer.ack(queue, received);
      }
    };
    const consuming = Promise.all(consumers.map(consume));
    const messages = bodies(total);
    // 100 messages a call: 10 batch requests in flight at once, 4 calls at once.
    const calls: Promise<void>[] = [];
    for (let start = 0; start < total; start += 100) calls.push(broker.publish(queue, messages.slice(start, start + 100)));
    await Promise.all(calls);
    await consuming;

    expect(seen.length).toBe(total);
    expect(new Set(seen).size).toBe(total);
    expect(perConsumer.every((n) => n > 0)).toBe(true);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });

  it("splits a publish into batches of at most 10 entries and the endpoint's largest batch (AWS: 1 MiB)", async () => {
    const { broker, queue } = await open('standard');
    const counts = counter(broker);
    const before = counts.requestCounts()['SendMessageBatch'] ?? 0;
    await broker.publish(queue, bodies(25, 'small'));
    expect((counts.requestCounts()['SendMessageBatch'] ?? 0) - before).toBe(3);

    // Three bodies of 40% of the limit each: two fit in one batch, the third needs a second request.
    const limit = broker.capabilities.maxPayloadBytes;
    const size = Math.floor(limit * 0.4);
    const big = [0, 1, 2].map((i) => ({ body: `${i}`.padEnd(size, 'x') }));
    const beforeBig = counts.requestCounts()['SendMessageBatch'] ?? 0;
    const billedBefore = counts.billedRequests();
    await broker.publish(queue, big);
    expect((counts.requestCounts()['SendMessageBatch'] ?? 0) - beforeBig).toBe(2);
    // Each started 64 KiB of a request's bodies is billed as one request (AWS 1 MiB: 13 + 7).
    expect(counts.billedRequests() - billedBefore).toBe(Math.ceil((2 * size) / 65_536) + Math.ceil(size / 65_536));

    const received = await receiveAll(broker, queue, 28);
    expect(received.map((m) => m.body).sort()).toEqual([...bodies(25, 'small'), ...big].map((m) => m.body).sort());
  });

  it("rejects a message over the endpoint's largest (AWS: 1 MiB) before sending anything", async () => {
    const { broker, queue } = await open('standard');
    const limit = broker.capabilities.maxPayloadBytes;
    await expect(broker.publish(queue, [{ body: 'ok' }, { body: 'x'.repeat(limit + 1) }])).rejects.toThrow(
      new RegExp(`^sqs publish: queue bb-test-\\w+-q: message of ${limit + 1} bytes over .*SQS maximum of ${limit} bytes$`),
    );
    expect((await broker.depth(queue)).ready).toBe(0);
  });

  it('rejects a publish whose entries fail inside the batch, saying how many and why', async () => {
    const { broker, queue } = await open('standard');
    // U+0000 is not allowed in an SQS body: the batch succeeds but that entry comes back in `Failed`.
    const rejection = broker.publish(queue, [{ body: 'fine' }, { body: 'bad\u0000body' }]);
    await expect(rejection).rejects.toBeInstanceOf(BrokerError);
    await expect(rejection).rejects.toThrow(/^sqs publish: queue bb-test-\w+-q: 1 of 2 messages failed \(first: InvalidMessageContents: /);
    const [delivered] = await broker.receive(queue, { maxMessages: 10, waitMs: 2_000 });
    expect(delivered?.body).toBe('fine');
  });

  it('redelivers an unacked message after the visibility timeout with receiveCount 2', async () => {
    const { broker, queue } = await open('standard', { visibilityTimeoutMs: 1_000 });
    await broker.publish(queue, [{ body: 'again' }]);
    const [first] = await broker.receive(queue, { maxMessages: 1, waitMs: 2_000 });
    expect(first).toMatchObject({ body: 'again', receiveCount: 1 });
    expect(await broker.receive(queue, { maxMessages: 1, waitMs: 0 })).toEqual([]);
    const [second] = await broker.receive(queue, { maxMessages: 1, waitMs: 5_000 });
    expect(second).toMatchObject({ body: 'again', receiveCount: 2 });
    await broker.ack(queue, [second!]);
  });

  it('nack with a delay hides the message for that long, then redelivers it', async () => {
    const { broker, queue } = await open('standard');
    await broker.publish(queue, [{ body: 'retry-me' }]);
    const [first] = await broker.receive(queue, { maxMessages: 1, waitMs: 2_000 });
    const nackedAt = Date.now();
    await broker.nack(queue, [first!], 1_000);
    expect(await broker.receive(queue, { maxMessages: 1, waitMs: 0 })).toEqual([]);
    const [second] = await broker.receive(queue, { maxMessages: 1, waitMs: 5_000 });
    expect(Date.now() - nackedAt).toBeGreaterThanOrEqual(900);
    expect(second).toMatchObject({ body: 'retry-me', receiveCount: 2 });
    await broker.ack(queue, [second!]);
  });

  it('nack with no delay gives the message back at once', async () => {
    const { broker, queue } = await open('standard');
    await broker.publish(queue, [{ body: 'now' }]);
    const [first] = await broker.receive(queue, { maxMessages: 1, waitMs: 2_000 });
    await broker.nack(queue, [first!], 0);
    const [second] = await broker.receive(queue, { maxMessages: 1, waitMs: 2_000 });
    expect(second).toMatchObject({ body: 'now', receiveCount: 2 });
    await broker.ack(queue, [second!]);
  });

  it('moves a message to the dead-letter queue after maxReceives', async () => {
    const { broker, queue } = await open('standard', { maxReceives: 2 });
    await broker.publish(queue, [{ body: 'poison' }]);
    for (let receive = 1; receive <= 2; receive++) {
      const [message] = await broker.receive(queue, { maxMessages: 1, waitMs: 2_000 });
      expect(message).toMatchObject({ body: 'poison', receiveCount: receive });
      await broker.nack(queue, [message!], 0);
    }
    // The third receive finds it over the limit and moves it instead of delivering it.
    expect(await broker.receive(queue, { maxMessages: 1, waitMs: 0 })).toEqual([]);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 1 });
  });

  it('delivers a delayed message no earlier than its delay', async () => {
    const { broker, queue } = await open('standard');
    const publishedAt = Date.now();
    await broker.publish(queue, [{ body: 'later', delayMs: 1_000 }, { body: 'now' }]);
    const [now] = await broker.receive(queue, { maxMessages: 10, waitMs: 2_000 });
    expect(now?.body).toBe('now');
    expect((await broker.depth(queue)).delayed).toBe(1);
    const [later] = await broker.receive(queue, { maxMessages: 10, waitMs: 5_000 });
    expect(later?.body).toBe('later');
    expect(Date.now() - publishedAt).toBeGreaterThanOrEqual(1_000);
    await broker.ack(queue, [now!, later!]);
  });

  it('rejects a delay over the SQS maximum of 900 s, naming it', async () => {
    const { broker, queue } = await open('standard');
    const rejection = broker.publish(queue, [{ body: 'too late', delayMs: 900_001 }]);
    await expect(rejection).rejects.toBeInstanceOf(BrokerError);
    await expect(rejection).rejects.toThrow(/over SQS maximum of 900 s/);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });

  it('counts messages by state in depth()', async () => {
    const { broker, queue } = await open('standard');
    await broker.publish(queue, [...bodies(5), { body: 'delayed', delayMs: 60_000 }]);
    expect(await broker.depth(queue)).toEqual({ ready: 5, inFlight: 0, delayed: 1, dead: 0 });
    const received = await broker.receive(queue, { maxMessages: 2, waitMs: 2_000 });
    expect(received).toHaveLength(2);
    expect(await broker.depth(queue)).toEqual({ ready: 3, inFlight: 2, delayed: 1, dead: 0 });
    await broker.ack(queue, received);
    expect(await broker.depth(queue)).toEqual({ ready: 3, inFlight: 0, delayed: 1, dead: 0 });
  });

  it('purges every message but keeps the queue', async () => {
    const { broker, queue } = await open('standard');
    await broker.publish(queue, bodies(12));
    await broker.purge(queue);
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
    await broker.publish(queue, [{ body: 'after' }]);
    const [message] = await broker.receive(queue, { maxMessages: 1, waitMs: 2_000 });
    expect(message?.body).toBe('after');
  });

  it('prepare is idempotent and applies a changed visibility timeout', async () => {
    const { broker, queue } = await open('standard', { visibilityTimeoutMs: 30_000 });
    await broker.prepare({ name: queue, visibilityTimeoutMs: 30_000, maxReceives: 0 });
    await broker.prepare({ name: queue, visibilityTimeoutMs: 1_000, maxReceives: 0 });
    await broker.publish(queue, [{ body: 'v' }]);
    await broker.receive(queue, { maxMessages: 1, waitMs: 2_000 });
    const [again] = await broker.receive(queue, { maxMessages: 1, waitMs: 5_000 });
    expect(again).toMatchObject({ body: 'v', receiveCount: 2 });
  });

  it('teardown deletes the queue and its dead-letter queue, and is idempotent', async () => {
    const namespace = uniqueNamespace();
    const broker = await sqsAdapter.open({ namespace, url: endpoint().endpoint, commandTimeoutMs: 3_000, settings: { region: endpoint().region } });
    try {
      await broker.prepare({ name: 'jobs', visibilityTimeoutMs: 5_000, maxReceives: 3 });
      expect((await queuesWithPrefix(endpoint(), namespace)).sort()).toEqual([`${namespace}-jobs`, `${namespace}-jobs-dlq`]);
      await broker.teardown('jobs');
      expect(await queuesWithPrefix(endpoint(), namespace)).toEqual([]);
      await broker.teardown('jobs');
      await expect(broker.publish('jobs', [{ body: 'x' }])).rejects.toThrow(/queue bb-test-\w+-jobs: .*QueueDoesNotExist/);
    } finally {
      await broker.close();
    }
  });

  it('names the queue and the AWS error when the queue does not exist', async () => {
    const { broker } = await open('standard');
    const rejection = broker.receive('never-prepared', { maxMessages: 1, waitMs: 0 });
    await expect(rejection).rejects.toBeInstanceOf(BrokerError);
    await expect(rejection).rejects.toThrow(/^sqs receive: queue bb-test-\w+-never-prepared: .*QueueDoesNotExist/);
  });

  it('close is harmless twice; a closed handle says so; closing ends its long poll', async () => {
    const { broker, queue } = await open('standard');
    const other = await broker.duplicate();
    const polling = other.receive(queue, { maxMessages: 1, waitMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const closedAt = Date.now();
    await other.close();
    await other.close();
    expect(await polling).toEqual([]);
    expect(Date.now() - closedAt).toBeLessThan(2_000);
    await expect(other.depth(queue)).rejects.toThrow('sqs depth: handle is closed');
    // The original handle still works: the client is shared and only closes with the last handle.
    // (The server may still hand the message to the abandoned poll, so it can show as in flight.)
    await broker.publish(queue, [{ body: 'still here' }]);
    const depth = await broker.depth(queue);
    expect(depth.ready + depth.inFlight).toBe(1);
  });

  it('counts requests by kind, shared across duplicates', async () => {
    const { broker, queue, others } = await open('standard');
    const consumer = await broker.duplicate();
    others.push(consumer);
    await broker.publish(queue, bodies(3));
    const received = await receiveAll(consumer, queue, 3);
    await consumer.ack(queue, received);
    await consumer.nack(queue, [], 0);
    await broker.depth(queue);
    const counts = counter(consumer).requestCounts();
    expect(counter(broker).requestCounts()).toEqual(counts);
    for (const kind of ['ListQueues', 'CreateQueue', 'SendMessageBatch', 'ReceiveMessage', 'DeleteMessageBatch', 'GetQueueAttributes']) {
      expect(counts[kind], kind).toBeGreaterThan(0);
    }
    expect(counts['ChangeMessageVisibilityBatch']).toBeUndefined();
    const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
    expect(counter(broker).billedRequests()).toBe(total);
  });
});

describe('sqs fifo', () => {
  it('round-trips in order within a group', async () => {
    const { broker, queue } = await open('fifo');
    const sent = bodies(35, 'f');
    await broker.publish(queue, sent.slice(0, 25));
    await broker.publish(queue, sent.slice(25));
    const received = await receiveAndAck(broker, queue, sent.length);
    expect(received.map((m) => m.body)).toEqual(sent.map((m) => m.body));
    expect(await broker.describe()).toMatchObject({ mode: 'fifo' });
  });

  it('spreads messages over several groups, keeping the order within each', async () => {
    const { broker, queue } = await open('fifo', {}, { groupId: 'g', groups: 3 });
    const sent = bodies(30, 'f');
    await broker.publish(queue, sent);
    const received = await receiveAndAck(broker, queue, sent.length);
    const inOrder = (group: number): string[] => sent.filter((_, i) => i % 3 === group).map((m) => m.body);
    const got = received.map((m) => m.body);
    for (let group = 0; group < 3; group++) expect(got.filter((body) => inOrder(group).includes(body))).toEqual(inOrder(group));
    expect(got).toHaveLength(30);
  });

  it('declares and enforces no per-message delay', async () => {
    const { broker, queue } = await open('fifo');
    expect(broker.capabilities).toMatchObject({ delay: false, ordering: 'per-group' });
    await expect(broker.publish(queue, [{ body: 'x', delayMs: 1_000 }])).rejects.toThrow(/not supported on FIFO queues/);
  });

  it('stops after a chunk with failed entries, so no later message of the group overtakes them', async () => {
    const { broker, queue } = await open('fifo');
    const sent = bodies(25, 'f');
    sent[4] = { body: 'bad\u0000body' }; // refused inside the first chunk of 10
    const rejection = broker.publish(queue, sent);
    await expect(rejection).rejects.toThrow(/: 1 of 10 messages failed \(first: InvalidMessageContents: .*; the 15 after them were not sent, to keep each group's order$/);
    const received = await receiveAndAck(broker, queue, 9);
    expect(received.map((m) => m.body)).toEqual([...sent.slice(0, 4), ...sent.slice(5, 10)].map((m) => m.body));
    expect(await broker.receive(queue, { maxMessages: 10, waitMs: 0 })).toEqual([]);
  });

  it('dead-letters to a FIFO dead-letter queue', async () => {
    const { broker, queue } = await open('fifo', { maxReceives: 1 });
    await broker.publish(queue, [{ body: 'poison' }]);
    const [message] = await broker.receive(queue, { maxMessages: 1, waitMs: 2_000 });
    await broker.nack(queue, [message!], 0);
    expect(await broker.receive(queue, { maxMessages: 1, waitMs: 0 })).toEqual([]);
    expect((await broker.depth(queue)).dead).toBe(1);
  });
});

describe('sqs connection errors', () => {
  it('rejects an unreachable endpoint within a few seconds, naming sqs and the fix', async () => {
    const startedAt = Date.now();
    const opening = sqsAdapter.open({ namespace: uniqueNamespace(), url: 'http://127.0.0.1:9', commandTimeoutMs: 2_000 });
    await expect(opening).rejects.toBeInstanceOf(BrokerError);
    await expect(opening).rejects.toThrow(
      'sqs open: cannot reach http://127.0.0.1:9/ (ECONNREFUSED); start the endpoint or unset SQS_ENDPOINT for the embedded one',
    );
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });

  it('lets a long poll outlast commandTimeoutMs', async () => {
    const namespace = uniqueNamespace();
    const broker = await sqsAdapter.open({ namespace, url: endpoint().endpoint, commandTimeoutMs: 1_000, settings: { region: endpoint().region } });
    try {
      await broker.prepare({ name: 'q', visibilityTimeoutMs: 5_000, maxReceives: 0 });
      const startedAt = Date.now();
      expect(await broker.receive('q', { maxMessages: 1, waitMs: 2_500 })).toEqual([]);
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(2_500);
      await broker.teardown('q');
    } finally {
      await broker.close();
    }
  });

  it('rejects an unknown mode', async () => {
    await expect(sqsAdapter.open({ namespace: 'x', mode: 'lifo', url: endpoint().endpoint, commandTimeoutMs: 1_000 })).rejects.toThrow(
      'sqs open: unknown mode "lifo": use standard, fifo or fifo-high-throughput',
    );
  });

  it('rejects a queue name over 80 characters', async () => {
    const { broker } = await open('standard');
    await expect(broker.prepare({ name: 'q'.repeat(80), visibilityTimeoutMs: 1_000, maxReceives: 0 })).rejects.toThrow(
      /SQS allows 80: use a shorter namespace or queue name/,
    );
  });
});
