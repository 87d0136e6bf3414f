// retry-dlq: a fraction of tasks fail; failed messages are retried on a back-off schedule (like RQ's
// `Retry(max=3, interval=[10, 30, 60])`, in seconds scaled down: --retry-intervals 0.2,0.4,0.8) and the
// ones that keep failing end in the broker's dead-letter queue. Answers: do the books balance exactly
// (completed + dead-lettered = published), does every message get exactly its retries, and how closely
// does the broker keep the schedule (the observed delay before each retry).
//
// Failures are drawn per (message, attempt) from the seed, so the run knows in advance how many
// messages must end dead: those that fail all 1 + retries attempts (--fail-rate per attempt) plus the
// poison ones (--poison-rate, failing every attempt). The retry delay is the nack delay; after the
// last attempt fails the message is nacked at once and the broker dead-letters it (--max-receives is
// set to retries + 1: redis-list and redis-stream move it on that nack, SQS's redrive policy on the
// next receive).
//
// LIMITATION: SQS takes retry delays (ChangeMessageVisibility) in whole seconds, so 0.2 s becomes 1 s
// there. The dead-letter count is the broker's (SQS: ApproximateNumberOfMessages of the DLQ); the
// harness cannot read which messages are in it, only how many. A retry that a visibility timeout
// causes (a task longer than --visibility-timeout-ms) counts as an attempt, as brokers count it.

import { UsageError } from '../src/errors.ts';
import { createLatencyHistogram, recordLatency, summarize } from '../src/metrics/histogram.ts';
import { Executor, seededRandom } from '../src/pipeline/executor.ts';
import { formatCount, formatLatency } from '../src/format.ts';
import { runPipeline } from '../src/runner/pipeline.ts';
import type { Histogram } from 'hdr-histogram-js';
import { drawUnit, unitName } from './kit.ts';
import { ledgerVerdicts } from './verdicts.ts';
import { publishedCount } from '../src/metrics/ledger.ts';
import type { Scenario } from '../src/scenario.ts';
import type { ScenarioOutcome } from '../src/outcome.ts';

/** Per attempt number: what happened, and how long the wait before it really was. */
interface AttemptStats {
  deliveries: number;
  failures: number;
  /** Failure of the previous attempt to this delivery, µs (attempt 2 onwards). */
  readonly waited: Histogram;
}

