// scale-out: the same load run again with more consumers each time (--steps, default 1,2,4,8,16),
// in this process or, with --scale-by processes, as that many consumer processes of one consumer
// each. Answers the seed's "handling more should be as simple as adding another worker": a curve of
// completions per second against consumers, and the step where it stops growing (less than 10% over
// the step before). Each step gets fresh queues of its own (`<queue>-n<k>`), made and removed here.
// With --scale-by queues the steps count queues instead (`<queue>-n<k>-<i>`), each with the same
// number of consumers (--consumers over the first step's queues), which answers the other seed's
// "multiply the queues": on one Redis they share its one core, on a Redis Cluster each can have a
// master of its own. Where the broker says where a queue lived (QueueStats: a cluster's master and
// slot), each step's record keeps it.
//
// The result's top-level figures cover all steps together (ledgers summed, histograms merged, the
// timeline laid end to end); the per-step table and `records.steps` are the measurement.
//
// LIMITATION: everything shares this host's cores: past a few consumers the curve flattens where the
// machine (the broker, the harness, the publisher) runs out, not necessarily where the broker does.
// The publisher runs at full speed alongside, as in throughput. Processes start before each step's
// clock but cost memory and CPU while they idle. --timeout bounds all steps together; steps that do
// not fit are skipped and said so. A step that cannot run (its queues or consumers fail to start) ends
// the run as failed, the steps before it kept; if the first cannot, the run has nothing and throws.

import type { Histogram } from 'hdr-histogram-js';
import { describeError, UsageError } from '../src/errors.ts';
import { mergeHistograms, summarize } from '../src/metrics/histogram.ts';
import type { LedgerCounts } from '../src/metrics/ledger.ts';
import { layEndToEnd, type TimelinePoint } from '../src/metrics/timeline.ts';
import { formatCount, formatLatency, formatRate } from '../src/format.ts';
import { runPipeline } from '../src/runner/pipeline.ts';
import { ProcessConsumers } from '../src/runner/process-consumers.ts';
import { hasQueueStats, type Broker } from '../src/broker.ts';
import { withinMs } from '../src/pipeline/waits.ts';
import { inStep } from './kit.ts';
import { ledgerVerdicts } from './verdicts.ts';
import type { PipelineHistograms, PipelineOutcome, RunCounters, ScenarioOutcome, ScenarioValue } from '../src/outcome.ts';
import type { Scenario, ScenarioContext } from '../src/scenario.ts';

/** A step gaining less than this over the one before means throughput stopped growing. */
const GROWTH_THRESHOLD = 0.1;

interface StepResult {
  /** What the step counts: consumers, consumer processes, or queues (--scale-by). */
  readonly count: number;
  readonly consumers: number;
  readonly queues: number;
  readonly outcome: PipelineOutcome;
  /** What the broker told of the step's queues before they were removed (QueueStats), by name. */
  readonly queueStats: Readonly<Record<string, number>>;
  readonly completePerSec: number;
  /** Over the step before, as a fraction (0.25 = +25%); null for the first. */
  readonly gain: number | null;
}

