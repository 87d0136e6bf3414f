// The whole pipeline against the real Redis: nothing lost in either mode, and a consumer that dies
// holding messages shows up as redelivery (reliable) or as loss in the ledger (simple).

import { afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker.ts';
import { systemClock } from '../../src/clock.ts';
import { DEFAULTS, type RunConfig } from '../../src/config.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import { runPipeline } from '../../src/runner/pipeline.ts';
import { openRedisListFixture, type RedisListFixture } from '../helpers/redis.ts';

function config(change: Partial<RunConfig>): RunConfig {
  return {
    ...DEFAULTS,
    adapter: 'redis-list',
    mode: 'reliable',
    scenario: 'throughput',
    messages: 3000,
    consumers: 3,
    receiveWaitMs: 200,
    timeoutMs: 30_000,
    task: NO_TASK,
    ...change,
  };
}

let fixture: RedisListFixture | undefined;
afterEach(async () => {
  await fixture?.cleanup();
  fixture = undefined;
});

describe.each(['reliable', 'simple'] as const)('pipeline on redis-list %s', (mode) => {
  it('completes every message once, with one latency sample per message', async () => {
    fixture = await openRedisListFixture(mode);
    const outcome = await runPipeline({
      broker: fixture.broker,
      config: config({ mode, messages: 5000, warmupMessages: 1050 }),
      queues: [fixture.queue],
      clock: systemClock,
      tickMs: 100,
    });
    expect(outcome.status).toBe('completed');
    expect(outcome.ledger).toMatchObject({ expected: 5000, completed: 5000, lost: 0, duplicateDeliveries: 0, unknown: 0 });
    expect(outcome.missing).toEqual([]);
    // Warm-up messages are left out of the histograms, and each measured one is in each exactly once
    // (the warm-up ends inside a publish batch of 100: that batch counts only its last 50).
    expect(outcome.histograms.endToEnd.totalCount).toBe(3950);
    expect(outcome.histograms.completion.totalCount).toBe(3950);
    expect(outcome.histograms.publish.totalCount).toBe(3950);
    expect(outcome.histograms.execution.totalCount).toBe(0);
    expect(outcome.endUs).toBeGreaterThan(outcome.publishEndUs - 1);
    expect(outcome.timeline.reduce((sum, point) => sum + point.completed, 0)).toBe(5000);
  });

  it('runs tasks, retries the failed ones and still completes every message', async () => {
    fixture = await openRedisListFixture(mode);
    const outcome = await runPipeline({
      broker: fixture.broker,
      config: config({ mode, messages: 400, retryDelayMs: 0, task: { durationMs: 2, distribution: 'uniform', work: 'sleep', failureRate: 0.2 } }),
      queues: [fixture.queue],
      clock: systemClock,
      tickMs: 100,
    });
    expect(outcome.status).toBe('completed');
    expect(outcome.ledger.completed).toBe(400);
    expect(outcome.ledger.lost).toBe(0);
    expect(outcome.counters.taskFailures).toBeGreaterThan(20);
    expect(outcome.histograms.execution.totalCount).toBe(400 + outcome.counters.taskFailures);
  });
});

/** A consumer that takes a batch and dies: it never acks. */
async function crashingConsumer(broker: Broker, queue: string, take: number): Promise<number> {
  const handle = await broker.duplicate();
  try {
    for (let attempt = 0; attempt < 50; attempt++) {
      const got = await handle.receive(queue, { maxMessages: take, waitMs: 100 });
      if (got.length > 0) return got.length;
    }
    return 0;
  } finally {
    await handle.close();
  }
}

describe('a consumer that dies holding messages', () => {
  const slowPublish = { messages: 2000, ratePerSec: 2000, publishBatch: 20, receiveBatch: 20 };

  it('reliable: its messages come back after the visibility timeout, nothing lost', async () => {
    fixture = await openRedisListFixture('reliable', { visibilityTimeoutMs: 500 });
    const { broker, queue } = fixture;
    const run = runPipeline({ broker, config: config({ ...slowPublish, visibilityTimeoutMs: 500 }), queues: [queue], clock: systemClock, tickMs: 100 });
    const taken = await crashingConsumer(broker, queue, 50);
    const outcome = await run;
    expect(taken).toBeGreaterThan(0);
    expect(outcome.status).toBe('completed');
    expect(outcome.ledger.lost).toBe(0);
    expect(outcome.ledger.completed).toBe(2000);
    expect(outcome.counters.redeliveries).toBeGreaterThanOrEqual(taken);
  });

  it('simple: its messages are gone, and the ledger says exactly how many', async () => {
    fixture = await openRedisListFixture('simple');
    const { broker, queue } = fixture;
    const run = runPipeline({ broker, config: config({ ...slowPublish, mode: 'simple' }), queues: [queue], clock: systemClock, tickMs: 100 });
    const taken = await crashingConsumer(broker, queue, 50);
    const outcome = await run;
    expect(taken).toBeGreaterThan(0);
    expect(outcome.status).toBe('completed');
    expect(outcome.ledger.lost).toBe(taken);
    expect(outcome.ledger.completed).toBe(2000 - taken);
    expect(outcome.missing.length).toBe(Math.min(20, taken));
    expect(outcome.counters.redeliveries).toBe(0);
  });
});

describe('a publish reported failed that the broker stored anyway', () => {
  it('does not end the drain early: the refused messages that turn up never stand in for accepted ones', async () => {
    fixture = await openRedisListFixture('reliable');
    const { broker, queue } = fixture;
    // The first batch is stored and then reported failed, as a connection that drops after the write
    // would: the broker holds 10 messages the publisher calls refused. One consumer taking one message
    // at a time finishes those 10 while the 10 accepted ones are still waiting; were refused
    // completions counted as accepted ones, the drain would end there and call the rest lost.
    let calls = 0;
    const storedThenFailed = new Proxy(broker, {
      get(target, property) {
        if (property === 'publish') {
          return async (name: string, messages: Parameters<Broker['publish']>[1]) => {
            await target.publish(name, messages);
            if (calls++ === 0) throw new Error('connection reset after the write');
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const outcome = await runPipeline({
      broker: storedThenFailed,
      config: config({
        messages: 20,
        publishBatch: 10,
        publishConcurrency: 1,
        consumers: 1,
        receiveBatch: 1,
        task: { ...NO_TASK, durationMs: 20 },
      }),
      queues: [queue],
      clock: systemClock,
      tickMs: 100,
    });
    expect(calls).toBe(2);
    expect(outcome.status).toBe('completed');
    expect(outcome.ledger).toMatchObject({ expected: 20, publishFailed: 10, completed: 20, lost: 0 });
    expect(outcome.missing).toEqual([]);
  });
});
