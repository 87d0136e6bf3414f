// The scenarios executor, fixed-rate, retry-dlq, delayed and slow-tasks at a small size, through the
// runner as the CLI drives them, on the real Redis (redis-list reliable, redis-stream) and the embedded
// SQS: each asserts the facts its verdict states (books balance, lateness >= 0, a table sorted by
// total, throughput a sane fraction of its ceiling). Bounds are generous: other tests share the cores.

import { describe, expect, it } from 'vitest';
import { redisListAdapter } from '../../adapters/redis-list.ts';
import { sqsAdapter } from '../../adapters/sqs.ts';
import { systemClock } from '../../src/clock.ts';
import type { RunConfig } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import { printSummary } from '../../src/report/print.ts';
import type { ResultFile } from '../../src/report/result-file.ts';
import { runPipeline } from '../../src/runner/pipeline.ts';
import { runScenario } from '../../src/runner/runner.ts';
import { findScenario } from '../../scenarios/index.ts';
import { runCli } from '../helpers/cli.ts';
import { openRedisListFixture, redisUrl } from '../helpers/redis.ts';
import { scenarioRunner, type Target } from '../helpers/scenarios.ts';
import { useSqsEndpoint } from '../helpers/sqs.ts';

const sqsEndpoint = useSqsEndpoint();

const { connection, configFor, run } = scenarioRunner(sqsEndpoint);

function values(result: ResultFile): Record<string, unknown> {
  expect(result.scenarioData).toBeDefined();
  return result.scenarioData!.values;
}

describe('throughput', () => {
  it('rates received over the span to the last delivery and completed over the span to the last ack', async () => {
    // Every message's task runs 100 ms after its delivery, so the last ack comes at least that long after the last receive.
    const result = await run('throughput', 'redis-list', { messages: 40, consumers: 2, receiveBatch: 10, task: { ...NO_TASK, durationMs: 100 } });
    const { throughput, ledger } = result;
    expect(ledger).toMatchObject({ completed: 40, deliveries: 40, lost: 0 });
    expect(throughput.receiveSec).toBeDefined();
    expect(throughput.receiveSec!).toBeLessThanOrEqual(throughput.totalSec - 0.1);
    expect(throughput.receivePerSec).toBeCloseTo(ledger.deliveries / throughput.receiveSec!, 6);
    expect(throughput.completePerSec).toBeCloseTo(ledger.completed / throughput.totalSec, 6);
  });
});

describe('executor', () => {
  it.each(['redis-list', 'redis-stream'] as const)('%s: N tasks through a pool, throughput near concurrency / task time', async (target) => {
    const result = await run('executor', target, { messages: 150, taskConcurrency: 50, task: { ...NO_TASK, durationMs: 200 } });
    expect(result.status).toBe('completed');
    expect(result.ledger).toMatchObject({ completed: 150, lost: 0 });
    const v = values(result);
    expect(v['ceilingPerSec']).toBe(250);
    // Ideal 0.6 s; the loaded machine may take several times that, but never beats the ceiling.
    expect(v['efficiency']).toBeGreaterThan(0.2);
    expect(v['efficiency']).toBeLessThanOrEqual(1.02);
    expect(result.latency.execution.count).toBe(150);
    expect(result.latency.execution.p50).toBeGreaterThanOrEqual(199_000);
    expect(result.verdicts.some((line) => /^throughput .* of concurrency\/task time \(250\/s\)$/.test(line))).toBe(true);
    const table = result.scenarioData!.tables[0]!;
    expect(table.title).toMatch(/^backlog over time/);
    expect(table.rows.at(-1)![2]).toBe('150'); // completed so far, at the last second
    const summary = printSummary(result, undefined, { width: 400 });
    expect(summary).toContain('backlog over time');
    expect(summary).toContain('- throughput ');
  });

  it('never runs more tasks at once than the pool has slots, across consumers', async () => {
    const fixture = await openRedisListFixture('reliable');
    try {
      let running = 0;
      let most = 0;
      const outcome = await runPipeline({
        broker: fixture.broker,
        config: configFor(findScenario('executor')!, 'redis-list', { messages: 120, consumers: 3, receiveBatch: 10, taskConcurrency: 7 }),
        queues: [fixture.queue],
        clock: systemClock,
        tickMs: 100,
        hooks: {
          async runTask() {
            most = Math.max(most, ++running);
            await new Promise((resolve) => setTimeout(resolve, 15));
            running--;
            return true;
          },
        },
      });
      expect(outcome.status).toBe('completed');
      expect(outcome.ledger.completed).toBe(120);
      expect(most).toBeLessThanOrEqual(7);
      expect(most).toBeGreaterThan(1);
    } finally {
      await fixture.cleanup();
    }
  });
});

