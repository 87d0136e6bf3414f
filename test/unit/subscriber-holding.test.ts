// What a consumer holds when it is halted: messages in an ack call already are on their way to being
// settled, so a staged crash (crash-recovery --kill-mode staged) must not halt on them and report nothing
// held. The ack is held back at the broker handle, as a slow broker would.

import { afterEach, describe, expect, it } from 'vitest';
import { memoryAdapter } from '../../adapters/memory.ts';
import type { Broker } from '../../src/broker.ts';
import { systemClock } from '../../src/clock.ts';
import { Executor, NO_TASK } from '../../src/pipeline/executor.ts';
import { MessageEncoder, newRunToken } from '../../src/pipeline/message.ts';
import type { SubscriberSink } from '../../src/pipeline/sink.ts';
import { Subscriber } from '../../src/pipeline/subscriber.ts';
import { waitFor } from '../helpers/faults.ts';
import { prepareQueueFixture, uniqueNamespace, type QueueFixture } from '../helpers/fixture.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const quietSink = (completed: Set<number>): SubscriberSink => ({
  delivered: () => undefined,
  malformed: () => undefined,
  foreign: () => undefined,
  executed: () => undefined,
  completed: (index) => completed.add(index),
  failed: () => undefined,
  receiveCall: () => undefined,
  error: () => undefined,
});

describe('Subscriber.holding', () => {
  it('leaves out the messages of an ack call in flight, which inHand still counts', async () => {
    const namespace = uniqueNamespace();
    const fixture: QueueFixture = await prepareQueueFixture(await memoryAdapter.open({ namespace, commandTimeoutMs: 3_000 }), namespace);
    cleanups.push(() => fixture.cleanup());
    const { broker, queue } = fixture;
    const runToken = newRunToken();
    const encoder = new MessageEncoder(100, runToken);
    await broker.publish(queue, Array.from({ length: 5 }, (_, i) => ({ body: encoder.encode(i, systemClock.nowUs()) })));

    // The handle's acks wait for `release`: the batch sits in an ack call.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let acking = 0;
    const real = await broker.duplicate();
    cleanups.push(() => real.close());
    const handle = new Proxy(real, {
      get(target, name) {
        // Bound to the handle itself: its methods read private fields, which a proxy does not have.
        const value = Reflect.get(target, name) as unknown;
        if (name !== 'ack') return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        return async (...args: Parameters<Broker['ack']>) => {
          acking++;
          await gate;
          return target.ack(...args);
        };
      },
    });
    const completed = new Set<number>();
    const subscriber = new Subscriber(
      handle,
      { queue, receiveBatch: 10, receiveWaitMs: 100, retryDelayMs: 0, messages: 5, runToken, executor: new Executor(NO_TASK), clock: systemClock },
      quietSink(completed),
    );
    const run = subscriber.run();
    try {
      await waitFor('the ack call', () => acking === 1, 5_000);
      expect(subscriber.inHand).toBe(5);
      expect(subscriber.holding).toBe(0);
      release();
      await waitFor('5 completions', () => completed.size === 5, 5_000);
      expect(subscriber.inHand).toBe(0);
      expect(subscriber.holding).toBe(0);
    } finally {
      release();
      subscriber.stop();
      await run;
    }
  });
});
