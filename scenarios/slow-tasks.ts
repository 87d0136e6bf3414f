// slow-tasks: several task types with different durations share one worker pool, the seed's jobs.py:
// send_mail and compute sleep a random 0 to 10 units (the seed's seconds, scaled to --task-unit-ms),
// simple_task returns at once; they are enqueued in turn, send_mail, compute, simple_task, … Answers
// the seed's question without parsing logs: which task type holds the workers? A per-type table of
// count, total and percentile execution time, sorted by total, and how long each type waited for a
// worker (the instant simple_task waits behind the slow ones).
//
// Runs on the worker pool of executor.ts (--concurrency, default 4 here, the seed ran 2 RQ workers).
//
// LIMITATION: the types are the seed's three, fixed here; execution time is measured around the task
// in the harness, so it includes the harness's own timer delay (see the event-loop p99). The share of
// worker time is each type's total over all types' total, not over the wall time.

import type { Histogram } from 'hdr-histogram-js';
import { UsageError } from '../src/errors.ts';
import { createLatencyHistogram, recordLatency, summarize } from '../src/metrics/histogram.ts';
import { sleep } from '../src/pipeline/waits.ts';
import { formatCount, formatLatency } from '../src/format.ts';
import { runPipeline } from '../src/runner/pipeline.ts';
import { drawUnit, percent, seconds } from './kit.ts';
import { ledgerVerdicts } from './verdicts.ts';
import type { Scenario } from '../src/scenario.ts';
import type { ScenarioOutcome } from '../src/outcome.ts';

export interface TaskType {
  readonly name: string;
  /** Most units a task of this type takes; each draws a whole number from 0 to this (randint). */
  readonly maxUnits: number;
}

/** The seed's jobs, in the order it enqueues them. */
export const TASK_TYPES: readonly TaskType[] = [
  { name: 'send_mail', maxUnits: 10 },
  { name: 'compute', maxUnits: 10 },
  { name: 'simple_task', maxUnits: 0 },
];

interface TypeStats {
  readonly type: TaskType;
  count: number;
  totalUs: number;
  readonly execution: Histogram;
  /** Send to first receipt: how long messages of this type waited for a worker. */
  readonly waited: Histogram;
}

export const slowTasks: Scenario = {
  name: 'slow-tasks',
  measures: 'execution time per task type (count, total, percentiles) sorted by total, naming the type that holds the workers',
  limitations: "the seed's three task types; times include the harness's timer delay",
  requires: [],
  defaults: { messages: 300, taskConcurrency: 4, taskUnitMs: 10 },
  configure(config) {
    if (config.task.durationMs > 0) {
      throw new UsageError('scenario slow-tasks sets its own task durations; use --task-unit-ms instead of --task-ms');
    }
    return config;
  },
  async run(context): Promise<ScenarioOutcome> {
    const { config } = context;
    const typeOf = (index: number): TaskType => TASK_TYPES[index % TASK_TYPES.length]!;
    /** randint(0, maxUnits) × unit, the same for a message on every delivery. */
    const durationMs = (index: number): number => {
      const type = typeOf(index);
      return Math.floor(drawUnit(config.seed, index) * (type.maxUnits + 1)) * config.taskUnitMs;
    };
    const stats = new Map<string, TypeStats>(
      TASK_TYPES.map((type) => [type.name, { type, count: 0, totalUs: 0, execution: createLatencyHistogram(), waited: createLatencyHistogram() }]),
    );
    const outcome = await runPipeline({
      ...context,
      hooks: {
        async runTask(index) {
          const ms = durationMs(index);
          if (ms > 0) await sleep(ms);
          return true;
        },
        onDelivered(index, receiveCount, sentUs, receivedUs) {
          if (receiveCount === 1) recordLatency(stats.get(typeOf(index).name)!.waited, receivedUs - sentUs);
        },
        onExecuted(index, _receiveCount, executionUs) {
          const s = stats.get(typeOf(index).name)!;
          s.count++;
          s.totalUs += executionUs;
          recordLatency(s.execution, executionUs);
        },
      },
    });

    const sorted = [...stats.values()].sort((a, b) => b.totalUs - a.totalUs);
    const allUs = sorted.reduce((sum, s) => sum + s.totalUs, 0);
    const top = sorted[0]!;
    const verdicts: string[] = [];
    const topExec = summarize(top.execution);
    verdicts.push(
      `${top.type.name} holds the workers: ${percent(top.totalUs, allUs)} of busy worker time ` +
        `(${seconds(top.totalUs)} over ${formatCount(top.count)} tasks, p99 ${formatLatency(topExec.p99)})`,
    );
    verdicts.push(`then ${sorted.slice(1).map((s) => `${s.type.name} ${percent(s.totalUs, allUs)}`).join(', ')}`);
    const fastest = sorted.at(-1)!;
    const fastestWait = summarize(fastest.waited);
    verdicts.push(
      `${fastest.type.name} (${formatLatency(summarize(fastest.execution).p50)} p50 to run) waited p50 ${formatLatency(fastestWait.p50)}, ` +
        `p99 ${formatLatency(fastestWait.p99)} for a worker behind the slow types (concurrency ${config.taskConcurrency ? formatCount(config.taskConcurrency) : 'per batch'})`,
    );
    verdicts.push(...ledgerVerdicts(outcome));

    const histograms: Record<string, Histogram> = {};
    const records = sorted.map((s) => {
      const e = summarize(s.execution);
      const w = summarize(s.waited);
      histograms[`run ${s.type.name}`] = s.execution;
      return {
        type: s.type.name,
        maxUnits: s.type.maxUnits,
        count: s.count,
        totalMs: s.totalUs / 1000,
        sharePct: allUs > 0 ? (100 * s.totalUs) / allUs : 0,
        meanUs: e.mean,
        p50Us: e.p50,
        p90Us: e.p90,
        p99Us: e.p99,
        maxUs: e.max,
        waitedP50Us: w.p50,
        waitedP99Us: w.p99,
      };
    });
    return {
      ...outcome,
      verdicts,
      scenarioData: {
        tables: [
          {
            title: `per task type, sorted by total execution time (1 unit = ${config.taskUnitMs} ms)`,
            head: ['type', 'count', 'total', 'share', 'mean', 'p50', 'p90', 'p99', 'max', 'waited p99'],
            rows: records.map((r) => [
              r.type,
              formatCount(r.count),
              seconds(r.totalMs * 1000),
              `${r.sharePct.toFixed(1)}%`,
              formatLatency(r.meanUs),
              formatLatency(r.p50Us),
              formatLatency(r.p90Us),
              formatLatency(r.p99Us),
              formatLatency(r.maxUs),
              formatLatency(r.waitedP99Us),
            ]),
          },
        ],
        histograms,
        records: { types: records },
        values: { holdingType: top.type.name, taskUnitMs: config.taskUnitMs, concurrency: config.taskConcurrency },
      },
    };
  },
};