export const scaleOut: Scenario = {
  name: 'scale-out',
  measures: 'completions per second for the same load with 1, 2, 4 … consumers (or consumer processes, or queues), and the step where it stops growing',
  limitations: 'all steps share this host: the curve flattens where the machine runs out, not necessarily the broker',
  requires: [],
  defaults: { messages: 10_000, receiveBatch: 10, task: { durationMs: 10, distribution: 'fixed', work: 'sleep' } },
  configure(config) {
    if (config.scaleBy === 'queues') {
      if (config.queues !== 1) throw new UsageError('scale-out --scale-by queues takes its queue counts from --steps: leave --queues out');
      const first = config.scaleSteps[0]!;
      if (config.consumers < first) {
        throw new UsageError(`--consumers ${config.consumers} is fewer than the first step's ${first} queues: every queue needs a consumer`);
      }
      const most = consumersPerQueue(config) * Math.max(...config.scaleSteps);
      if (most > MAX_STEP_CONSUMERS) {
        throw new UsageError(
          `--scale-by queues would open ${formatCount(most)} consumers in its largest step (${consumersPerQueue(config)} per queue), over the limit of ${formatCount(MAX_STEP_CONSUMERS)}: lower --consumers or --steps`,
        );
      }
    }
    const tooFew = config.scaleBy === 'queues' ? undefined : config.scaleSteps.find((step) => step < config.queues);
    if (tooFew !== undefined) {
      throw new UsageError(`--steps ${tooFew} is fewer than --queues ${config.queues}: every queue needs a consumer`);
    }
    if (config.scaleBy === 'processes' && config.taskConcurrency > 0) {
      throw new UsageError('scale-out --scale-by processes runs whole batches in each process: leave --concurrency out');
    }
    return config;
  },
  async run(context): Promise<ScenarioOutcome> {
    const { config, clock } = context;
    const deadlineUs = clock.nowUs() + config.timeoutMs * 1000;
    const steps: StepResult[] = [];
    const skipped: number[] = [];
    // Why a step failed, ending the run; what the steps before it measured is kept.
    let failure: string | undefined;
    const unit = unitOf(config.scaleBy);
    for (const [k, count] of config.scaleSteps.entries()) {
      const remainingMs = Math.floor((deadlineUs - clock.nowUs()) / 1000);
      const stopped = steps.some((step) => step.outcome.status === 'interrupted' || step.outcome.status === 'failed');
      if (remainingMs <= 0 || context.signal?.aborted || stopped || failure !== undefined) {
        skipped.push(count);
        continue;
      }
      const shape = stepShape(context, k, count);
      let ran: { outcome: PipelineOutcome; queueStats: Record<string, number> };
      try {
        ran = await runStep(context, k, shape, remainingMs);
      } catch (error) {
        // Preparing the step's queues or starting its consumers failed (e.g. the broker stalled).
        failure = `step ${k + 1} (${formatCount(count)} ${unit}) could not run: ${describeError(error)}`;
        if (steps.length === 0) throw error;
        skipped.push(count);
        continue;
      }
      const { outcome } = ran;
      const seconds = (outcome.endUs - outcome.startUs) / 1e6;
      const completePerSec = seconds > 0 ? outcome.ledger.completed / seconds : 0;
      const before = steps.at(-1);
      const gain = before && before.completePerSec > 0 ? completePerSec / before.completePerSec - 1 : null;
      steps.push({ count, consumers: shape.consumers, queues: shape.queues.length, outcome, queueStats: ran.queueStats, completePerSec, gain });
    }
    if (steps.length === 0) throw new Error('scale-out ran no step');

    const verdicts: string[] = [];
    const best = steps.reduce((top, step) => (step.completePerSec > top.completePerSec ? step : top));
    const knee = steps.findIndex((step) => step.gain !== null && step.gain < GROWTH_THRESHOLD);
    if (steps.length === 1) {
      verdicts.push(`one step only: ${formatRate(best.completePerSec)} with ${formatCount(best.count)} ${unit}; give --steps more counts for a curve`);
    } else if (knee < 0) {
      const last = steps.at(-1)!;
      verdicts.push(
        `still growing at ${formatCount(last.count)} ${unit}: ${formatRate(last.completePerSec)}, ${signedPercent(last.gain ?? 0)} over the step before; try more steps`,
      );
    } else {
      const at = steps[knee - 1]!;
      const next = steps[knee]!;
      verdicts.push(
        `throughput stops growing at ${formatCount(at.count)} ${unit}: ${formatRate(at.completePerSec)}, and ${formatCount(next.count)} gave ${formatRate(next.completePerSec)} ` +
          `(${signedPercent(next.gain!)}, under +${GROWTH_THRESHOLD * 100}%)`,
      );
    }
    verdicts.push(`best: ${formatRate(best.completePerSec)} with ${formatCount(best.count)} ${unit}, ${(best.completePerSec / steps[0]!.completePerSec).toFixed(1)}x the first step`);
    if (skipped.length > 0) {
      verdicts.push(`skipped ${skipped.map(formatCount).join(', ')} ${unit}: ${failure ?? 'a step failed, --timeout ran out or the run was interrupted'}`);
    }
    for (const step of steps) {
      if (step.outcome.status !== 'completed') verdicts.push(`${formatCount(step.count)} ${unit}: ${step.outcome.status}, ${step.outcome.reason ?? ''}`.trim());
    }
    const measured = mergeOutcomes(steps.map((step) => step.outcome));
    // A step that could not run fails the whole run, which still carries every step measured before it.
    const merged: PipelineOutcome =
      failure !== undefined && measured.status === 'completed' ? { ...measured, status: 'failed', reason: failure } : measured;
    verdicts.push(...ledgerVerdicts(merged).map((line) => `all steps: ${line}`));

    const byQueues = config.scaleBy === 'queues';
    const rows = steps.map((step) => {
      const e2e = summarize(step.outcome.histograms.endToEnd);
      return [
        String(step.count),
        ...(byQueues ? [String(step.consumers)] : []),
        formatRate(step.completePerSec),
        step.gain === null ? '-' : signedPercent(step.gain),
        `${(step.completePerSec / steps[0]!.completePerSec / (step.count / steps[0]!.count) * 100).toFixed(0)}%`,
        formatLatency(e2e.p50),
        formatLatency(e2e.p99),
        formatCount(step.outcome.ledger.lost),
        step.outcome.status,
      ];
    });
    const records = steps.map((step): Record<string, ScenarioValue> => {
      const e2e = summarize(step.outcome.histograms.endToEnd);
      return {
        consumers: step.consumers,
        queues: step.queues,
        completePerSec: step.completePerSec,
        gain: step.gain,
        totalSec: (step.outcome.endUs - step.outcome.startUs) / 1e6,
        endToEndP50Us: e2e.p50,
        endToEndP99Us: e2e.p99,
        completed: step.outcome.ledger.completed,
        lost: step.outcome.ledger.lost,
        status: step.outcome.status,
        ...step.queueStats,
      };
    });
    const title = byQueues
      ? `scale-out by queues (${formatCount(config.messages)} messages per step, ${consumersPerQueue(config)} consumers per queue)`
      : `scale-out by ${unit} (${formatCount(config.messages)} messages per step)`;
    return {
      ...merged,
      verdicts,
      scenarioData: {
        tables: [
          {
            title,
            head: [unit, ...(byQueues ? ['consumers'] : []), 'completed/s', 'gain', 'efficiency vs first', 'e2e p50', 'e2e p99', 'lost', 'status'],
            rows,
          },
        ],
        histograms: {},
        records: { steps: records },
        values: {
          scaleBy: config.scaleBy,
          bestCompletePerSec: best.completePerSec,
          bestConsumers: best.consumers,
          ...(byQueues ? { bestQueues: best.queues, consumersPerQueue: consumersPerQueue(config) } : {}),
          /** The step count (consumers, processes or queues, by scaleBy) after which throughput stopped growing. */
          stopsGrowingAt: knee > 0 ? steps[knee - 1]!.count : null,
          /** Why a step could not run and the run ended there; null when every step ran. */
          failure: failure ?? null,
        },
      },
    };
  },
};

