// The rabbitmq adapter through the scenarios, on the RabbitMQ its registry entry resolves (RABBITMQ_URL,
// else 127.0.0.1:5672): throughput with nothing lost, crash-recovery with seeded random kills, retry-dlq
// whose books balance, delays never early, native fan-out (one publish, one queue per group), and the
// one line a user gets when nothing answers. No timing assertions: books and counts only.

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rabbitmqAdapter } from '../../adapters/rabbitmq.ts';
import type { ReceivedMessage } from '../../src/broker.ts';
import type { RunConfig } from '../../src/config.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import { freePort } from '../../src/services/children.ts';
import { runCli } from '../helpers/cli.ts';
import { expectFannedOut, expectRecovered, scenarioRunner, scenarioValues } from '../helpers/scenarios.ts';

const { connection, run } = scenarioRunner(() => {
  throw new Error('these tests use no SQS endpoint');
});


describe.each(['rabbitmq', 'rabbitmq classic'])('%s', (target) => {
  it('throughput: every message completed once, nothing lost, nothing left in the queue', async () => {
    const result = await run('throughput', target, { messages: 5_000, consumers: 4 });
    expect(result.status).toBe('completed');
    expect(result.ledger).toMatchObject({ expected: 5_000, completed: 5_000, deliveries: 5_000, lost: 0, duplicateDeliveries: 0 });
    expect(result.finalDepth).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
    expect(result.broker).toMatchObject({ name: 'rabbitmq', mode: target === 'rabbitmq' ? 'quorum' : 'classic', serverVersion: expect.stringMatching(/^\d+\.\d+/) });
  });

  it('retry-dlq: completed + dead-lettered = published, as the seeded failures predict', async () => {
    const result = await run('retry-dlq', target, { messages: 300, retryIntervalsMs: [100, 200], poisonRate: 0.1, task: { ...NO_TASK, failureRate: 0.4 } });
    expect(result.status).toBe('completed');
    const v = scenarioValues(result);
    expect((v['completed'] as number) + (v['deadLettered'] as number)).toBe(300);
    expect(v['balanced']).toBe(true);
    expect(v['deadLettered']).toBe(v['expectedDead']);
    expect(v['deadLettered'] as number).toBeGreaterThan(0);
    expect(v['deliveriesBeyondAttempts']).toBe(0);
    expect(result.finalDepth.dead).toBe(v['deadLettered']);
    // Every failure but the last attempt's comes back exactly once, its receive count raised by one.
    const attempts = result.scenarioData!.records['attempts']!;
    expect(attempts.map((a) => a['attempt'])).toEqual([1, 2, 3]);
    expect(attempts[1]!['deliveries']).toBe(attempts[0]!['failures']);
    expect(attempts[2]!['deliveries']).toBe(attempts[1]!['failures']);
  });

  it('delayed: every message arrives, none early, and the 100 ms steps are named', async () => {
    const result = await run('delayed', target, { messages: 300, delayMs: 300, delayWindowMs: 300 });
    expect(result.status).toBe('completed');
    expect(result.ledger).toMatchObject({ completed: 300, lost: 0 });
    const v = scenarioValues(result);
    expect(v['early']).toBe(0);
    expect(v['delivered']).toBe(300);
    expect(result.latency.endToEnd.min).toBeGreaterThanOrEqual(300_000);
    expect(result.verdicts).toContain(
      'RabbitMQ delays go through one wait queue per delay, in steps of 100 ms: each delay was rounded up to the next 100 ms, which counts as lateness here',
    );
  });
});

