// executor: the seed's worker pool. Every message starts a task that takes a set time (the seed's
// task.py sleeps 1 s, standing in for a request.post), with --concurrency tasks running at once across
// all consumers. Answers: how long do N messages take, how does the backlog drain second by second,
// and how close does throughput come to its ceiling, concurrency / task time.
//
// --concurrency is ONE pool shared by every consumer (not per consumer): a consumer receives only as
// many messages as there are free slots, so a message waits in the broker, never in a consumer's
// hands. --concurrency 0 falls back to whole batches: each consumer runs up to --receive-batch tasks
// at once and receives again when all of them are done.
//
// LIMITATION: tasks run inside the harness's one Node process: `sleep` tasks (the default, I/O-bound
// work) cost only timers, so hundreds at once are fine; `--task-work cpu` tasks block the event loop
// and therefore run one at a time whatever the concurrency. It cannot show a real worker fleet's
// start-up, memory or network costs, only the queue's share of the overhead around fixed-time tasks.

import { UsageError } from '../src/errors.ts';
import { summarize } from '../src/metrics/histogram.ts';
import { formatCount, formatLatency, formatRate } from '../src/format.ts';
import { runPipeline } from '../src/runner/pipeline.ts';
import { backlogSeries, backlogTable, percent, seconds } from './kit.ts';
import { ledgerVerdicts } from './verdicts.ts';
import type { Scenario } from '../src/scenario.ts';
import type { ScenarioOutcome } from '../src/outcome.ts';

export const executor: Scenario = {
  name: 'executor',
  measures: 'completion time for N fixed-time tasks run by a pool of --concurrency workers, the backlog per second, and throughput against concurrency / task time',
  limitations: 'tasks run in the harness process: sleep tasks scale to hundreds at once, cpu tasks run one at a time',
  requires: [],
  defaults: { messages: 1000, taskConcurrency: 200, task: { durationMs: 1000, distribution: 'fixed', work: 'sleep' } },
  configure(config) {
    if (!(config.task.durationMs > 0)) {
      throw new UsageError('scenario executor needs a task: give --task-ms above 0 (default 1000)');
    }
    return config;
  },
  async run(context): Promise<ScenarioOutcome> {
    const { config } = context;
    const outcome = await runPipeline(context);
    const pooled = config.taskConcurrency > 0;
    // Without a pool, each consumer runs its whole batch at once: that is its concurrency.
    const concurrency = pooled ? config.taskConcurrency : config.consumers * config.receiveBatch;
    const taskSec = config.task.durationMs / 1000;
    const ceilingPerSec = concurrency / taskSec;
    const elapsedUs = outcome.endUs - outcome.startUs;
    const throughputPerSec = elapsedUs > 0 ? (outcome.ledger.completed * 1e6) / elapsedUs : 0;
    const efficiency = ceilingPerSec > 0 ? throughputPerSec / ceilingPerSec : 0;
    // Ideal: N tasks spread over `concurrency` workers, each task taking its mean time.
    const idealUs = (outcome.ledger.expected / concurrency) * taskSec * 1e6;
    const backlog = backlogSeries(outcome.timeline);
    const peak = backlog.reduce((best, value, second) => (value > best.value ? { value, second } : best), { value: 0, second: 0 });
    const waited = summarize(outcome.histograms.endToEnd);

    const verdicts: string[] = [];
    const how = pooled ? `concurrency ${formatCount(concurrency)}` : `no pool: ${formatCount(config.consumers)} consumers × batches of ${formatCount(config.receiveBatch)}`;
    verdicts.push(
      `${formatCount(outcome.ledger.completed)} of ${formatCount(outcome.ledger.expected)} tasks of ${formatCount(config.task.durationMs)} ms ` +
        `(${config.task.distribution} ${config.task.work}) with ${how}: done in ${seconds(elapsedUs)} (ideal ${seconds(idealUs)})`,
    );
    verdicts.push(
      `throughput ${formatRate(throughputPerSec)} = ${percent(throughputPerSec, ceilingPerSec)} of concurrency/task time (${formatRate(ceilingPerSec)})`,
    );
    verdicts.push(
      (peak.value > 0 ? `backlog peaked at ${formatCount(peak.value)} messages in second ${formatCount(peak.second + 1)}; ` : 'no backlog left at the end of any second; ') +
        `messages waited for a worker p50 ${formatLatency(waited.p50)}, p99 ${formatLatency(waited.p99)}, max ${formatLatency(waited.max)}`,
    );
    if (config.task.work === 'cpu' && concurrency > 1) {
      verdicts.push('cpu tasks block the harness event loop: they ran one at a time, whatever --concurrency says');
    }
    verdicts.push(...ledgerVerdicts(outcome));

    return {
      ...outcome,
      verdicts,
      scenarioData: {
        tables: [backlogTable(outcome.timeline)],
        histograms: {},
        records: {
          backlog: outcome.timeline.map((point, k) => ({ second: point.second, completed: point.completed, backlog: backlog[k]!, depth: point.depth ?? null })),
        },
        values: {
          concurrency,
          pooled,
          taskMs: config.task.durationMs,
          elapsedSec: elapsedUs / 1e6,
          idealSec: idealUs / 1e6,
          throughputPerSec,
          ceilingPerSec,
          efficiency,
          peakBacklog: peak.value,
        },
      },
    };
  },
};