/** Most consumers one step of --scale-by queues opens (as --consumers is held to). */
const MAX_STEP_CONSUMERS = 1_000;

/** What a step's count counts, for tables and verdicts. */
function unitOf(scaleBy: ScenarioContext['config']['scaleBy']): string {
  return scaleBy === 'processes' ? 'consumer processes' : scaleBy;
}

/** --scale-by queues: the consumers each queue gets, --consumers over the first step's queues. */
function consumersPerQueue(config: ScenarioContext['config']): number {
  return Math.floor(config.consumers / config.scaleSteps[0]!);
}

/** A step's queues and consumers: its count is the consumers (or processes), or with --scale-by queues the queues. */
interface StepShape {
  readonly queues: readonly string[];
  readonly consumers: number;
  readonly label: string;
}

function stepShape(context: ScenarioContext, k: number, count: number): StepShape {
  const { config } = context;
  if (config.scaleBy !== 'queues') {
    return { queues: context.queues.map((queue) => `${queue}-n${k}`), consumers: count, label: `${count} ${unitOf(config.scaleBy)}` };
  }
  const queues = Array.from({ length: count }, (_, i) => `${context.queues[0]}-n${k}-${i}`);
  const consumers = consumersPerQueue(config) * count;
  return { queues, consumers, label: `${count} queues, ${consumers} consumers` };
}

