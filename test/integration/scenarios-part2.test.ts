// The scenarios crash-recovery, backlog, scale-out and fan-out at a small size, through the runner
// as the CLI drives them, on the real Redis (and a throw-away redis-server with maxmemory) and the
// embedded SQS. Each asserts the facts its verdict states: what a SIGKILLed consumer process held came
// back (or, in at-most-once mode, is exactly what was lost), a full Redis refuses publishes and the
// books still balance, every step and every group completed everything. No timing assertions.

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunConfig } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { formatCount } from '../../src/format.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import { readResult, type ResultFile } from '../../src/report/result-file.ts';
import { startRedisServer } from '../../src/services/redis-server.ts';
import { findScenario } from '../../scenarios/index.ts';
import { runCli } from '../helpers/cli.ts';
import { keysWithPrefix, redisUrl } from '../helpers/redis.ts';
import { scenarioRunner } from '../helpers/scenarios.ts';
import { useSqsEndpoint } from '../helpers/sqs.ts';

const sqsEndpoint = useSqsEndpoint();

const { configFor, run } = scenarioRunner(sqsEndpoint);

function values(result: ResultFile): Record<string, unknown> {
  expect(result.scenarioData).toBeDefined();
  return result.scenarioData!.values;
}

/** Small, quick staged crash runs: 2 processes of 2 consumers, 40 ms tasks, a 1 s visibility timeout (random kills: crash-journal.test.ts). */
const crash: Partial<RunConfig> = {
  killMode: 'staged',
  messages: 600,
  ratePerSec: 400,
  publishBatch: 10,
  visibilityTimeoutMs: 1_000,
  task: { ...NO_TASK, durationMs: 40 },
};

describe('crash-recovery', () => {
  it.each(['redis-list', 'redis-stream', 'sqs'] as const)(
    '%s: the killed process held messages, all came back, nothing lost',
    async (target) => {
      const result = await run('crash-recovery', target, target === 'sqs' ? { ...crash, messages: 300, ratePerSec: 200 } : crash);
      const v = values(result);
      expect(result.status).toBe('completed');
      expect(result.ledger.lost).toBe(0);
      expect(result.ledger.completed).toBe(result.ledger.expected);
      const held = v['heldMessages'] as number;
      expect(held).toBeGreaterThan(0);
      expect(v['redeliveredMessages']).toBe(held);
      expect(v['neverRedeliveredMessages']).toBe(0);
      // Every held message was delivered twice (once to the victim): at least that many duplicates.
      expect(result.ledger.duplicateDeliveries).toBeGreaterThanOrEqual(held);
      expect(result.counters.redeliveries).toBeGreaterThanOrEqual(held);
      expect(result.scenarioData!.histograms['redelivery']!.count).toBe(held);
      // Never before the visibility timeout (1 s; SQS rounds to whole seconds), measured from the first delivery.
      expect(result.scenarioData!.histograms['redelivery']!.min).toBeGreaterThanOrEqual(900_000);
      expect(result.verdicts.join('\n')).toMatch(held === 1 ? /the 1 message it held was delivered again/ : new RegExp(`all ${held} messages it held were delivered again`));
    },
  );

  it('redis-list simple: the killed process took its messages with it, exactly those are lost', async () => {
    const result = await run('crash-recovery', 'redis-list simple', crash);
    const v = values(result);
    const held = v['heldMessages'] as number;
    expect(result.status).toBe('completed');
    expect(held).toBeGreaterThan(0);
    expect(result.ledger.lost).toBe(held);
    expect(result.ledger.completed).toBe(result.ledger.expected - held);
    expect(result.ledger.duplicateDeliveries).toBe(0);
    expect(v['redeliveredMessages']).toBe(0);
    // Frozen between broker calls: no receive was in transit, so nothing was lost before anyone saw it.
    expect(result.verdicts[1]).toBe(
      `LOST ${held}: at-most-once mode, ${held} the killed consumer held (received, not completed) and 0 never delivered to anyone (popped by a receive in transit when it died)`,
    );
    // One LOST line, not two.
    expect(result.verdicts.filter((line) => line.startsWith('LOST'))).toHaveLength(1);
  });
});

