// Acks that partly fail, made to fail for real: SQS deletes refused per entry (through a gateway in front
// of the embedded emulator, which never refuses one itself), SQS visibility changes on a stale receipt
// handle (the emulator refuses those), a redis-stream XDEL denied by an ACL after the XACK went through,
// and a redis-list ack whose second chunk the server rejects. Each time the adapter must say which
// messages it settled, and the books must count exactly those as completed: nothing deleted is lost.

import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { sqsAdapter } from '../../adapters/sqs.ts';
import { redisListAdapter } from '../../adapters/redis-list.ts';
import { redisStreamAdapter } from '../../adapters/redis-stream.ts';
import { PartialSettleError, type Broker, type ReceivedMessage } from '../../src/broker.ts';
import { systemClock } from '../../src/clock.ts';
import { Executor, NO_TASK } from '../../src/pipeline/executor.ts';
import { MessageEncoder, newRunToken } from '../../src/pipeline/message.ts';
import type { SubscriberSink } from '../../src/pipeline/sink.ts';
import { Subscriber } from '../../src/pipeline/subscriber.ts';
import { runPipeline } from '../../src/runner/pipeline.ts';
import { startRedisServer, type StartedRedisServer } from '../../src/services/redis-server.ts';
import { runConfig, waitFor } from '../helpers/faults.ts';
import { prepareQueueFixture, uniqueNamespace, type QueueFixture } from '../helpers/fixture.ts';
import { startSqsGateway, type SqsGateway } from '../helpers/sqs-gateway.ts';
import { openSqs, useSqsEndpoint } from '../helpers/sqs.ts';

const endpoint = useSqsEndpoint();
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** A gateway to the embedded endpoint refusing what `refuse` picks, and an sqs queue opened through it (1 s visibility). */
async function sqsThroughGateway(refuse: Parameters<typeof startSqsGateway>[1]): Promise<{ gateway: SqsGateway; fixture: QueueFixture }> {
  const target = endpoint();
  if (target.endpoint === undefined || !target.endpoint.startsWith('http://')) throw new Error('the gateway needs an http:// SQS endpoint');
  const gateway = await startSqsGateway(target.endpoint, refuse);
  cleanups.push(() => gateway.close());
  const namespace = uniqueNamespace();
  const broker = await sqsAdapter.open({
    namespace,
    mode: 'standard',
    url: gateway.url,
    commandTimeoutMs: 3_000,
    settings: { region: target.region, endpointKind: 'other', endpointVersion: `gateway to ${target.version}` },
  });
  const fixture = await prepareQueueFixture(broker, namespace, { visibilityTimeoutMs: 1_000 });
  cleanups.push(() => fixture.cleanup());
  return { gateway, fixture };
}

/** Refuses the first entry of the first DeleteMessageBatch only. */
function refuseFirstEntryOnce(): Parameters<typeof startSqsGateway>[1] {
  let done = false;
  return (entries) => {
    if (done || entries.length < 2) return [];
    done = true;
    return [entries[0]!.ReceiptHandle];
  };
}