/** One step on queues of its own, which are made before and removed after; what the broker said of them (QueueStats) is read first. */
async function runStep(
  context: ScenarioContext,
  k: number,
  shape: StepShape,
  timeoutMs: number,
): Promise<{ outcome: PipelineOutcome; queueStats: Record<string, number> }> {
  const { broker, config, connection } = context;
  const { queues, consumers } = shape;
  const specs = queues.map((name) => ({ name, visibilityTimeoutMs: config.visibilityTimeoutMs, maxReceives: config.maxReceives }));
  const stepConfig = { ...config, consumers, queues: queues.length, timeoutMs };
  try {
    for (const spec of specs) await broker.prepare(spec);
    let external: ProcessConsumers | undefined;
    if (config.scaleBy === 'processes') {
      if (!connection) throw new Error('scale-out by processes needs the connection the broker was opened with');
      external = new ProcessConsumers({
        adapter: connection.adapter,
        options: connection.options,
        queues: specs,
        processes: consumers,
        consumers,
        config: stepConfig,
        clock: context.clock,
      });
    }
    const step = { index: k, count: config.scaleSteps.length, label: shape.label };
    const outcome = await runPipeline({
      ...context,
      config: stepConfig,
      queues,
      ...(context.onProgress ? { onProgress: inStep(context.onProgress, step) } : {}),
      ...(external ? { consumers: external } : {}),
    });
    return { outcome, queueStats: await stepQueueStats(broker, queues) };
  } finally {
    for (const queue of queues) await broker.teardown(queue).catch(() => undefined);
  }
}

/** Longest the step's queue figures may take to read (as the runner's for the run's queues), ms. */
const STATS_LIMIT_MS = 5_000;

/** What the broker tells of a step's queues (QueueStats), added up by name; none where it tells nothing or does not answer in time. */
async function stepQueueStats(broker: Broker, queues: readonly string[]): Promise<Record<string, number>> {
  if (!hasQueueStats(broker)) return {};
  const each = await withinMs(Promise.all(queues.map((queue) => broker.queueStats(queue))).catch(() => undefined), STATS_LIMIT_MS);
  const total: Record<string, number> = {};
  for (const stats of each ?? []) for (const [name, value] of Object.entries(stats)) total[name] = (total[name] ?? 0) + value;
  return total;
}

