// The answer a comparison leads with (src/report/answer.ts): the rule for "best" on figures made up
// for each case (same guarantee, overlapping spreads, the 5% margin, ties, counts of 0), and the
// entries built from real result files (test/fixtures/results): guarantees from the file or the
// registry, verdicts by run, and when the harness counts as saturated.

import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { answerFor, bestMarks, guaranteesOf, saturationOf, type Ranked } from '../../src/report/answer.ts';
import { groupRuns, type Group } from '../../src/report/group.ts';
import { loadRuns, type LoadedRun } from '../../src/report/load.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/results/same', import.meta.url));

const alo = (value: number | undefined, spread?: [number, number]): Ranked => ({
  value,
  guarantee: 'at-least-once',
  ...(spread ? { spread: { min: spread[0], max: spread[1] } } : {}),
});
const amo = (value: number | undefined, spread?: [number, number]): Ranked => ({ ...alo(value, spread), guarantee: 'at-most-once' });

describe('best', () => {
  it('is ranked only among entries of one delivery guarantee, each guarantee with its own best', () => {
    // The at-most-once 500 would win the whole row; it is ranked against the other at-most-once entry only.
    expect(bestMarks([alo(100), amo(500), alo(200), amo(300)], 'higher')).toEqual([false, true, true, false]);
    // Alone in its guarantee: nothing to beat, no mark; the others are still ranked.
    expect(bestMarks([alo(100), amo(500), alo(200)], 'higher')).toEqual([false, false, true]);
    expect(bestMarks([alo(100), amo(5)], 'lower')).toEqual([false, false]);
  });

  it('is not marked when the best runs\' min … max overlaps another\'s', () => {
    expect(bestMarks([alo(110, [95, 120]), alo(100, [90, 105])], 'higher')).toEqual([false, false]);
    // Touching counts as overlapping.
    expect(bestMarks([alo(110, [105, 120]), alo(100, [90, 105])], 'higher')).toEqual([false, false]);
    expect(bestMarks([alo(110, [106, 120]), alo(100, [90, 105])], 'higher')).toEqual([true, false]);
    // Every other entry counts, not only the one with the next median: here the third's max reaches in.
    expect(bestMarks([alo(200, [190, 210]), alo(150, [140, 160]), alo(120, [60, 195])], 'higher')).toEqual([false, false, false]);
    // Lower is better: the best's max must stay under every other's min.
    expect(bestMarks([alo(10, [9, 12]), alo(20, [12, 30])], 'lower')).toEqual([false, false]);
    expect(bestMarks([alo(10, [9, 11]), alo(20, [12, 30])], 'lower')).toEqual([true, false]);
  });

  it('with spreads apart needs no margin: runs that never overlap are a difference however small', () => {
    expect(bestMarks([alo(101, [100.5, 101.5]), alo(99, [98.5, 99.5])], 'higher')).toEqual([true, false]);
  });

  it('without a spread (one run) needs a lead of 5% over every other, relative to the other', () => {
    expect(bestMarks([alo(104.9), alo(100)], 'higher')).toEqual([false, false]);
    expect(bestMarks([alo(105), alo(100)], 'higher')).toEqual([true, false]);
    expect(bestMarks([alo(95.1), alo(100)], 'lower')).toEqual([false, false]);
    expect(bestMarks([alo(95), alo(100)], 'lower')).toEqual([true, false]);
    // One side with a spread, the other a single run: the spread must clear the value and the medians be 5% apart.
    expect(bestMarks([alo(104, [103, 106]), alo(100)], 'higher')).toEqual([false, false]);
    expect(bestMarks([alo(110, [99, 120]), alo(100)], 'higher')).toEqual([false, false]);
    expect(bestMarks([alo(110, [106, 120]), alo(100)], 'higher')).toEqual([true, false]);
  });

  it('is never a tie, and ignores entries without the figure', () => {
    expect(bestMarks([alo(100), alo(100), alo(50)], 'higher')).toEqual([false, false, false]);
    expect(bestMarks([alo(7), alo(7)], 'lower')).toEqual([false, false]);
    expect(bestMarks([alo(100), alo(undefined), alo(Number.NaN), alo(200)], 'higher')).toEqual([false, false, false, true]);
    expect(bestMarks([alo(100), alo(undefined)], 'higher')).toEqual([false, false]);
  });

  it('on counts: exact, only when strictly lower than every other, so never when all are 0', () => {
    expect(bestMarks([alo(0), alo(0), alo(0)], 'lower', true)).toEqual([false, false, false]);
    expect(bestMarks([alo(0), alo(0), alo(3)], 'lower', true)).toEqual([false, false, false]);
    // One lost message against none is a difference: counts take no margin.
    expect(bestMarks([alo(1), alo(0), alo(20)], 'lower', true)).toEqual([false, true, false]);
    expect(bestMarks([alo(999), alo(1000)], 'lower', true)).toEqual([true, false]);
    // Still within one guarantee: the at-most-once 0 is not ranked against at-least-once losses.
    expect(bestMarks([alo(5), amo(0), alo(5)], 'lower', true)).toEqual([false, false, false]);
  });
});