describe('fixed-rate', () => {
  it.each(['redis-list', 'redis-stream'] as const)('%s: one row per rate, a low rate held, latency from the intended send', async (target) => {
    const result = await run('fixed-rate', target, { ratesPerSec: [100, 300], durationSec: 1.5, warmupSec: 0.5 });
    const rows = result.scenarioData!.records['rates']!;
    expect(rows.length).toBeGreaterThanOrEqual(1);
    const first = rows[0]!;
    expect(first['ratePerSec']).toBe(100);
    expect(first['published']).toBe(200);
    expect(first['keptUp']).toBe(true);
    expect(first['publishPerSec'] as number).toBeGreaterThan(80);
    expect(first['publishPerSec'] as number).toBeLessThan(125);
    expect(first['endToEndP99Us'] as number).toBeGreaterThan(0);
    // A batch waits at most --linger-ms (5 ms, to the histogram's 3 significant digits) for its messages.
    expect(first['batchWaitMaxUs'] as number).toBeLessThanOrEqual(5_000 * 1.001);
    const held = values(result)['highestRateHeldPerSec'];
    expect([100, 300]).toContain(held);
    // The top-level figures are those of the highest rate held, its warm-up left out of the histograms.
    const heldRow = rows.find((row) => row['ratePerSec'] === held)!;
    expect(result.ledger.completed).toBe(heldRow['published']);
    expect(result.latency.endToEnd.count).toBe((held as number) * 1.5);
    expect(result.verdicts[0]).toMatch(/^highest rate held: /);
    expect(result.scenarioData!.tables[0]!.rows).toHaveLength(2);
  });

  it('refuses a rate list without a duration', () => {
    const scenario = findScenario('fixed-rate')!;
    expect(() => configFor(scenario, 'redis-list', { ratesPerSec: [100], durationSec: 0 })).toThrow(UsageError);
  });
});

describe('retry-dlq', () => {
  const cases: [Target, Partial<RunConfig>][] = [
    ['redis-list', { messages: 300, retryIntervalsMs: [50, 100] }],
    ['redis-stream', { messages: 300, retryIntervalsMs: [50, 100] }],
    // SQS takes retry delays in whole seconds (0 stays 0) and fauxqs is slow: keep it small.
    ['sqs', { messages: 40, retryIntervalsMs: [0, 1000] }],
  ];
  it.each(cases)('%s: completed + dead-lettered = published, as the seeded failures predict', async (target, change) => {
    const result = await run('retry-dlq', target, { ...change, poisonRate: 0.1, task: { ...NO_TASK, failureRate: 0.4 } });
    expect(result.status).toBe('completed');
    expect(result.config.maxReceives).toBe(3);
    const v = values(result);
    const published = change.messages!;
    expect(v['published']).toBe(published);
    expect((v['completed'] as number) + (v['deadLettered'] as number)).toBe(published);
    expect(v['balanced']).toBe(true);
    expect(v['deadLettered']).toBe(v['expectedDead']);
    expect(v['deadLettered'] as number).toBeGreaterThan(0);
    expect(v['deliveriesBeyondAttempts']).toBe(0);
    expect(result.finalDepth.dead).toBe(v['deadLettered']);
    expect(result.verdicts[0]).toBe(
      `books balance: completed ${String(v['completed'])} + dead-lettered ${String(v['deadLettered'])} = published ${published}`,
    );
    const attempts = result.scenarioData!.records['attempts']!;
    expect(attempts.map((a) => a['attempt'])).toEqual([1, 2, 3]);
    expect(attempts[0]!['deliveries']).toBe(published);
    // Every failure but the last attempt's comes back exactly once; the last attempt's are the dead ones.
    expect(attempts[1]!['deliveries']).toBe(attempts[0]!['failures']);
    expect(attempts[2]!['deliveries']).toBe(attempts[1]!['failures']);
    expect(attempts[2]!['failures']).toBe(v['deadLettered']);
  });

  it('is refused where there are no dead letters, with the reason', async () => {
    const scenario = findScenario('retry-dlq')!;
    const config = { ...configFor(scenario, 'redis-list', {}), mode: 'simple' };
    await expect(runScenario({ adapter: redisListAdapter, connection: connection('redis-list'), config, scenario })).rejects.toThrow(
      'scenario retry-dlq needs deadLetter, nackDelay, which redis-list (simple) does not support',
    );
  });
});

