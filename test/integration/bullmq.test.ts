// The BullMQ adapter on the real Redis, through the scenarios as the CLI runs them (throughput, crash-recovery
// with a seeded random kill, retry-dlq, delayed, fan-out), plus what is BullMQ's own: a receive bounded by its
// wait even when BullMQ would sleep until a delayed job, completed jobs deleted as they go, a late ack
// reported, a dead server told in one line by the adapter and by the command line, and --maxmemory refused.

import { afterEach, describe, expect, it } from 'vitest';
import { bullmqAdapter } from '../../adapters/bullmq.ts';
import { BrokerError, type Broker } from '../../src/broker.ts';
import type { RunConfig } from '../../src/config.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import { freePort } from '../../src/services/children.ts';
import { runCli } from '../helpers/cli.ts';
import { keysWithPrefix, redisUrl, uniqueNamespace } from '../helpers/redis.ts';
import { expectFannedOut, expectRecovered, scenarioRunner, scenarioValues } from '../helpers/scenarios.ts';
import { useSqsEndpoint } from '../helpers/sqs.ts';

const { run } = scenarioRunner(useSqsEndpoint());


describe('bullmq scenarios', () => {
  it('throughput: every message completed once, nothing lost', async () => {
    const result = await run('throughput', 'bullmq', { messages: 5_000 });
    expect(result.status).toBe('completed');
    expect(result.ledger).toMatchObject({ expected: 5_000, completed: 5_000, lost: 0, duplicateDeliveries: 0, foreign: 0 });
    expect(result.broker).toMatchObject({ name: 'bullmq', mode: 'default' });
    expect(result.finalDepth).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });

  // 2 processes of 2 consumers, 40 ms tasks, a 1 s visibility timeout (the job lock), a random kill at 30 %.
  const small: Partial<RunConfig> = {
    messages: 200,
    ratePerSec: 400,
    publishBatch: 10,
    visibilityTimeoutMs: 1_000,
    killMode: 'random',
    task: { ...NO_TASK, durationMs: 40 },
  };
  it.each([31, 32, 33])('crash-recovery, seed %i: nothing lost; what the victim held came back by the stalled-job check', async (seed) => {
    const result = await run('crash-recovery', 'bullmq', { ...small, seed });
    expectRecovered(result);
  });

  it('retry-dlq: completed + dead-lettered = published, the dead ones kept as failed jobs', async () => {
    const published = 300;
    const result = await run('retry-dlq', 'bullmq', { messages: published, retryIntervalsMs: [50, 100], poisonRate: 0.1, task: { ...NO_TASK, failureRate: 0.4 } });
    expect(result.status).toBe('completed');
    expect(result.config.maxReceives).toBe(3);
    const v = scenarioValues(result);
    expect((v['completed'] as number) + (v['deadLettered'] as number)).toBe(published);
    expect(v['balanced']).toBe(true);
    expect(v['deadLettered']).toBe(v['expectedDead']);
    expect(v['deadLettered'] as number).toBeGreaterThan(0);
    expect(v['deliveriesBeyondAttempts']).toBe(0);
    expect(result.finalDepth.dead).toBe(v['deadLettered']);
    const attempts = result.scenarioData!.records['attempts']!;
    expect(attempts.map((a) => a['attempt'])).toEqual([1, 2, 3]);
    expect(attempts[1]!['deliveries']).toBe(attempts[0]!['failures']);
    expect(attempts[2]!['deliveries']).toBe(attempts[1]!['failures']);
  });

  it('delayed: every message arrives, none early', async () => {
    const result = await run('delayed', 'bullmq', { messages: 300, delayMs: 300, delayWindowMs: 300 });
    expect(result.status).toBe('completed');
    expect(result.ledger).toMatchObject({ completed: 300, lost: 0 });
    const v = scenarioValues(result);
    expect(v['early']).toBe(0);
    expect(v['delivered']).toBe(300);
    expect(result.latency.endToEnd.min).toBeGreaterThanOrEqual(300 * 1000 - 1000);
    expect(result.verdicts[1]).toMatch(/^none delivered early/);
  });

  it('fan-out: every message reaches both groups, once each, by a copy per group', async () => {
    const result = await run('fan-out', 'bullmq', { messages: 1_000, fanOutGroups: 2, consumers: 2 });
    expectFannedOut(result, 1_000, false);
  });
});