describe('backlog', () => {
  it('redis-list: memory per waiting message from the queue keys, then the drain', async () => {
    const result = await run('backlog', 'redis-list', { messages: 5_000 });
    const v = values(result);
    expect(result.status).toBe('completed');
    expect(result.ledger.lost).toBe(0);
    expect(v['waitingMessages']).toBe(5_000);
    // A 200-byte body costs at least its bytes, and the reliable envelope and list node add tens more.
    expect(v['bytesPerMessage']).toBeGreaterThan(200);
    expect(v['bytesPerMessage']).toBeLessThan(400);
    expect(v['drainPerSec']).toBeGreaterThan(0);
    expect(result.verdicts[0]).toMatch(/^memory per waiting message: [\d,]+ B in the queue's keys/);
  });

  it("redis-list: the server's used_memory per message leaves the consumers' connections out", async () => {
    // A server of its own, so no other client's writes land in the change of used_memory; few messages,
    // so connection buffers opened after the first reading would dominate (1,756 B per message did). A
    // new server's first runs also pay one-time costs (its first keys' tables, its first scripts): one
    // run of the same shape goes first.
    const server = await startRedisServer({});
    try {
      await run('backlog', 'redis-list', { messages: 200, consumers: 4 }, server.url);
      const result = await run('backlog', 'redis-list', { messages: 200, consumers: 4 }, server.url);
      const perMessage = values(result)['usedMemoryBytesPerMessage'] as number;
      expect(result.ledger.lost).toBe(0);
      expect(perMessage).toBeGreaterThan(200);
      expect(perMessage).toBeLessThan(600);
    } finally {
      await server.stop();
    }
  });

  describe('at maxmemory (a throw-away redis-server of 4 MiB, noeviction)', () => {
    let server: Awaited<ReturnType<typeof startRedisServer>>;
    beforeAll(async () => {
      server = await startRedisServer({ args: ['--maxmemory', String(4 * 1024 ** 2), '--maxmemory-policy', 'noeviction'] });
    });
    afterAll(async () => {
      await server?.stop();
    });

    it.each(['redis-list', 'redis-stream'] as const)('%s: refusals are counted and the books balance', async (target) => {
      // About 9 MB of bodies into 4 MiB: most publishes must be refused.
      const result = await run('backlog', target, { messages: 40_000 }, server.url);
      const v = values(result);
      expect(result.status).toBe('completed');
      expect(v['maxMemoryBytes']).toBe(4 * 1024 ** 2);
      expect(v['maxMemoryPolicy']).toBe('noeviction');
      expect(result.ledger.publishFailed).toBeGreaterThan(10_000);
      expect(result.counters.publishErrors).toBeGreaterThan(0);
      expect(result.errors.join('\n')).toMatch(/OOM command not allowed/);
      // Nothing silently lost: every message completed or refused (a stream batch can be refused part-way).
      expect(result.ledger.lost).toBe(0);
      expect(result.ledger.completed + result.ledger.publishFailed).toBeGreaterThanOrEqual(result.ledger.expected);
      expect(result.ledger.completed).toBe(v['waitingMessages']);
      expect(result.verdicts.join('\n')).toMatch(/books balance: .* = 40,000 offered; nothing silently lost/);
      const accepted = v['acceptedMessages'] as number;
      const refusedYetStored = result.ledger.completed - accepted;
      expect(result.verdicts).toContain(
        `nothing lost: ${formatCount(accepted)} of ${formatCount(accepted)} published messages completed` +
          (refusedYetStored > 0 ? `, and ${formatCount(refusedYetStored)} more whose publish was reported failed but were stored` : ''),
      );
      // The runner tore its keys down on the capped server.
      expect(await keysWithPrefix('bb-', server.url)).toEqual([]);
    });
  });

  it('sqs: says memory is not observable and still measures the drain', async () => {
    const result = await run('backlog', 'sqs', { messages: 200, publishBatch: 10, receiveBatch: 10 });
    expect(result.status).toBe('completed');
    expect(result.ledger.lost).toBe(0);
    expect(result.verdicts[0]).toBe('memory per message: sqs reports no memory figures, so only the drain is measured');
    expect(values(result)['drainPerSec']).toBeGreaterThan(0);
  });
});

describe('scale-out', () => {
  it('redis-list: steps 1 and 2 consumers, each step completes the same load', async () => {
    const result = await run('scale-out', 'redis-list', { messages: 400, scaleSteps: [1, 2], task: { ...NO_TASK, durationMs: 5 } });
    const steps = result.scenarioData!.records['steps']!;
    expect(steps.map((step) => step['consumers'])).toEqual([1, 2]);
    for (const step of steps) {
      expect(step['completed']).toBe(400);
      expect(step['lost']).toBe(0);
      expect(step['completePerSec']).toBeGreaterThan(0);
    }
    expect(steps[0]!['gain']).toBeNull();
    expect(typeof steps[1]!['gain']).toBe('number');
    // The top level covers both steps.
    expect(result.ledger.expected).toBe(800);
    expect(result.ledger.completed).toBe(800);
    expect(result.latency.completion.count).toBe(800);
    expect(result.scenarioData!.tables[0]!.rows).toHaveLength(2);
  });

  it('redis-stream: by processes, one consumer each', async () => {
    const result = await run('scale-out', 'redis-stream', { messages: 300, scaleSteps: [1, 2], scaleBy: 'processes', task: { ...NO_TASK, durationMs: 5 } });
    const steps = result.scenarioData!.records['steps']!;
    expect(steps.map((step) => [step['consumers'], step['completed'], step['lost']])).toEqual([
      [1, 300, 0],
      [2, 300, 0],
    ]);
    expect(values(result)['scaleBy']).toBe('processes');
  });
});

describe('fan-out', () => {
  it.each([
    ['redis-stream', true],
    ['redis-list', false],
  ] as const)('%s: every message reaches both groups, once each', async (target, native) => {
    const result = await run('fan-out', target, { messages: 1_000, fanOutGroups: 2, consumers: 2 });
    const v = values(result);
    expect(result.status).toBe('completed');
    expect(v['native']).toBe(native);
    const groups = result.scenarioData!.records['groups']!;
    expect(groups.map((group) => [group['group'], group['completed'], group['lost'], group['duplicateDeliveries']])).toEqual([
      ['g0', 1_000, 0, 0],
      ['g1', 1_000, 0, 0],
    ]);
    // The run's own ledger: a message is completed once both groups finished it.
    expect(result.ledger).toMatchObject({ expected: 1_000, completed: 1_000, lost: 0, duplicateDeliveries: 0 });
    expect(result.scenarioData!.histograms['g1 end-to-end']!.count).toBe(1_000);
    expect(result.verdicts[0]).toMatch(/^every message reached all 2 groups/);
  });

  it('a run cut short while publishing: no group counts the messages never sent as lost', async () => {
    // 500 msg/s for 2,000 messages against a 1 s limit: most are never sent.
    const result = await run('fan-out', 'redis-list', { messages: 2_000, fanOutGroups: 2, consumers: 2, ratePerSec: 500, timeoutMs: 1_000 });
    expect(result.status).toBe('timeout');
    const { expected, notSent = 0, publishFailed } = result.ledger;
    expect(notSent).toBeGreaterThan(0);
    for (const group of result.scenarioData!.records['groups']!) {
      // Lost can only be what was published and not completed in that group.
      expect(group['lost'] as number).toBeLessThanOrEqual(expected - notSent - publishFailed - (group['completed'] as number));
    }
  });
});

describe('the command line', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-part2-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const env = { REDIS_URL: redisUrl(), QUEUE: 'REDIS' };

  it('crash-recovery --mode simple: consumer processes started from the CLI, the loss in the verdicts and the file', async () => {
    const out = path.join(dir, 'crash');
    const args = ['scenario', '400', '--scenario', 'crash-recovery', '--mode', 'simple', '--rate', '400', '--task-ms', '40', '--kill-mode', 'staged', '--quiet'];
    const run = await runCli([...args, '--results-dir', out], env, 120_000);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/crash and recovery/);
    expect(run.stdout).toMatch(/- LOST \d+: at-most-once mode, \d+ the killed consumer held \(received, not completed\) and 0 never delivered to anyone/);
    expect(run.stdout).toMatch(/frozen between broker calls first/);
    const files = (await readdir(out)).filter((name) => name.endsWith('.json'));
    expect(files).toHaveLength(1);
    const result = await readResult(path.join(out, files[0]!));
    expect(result.scenario).toBe('crash-recovery');
    expect(result.config.consumerProcesses).toBe(2);
    expect(result.ledger.lost).toBe(result.scenarioData!.values['heldMessages']);
  });

  // Each flag family once through the real command line (tsx start-up costs seconds each, so they run
  // side by side); every other rule is checked in-process below, through the same functions.
  const bad: [string, string[], Record<string, string>, RegExp][] = [
    ['--maxmemory on sqs', ['--scenario', 'backlog', '--maxmemory', '64mb'], { QUEUE: 'SQS' }, /^brokerbench: --maxmemory starts a throw-away redis-server, so it applies to redis-list and redis-stream, not sqs$/],
    ['crash-recovery with --processes 0', ['--scenario', 'crash-recovery', '--processes', '0'], {}, /^brokerbench: scenario crash-recovery runs its consumers as processes: give --processes 1 or more/],
    ['a step that is not a number', ['--scenario', 'scale-out', '--steps', '1,two'], {}, /^brokerbench: --steps must be numbers separated by commas/],
    ['zero fan-out groups', ['--scenario', 'fan-out', '--groups', '0'], {}, /^brokerbench: --groups must be a positive integer/],
  ];

  it.concurrent.each(bad)('refuses %s: one line, exit 2, no result file', async (_name, args, extra, message) => {
    const out = path.join(dir, `bad-${Math.random().toString(36).slice(2)}`);
    const run = await runCli(['scenario', '100', ...args, '--quiet', '--results-dir', out], { ...env, ...extra });
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr.trim()).toMatch(message);
    expect(run.stdout).toBe('');
    expect((await readdir(out).catch(() => [])).filter((name) => name.endsWith('.json'))).toEqual([]);
  });
});

