// The Broker contract, run the same way against every adapter and mode of the registry (redis-list
// reliable and simple, redis-stream, sqs standard and fifo on real servers; memory in this process), each
// taken from adapters/index.ts with no case of its own. A case a broker cannot support
// is skipped by its declared capability and says why (`redis-list simple: no visibility timeout (at-most-once)`);
// the skips are also listed in one block at the end of the file's output. Run this against any new adapter.
//
// LIMITATION: small counts and 1 s timeouts keep it fast, so it shows the contract holds, not how it holds
// under load or over hours; timing is only ever checked from below (a delay is never cut short).

import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it, type TestContext } from 'vitest';
import { BrokerError, type Broker, type QueueDepth, type QueueSpec, type ReceivedMessage } from '../../src/broker.ts';
import { freePort } from '../../src/services/children.ts';
import {
  brokerTargets,
  connectionFor,
  openBrokerFixture,
  useBrokerEndpoints,
  type BrokerFixture,
  type BrokerTarget,
} from '../helpers/brokers.ts';

const endpoints = useBrokerEndpoints();
/** `label: case: why` for every case skipped by a declared capability, printed once at the end. */
const skipped: string[] = [];

afterAll(() => {
  if (skipped.length > 0) console.log(`contract cases skipped by declared capability:\n  ${skipped.sort().join('\n  ')}`);
});

const EMPTY: QueueDepth = { ready: 0, inFlight: 0, delayed: 0, dead: 0 };
/** Visibility timeout for the redelivery cases: SQS counts it in whole seconds. */
const SHORT_VISIBILITY_MS = 1_000;
/** Largest body the size case sends where a broker's own limit is larger (Redis: 512 MiB). */
const BIG_BODY_BYTES = 256 * 1024;

/** A fresh fixture, torn down and closed when the test ends (the targets run side by side, so per test, not per file). */
async function open(ctx: TestContext, target: BrokerTarget, spec: Partial<Omit<QueueSpec, 'name'>> = {}): Promise<BrokerFixture> {
  const fixture = await openBrokerFixture(endpoints(), target, spec);
  ctx.onTestFinished(() => fixture.cleanup());
  return fixture;
}

/** Skips the running case, with the reason in the report and in the end-of-file list, unless `supported`. */
function requires(ctx: TestContext, target: BrokerTarget, supported: boolean, why: string): void {
  if (supported) return;
  skipped.push(`${target.label}: ${ctx.task.name}: ${why}`);
  ctx.skip(`${target.label}: ${why}`);
}

function bodies(count: number, prefix: string): { body: string }[] {
  return Array.from({ length: count }, (_, i) => ({ body: `${prefix}-${i}` }));
}

/** Receives (and, unless told otherwise, acks) until `count` messages arrived or `timeoutMs` passed. */
async function receiveUntil(
  broker: Broker,
  queue: string,
  count: number,
  options: { timeoutMs?: number; maxMessages?: number; ack?: boolean } = {},
): Promise<ReceivedMessage[]> {
  const received: ReceivedMessage[] = [];
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  const most = Math.min(options.maxMessages ?? broker.capabilities.maxBatchSize, broker.capabilities.maxBatchSize);
  while (received.length < count && Date.now() < deadline) {
    const batch = await broker.receive(queue, { maxMessages: Math.min(most, count - received.length), waitMs: 500 });
    received.push(...batch);
    if (options.ack !== false) await broker.ack(queue, batch);
  }
  return received;
}

/** Publishes in calls of at most the broker's batch size. */
async function publishAll(broker: Broker, queue: string, messages: readonly { body: string }[], inFlight = 4): Promise<void> {
  const size = Math.min(100, broker.capabilities.maxBatchSize);
  const calls: (() => Promise<void>)[] = [];
  for (let start = 0; start < messages.length; start += size) calls.push(() => broker.publish(queue, messages.slice(start, start + size)));
  const workers = Array.from({ length: inFlight }, async () => {
    for (let call = calls.shift(); call !== undefined; call = calls.shift()) await call();
  });
  await Promise.all(workers);
}

/** What a promise settled to, so a test can look at a rejection without racing it. */
async function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