describe('bullmq handle', () => {
  const opened: { broker: Broker; namespace: string }[] = [];
  afterEach(async () => {
    for (const { broker } of opened.splice(0)) {
      await broker.teardown('q');
      await broker.close();
    }
  });
  async function open(): Promise<{ broker: Broker; namespace: string }> {
    const namespace = uniqueNamespace();
    const broker = await bullmqAdapter.open({ namespace, url: redisUrl(), commandTimeoutMs: 2_000 });
    await broker.prepare({ name: 'q', visibilityTimeoutMs: 30_000, maxReceives: 0 });
    opened.push({ broker, namespace });
    return { broker, namespace };
  }

  it('returns [] after about waitMs even with a delayed job due later (BullMQ alone would sleep until it)', async () => {
    const { broker } = await open();
    await broker.publish('q', [{ body: 'later', delayMs: 8_000 }]);
    // The first receive notes the queue is drained; the second blocks in BZPOPMIN on the delay marker.
    for (const waitMs of [300, 300]) {
      const startedAt = Date.now();
      expect(await broker.receive('q', { maxMessages: 10, waitMs })).toEqual([]);
      const elapsedMs = Date.now() - startedAt;
      expect(elapsedMs).toBeGreaterThanOrEqual(waitMs - 20);
      expect(elapsedMs).toBeLessThan(waitMs + 1_500);
    }
    expect(await broker.depth('q')).toEqual({ ready: 0, inFlight: 0, delayed: 1, dead: 0 });
  });

  it('deletes completed jobs as they are acked: no job hash is left for a message done', async () => {
    const { broker, namespace } = await open();
    await broker.publish('q', Array.from({ length: 200 }, (_, i) => ({ body: `done-${i}` })));
    let received = 0;
    while (received < 200) {
      const batch = await broker.receive('q', { maxMessages: 100, waitMs: 500 });
      received += batch.length;
      await broker.ack('q', batch);
    }
    const jobKeys = (await keysWithPrefix(`${namespace}:q:`)).filter((key) => /:q:\d+(:lock)?$/.test(key));
    expect(jobKeys).toEqual([]);
    expect(await broker.depth('q')).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });

  it('an ack after the lock ran out and the job was taken again settles nothing, and says so', async () => {
    const namespace = uniqueNamespace();
    const broker = await bullmqAdapter.open({ namespace, url: redisUrl(), commandTimeoutMs: 2_000 });
    opened.push({ broker, namespace });
    await broker.prepare({ name: 'q', visibilityTimeoutMs: 300, maxReceives: 0 });
    await broker.publish('q', [{ body: 'slow' }]);
    const [first] = await broker.receive('q', { maxMessages: 1, waitMs: 1_000 });
    let second = await broker.receive('q', { maxMessages: 1, waitMs: 2_000 });
    while (second.length === 0) second = await broker.receive('q', { maxMessages: 1, waitMs: 2_000 });
    expect(second[0]).toMatchObject({ body: 'slow', receiveCount: 2 });
    const late = await broker.ack('q', [first!]).then(() => undefined, (error: unknown) => error);
    expect(late).toBeInstanceOf(BrokerError);
    expect((late as BrokerError).message).toMatch(/^bullmq ack: /);
    // The later delivery still holds the job, and its own ack settles it.
    expect(await broker.depth('q')).toMatchObject({ inFlight: 1 });
    await broker.ack('q', second);
    expect(await broker.depth('q')).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });
});

describe('bullmq refusals', () => {
  it('fails to open in one line naming the server and the fix, within the command timeout', async () => {
    const port = await freePort('127.0.0.1');
    const startedAt = Date.now();
    const error = await bullmqAdapter
      .open({ namespace: uniqueNamespace(), url: `redis://:hunter2@127.0.0.1:${port}`, commandTimeoutMs: 2_000 })
      .then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(BrokerError);
    const message = (error as BrokerError).message;
    expect(message).toBe(`bullmq connect: cannot reach redis://:***@127.0.0.1:${port} (ECONNREFUSED); start Redis or set REDIS_URL`);
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });

  it('the command line says the same in one line, exit 2, no password', async () => {
    const cli = await runCli(['scenario', '10'], { QUEUE: 'BULLMQ', REDIS_URL: 'redis://:hunter2@127.0.0.1:1' });
    expect(cli.code).toBe(2);
    const lines = cli.stderr.trim().split('\n');
    expect(lines.filter((line) => line.startsWith('brokerbench:'))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/^brokerbench: bullmq (open|connect): cannot reach redis:\/\/:\*\*\*@127\.0\.0\.1:1 \(ECONNREFUSED\); start Redis or set REDIS_URL$/);
    expect(cli.stderr).not.toMatch(/hunter2|^\s+at /m);
  });

  it("--maxmemory is refused up front: a full Redis refuses the writes of BullMQ's fetch too, so it could never drain", async () => {
    const cli = await runCli(['scenario', '100', '--maxmemory', '8mb'], { QUEUE: 'BULLMQ' });
    expect(cli.code).toBe(2);
    expect(cli.stderr.trim()).toMatch(/^brokerbench: --maxmemory starts a throw-away redis-server, so it applies to .*, not bullmq$/);
  });
});