describe('flag rules', () => {
  const refused: [string, string, Partial<RunConfig>, RegExp][] = [
    ['a --maxmemory under 1 MiB', 'backlog', { maxMemoryBytes: 100 * 1024 }, /^--maxmemory 102400 is under 1 MiB/],
    ['more processes than consumers', 'crash-recovery', { consumerProcesses: 8, consumers: 4 }, /^--processes 8 is more than --consumers 4/],
    ['a --kill-at of 1.5', 'crash-recovery', { killAtFraction: 1.5 }, /^--kill-at must be a fraction between 0 and 1, got 1.5$/],
    ['a --kill-mode of later', 'crash-recovery', { killMode: 'later' as RunConfig['killMode'] }, /^--kill-mode must be random or staged, got later$/],
    ['a step of 0', 'scale-out', { scaleSteps: [0, 2] }, /^--steps must be a positive integer, got 0$/],
    ['no steps', 'scale-out', { scaleSteps: [] }, /^--steps needs at least one count/],
    ['fewer consumers than queues in a step', 'scale-out', { scaleSteps: [1, 2], queues: 2, consumers: 2 }, /^--steps 1 is fewer than --queues 2/],
    ['too many fan-out groups', 'fan-out', { fanOutGroups: 33 }, /^--groups 33 is over the limit of 32/],
  ];

  it.each(refused)('refuses %s with a one-line UsageError', (_name, name, change, message) => {
    const scenario = findScenario(name)!;
    const attempt = (): RunConfig => configFor(scenario, 'redis-list', change);
    expect(attempt).toThrow(UsageError);
    expect(attempt).toThrow(message);
  });
});