async function receiveAll(broker: Broker, queue: string, count: number, maxMessages = 10): Promise<ReceivedMessage[]> {
  const received: ReceivedMessage[] = [];
  const deadline = Date.now() + 10_000;
  while (received.length < count && Date.now() < deadline) {
    received.push(...(await broker.receive(queue, { maxMessages, waitMs: 500 })));
  }
  return received;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('sqs: a batch with refused entries', () => {
  it('ack says which of the batch it deleted; the refused one stays in flight', async () => {
    const { gateway, fixture } = await sqsThroughGateway(refuseFirstEntryOnce());
    const { broker, queue } = fixture;
    await broker.publish(queue, Array.from({ length: 10 }, (_, i) => ({ body: `m-${i}` })));
    const received = await receiveAll(broker, queue, 10);
    expect(received).toHaveLength(10);
    const error = await rejection(broker.ack(queue, received));
    expect(error).toBeInstanceOf(PartialSettleError);
    const settled = (error as PartialSettleError).settled;
    expect(gateway.refused()).toEqual([received[0]!.receipt]);
    expect(settled).toEqual(received.slice(1));
    expect((error as Error).message).toMatch(/1 of 10 deletes failed .*ReceiptHandleIsInvalid.*the other 9 succeeded/);
    // The emulator still holds exactly the refused one, and gives it back after the visibility timeout.
    const again = await receiveAll(broker, queue, 1);
    expect(again.map((m) => m.body)).toEqual([received[0]!.body]);
    await broker.ack(queue, again);
    expect(await broker.depth(queue)).toMatchObject({ ready: 0, inFlight: 0 });
  });

  it('nack says which it gave back when the emulator refuses a stale receipt handle', async () => {
    const fixture = await openSqs(endpoint(), 'standard', { visibilityTimeoutMs: 30_000 });
    cleanups.push(() => fixture.cleanup());
    const { broker, queue } = fixture;
    await broker.publish(queue, [{ body: 'a' }, { body: 'b' }]);
    const received = await receiveAll(broker, queue, 2);
    expect(received).toHaveLength(2);
    await broker.ack(queue, [received[0]!]); // its receipt handle is stale from now on
    const error = await rejection(broker.nack(queue, received, 0));
    expect(error).toBeInstanceOf(PartialSettleError);
    expect((error as PartialSettleError).settled).toEqual([received[1]!]);
    // The given-back one is visible at once.
    const again = await receiveAll(broker, queue, 1);
    expect(again.map((m) => m.body)).toEqual([received[1]!.body]);
    await broker.ack(queue, again);
  });

  it('the pipeline books the deleted part of the batch as completed: nothing lost', async () => {
    const { gateway, fixture } = await sqsThroughGateway(refuseFirstEntryOnce());
    const outcome = await runPipeline({
      broker: fixture.broker,
      config: runConfig({ adapter: 'sqs', mode: 'standard', messages: 200, consumers: 2, receiveBatch: 10, visibilityTimeoutMs: 1_000 }),
      queues: [fixture.queue],
      clock: systemClock,
      tickMs: 100,
    });
    expect(gateway.refused()).toHaveLength(1);
    expect(outcome.counters.ackErrors).toBe(1);
    expect(outcome.status).toBe('completed');
    expect(outcome.ledger).toMatchObject({ expected: 200, completed: 200, lost: 0 });
    // The refused one came back and was completed then.
    expect(outcome.counters.redeliveries).toBeGreaterThanOrEqual(1);
  });

  it('a subscriber reports the deleted part of the batch as completed', async () => {
    const { gateway, fixture } = await sqsThroughGateway(refuseFirstEntryOnce());
    const { broker, queue } = fixture;
    const messages = 30;
    const runToken = newRunToken();
    const encoder = new MessageEncoder(100, runToken);
    await broker.publish(queue, Array.from({ length: messages }, (_, i) => ({ body: encoder.encode(i, systemClock.nowUs()) })));
    const completed = new Set<number>();
    const errors: string[] = [];
    const sink: SubscriberSink = {
      delivered: () => undefined,
      malformed: () => undefined,
      foreign: () => undefined,
      executed: () => undefined,
      completed: (index) => completed.add(index),
      failed: () => undefined,
      receiveCall: () => undefined,
      error: (operation, message) => errors.push(`${operation}: ${message}`),
    };
    const handle = await broker.duplicate();
    const subscriber = new Subscriber(
      handle,
      { queue, receiveBatch: 10, receiveWaitMs: 200, retryDelayMs: 0, messages, runToken, executor: new Executor(NO_TASK), clock: systemClock },
      sink,
    );
    const run = subscriber.run();
    try {
      // The refused one comes back after its 1 s visibility timeout; the nine deleted with it never do.
      await waitFor(`${messages} completions (have ${completed.size})`, () => completed.size === messages, 10_000);
    } finally {
      subscriber.stop();
      await handle.close();
      await run;
    }
    expect(gateway.refused()).toHaveLength(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^ack: .*1 of \d+ deletes failed/);
  });
});

/** A throw-away redis-server, stopped after everything else of the test is cleaned up. */
async function throwAwayRedis(): Promise<{ server: StartedRedisServer; admin: Redis }> {
  const server = await startRedisServer();
  cleanups.push(() => server.stop());
  const admin = new Redis(server.url);
  cleanups.push(() => admin.quit());
  return { server, admin };
}

describe('redis: an ack that fails part-way', () => {
  it('redis-stream: XACK went through and XDEL was denied: every message is booked completed', async () => {
    const { server, admin } = await throwAwayRedis();
    // A user that may do everything but XDEL (ACL): the ack's second step fails, its first took effect.
    await admin.acl('SETUSER', 'bench', 'on', '>secret', '~*', '&*', '+@all', '-xdel');
    const namespace = uniqueNamespace();
    const broker = await redisStreamAdapter.open({
      namespace,
      url: server.url.replace('redis://', 'redis://bench:secret@'),
      commandTimeoutMs: 2_000,
    });
    const fixture = await prepareQueueFixture(broker, namespace, { visibilityTimeoutMs: 30_000 });
    cleanups.push(() => fixture.cleanup());
    const outcome = await runPipeline({
      broker,
      config: runConfig({ adapter: 'redis-stream', mode: 'group', messages: 500, consumers: 2 }),
      queues: [fixture.queue],
      clock: systemClock,
      tickMs: 100,
    });
    expect(outcome.counters.ackErrors).toBeGreaterThan(0);
    expect(outcome.errors.join('\n')).toMatch(/NOPERM/);
    expect(outcome.status).toBe('completed');
    expect(outcome.ledger).toMatchObject({ expected: 500, completed: 500, lost: 0, duplicateDeliveries: 0 });
  });

  it('redis-list: the second chunk of an ack is rejected: the ack lists the first chunk as settled', async () => {
    const { server, admin } = await throwAwayRedis();
    const namespace = uniqueNamespace();
    const broker = await redisListAdapter.open({ namespace, mode: 'reliable', url: server.url, commandTimeoutMs: 5_000 });
    const fixture = await prepareQueueFixture(broker, namespace, { visibilityTimeoutMs: 60_000 });
    cleanups.push(() => fixture.cleanup());
    const { queue } = fixture;
    // 1000 small messages (the first ack chunk) and one over 1 MiB (in the second).
    await broker.publish(queue, Array.from({ length: 1000 }, (_, i) => ({ body: `small-${i}` })));
    await broker.publish(queue, [{ body: 'x'.repeat(1_100_000) }]);
    const received = await receiveAll(broker, queue, 1001, 1001);
    expect(received).toHaveLength(1001);
    expect(received[1000]!.body.length).toBe(1_100_000);
    // From now on the server refuses any argument over 1 MiB. A receipt is a few bytes whatever the
    // body (an ack never sends the body back), so the second chunk is made to carry a damaged one.
    await admin.config('SET', 'proto-max-bulk-len', '1mb');
    const damaged = { ...received[1000]!, receipt: `${received[1000]!.receipt}${'x'.repeat(1_100_000)}` };
    const error = await rejection(broker.ack(queue, [...received.slice(0, 1000), damaged]));
    expect(error).toBeInstanceOf(PartialSettleError);
    expect((error as PartialSettleError).settled).toEqual(received.slice(0, 1000));
    expect((error as Error).message).toMatch(/1 of 1001 failed .*the other 1000 succeeded/);
    await waitFor('the adapter to reconnect', async () => (await broker.depth(queue).catch(() => undefined)) !== undefined, 5_000);
    expect(await broker.depth(queue)).toMatchObject({ ready: 0, inFlight: 1 });
  });
});
