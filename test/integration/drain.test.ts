// The drain must not declare messages lost on a depth that only looks empty. SQS's ApproximateNumberOf*
// figures lag on AWS and can read 0 while messages are in flight or delayed; here the real Redis holds
// the messages and the broker's depth is replaced by such a reading (0 whatever the queue holds), so
// only the ledger and the consumers' own receives can tell the drain the truth.

import { afterEach, describe, expect, it } from 'vitest';
import type { Broker, QueueDepth } from '../../src/broker.ts';
import { systemClock } from '../../src/clock.ts';
import type { RunConfig } from '../../src/config.ts';
import { runPipeline } from '../../src/runner/pipeline.ts';
import { runConfig } from '../helpers/faults.ts';
import { openRedisListFixture, type RedisListFixture } from '../helpers/redis.ts';

const EMPTY: QueueDepth = { ready: 0, inFlight: 0, delayed: 0, dead: 0 };

/** `broker`, except that its depth always reads empty, as a lagging approximate figure can. */
function withEmptyDepth(broker: Broker): Broker {
  return new Proxy(broker, {
    get(target, property) {
      if (property === 'depth') return async () => EMPTY;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A small throughput run of 500 messages on the reliable list. */
const config = (change: Partial<RunConfig>): RunConfig => runConfig({ messages: 500, ...change });

let fixture: RedisListFixture | undefined;
afterEach(async () => {
  await fixture?.cleanup();
  fixture = undefined;
});

describe('the drain on a depth that reads empty too early', () => {
  it('waits out the retry delay of nacked messages instead of calling them lost', async () => {
    fixture = await openRedisListFixture('reliable');
    const outcome = await runPipeline({
      broker: withEmptyDepth(fixture.broker),
      config: config({ retryDelayMs: 800, task: { durationMs: 1, distribution: 'fixed', work: 'sleep', failureRate: 0.2 } }),
      queues: [fixture.queue],
      clock: systemClock,
      tickMs: 50,
    });
    expect(outcome.counters.taskFailures).toBeGreaterThan(0);
    expect(outcome.ledger.lost).toBe(0);
    expect(outcome.ledger.completed).toBe(500);
    expect(outcome.status).toBe('completed');
  });

  it('waits a visibility timeout for messages a consumer took and never settled', async () => {
    fixture = await openRedisListFixture('reliable', { visibilityTimeoutMs: 1000 });
    const { broker, queue } = fixture;
    const stray = await broker.duplicate();
    fixture.others.push(stray);
    let taken = 0;
    const outcome = await runPipeline({
      broker: withEmptyDepth(broker),
      config: config({ visibilityTimeoutMs: 1000 }),
      queues: [queue],
      clock: systemClock,
      tickMs: 50,
      // A consumer outside the run takes 20 and dies with them: the run's ledger never saw them delivered.
      afterPublish: async () => {
        taken = (await stray.receive(queue, { maxMessages: 20, waitMs: 1000 })).length;
      },
    });
    expect(taken).toBe(20);
    expect(outcome.ledger.lost).toBe(0);
    expect(outcome.ledger.completed).toBe(500);
    expect(outcome.counters.redeliveries).toBe(20);
  });
});