describe('crash-recovery --kill-mode random (quorum queues)', () => {
  /** 2 processes of 2 consumers, 40 ms tasks, a seeded SIGKILL at 30 %. */
  const small: Partial<RunConfig> = { messages: 300, ratePerSec: 400, publishBatch: 10, killMode: 'random', task: { ...NO_TASK, durationMs: 40 } };

  it.each([1, 2, 3])('seed %i: nothing lost; what the victim held came back when its connection closed', async (seed) => {
    const result = await run('crash-recovery', 'rabbitmq', { ...small, seed });
    expectRecovered(result);
  });

  it('staged: the victim holds messages when killed, and every one of them is delivered again', async () => {
    const result = await run('crash-recovery', 'rabbitmq', { ...small, killMode: 'staged' });
    const v = scenarioValues(result);
    expect(result.status).toBe('completed');
    expect(result.ledger).toMatchObject({ lost: 0, completed: 300 });
    const held = v['heldMessages'] as number;
    expect(held).toBeGreaterThan(0);
    expect(v['redeliveredMessages']).toBe(held);
    const verdicts = result.verdicts.join('\n');
    expect(verdicts).toMatch(held === 1 ? /the 1 message it held was delivered again/ : new RegExp(`all ${held} messages it held were delivered again`));
    // RabbitMQ has no visibility timeout: the verdict says how the messages came back, and never counts
    // what the dead process had prefetched but not handed out among the duplicates.
    expect(verdicts).toMatch(/\(given back as its connection closed\)/);
    expect(verdicts).not.toMatch(/visibility timeout/);
    const duplicates = /(\d+) duplicate deliveries: (\d+) of them the killed consumer's messages(?:, (\d+) other)?/.exec(verdicts);
    if (duplicates) expect(duplicates[3]).toBeUndefined();
  });
});

describe('fan-out', () => {
  it('native: published once to a fanout exchange, every message reaches both groups once', async () => {
    const result = await run('fan-out', 'rabbitmq', { messages: 1_000, fanOutGroups: 2, consumers: 2 });
    expectFannedOut(result, 1_000, true);
  });
});

describe('acks', () => {
  it('acks exactly the messages given, in or out of delivery order; the rest come back once the consumer closes', async () => {
    const namespace = `bb-test-acks-${process.pid}-${Date.now().toString(36)}`;
    const broker = await rabbitmqAdapter.open({ namespace, ...connection('rabbitmq') });
    try {
      await broker.prepare({ name: 'q', visibilityTimeoutMs: 30_000, maxReceives: 0 });
      await broker.publish('q', Array.from({ length: 12 }, (_, i) => ({ body: `m${i}` })));
      const consumer = await broker.duplicate();
      const got: ReceivedMessage[] = [];
      while (got.length < 12) got.push(...(await consumer.receive('q', { maxMessages: 12, waitMs: 1_000 })));
      expect(got.map((m) => m.body)).toEqual(Array.from({ length: 12 }, (_, i) => `m${i}`));
      // Not the oldest deliveries: acked one by one. Then the oldest three: one multiple ack, which must not reach m3.
      await consumer.ack('q', got.slice(8));
      await consumer.ack('q', got.slice(0, 3));
      await consumer.close();
      const back: ReceivedMessage[] = [];
      for (let tries = 0; back.length < 5 && tries < 10; tries++) back.push(...(await broker.receive('q', { maxMessages: 12, waitMs: 500 })));
      expect(back.map((m) => [m.body, m.receiveCount])).toEqual(['m3', 'm4', 'm5', 'm6', 'm7'].map((body) => [body, 2]));
      await broker.ack('q', back);
      expect(await broker.depth('q')).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
    } finally {
      await broker.teardown('q');
      await broker.close();
    }
  });
});

describe('the command line', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-rabbitmq-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a RabbitMQ that does not answer: one line naming the server (password hidden) and how to start one, exit 2, no result file', async () => {
    const port = await freePort('127.0.0.1');
    const run = await runCli(['scenario', '100', '--quiet', '--results-dir', dir], { QUEUE: 'RABBITMQ', RABBITMQ_URL: `amqp://bench:s3cret-pw@127.0.0.1:${port}` });
    expect(run.code).toBe(2);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`cannot reach amqp://bench:***@127.0.0.1:${port}`);
    expect(lines[0]).toMatch(/ECONNREFUSED.*rabbitmq-server.*docker compose up -d rabbitmq.*RABBITMQ_URL/);
    expect(run.stderr + run.stdout).not.toContain('s3cret-pw');
    expect((await readdir(dir)).filter((name) => name.endsWith('.json'))).toEqual([]);
  });
});
