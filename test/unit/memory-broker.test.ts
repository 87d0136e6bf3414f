// The pipeline and the runner on the in-memory broker, with no server: nothing lost, every message
// completed once, failed tasks retried through nack; a dead consumer's messages come back after the
// visibility timeout; and runs that need consumer processes are refused, since they cannot share it.

import { afterEach, describe, expect, it } from 'vitest';
import { findAdapter } from '../../adapters/index.ts';
import { memoryAdapter, memoryQueueNames } from '../../adapters/memory.ts';
import type { Broker } from '../../src/broker.ts';
import { systemClock } from '../../src/clock.ts';
import { validateConfig, type RunConfig } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { buildResult } from '../../src/report/result-file.ts';
import { runPipeline } from '../../src/runner/pipeline.ts';
import { runScenario } from '../../src/runner/runner.ts';
import { findScenario } from '../../scenarios/index.ts';
import { runConfig } from '../helpers/faults.ts';
import { prepareQueueFixture, uniqueNamespace, type QueueFixture } from '../helpers/fixture.ts';

const capabilities = memoryAdapter.capabilities('default');

/** A throughput run on the memory broker: 3,000 messages, 3 consumers. */
const config = (change: Partial<RunConfig>): RunConfig => runConfig({ adapter: 'memory', mode: 'default', messages: 3000, consumers: 3, ...change });

let fixture: QueueFixture | undefined;
afterEach(async () => {
  await fixture?.cleanup();
  fixture = undefined;
});

async function openMemory(spec: { visibilityTimeoutMs?: number } = {}): Promise<QueueFixture> {
  const namespace = uniqueNamespace();
  const broker = await memoryAdapter.open({ namespace, commandTimeoutMs: 3_000 });
  return prepareQueueFixture(broker, namespace, spec);
}

describe('the memory broker', () => {
  it('is found as QUEUE=memory and QUEUE=MEMORY', () => {
    expect(findAdapter('memory')).toBe(memoryAdapter);
    expect(findAdapter('MEMORY')).toBe(memoryAdapter);
  });

  it('runs the pipeline with no server: every message completed once, one latency sample each', async () => {
    fixture = await openMemory();
    const outcome = await runPipeline({
      broker: fixture.broker,
      config: config({ messages: 5000, warmupMessages: 1000 }),
      queues: [fixture.queue],
      clock: systemClock,
      tickMs: 100,
    });
    expect(outcome.status).toBe('completed');
    expect(outcome.ledger).toMatchObject({ expected: 5000, completed: 5000, lost: 0, duplicateDeliveries: 0, unknown: 0 });
    expect(outcome.missing).toEqual([]);
    expect(outcome.histograms.endToEnd.totalCount).toBe(4000);
    expect(await fixture.broker.depth(fixture.queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });

  it('retries failed tasks through nack and still completes every message', async () => {
    fixture = await openMemory();
    const outcome = await runPipeline({
      broker: fixture.broker,
      config: config({ messages: 400, retryDelayMs: 5, task: { durationMs: 1, distribution: 'fixed', work: 'sleep', failureRate: 0.2 } }),
      queues: [fixture.queue],
      clock: systemClock,
      tickMs: 100,
    });
    expect(outcome.status).toBe('completed');
    expect(outcome.ledger).toMatchObject({ completed: 400, lost: 0 });
    expect(outcome.counters.taskFailures).toBeGreaterThan(20);
  });

  it('gives a dead consumer’s messages to the others after the visibility timeout: redelivered, not lost', async () => {
    fixture = await openMemory({ visibilityTimeoutMs: 300 });
    const dead: Broker = await fixture.broker.duplicate();
    fixture.others.push(dead);
    await fixture.broker.publish(fixture.queue, [{ body: 'held' }]);
    const [held] = await dead.receive(fixture.queue, { maxMessages: 1, waitMs: 1_000 });
    expect(held).toMatchObject({ body: 'held', receiveCount: 1 });
    await dead.close();
    // A blocking receive sleeps until the message falls due again (woken by its timer, not a poll).
    const [again] = await fixture.broker.receive(fixture.queue, { maxMessages: 1, waitMs: 5_000 });
    expect(again).toMatchObject({ body: 'held', receiveCount: 2 });
    // The stale receipt of the first delivery settles nothing.
    await fixture.broker.ack(fixture.queue, [held!]);
    expect((await fixture.broker.depth(fixture.queue)).inFlight).toBe(1);
    await fixture.broker.ack(fixture.queue, [again!]);
    expect(await fixture.broker.depth(fixture.queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });

  it('runs a scenario through the runner and tears its queues down', async () => {
    const scenario = findScenario('throughput')!;
    const run = config({ messages: 2000, consumers: 2, publishBatch: 50, receiveBatch: 50 });
    validateConfig(run, capabilities);
    const namespace = uniqueNamespace();
    const result = buildResult(await runScenario({ adapter: memoryAdapter, connection: { commandTimeoutMs: 3_000 }, namespace, config: run, scenario }));
    expect(result.status).toBe('completed');
    expect(result.broker).toMatchObject({ name: 'memory', mode: 'default', endpointKind: 'embedded' });
    expect(result.ledger).toMatchObject({ expected: 2000, completed: 2000, lost: 0, duplicateDeliveries: 0 });
    expect(memoryQueueNames(namespace)).toEqual([]);
  });

  it('refuses runs with consumer processes, which cannot reach this process’s memory', () => {
    for (const scenarioName of ['crash-recovery', 'scale-out'] as const) {
      const scenario = findScenario(scenarioName)!;
      const { task: _task, ...defaults } = scenario.defaults ?? {};
      const run = config({ ...defaults, scenario: scenarioName, scaleBy: 'processes', publishBatch: 10, receiveBatch: 10 });
      expect(() => validateConfig(run, capabilities), scenarioName).toThrow(UsageError);
      expect(() => validateConfig(run, capabilities)).toThrow(/^memory keeps its queues in this process, so consumer processes cannot reach them/);
    }
  });
});
