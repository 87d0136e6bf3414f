// Consumer processes killed with SIGKILL at moments nobody arranged, on the real Redis and the embedded
// SQS: the books must balance whatever the victim was doing. crash-recovery's own random kill (many
// seeds), and kills from outside (this test sends kill -9 to a consumer process's pid) during
// crash-recovery and scale-out --scale-by processes. Also: the children's SQS requests and their CPU
// and memory are in the result. No timing assertions: the kill moments are drawn, the checks are books.

import { afterEach, describe, expect, it } from 'vitest';
import type { RunConfig } from '../../src/config.ts';
import { seededRandom, NO_TASK } from '../../src/pipeline/executor.ts';
import { buildResult, type ResultFile } from '../../src/report/result-file.ts';
import { consumerProcessIds } from '../../src/runner/process-consumers.ts';
import { runScenario } from '../../src/runner/runner.ts';
import { findScenario } from '../../scenarios/index.ts';
import { expectRecovered, scenarioRunner, targetOf, type Target } from '../helpers/scenarios.ts';
import { useSqsEndpoint } from '../helpers/sqs.ts';

const sqsEndpoint = useSqsEndpoint();
const { configFor, connection, run } = scenarioRunner(sqsEndpoint);

/** Small runs: 2 processes of 2 consumers, 40 ms tasks, a 1 s visibility timeout, a random kill at 30 %. */
const small: Partial<RunConfig> = {
  messages: 200,
  ratePerSec: 400,
  publishBatch: 10,
  visibilityTimeoutMs: 1_000,
  killMode: 'random',
  task: { ...NO_TASK, durationMs: 40 },
};
const smallSqs: Partial<RunConfig> = { ...small, messages: 120, ratePerSec: 200 };

function values(result: ResultFile): Record<string, unknown> {
  expect(result.scenarioData).toBeDefined();
  return result.scenarioData!.values;
}

/** 8 + 7 + 5 = 20 seeded random kills on the at-least-once adapters. */
const RANDOM_KILLS: [Target, number][] = [
  ...[1, 2, 3, 4, 5, 6, 7, 8].map((seed): [Target, number] => ['redis-list', seed]),
  ...[11, 12, 13, 14, 15, 16, 17].map((seed): [Target, number] => ['redis-stream', seed]),
  ...[21, 22, 23, 24, 25].map((seed): [Target, number] => ['sqs', seed]),
];

describe('crash-recovery --kill-mode random', () => {
  it.each(RANDOM_KILLS)('%s, seed %i: nothing lost, and what the victim held and had not settled was delivered again', async (target, seed) => {
    const result = await run('crash-recovery', target, { ...(target === 'sqs' ? smallSqs : small), seed });
    const v = values(result);
    expect(v['killMode']).toBe('random');
    expect(typeof v['victimActivity']).toBe('string');
    expectRecovered(result);
    if (target === 'sqs') {
      // The children's requests count: they are the only ones that receive and delete.
      expect(result.requests!.byKind['ReceiveMessage']).toBeGreaterThan(0);
      expect(result.requests!.byKind['DeleteMessageBatch']).toBeGreaterThan(0);
    }
  });

  it('a kill due after the work is done still happens: the victim dies holding nothing, and the books say so', async () => {
    // Seed 52 draws a kill 267 ms after the 95th of 100 completions: the last 5 complete long before it.
    const result = await run('crash-recovery', 'redis-list', { ...small, messages: 100, killAtFraction: 0.95, seed: 52 });
    const v = values(result);
    expect(v['killDelayMs']).toBe(267);
    expect(result.verdicts.join('\n')).not.toContain('the kill went wrong');
    expect(result.status).toBe('completed');
    expect(result.ledger.lost).toBe(0);
    expect(v['heldMessages']).toBe(0);
    expect(v['redeliveredMessages']).toBe(0);
  });

  it.each([31, 32, 33])('redis-list simple, seed %i: lost is what the victim held plus what a receive in transit popped, and the verdict names both', async (seed) => {
    const result = await run('crash-recovery', 'redis-list simple', { ...small, seed });
    const v = values(result);
    const held = v['heldMessages'] as number;
    const inTransit = v['neverDeliveredMessages'] as number;
    expect(result.status).toBe('completed');
    // Every message it held and did not complete is lost; every lost one is either of those or never delivered.
    expect(v['redeliveredMessages']).toBe(0);
    expect(result.ledger.lost).toBe(held + inTransit);
    expect(result.ledger.completed).toBe(result.ledger.expected - held - inTransit);
    expect(result.ledger.duplicateDeliveries).toBe(0);
    if (result.ledger.lost > 0) {
      expect(result.verdicts).toContain(
        `LOST ${result.ledger.lost}: at-most-once mode, ${held} the killed consumer held (received, not completed) and ${inTransit} never delivered to anyone (popped by a receive in transit when it died)`,
      );
    }
  });

  it('redis-list: the harness cost adds the consumer processes, peak RSS as the sum of each process peak', async () => {
    const result = await run('crash-recovery', 'redis-list', { ...small, seed: 41 });
    const children = result.harness.consumerProcesses;
    expect(children).toBeDefined();
    // The two at the start, and the victim's replacement if it began consuming before the run ended
    // (on a busy machine it may start too late: then it has consumed nothing and costs nothing here).
    expect(children!.processes).toBeGreaterThanOrEqual(2);
    expect(children!.processes).toBeLessThanOrEqual(3);
    expect(children!.cpuUserMs).toBeGreaterThan(0);
    expect(result.harness.cpuUserMs).toBeGreaterThan(children!.cpuUserMs);
    // Each Node process has tens of MB: the sum is above any one, and the parent's adds to it.
    expect(children!.peakRssBytes).toBeGreaterThan(children!.processes * 20 * 1024 * 1024);
    expect(result.harness.peakRssBytes).toBeGreaterThan(children!.peakRssBytes);
  });
});