describe('the answer from result files', () => {
  let runs: readonly LoadedRun[];
  let group: Group;
  const named = (label: string) => answerFor(group).entries.find((e) => e.label === label)!;
  /** A copy of `run` with its result changed by `change`, under another run id. */
  const variant = (run: LoadedRun, change: (result: Record<string, unknown>) => void): LoadedRun => {
    const result = structuredClone(run.result) as unknown as Record<string, unknown>;
    change(result);
    return { ...run, result: { ...(result as unknown as LoadedRun['result']), runId: `${run.result.runId}-variant` } };
  };
  const harness = (run: LoadedRun, fields: Record<string, unknown>, cpuCount?: number): LoadedRun =>
    variant(run, (r) => {
      r['harness'] = { ...(r['harness'] as object), ...fields };
      if (cpuCount !== undefined) r['environment'] = { ...(r['environment'] as object), cpuCount };
    });
  const calm = { cpuCores: 0.5, cpuUserMs: 400, cpuSystemMs: 100, eventLoopDelayP99Ms: 12 };

  beforeAll(async () => {
    ({ runs } = await loadRuns([FIXTURES]));
    group = groupRuns(runs)[0]!;
  });

  it('has one entry per column with its guarantees, figures and best fields', () => {
    const answer = answerFor(group);
    expect(answer.groupId).toBe(group.id);
    expect(answer.entries.map((e) => e.label)).toEqual(group.columns.map((c) => c.label));
    const simple = named('redis-list simple');
    expect([simple.delivery, simple.ordering, simple.deadLetters, simple.delays]).toEqual(['at-most-once', 'fifo', false, false]);
    const fifo = named('sqs fifo');
    expect([fifo.delivery, fifo.ordering, fifo.deadLetters, fifo.delays]).toEqual(['at-least-once', 'per-group', true, false]);
    const reliable = named('redis-list reliable');
    const column = group.columns.find((c) => c.label === 'redis-list reliable')!;
    expect(reliable.ratePerSec).toEqual(column.completePerSec);
    expect(reliable.p99Us).toBe(column.latencyUs.endToEnd.p99);
    expect(reliable.requestsPerMillion).toBeUndefined();
    expect(reliable.usdPerMillion).toBeUndefined();
    expect(reliable.best).toEqual(['rate', 'p99']);
    const standard = named('sqs standard');
    const sqs = group.columns.find((c) => c.label === 'sqs standard')!;
    expect(standard.requestsPerMillion).toBeCloseTo(sqs.requests!.billedPerMessage * 1e6, 6);
    expect(standard.usdPerMillion).toBe(sqs.requests!.usdPerMillionMessages);
    expect(standard.best).toEqual(['requests', 'cost']);
  });

  it('keeps every run\'s verdicts, each with its file\'s name', () => {
    const reliable = named('redis-list reliable');
    const column = group.columns.find((c) => c.label === 'redis-list reliable')!;
    expect(reliable.verdicts).toHaveLength(column.runs.reduce((n, r) => n + r.result.verdicts.length, 0));
    expect(new Set(reliable.verdicts.map((v) => v.run)).size).toBe(2);
    for (const v of reliable.verdicts) expect(v.run).toMatch(/^2026-11-26T08-21-\d\dZ-redis-list-reliable-throughput-1000\.json$/);
    expect(reliable.verdicts[0]!.text).toBe('nothing lost: 1000 of 1000 published messages completed');
  });

  it('takes a guarantee the file lacks from the registry, and one the registry does not know as at-least-once, unordered, without extras', () => {
    const simple = runs.find((r) => r.result.broker.mode === 'simple')!;
    const older = variant(simple, (r) => {
      const broker = r['broker'] as { capabilities: Record<string, unknown> };
      broker.capabilities = { delivery: 'at-most-once' };
    });
    expect(guaranteesOf({ adapter: 'redis-list', mode: 'simple', runs: [older] })).toEqual({ delivery: 'at-most-once', ordering: 'fifo', deadLetters: false, delays: false });
    // What the file says wins over the registry.
    const recorded = variant(simple, (r) => {
      const broker = r['broker'] as { capabilities: Record<string, unknown> };
      broker.capabilities = { ...broker.capabilities, ordering: 'none' };
    });
    expect(guaranteesOf({ adapter: 'redis-list', mode: 'simple', runs: [recorded] }).ordering).toBe('none');
    // A value that is none of the known ones is not taken.
    const damaged = variant(simple, (r) => {
      const broker = r['broker'] as { capabilities: Record<string, unknown> };
      broker.capabilities = { delivery: 'exactly-once', ordering: 7 };
    });
    expect(guaranteesOf({ adapter: 'redis-list', mode: 'simple', runs: [damaged] })).toEqual({ delivery: 'at-most-once', ordering: 'fifo', deadLetters: false, delays: false });
    expect(guaranteesOf({ adapter: 'no-such-broker', mode: 'x', runs: [damaged] })).toEqual({ delivery: 'at-least-once', ordering: 'none', deadLetters: false, delays: false });
  });

  it('says the harness was saturated at 90% of a core, not under it', () => {
    const run = runs[0]!;
    expect(saturationOf([harness(run, calm)])).toBeUndefined();
    expect(saturationOf([harness(run, { ...calm, cpuCores: 0.89 })])).toBeUndefined();
    expect(saturationOf([harness(run, { ...calm, cpuCores: 0.9 })])).toBe('harness CPU 0.90 cores of 1 used');
    expect(saturationOf([harness(run, { ...calm, cpuCores: 0.97 })])).toBe('harness CPU 0.97 cores of 1 used');
  });

  it('counts consumer processes against the machine\'s cores, not against the main process\'s one', () => {
    const run = runs[0]!;
    // 1.85 cores in all, three quarters of the CPU time in consumer processes: the main process used 0.46.
    const children = { processes: 3, cpuUserMs: 1500, cpuSystemMs: 0, peakRssBytes: 1 };
    const spread = { ...calm, cpuCores: 1.85, cpuUserMs: 1800, cpuSystemMs: 200, consumerProcesses: children };
    expect(saturationOf([harness(run, spread, 4)])).toBeUndefined();
    expect(saturationOf([harness(run, spread, 2)])).toBe("harness CPU 1.85 cores of the machine's 2 used");
    expect(saturationOf([harness(run, { ...spread, cpuCores: 1.79 }, 2)])).toBeUndefined();
    // The main process's own share counts alone: with 60% of the CPU time its part of 1.6 cores is 0.96.
    const busyMain = { ...spread, cpuCores: 1.6, consumerProcesses: { ...children, cpuUserMs: 800 } };
    expect(saturationOf([harness(run, busyMain, 4)])).toBe('harness CPU 0.96 cores of 1 used');
  });

  it('judges a run merged from workers per worker: their CPU is summed over processes that may be on as many machines', () => {
    const run = runs[0]!;
    const merged = (cores: number): LoadedRun =>
      variant(harness(run, { ...calm, cpuCores: cores }, 2), (r) => {
        r['workers'] = [{ shard: 0 }, { shard: 1 }, { shard: 2 }, { shard: 3 }];
      });
    // Four workers using 3.4 cores in all: 0.85 each, and no one machine's 2 cores to hold them against.
    expect(saturationOf([merged(3.4)])).toBeUndefined();
    expect(saturationOf([merged(3.8)])).toBe('harness CPU 0.95 cores of 1 used');
  });

  it('says the harness was saturated when its event-loop p99 passed 50 ms, naming the worst run', () => {
    const run = runs[0]!;
    expect(saturationOf([harness(run, { ...calm, eventLoopDelayP99Ms: 50 })])).toBeUndefined();
    expect(saturationOf([harness(run, { ...calm, eventLoopDelayP99Ms: 50.6 })])).toBe('harness event-loop p99 51 ms');
    const worst = saturationOf([harness(run, { ...calm, eventLoopDelayP99Ms: 60 }), harness(run, { ...calm, eventLoopDelayP99Ms: 1212, cpuCores: 0.95 })]);
    expect(worst).toBe('harness CPU 0.95 cores of 1 used; harness event-loop p99 1,212 ms');
  });

  it('puts the saturation on the entry, and none where the harness had room', () => {
    const calmRuns = runs.map((run) => harness(run, calm));
    const calmGroup = groupRuns(calmRuns)[0]!;
    expect(answerFor(calmGroup).entries.every((e) => e.saturation === undefined)).toBe(true);
    expect(named('sqs standard').saturation).toBe('harness event-loop p99 72 ms');
  });
});