/** All steps as one outcome: counts summed, histograms merged, timelines laid end to end. */
export function mergeOutcomes(outcomes: readonly PipelineOutcome[]): PipelineOutcome {
  const first = outcomes[0]!;
  const last = outcomes.at(-1)!;
  const sumOf = <T extends object>(pick: (outcome: PipelineOutcome) => T): T => {
    const total: Record<string, number> = {};
    for (const outcome of outcomes) {
      for (const [key, value] of Object.entries(pick(outcome))) if (typeof value === 'number') total[key] = (total[key] ?? 0) + value;
    }
    return total as T;
  };
  // The one merge (src/metrics/histogram.ts): it also adds up the clamp counts.
  const merge = (pick: (histograms: PipelineHistograms) => Histogram): Histogram =>
    mergeHistograms(outcomes.map((outcome) => pick(outcome.histograms)));
  const timeline: TimelinePoint[] = [];
  for (const outcome of outcomes) {
    const offset = Math.max(0, Math.floor((outcome.startUs - first.startUs) / 1e6));
    for (const point of outcome.timeline) {
      const second = point.second + offset;
      while (timeline.length <= second) timeline.push({ second: timeline.length, published: 0, received: 0, completed: 0, failed: 0 });
      const into = timeline[second]!;
      into.published += point.published;
      into.received += point.received;
      into.completed += point.completed;
      into.failed += point.failed;
      if (point.depth !== undefined) into.depth = point.depth;
    }
  }
  // The same, in the steps' finer buckets, for the result file and the report.
  const timelineBuckets = outcomes.every((outcome) => outcome.timelineBuckets)
    ? layEndToEnd(outcomes.map((outcome) => ({ offsetMs: (outcome.startUs - first.startUs) / 1000, series: outcome.timelineBuckets! })))
    : undefined;
  const failed = outcomes.find((outcome) => outcome.status !== 'completed');
  const cpuUserMs = outcomes.reduce((sum, o) => sum + o.harness.cpuUserMs, 0);
  const cpuSystemMs = outcomes.reduce((sum, o) => sum + o.harness.cpuSystemMs, 0);
  const wallMs = (last.endUs - first.startUs) / 1000;
  // Consumer processes of every step: their requests add up (the runner adds them to the parent's).
  const withRequests = outcomes.filter((o) => o.consumerRequests);
  const consumerRequests =
    withRequests.length === 0
      ? undefined
      : { byKind: sumOf((o) => o.consumerRequests?.byKind ?? {}), billed: withRequests.reduce((sum, o) => sum + o.consumerRequests!.billed, 0) };
  // Their CPU adds up over the steps; peak RSS, like the parent's, is that of the largest step.
  const children = outcomes.flatMap((o) => (o.harness.consumerProcesses ? [o.harness.consumerProcesses] : []));
  const consumerProcesses =
    children.length === 0
      ? undefined
      : {
          processes: children.reduce((sum, c) => sum + c.processes, 0),
          cpuUserMs: children.reduce((sum, c) => sum + c.cpuUserMs, 0),
          cpuSystemMs: children.reduce((sum, c) => sum + c.cpuSystemMs, 0),
          peakRssBytes: Math.max(...children.map((c) => c.peakRssBytes)),
        };
  return {
    status: failed?.status ?? 'completed',
    reason: failed?.reason,
    startUs: first.startUs,
    publishEndUs: last.publishEndUs,
    endUs: last.endUs,
    ledger: sumOf<LedgerCounts>((outcome) => outcome.ledger),
    missing: outcomes.find((outcome) => outcome.missing.length > 0)?.missing ?? [],
    counters: sumOf<RunCounters>((outcome) => outcome.counters),
    histograms: {
      publish: merge((h) => h.publish),
      endToEnd: merge((h) => h.endToEnd),
      execution: merge((h) => h.execution),
      completion: merge((h) => h.completion),
      ...(outcomes.every((outcome) => outcome.histograms.batchWait) ? { batchWait: merge((h) => h.batchWait!) } : {}),
    },
    timeline,
    ...(timelineBuckets ? { timelineBuckets } : {}),
    finalDepth: last.finalDepth,
    errors: [...new Set(outcomes.flatMap((outcome) => outcome.errors))],
    harness: {
      cpuUserMs,
      cpuSystemMs,
      cpuCores: wallMs > 0 ? (cpuUserMs + cpuSystemMs) / wallMs : 0,
      peakRssBytes: Math.max(...outcomes.map((o) => o.harness.peakRssBytes)),
      eventLoopDelayP50Ms: Math.max(...outcomes.map((o) => o.harness.eventLoopDelayP50Ms)),
      eventLoopDelayP99Ms: Math.max(...outcomes.map((o) => o.harness.eventLoopDelayP99Ms)),
      ...(consumerProcesses ? { consumerProcesses } : {}),
    },
    ...(consumerRequests ? { consumerRequests } : {}),
  };
}

function signedPercent(fraction: number): string {
  return `${fraction >= 0 ? '+' : ''}${(fraction * 100).toFixed(0)}%`;
}