/**
 * Runs `name` on `target` and, once the first completions are in, sends SIGKILL to `kills` of the live
 * consumer processes in turn (`pick` chooses among their pids), each a seeded 0 to 300 ms after the
 * one before: deaths nobody arranged. Returns the result and the pids killed.
 */
async function runWithOutsideKills(
  name: string,
  target: Target,
  change: Partial<RunConfig>,
  seed: number,
  kills: number,
  pick: (pids: number[]) => number | undefined,
): Promise<{ result: ResultFile; killed: number[] }> {
  const scenario = findScenario(name)!;
  const random = seededRandom(seed);
  let armed = false;
  const killed: number[] = [];
  let timer: NodeJS.Timeout | undefined;
  const killOne = (left: number): void => {
    timer = setTimeout(() => {
      const pid = pick(consumerProcessIds());
      if (pid === undefined) return;
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
      if (left > 1) killOne(left - 1);
    }, Math.floor(random() * 300));
  };
  const record = await runScenario({
    adapter: targetOf(target).adapter,
    connection: connection(target),
    config: configFor(scenario, target, { ...change, seed }),
    scenario,
    onEvent: (event) => {
      if (event.type !== 'tick' || armed || event.progress.completed === 0) return;
      armed = true;
      killOne(kills);
    },
  });
  clearTimeout(timer);
  return { result: JSON.parse(JSON.stringify(buildResult(record))) as ResultFile, killed };
}

afterEach(() => {
  // A kill aimed at a run that had ended must not reach the next one's processes.
  expect(consumerProcessIds()).toEqual([]);
});

describe('an unplanned death of a consumer process', () => {
  it.each([51, 52, 53])('crash-recovery on redis-list, seed %i: kill -9 of three other processes as well, nothing lost', async (seed) => {
    // The scenario's own (staged) kill of process 0 comes late; the outside kills hit processes 3, 2, 1 first.
    const { result, killed } = await runWithOutsideKills(
      'crash-recovery',
      'redis-list',
      { ...small, messages: 1000, ratePerSec: 1000, publishBatch: 1, consumerProcesses: 4, consumers: 4, killMode: 'staged', killAtFraction: 0.7, task: NO_TASK },
      seed,
      3,
      (pids) => (pids.length > 1 ? pids.at(-1) : undefined),
    );
    expect(killed).toHaveLength(3);
    expect(result.status).toBe('completed');
    // The result keeps the first error of each kind: the first death.
    expect(result.errors.some((error) => error.includes(`(pid ${killed[0]}) exited (SIGKILL)`))).toBe(true);
    expect(result.ledger.lost).toBe(0);
    expect(result.ledger.completed).toBe(result.ledger.expected);
  });

  it('crash-recovery on redis-list: the replacement killed while it starts is a verdict, not an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    // Every process there is once the run has completions is an original; the first pid after those is
    // the victim's replacement, killed the moment it appears, long before it can be ready.
    let originals: Set<number> | undefined;
    let replacement: number | undefined;
    const watcher = setInterval(() => {
      const pids = consumerProcessIds();
      if (!originals || replacement !== undefined) return;
      replacement = pids.find((pid) => !originals!.has(pid));
      if (replacement !== undefined) process.kill(replacement, 'SIGKILL');
    }, 2);
    try {
      const scenario = findScenario('crash-recovery')!;
      const record = await runScenario({
        adapter: targetOf('redis-list').adapter,
        connection: connection('redis-list'),
        config: configFor(scenario, 'redis-list', { ...small, messages: 400, seed: 71 }),
        scenario,
        onEvent: (event) => {
          if (event.type === 'tick' && !originals && event.progress.completed > 0) originals = new Set(consumerProcessIds());
        },
      });
      const result = buildResult(record);
      expect(replacement).toBeDefined();
      expect(unhandled).toEqual([]);
      expect(result.verdicts.join('\n')).toMatch(/the kill went wrong: consumer process 0.*exited \(SIGKILL\)/);
      // The victim's messages still came back, to the process that lived.
      expect(result.ledger.lost).toBe(0);
      expect(result.ledger.completed).toBe(400);
    } finally {
      clearInterval(watcher);
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it.each([61, 62, 63])('scale-out --scale-by processes on redis-list, seed %i: kill -9 of three of four processes, nothing lost', async (seed) => {
    const { result, killed } = await runWithOutsideKills(
      'scale-out',
      'redis-list',
      { messages: 1000, ratePerSec: 1000, publishBatch: 1, visibilityTimeoutMs: 1_000, scaleSteps: [4], scaleBy: 'processes', task: NO_TASK },
      seed,
      3,
      (pids) => (pids.length > 1 ? pids[seed % pids.length] : undefined),
    );
    expect(killed).toHaveLength(3);
    expect(result.status).toBe('completed');
    expect(result.ledger.lost).toBe(0);
    expect(result.ledger.completed).toBe(result.ledger.expected);
  });

  it('scale-out --scale-by processes on sqs: the children requests are in the result', async () => {
    const result = await run('scale-out', 'sqs', { messages: 100, ratePerSec: 200, publishBatch: 10, scaleSteps: [1, 2], scaleBy: 'processes', task: NO_TASK });
    expect(result.ledger.lost).toBe(0);
    expect(result.requests!.byKind['ReceiveMessage']).toBeGreaterThan(0);
    expect(result.requests!.byKind['DeleteMessageBatch']).toBeGreaterThan(0);
    expect(result.harness.consumerProcesses!.processes).toBe(3);
  });
});