/** A BrokerError from `adapter` for `operation`, its message starting with both. */
function expectBrokerError(error: unknown, adapter: string, operation: string | RegExp): BrokerError {
  expect(error).toBeInstanceOf(BrokerError);
  const brokerError = error as BrokerError;
  expect(brokerError.adapter).toBe(adapter);
  if (typeof operation === 'string') expect(brokerError.operation).toBe(operation);
  else expect(brokerError.operation).toMatch(operation);
  expect(brokerError.message.startsWith(`${adapter} ${brokerError.operation}: `)).toBe(true);
  expect(brokerError.message).not.toContain('\n');
  return brokerError;
}

const targets = brokerTargets();

// The targets run side by side (most of each case is waiting on a timeout); the cases of one target one after the other.
describe.concurrent.each(targets.map((target) => [target.label, target] as const))('%s', (_label, target) => {
  const caps = target.capabilities;
  const name = target.adapter.name;
  const atLeastOnce = caps.delivery === 'at-least-once';

  it.sequential('round-trips a message: body intact, receiveCount 1, gone once acked; prepare again is harmless', async (ctx) => {
    const { broker, queue, spec } = await open(ctx, target);
    await broker.prepare(spec);
    const body = 'hello {"json": true} ünïcødé: a:b:c\ttab';
    await broker.publish(queue, [{ body }]);
    const received = await receiveUntil(broker, queue, 1);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ body, receiveCount: 1 });
    expect(await broker.depth(queue)).toEqual(EMPTY);
    expect(await broker.receive(queue, { maxMessages: 1, waitMs: 0 })).toEqual([]);
  });

  it.sequential(`carries ${caps.maxBatchSize} messages (maxBatchSize) in one publish and in one receive, never more`, async (ctx) => {
    const { broker, queue } = await open(ctx, target);
    const max = caps.maxBatchSize;
    const sent = bodies(max, 'batch');
    await broker.publish(queue, sent);
    const received: ReceivedMessage[] = [];
    const deadline = Date.now() + 15_000;
    while (received.length < max && Date.now() < deadline) {
      const batch = await broker.receive(queue, { maxMessages: max, waitMs: 500 });
      expect(batch.length).toBeLessThanOrEqual(max);
      received.push(...batch);
      await broker.ack(queue, batch);
    }
    expect(received.map((m) => m.body).sort()).toEqual(sent.map((m) => m.body).sort());

    // Asking for fewer than are ready is honoured.
    await broker.publish(queue, bodies(5, 'few'));
    const few = await receiveUntil(broker, queue, 1, { maxMessages: 2 });
    expect(few.length).toBeGreaterThanOrEqual(1);
    expect(few.length).toBeLessThanOrEqual(2);
    await broker.purge(queue);
  });

  it.sequential('over maxBatchSize: refused with a BrokerError naming the call, or carried whole (never lost, never more per receive)', async (ctx) => {
    const { broker, queue } = await open(ctx, target);
    const max = caps.maxBatchSize;
    const over = bodies(max + 1, 'over');
    const publishing = await settle(broker.publish(queue, over));
    if (publishing.ok) {
      // e.g. sqs splits a publish into wire batches of 10: every message must then arrive.
      const received = await receiveUntil(broker, queue, max + 1, { timeoutMs: 15_000 });
      expect(received.map((m) => m.body).sort()).toEqual(over.map((m) => m.body).sort());
    } else {
      expectBrokerError(publishing.error, name, 'publish');
      expect(await broker.depth(queue)).toEqual(EMPTY);
    }
    await broker.publish(queue, bodies(Math.min(max, 20), 'again'));
    const receiving = await settle(broker.receive(queue, { maxMessages: max + 1, waitMs: 500 }));
    if (receiving.ok) expect(receiving.value.length).toBeLessThanOrEqual(max);
    else expectBrokerError(receiving.error, name, 'receive');
  });

  it.sequential('loses nothing: a few thousand messages through 3 concurrent consumers, each delivered once', async (ctx) => {
    const { broker, queue, duplicate } = await open(ctx, target);
    // The embedded SQS moves a few thousand messages a second; Redis many more: the registry says how many.
    const total = target.adapter.testing?.bulkMessages ?? 3_000;
    const consumers = [await duplicate(), await duplicate(), await duplicate()];
    const seen = new Map<string, number>();
    const perConsumer = consumers.map(() => 0);
    let received = 0;
    const deadline = Date.now() + 40_000;
    const consume = async (consumer: Broker, index: number): Promise<void> => {
      while (received < total && Date.now() < deadline) {
        const batch = await consumer.receive(queue, { maxMessages: Math.min(100, caps.maxBatchSize), waitMs: 500 });
        for (const message of batch) seen.set(message.body, (seen.get(message.body) ?? 0) + 1);
        received += batch.length;
        perConsumer[index]! += batch.length;
        await consumer.ack(queue, batch);
      }
    };
    const consuming = Promise.all(consumers.map(consume));
    const sent = bodies(total, 'load');
    await publishAll(broker, queue, sent);
    await consuming;

    const missing = sent.filter((m) => !seen.has(m.body)).length;
    // At-least-once allows duplicates in principle, but none is due: the visibility timeout (30 s) never runs out here.
    const duplicates = [...seen.values()].filter((n) => n > 1).length;
    expect({ missing, duplicates, received }).toEqual({ missing: 0, duplicates: 0, received: total });
    expect(perConsumer.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(await broker.depth(queue)).toEqual(EMPTY);
  });

  it.sequential('keeps the order it declares', async (ctx) => {
    requires(ctx, target, caps.ordering !== 'none', 'promises no order (ordering: none)');
    const { broker, queue } = await open(ctx, target);
    const sent = bodies(60, 'ordered');
    // One publish call after another: order is only promised for what the broker received in order.
    for (let start = 0; start < sent.length; start += caps.maxBatchSize) {
      await broker.publish(queue, sent.slice(start, start + caps.maxBatchSize));
    }
    const got = (await receiveUntil(broker, queue, sent.length)).map((m) => m.body);
    expect(got).toHaveLength(sent.length);
    if (caps.ordering === 'fifo') {
      expect(got).toEqual(sent.map((m) => m.body));
    } else {
      // per-group: the suite's sqs fifo handle spreads its messages round-robin over `groups` groups.
      const groups = Number(target.settings['groups'] ?? 1);
      for (let group = 0; group < groups; group++) {
        const inGroup = sent.filter((_, i) => i % groups === group).map((m) => m.body);
        expect(got.filter((body) => inGroup.includes(body))).toEqual(inGroup);
      }
    }
  });

  it.sequential('redelivers an unacked message after the visibility timeout, receiveCount raised', async (ctx) => {
    requires(ctx, target, caps.visibilityTimeout, `no visibility timeout (${caps.delivery})`);
    const { broker, queue } = await open(ctx, target, { visibilityTimeoutMs: SHORT_VISIBILITY_MS });
    await broker.publish(queue, [{ body: 'again' }]);
    const [first] = await receiveUntil(broker, queue, 1, { ack: false });
    expect(first).toMatchObject({ body: 'again', receiveCount: 1 });
    expect(await broker.receive(queue, { maxMessages: 1, waitMs: 0 })).toEqual([]);
    const [second] = await receiveUntil(broker, queue, 1, { ack: false, timeoutMs: 8_000 });
    expect(second).toMatchObject({ body: 'again', receiveCount: 2 });
    await broker.ack(queue, [second!]);
    expect(await broker.depth(queue)).toEqual(EMPTY);
  });

  it.sequential('nack with a delay hides the message that long, then redelivers it with receiveCount raised', async (ctx) => {
    requires(ctx, target, caps.nackDelay, 'nack cannot delay a message (nackDelay: false)');
    const { broker, queue } = await open(ctx, target);
    await broker.publish(queue, [{ body: 'retry-me' }]);
    const [first] = await receiveUntil(broker, queue, 1, { ack: false });
    const nackedAt = Date.now();
    await broker.nack(queue, [first!], 1_000);
    expect(await broker.receive(queue, { maxMessages: 1, waitMs: 0 })).toEqual([]);
    const [second] = await receiveUntil(broker, queue, 1, { timeoutMs: 8_000 });
    expect(Date.now() - nackedAt).toBeGreaterThanOrEqual(950);
    expect(second).toMatchObject({ body: 'retry-me', receiveCount: 2 });
    expect(await broker.depth(queue)).toEqual(EMPTY);
  });

  it.sequential('nack with no delay gives the message back at once', async (ctx) => {
    const { broker, queue } = await open(ctx, target);
    await broker.publish(queue, [{ body: 'now' }]);
    const [first] = await receiveUntil(broker, queue, 1, { ack: false });
    await broker.nack(queue, [first!], 0);
    // Well inside the 30 s visibility timeout: only the nack can have given it back.
    const [second] = await receiveUntil(broker, queue, 1, { timeoutMs: 5_000 });
    // A broker that cannot count receives reports 1.
    expect(second).toMatchObject({ body: 'now', receiveCount: atLeastOnce ? 2 : 1 });
    expect(await broker.depth(queue)).toEqual(EMPTY);
  });

  it.sequential('dead-letters a message nacked maxReceives times instead of delivering it again', async (ctx) => {
    requires(ctx, target, caps.deadLetter, 'no dead-letter store (deadLetter: false)');
    const { broker, queue } = await open(ctx, target, { maxReceives: 2 });
    await broker.publish(queue, [{ body: 'poison' }]);
    for (let receive = 1; receive <= 2; receive++) {
      const [message] = await receiveUntil(broker, queue, 1, { ack: false });
      expect(message).toMatchObject({ body: 'poison', receiveCount: receive });
      await broker.nack(queue, [message!], 0);
    }
    expect(await broker.receive(queue, { maxMessages: 1, waitMs: 500 })).toEqual([]);
    expect(await broker.depth(queue)).toEqual({ ...EMPTY, dead: 1 });
  });

  it.sequential('dead-letters a message whose visibility timeout ran out maxReceives times', async (ctx) => {
    requires(
      ctx,
      target,
      caps.deadLetter && caps.visibilityTimeout,
      caps.visibilityTimeout ? 'no dead-letter store (deadLetter: false)' : `no visibility timeout (${caps.delivery})`,
    );
    const { broker, queue } = await open(ctx, target, { visibilityTimeoutMs: SHORT_VISIBILITY_MS, maxReceives: 2 });
    await broker.publish(queue, [{ body: 'abandoned' }]);
    for (let receive = 1; receive <= 2; receive++) {
      const [message] = await receiveUntil(broker, queue, 1, { ack: false, timeoutMs: 8_000 });
      expect(message).toMatchObject({ body: 'abandoned', receiveCount: receive });
    }
    // The third delivery is due a second later: it must go to the dead-letter store, never to a consumer.
    const deadline = Date.now() + 8_000;
    let depth = await broker.depth(queue);
    while (depth.dead === 0 && Date.now() < deadline) {
      expect(await broker.receive(queue, { maxMessages: 1, waitMs: 500 })).toEqual([]);
      depth = await broker.depth(queue);
    }
    expect(depth).toEqual({ ...EMPTY, dead: 1 });
  });

  it.sequential('delays a message: not delivered before its delay, delivered after', async (ctx) => {
    requires(ctx, target, caps.delay, 'no per-message delay (delay: false)');
    const { broker, queue } = await open(ctx, target);
    const publishedAt = Date.now();
    await broker.publish(queue, [{ body: 'later', delayMs: 1_000 }, { body: 'now' }]);
    const [now] = await receiveUntil(broker, queue, 1);
    expect(now?.body).toBe('now');
    expect(await broker.depth(queue)).toEqual({ ...EMPTY, delayed: 1 });
    const [later] = await receiveUntil(broker, queue, 1, { timeoutMs: 8_000 });
    expect(later).toMatchObject({ body: 'later', receiveCount: 1 });
    expect(Date.now() - publishedAt).toBeGreaterThanOrEqual(1_000);
    expect(await broker.depth(queue)).toEqual(EMPTY);
  });

  it.sequential('refuses a delay it cannot honour with a BrokerError naming the publish, writing nothing of the batch', async (ctx) => {
    const { broker, queue } = await open(ctx, target);
    // Over maxDelayMs where delays exist; any delay where they do not.
    const delayMs = caps.delay ? caps.maxDelayMs + 1_000 : 1_000;
    const publishing = await settle(broker.publish(queue, [{ body: 'fine' }, { body: 'too late', delayMs }]));
    expect(publishing.ok).toBe(false);
    if (!publishing.ok) expectBrokerError(publishing.error, name, 'publish');
    expect(await broker.depth(queue)).toEqual(EMPTY);
  });

  it.sequential(`carries a body of maxPayloadBytes (at most ${BIG_BODY_BYTES / 1024} KiB) intact`, async (ctx) => {
    const { broker, queue } = await open(ctx, target);
    const bytes = Math.min(caps.maxPayloadBytes, BIG_BODY_BYTES);
    // Half of it two-byte characters, so a limit counted in characters rather than bytes would show.
    const twoByte = Math.floor(bytes / 4);
    const body = 'é'.repeat(twoByte).padEnd(bytes - twoByte, 'x');
    expect(Buffer.byteLength(body, 'utf8')).toBe(bytes);
    await broker.publish(queue, [{ body }]);
    const [received] = await receiveUntil(broker, queue, 1);
    expect(received?.body === body).toBe(true);
  });

  it.sequential('refuses a body over maxPayloadBytes with a BrokerError naming the publish', async (ctx) => {
    requires(ctx, target, caps.maxPayloadBytes <= 1024 * 1024, `limit of ${caps.maxPayloadBytes} bytes is too large to exceed in a test`);
    const { broker, queue } = await open(ctx, target);
    const publishing = await settle(broker.publish(queue, [{ body: 'x'.repeat(caps.maxPayloadBytes + 1) }]));
    expect(publishing.ok).toBe(false);
    if (!publishing.ok) expectBrokerError(publishing.error, name, 'publish');
    expect(await broker.depth(queue)).toEqual(EMPTY);
  });

  it.sequential('counts messages by state in depth()', async (ctx) => {
    const { broker, queue } = await open(ctx, target);
    await broker.publish(queue, bodies(5, 'counted'));
    if (caps.delay) await broker.publish(queue, [{ body: 'delayed', delayMs: 60_000 }]);
    const delayed = caps.delay ? 1 : 0;
    expect(await broker.depth(queue)).toEqual({ ...EMPTY, ready: 5, delayed });
    const received = await receiveUntil(broker, queue, 2, { ack: false, maxMessages: 2 });
    expect(received).toHaveLength(2);
    // At-most-once: a received message is gone, nothing is in flight.
    expect(await broker.depth(queue)).toEqual({ ...EMPTY, ready: 3, inFlight: atLeastOnce ? 2 : 0, delayed });
    await broker.ack(queue, received);
    expect(await broker.depth(queue)).toEqual({ ...EMPTY, ready: 3, delayed });
  });

  it.sequential('purge drops every message (ready, in flight, delayed, dead) and the queue stays usable', async (ctx) => {
    const { broker, queue } = await open(ctx, target, { maxReceives: caps.deadLetter ? 1 : 0 });
    await broker.publish(queue, bodies(12, 'purged'));
    if (caps.deadLetter) {
      const [message] = await receiveUntil(broker, queue, 1, { ack: false });
      await broker.nack(queue, [message!], 0);
    }
    if (atLeastOnce) await receiveUntil(broker, queue, 2, { ack: false, maxMessages: 2 });
    if (caps.delay) await broker.publish(queue, [{ body: 'delayed', delayMs: 60_000 }]);
    const before = await broker.depth(queue);
    expect(before.ready + before.inFlight + before.delayed + before.dead).toBeGreaterThan(0);
    await broker.purge(queue);
    expect(await broker.depth(queue)).toEqual(EMPTY);
    await broker.publish(queue, [{ body: 'after' }]);
    const [after] = await receiveUntil(broker, queue, 1);
    expect(after?.body).toBe('after');
  });

  it.sequential('teardown leaves nothing behind on the server, and a second teardown is harmless', async (ctx) => {
    const fixture = await open(ctx, target, { maxReceives: caps.deadLetter ? 1 : 0 });
    const { broker, queue } = fixture;
    await broker.publish(queue, bodies(3, 'left'));
    if (caps.deadLetter) {
      const [message] = await receiveUntil(broker, queue, 1, { ack: false });
      await broker.nack(queue, [message!], 0);
    }
    if (atLeastOnce) await receiveUntil(broker, queue, 1, { ack: false });
    if (caps.delay) await broker.publish(queue, [{ body: 'delayed', delayMs: 60_000 }]);
    // The check can see what the adapter made, so an empty answer afterwards means something.
    expect(await fixture.leftovers()).not.toEqual([]);
    await broker.teardown(queue);
    expect(await fixture.leftovers()).toEqual([]);
    await broker.teardown(queue);
    expect(await fixture.leftovers()).toEqual([]);
  });

  it.sequential('close twice is harmless, and closing ends a blocked receive with []', async (ctx) => {
    const { broker, queue, duplicate } = await open(ctx, target);
    const other = await duplicate();
    const receiving = settle(other.receive(queue, { maxMessages: 1, waitMs: 10_000 }));
    await sleep(300);
    const closedAt = Date.now();
    await Promise.all([other.close(), other.close()]);
    await other.close();
    const result = await receiving;
    expect(result).toEqual({ ok: true, value: [] });
    // Generous on a loaded machine, and still far from the 10 s the receive would otherwise wait.
    expect(Date.now() - closedAt).toBeLessThan(6_000);
    // The first handle is untouched. (A server may still hand a message to the abandoned wait, so count both states.)
    await broker.publish(queue, [{ body: 'still here' }]);
    const depth = await broker.depth(queue);
    expect(depth.ready + depth.inFlight).toBe(1);
  });

  it.sequential('a closed handle refuses every operation with a BrokerError naming the adapter and the operation', async (ctx) => {
    const { queue, duplicate } = await open(ctx, target);
    const other = await duplicate();
    await other.close();
    const message: ReceivedMessage = { body: 'x', receiveCount: 1, receipt: '1-1' };
    const operations: [string, () => Promise<unknown>][] = [
      ['describe', () => other.describe()],
      ['prepare', () => other.prepare({ name: 'other', visibilityTimeoutMs: 1_000, maxReceives: 0 })],
      ['publish', () => other.publish(queue, [{ body: 'x' }])],
      ['receive', () => other.receive(queue, { maxMessages: 1, waitMs: 0 })],
      ['ack', () => other.ack(queue, [message])],
      ['nack', () => other.nack(queue, [message], 0)],
      ['depth', () => other.depth(queue)],
      ['purge', () => other.purge(queue)],
      ['teardown', () => other.teardown(queue)],
      ['duplicate', () => other.duplicate()],
    ];
    for (const [operation, call] of operations) {
      const outcome = await settle(call());
      expect(outcome.ok, `${operation} on a closed handle`).toBe(false);
      if (!outcome.ok) expectBrokerError(outcome.error, name, operation);
    }
    await other.close();
  });

  it.sequential('fails to open on a dead port with a BrokerError naming the adapter, the operation and the endpoint', async (ctx) => {
    const unreachableUrl = target.adapter.testing?.unreachableUrl;
    requires(ctx, target, unreachableUrl !== undefined, 'no server to be unreachable (its queues live in this process)');
    const port = await freePort('127.0.0.1');
    const url = unreachableUrl!(port);
    const { settings } = connectionFor(endpoints(), target);
    const startedAt = Date.now();
    const opening = await settle(target.adapter.open({ namespace: 'bb-test-dead', mode: target.mode, url, commandTimeoutMs: 2_000, settings }));
    expect(opening.ok).toBe(false);
    if (!opening.ok) {
      const error = expectBrokerError(opening.error, name, /^(open|connect)$/);
      expect(error.message).toContain(`127.0.0.1:${port}`);
      expect(error.message).toMatch(/cannot reach .*ECONNREFUSED/);
    }
    // The rule for bad input: within 10 s.
    expect(Date.now() - startedAt).toBeLessThan(10_000);
  });
});