describe('delayed', () => {
  const cases: [Target, Partial<RunConfig>][] = [
    ['redis-list', { messages: 300, delayMs: 300, delayWindowMs: 300 }],
    ['redis-stream', { messages: 300, delayMs: 300, delayWindowMs: 300 }],
    ['sqs', { messages: 20, delayMs: 1000, delayWindowMs: 0 }],
  ];
  it.each(cases)('%s: every message arrives, none early, with a lateness histogram', async (target, change) => {
    const result = await run('delayed', target, change);
    expect(result.status).toBe('completed');
    expect(result.ledger).toMatchObject({ completed: change.messages, lost: 0 });
    const v = values(result);
    expect(v['early']).toBe(0);
    expect(v['delivered']).toBe(change.messages);
    const lateness = result.scenarioData!.histograms['lateness']!;
    expect(lateness.count).toBe(change.messages);
    expect(lateness.min).toBeGreaterThanOrEqual(1);
    // Nothing arrived before it was due: end-to-end is at least the shortest delay.
    expect(result.latency.endToEnd.min).toBeGreaterThanOrEqual(change.delayMs! * 1000 - 1000);
    const buckets = result.scenarioData!.records['lateness']!;
    expect(buckets.reduce((sum, b) => sum + (b['messages'] as number), 0)).toBe(change.messages);
    expect(result.verdicts[1]).toMatch(/^none delivered early/);
    // The rounding note comes from the delay granularity the adapter declares: only SQS rounds (to seconds).
    const rounded = 'SQS takes DelaySeconds in whole seconds: each delay was rounded up to the next second, which counts as lateness here';
    expect(result.verdicts.includes(rounded)).toBe(target === 'sqs');
    expect(printSummary(result, undefined, { width: 400 })).toMatch(/\n│ lateness +│/);
  });

  it('is refused on SQS FIFO queues, which take no per-message delay', () => {
    const config = { ...configFor(findScenario('delayed')!, 'sqs', {}), mode: 'fifo' };
    return expect(
      runScenario({ adapter: sqsAdapter, connection: connection('sqs'), config, scenario: findScenario('delayed')! }),
    ).rejects.toThrow('scenario delayed needs delay, which sqs (fifo) does not support');
  });
});

describe('slow-tasks', () => {
  it.each(['redis-list', 'redis-stream'] as const)('%s: a per-type table sorted by total, naming the type that holds the workers', async (target) => {
    const result = await run('slow-tasks', target, { messages: 60, taskUnitMs: 3, taskConcurrency: 3 });
    expect(result.status).toBe('completed');
    expect(result.ledger.completed).toBe(60);
    const types = result.scenarioData!.records['types']!;
    expect(types.map((t) => t['type']).sort()).toEqual(['compute', 'send_mail', 'simple_task']);
    for (const t of types) expect(t['count']).toBe(20);
    const totals = types.map((t) => t['totalMs'] as number);
    expect([...totals].sort((a, b) => b - a)).toEqual(totals);
    expect(types.at(-1)!['type']).toBe('simple_task');
    const holding = values(result)['holdingType'];
    expect(holding).toBe(types[0]!['type']);
    expect(result.verdicts[0]).toMatch(new RegExp(`^${String(holding)} holds the workers: `));
    expect(result.scenarioData!.tables[0]!.rows.map((row) => row[0])).toEqual(types.map((t) => t['type']));
  });
});

describe('the command line', () => {
  it('refuses a scenario the broker cannot support in one line, exit 2', async () => {
    const out = await runCli(['scenario', '--scenario', 'delayed', '--mode', 'simple', '--quiet'], { REDIS_URL: redisUrl() });
    expect(out.code).toBe(2);
    expect(out.stderr.trim()).toBe('brokerbench: scenario delayed needs delay, which redis-list (simple) does not support');
    expect(out.stdout).toBe('');
  });
});