export const retryDlq: Scenario = {
  name: 'retry-dlq',
  measures: 'retries on a back-off schedule and dead letters: completed + dead-lettered = published, exactly, and the observed retry delays',
  limitations: 'SQS retry delays are whole seconds; the dead-letter queue is counted, not read',
  requires: ['deadLetter', 'nackDelay'],
  defaults: { messages: 1000, retryIntervalsMs: [200, 400, 800], poisonRate: 0.05, task: { failureRate: 0.3 } },
  configure(config, capabilities) {
    const retries = config.retryIntervalsMs.length;
    if (retries === 0) throw new UsageError('scenario retry-dlq needs --retry-intervals, e.g. 0.2,0.4,0.8 (seconds)');
    const longest = Math.max(...config.retryIntervalsMs);
    // A retry is a nack's delay, whose limit may differ from a publish delay's (SQS: 12 h, not 15 min).
    const longestNackMs = capabilities.maxNackDelayMs ?? capabilities.maxDelayMs;
    if (longestNackMs > 0 && longest > longestNackMs) {
      throw new UsageError(`--retry-intervals ${longest / 1000} s is over ${config.adapter}'s longest delay of ${longestNackMs / 1000} s`);
    }
    if (config.maxReceives !== 0 && config.maxReceives !== retries + 1) {
      throw new UsageError(
        `scenario retry-dlq sets --max-receives to ${retries + 1} (1 + the ${retries} --retry-intervals); leave --max-receives out`,
      );
    }
    return { ...config, maxReceives: retries + 1 };
  },
  async run(context): Promise<ScenarioOutcome> {
    const { config, clock } = context;
    const intervals = config.retryIntervalsMs;
    const attempts = intervals.length + 1;
    const failRate = config.task.failureRate;
    const fails = (index: number, attempt: number): boolean =>
      drawUnit(config.seed, index, 0) < config.poisonRate || drawUnit(config.seed, index, attempt) < failRate;

    // What the seeded draws say must happen, before anything runs.
    let expectDead = 0;
    let expectPoison = 0;
    for (let i = 0; i < config.messages; i++) {
      if (drawUnit(config.seed, i, 0) < config.poisonRate) expectPoison++;
      let dead = true;
      for (let a = 1; a <= attempts && dead; a++) dead = fails(i, a);
      if (dead) expectDead++;
    }

    const stats: AttemptStats[] = Array.from({ length: attempts + 1 }, () => ({ deliveries: 0, failures: 0, waited: createLatencyHistogram() }));
    const failedAtUs = new Float64Array(config.messages);
    let overDelivered = 0;
    // The task's duration only (if --task-ms is set); success or failure comes from the seeded draws.
    const executor = new Executor({ ...config.task, failureRate: 0 }, seededRandom(config.seed));
    const outcome = await runPipeline({
      ...context,
      hooks: {
        async runTask(index, receiveCount) {
          await executor.run();
          const failed = fails(index, receiveCount);
          if (failed) failedAtUs[index] = clock.nowUs();
          return !failed;
        },
        retryDelayMs: (_index, receiveCount) => (receiveCount <= intervals.length ? intervals[receiveCount - 1]! : 0),
        onDelivered(index, receiveCount, _sentUs, receivedUs) {
          if (receiveCount > attempts) {
            overDelivered++;
            return;
          }
          const attempt = stats[receiveCount]!;
          attempt.deliveries++;
          if (receiveCount > 1 && failedAtUs[index]! > 0) recordLatency(attempt.waited, receivedUs - failedAtUs[index]!);
        },
        onExecuted(_index, receiveCount, _us, ok) {
          if (!ok && receiveCount <= attempts) stats[receiveCount]!.failures++;
        },
      },
    });

    const published = publishedCount(outcome.ledger);
    const completed = outcome.ledger.completed;
    const dead = outcome.finalDepth.dead;
    const balanced = completed + dead === published;
    const verdicts: string[] = [];
    verdicts.push(
      balanced
        ? `books balance: completed ${formatCount(completed)} + dead-lettered ${formatCount(dead)} = published ${formatCount(published)}`
        : `BOOKS DO NOT BALANCE: completed ${formatCount(completed)} + dead-lettered ${formatCount(dead)} = ${formatCount(completed + dead)}, published ${formatCount(published)}`,
    );
    verdicts.push(
      dead === expectDead && completed === published - expectDead
        ? `as the seeded failures predict: ${formatCount(expectDead)} dead (${formatCount(expectPoison)} poison, ${formatCount(expectDead - expectPoison)} failed all ${formatCount(attempts)} attempts)`
        : `DIFFERS FROM THE SEEDED FAILURES: expected ${formatCount(expectDead)} dead and ${formatCount(published - expectDead)} completed`,
    );
    verdicts.push(
      overDelivered === 0
        ? `no message was delivered more than ${formatCount(attempts)} times (1 + ${formatCount(intervals.length)} retries)`
        : `${formatCount(overDelivered)} DELIVERIES BEYOND ${formatCount(attempts)} ATTEMPTS: the broker did not dead-letter them`,
    );
    const schedule = intervals.map((ms, k) => {
      const waited = summarize(stats[k + 2]!.waited);
      return `retry ${k + 1}: set ${formatLatency(ms * 1000)}, waited p50 ${formatLatency(waited.p50)}`;
    });
    verdicts.push(`back-off observed: ${schedule.join('; ')}`);
    const granularity = context.broker.capabilities.nackDelayGranularity;
    if (granularity !== undefined && intervals.some((ms) => ms % granularity.ms !== 0)) {
      verdicts.push(`${granularity.says}: each was rounded up to the next ${unitName(granularity.ms)}`);
    }
    // Retries are redeliveries by design: the ledger's loss and duplicate lines do not apply as they are.
    const retriesCalled = stats.slice(1, attempts).reduce((sum, s) => sum + s.failures, 0);
    const redelivered = outcome.ledger.duplicateDeliveries;
    verdicts.push(
      redelivered === retriesCalled
        ? `every redelivery was a scheduled retry (${formatCount(redelivered)})`
        : `${formatCount(redelivered)} redeliveries where the failures called for ${formatCount(retriesCalled)} retries`,
    );
    verdicts.push(
      ...ledgerVerdicts(outcome).filter((line) => !/^(LOST|nothing lost|no duplicate|[\d,]+ duplicate)/.test(line)),
    );

    const rows = [];
    const records = [];
    for (let a = 1; a <= attempts; a++) {
      const s = stats[a]!;
      const waited = summarize(s.waited);
      const setMs = a === 1 ? null : intervals[a - 2]!;
      rows.push([
        a === 1 ? '1 (first)' : `${a} (retry ${a - 1})`,
        setMs === null ? '-' : formatLatency(setMs * 1000),
        formatCount(s.deliveries),
        formatCount(s.failures),
        a === 1 ? '-' : formatLatency(waited.p50),
        a === 1 ? '-' : formatLatency(waited.p99),
        a === 1 ? '-' : formatLatency(waited.max),
        a === attempts ? 'dead letter' : s.failures > 0 ? `retry in ${formatLatency(intervals[a - 1]! * 1000)}` : '-',
      ]);
      records.push({
        attempt: a,
        retryDelaySetMs: setMs,
        deliveries: s.deliveries,
        failures: s.failures,
        waitedP50Us: a === 1 ? null : waited.p50,
        waitedP99Us: a === 1 ? null : waited.p99,
        waitedMaxUs: a === 1 ? null : waited.max,
      });
    }

    return {
      ...outcome,
      verdicts,
      scenarioData: {
        tables: [
          {
            title: `retry schedule (fail rate ${failRate} per attempt, poison ${config.poisonRate}; waited = from the failure to the next delivery)`,
            head: ['attempt', 'delay set', 'deliveries', 'failed', 'waited p50', 'waited p99', 'waited max', 'after a failure'],
            rows,
          },
        ],
        histograms: {},
        records: { attempts: records },
        values: {
          published,
          completed,
          deadLettered: dead,
          balanced,
          expectedDead: expectDead,
          expectedPoison: expectPoison,
          retries: intervals.length,
          deliveriesBeyondAttempts: overDelivered,
        },
      },
    };
  },
};
