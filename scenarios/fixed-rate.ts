// fixed-rate: open-loop publishing at R msg/s for --duration seconds after --warmup-sec, the load of
// the seed's "200 transactions per second". Message k is due at start + k/R whatever the broker did
// before, and every latency counts from that intended send time, so a stalled broker shows up as
// latency instead of as a politely slower sender (coordinated omission corrected). Answers: did the
// broker keep up at R (did the backlog grow), with what p99, and with --rates 1000,5000,20000, what is
// the highest rate it held.
//
// Each rate runs on fresh queues of its own (`<channel>-r0`, `-r1` …), made and removed here, lowest
// rate first; after the first rate not held the higher ones are skipped. Per rate, a publish batch
// leaves when full or once its oldest message has waited --linger-ms (so batching adds at most that to
// latency, shown as the batch-wait histogram) and enough publishers run (up to 64) to give each publish
// call 100 ms. Kept up means: the run drained,
// nothing was lost, the last publish was at most max(0.25 s, 5%) behind the schedule, the backlog
// (published minus completed) grew over the measured window by less than 5% of R per second plus a
// quarter second of traffic, and the drain after the last publish took at most max(1 s, 10% of the
// schedule). Latency is reported, not judged: a rate can be "held" with a high but steady p99.
//
// LIMITATION: publishers and consumers share one Node process; at high rates the harness itself may
// be what falls behind (see the event-loop p99 in the summary). The backlog is read at one-second
// resolution, so --duration should be a few seconds at least. Each rate is bounded to 1.5 × its
// schedule + 5 s (and by --timeout overall): a rate far beyond the broker ends as a timeout, not a
// hang. The top-level figures of the result, requests included, are those of the highest rate held
// (else of the lowest rate tried); `records.rates` keeps every rate's ledger and requests (by API
// action in `records.rateRequests`). A rate that cannot run, fails or is interrupted ends the run so,
// the rates before it kept. config.messages is the total planned over all rates. --warmup is refused:
// each rate warms up by time.

import { isRequestCounting, type RequestCounting } from '../src/broker.ts';
import { publishedCount, type LedgerCounts } from '../src/metrics/ledger.ts';
import { runPipeline } from '../src/runner/pipeline.ts';
import { describeError, UsageError } from '../src/errors.ts';
import { summarize } from '../src/metrics/histogram.ts';
import { formatCount, formatLatency, formatRate } from '../src/format.ts';
import type { RunConfig } from '../src/config.ts';
import { backlogSeries, inStep } from './kit.ts';
import { ledgerVerdicts } from './verdicts.ts';
import { requestSplitOf, type RequestTotals, requestTotals } from '../src/metrics/requests.ts';
import type { PipelineOutcome, ScenarioOutcome, ScenarioValue } from '../src/outcome.ts';
import type { Scenario } from '../src/scenario.ts';

const DEFAULT_RATES = [1000, 5000, 20000];
/** Time each publish call is allowed before publishers run short, seconds (an SQS call takes tens of ms). */
const PUBLISH_CALL_SEC = 0.1;
const MAX_PUBLISHERS = 64;

export interface RateResult {
  readonly ratePerSec: number;
  readonly messages: number;
  readonly published: number;
  readonly publishPerSec: number;
  /** Completions per second inside the measured window. */
  readonly completePerSec: number;
  /** How fast the backlog grew over the measured window, msg/s (negative: it shrank). */
  readonly backlogGrowthPerSec: number;
  /** How far the last publish was behind the schedule, seconds. */
  readonly publishLagSec: number;
  readonly drainSec: number;
  readonly endToEndP50Us: number;
  readonly endToEndP99Us: number;
  readonly completionP99Us: number;
  /** Longest a message waited for its publish batch to leave, µs (at most --linger-ms). */
  readonly batchWaitMaxUs: number;
  readonly keptUp: boolean;
  /** Why it was not held; empty when it was. */
  readonly reason: string;
  readonly status: string;
}

export const fixedRate: Scenario = {
  name: 'fixed-rate',
  measures: 'open-loop publishing at fixed rates: latency from the intended send time, backlog growth, and the highest rate held',
  limitations: 'one process publishes and consumes; backlog read per second, so give each rate a few seconds',
  requires: [],
  defaults: { durationSec: 5, warmupSec: 1 },
  configure(config) {
    const chosen = config.ratesPerSec.length > 0 ? config.ratesPerSec : config.ratePerSec > 0 ? [config.ratePerSec] : DEFAULT_RATES;
    const rates = [...new Set(chosen)].sort((a, b) => a - b);
    if (!(config.durationSec > 0)) throw new UsageError('scenario fixed-rate needs --duration above 0 seconds');
    // Each rate warms up by time (--warmup-sec), so a message count would be silently overridden.
    if (config.warmupMessages > 0) throw new UsageError('fixed-rate warms up by time: use --warmup-sec instead of --warmup');
    for (const rate of rates) {
      if (Math.round(rate * config.durationSec) < 1) {
        throw new UsageError(`--rates ${rate} for --duration ${config.durationSec} s is less than one message; raise either`);
      }
    }
    const messages = rates.reduce((sum, rate) => sum + plannedMessages(rate, config), 0);
    return { ...config, ratesPerSec: rates, messages, warmupMessages: 0 };
  },
  async run(context): Promise<ScenarioOutcome> {
    const { config, broker, clock } = context;
    const rates = config.ratesPerSec.length > 0 ? config.ratesPerSec : [config.ratePerSec];
    const deadlineUs = clock.nowUs() + config.timeoutMs * 1000;
    const results: RateResult[] = [];
    const outcomes: PipelineOutcome[] = [];
    const requests: (RequestTotals | undefined)[] = [];
    // Why a rate could not run and the run ended there; every rate measured before it is kept.
    let failure: string | undefined;
    for (let k = 0; k < rates.length; k++) {
      if (context.signal?.aborted) break;
      const rate = rates[k]!;
      const remainingMs = Math.floor((deadlineUs - clock.nowUs()) / 1000);
      if (remainingMs <= 0) break;
      const rateConfig = configForRate(config, rate, remainingMs);
      const queues = context.queues.map((queue) => `${queue}-r${k}`);
      // This rate's requests, its queues' making and removal included: the counts before and after it.
      const before = isRequestCounting(broker) ? { byKind: { ...broker.requestCounts() }, billed: broker.billedRequests() } : undefined;
      let outcome: PipelineOutcome;
      try {
        for (const name of queues) {
          await broker.prepare({ name, visibilityTimeoutMs: config.visibilityTimeoutMs, maxReceives: config.maxReceives });
        }
        outcome = await runPipeline({
          broker,
          config: rateConfig,
          queues,
          clock,
          ...(context.runToken ? { runToken: context.runToken } : {}),
          ...(context.signal ? { signal: context.signal } : {}),
          ...(context.onProgress ? { onProgress: inStep(context.onProgress, { index: k, count: rates.length, label: `rate ${formatRate(rate)}` }) } : {}),
        });
      } catch (error) {
        // The rate could not run (its queues, or the broker, failed under it): the run ends here.
        if (outcomes.length === 0) throw error;
        failure = `${formatRate(rate)} could not run: ${describeError(error)}`;
        break;
      } finally {
        for (const name of queues) await broker.teardown(name).catch(() => undefined);
      }
      outcomes.push(outcome);
      results.push(judge(rate, rateConfig, outcome));
      requests.push(before && isRequestCounting(broker) ? requestsSince(broker, before) : undefined);
      if (!results.at(-1)!.keptUp) break;
    }
    if (outcomes.length === 0) throw new UsageError('fixed-rate: --timeout ran out before the first rate started');

    let headline = 0;
    for (let k = 0; k < results.length; k++) if (results[k]!.keptUp) headline = k;
    const held = results.filter((result) => result.keptUp);
    const skipped = rates.slice(results.length + (failure === undefined ? 0 : 1));
    const chosen = outcomes[headline]!;
    const top = results[headline]!;

    const verdicts: string[] = [];
    const tried = results.map((result) => formatRate(result.ratePerSec)).join(', ');
    const failed = results.find((result) => !result.keptUp);
    if (held.length > 0) {
      verdicts.push(
        `highest rate held: ${formatRate(held.at(-1)!.ratePerSec)} of ${tried} tried` +
          (failed ? ` (${formatRate(failed.ratePerSec)} not held: ${failed.reason})` : ''),
      );
    } else {
      verdicts.push(`NO RATE HELD: ${formatRate(failed!.ratePerSec)} not held: ${failed!.reason}`);
    }
    if (failure !== undefined) verdicts.push(`RUN FAILED: ${failure}`);
    if (skipped.length > 0) {
      verdicts.push(`not tried: ${skipped.map(formatRate).join(', ')} (${failure === undefined ? 'a lower rate was not held' : 'the run failed first'})`);
    }
    verdicts.push(
      chosen.histograms.endToEnd.totalCount === 0
        ? `at ${formatRate(top.ratePerSec)}: no message published after the warm-up was received`
        : `at ${formatRate(top.ratePerSec)}: p99 ${formatLatency(top.endToEndP99Us)} from the intended send time to receipt ` +
            `(p50 ${formatLatency(top.endToEndP50Us)}; coordinated omission corrected), backlog growth ${formatRate(top.backlogGrowthPerSec)} ` +
            `over ${formatCount(config.durationSec)} s measured after a ${formatCount(config.warmupSec)} s warm-up`,
    );
    // The headline rate's books are below; every other rate's loss is named here, whatever its status.
    for (let k = 0; k < outcomes.length; k++) {
      const { ledger, status } = outcomes[k]!;
      if (k === headline || ledger.lost === 0) continue;
      const at = formatRate(results[k]!.ratePerSec);
      verdicts.push(
        status === 'completed'
          ? `LOST ${formatCount(ledger.lost)} of ${formatCount(publishedCount(ledger))} published messages at ${at}`
          : `${formatCount(ledger.lost)} of ${formatCount(publishedCount(ledger))} published messages not completed at ${at} when that rate stopped (${status})`,
      );
    }
    verdicts.push(...ledgerVerdicts(chosen));

    const ms = (us: number): string => formatLatency(us);
    const headlineRequests = requests[headline];
    // A rate that could not run, or that failed or was interrupted, ends the run so (a timeout is only
    // "not held"); the top-level figures stay the headline rate's, and every rate measured is kept.
    const stoppedAt = outcomes.findIndex((outcome) => outcome.status === 'failed' || outcome.status === 'interrupted');
    const ending =
      failure !== undefined
        ? { status: 'failed' as const, reason: failure }
        : stoppedAt >= 0
          ? { status: outcomes[stoppedAt]!.status, reason: `at ${formatRate(results[stoppedAt]!.ratePerSec)}: ${outcomes[stoppedAt]!.reason ?? ''}`.trim() }
          : undefined;
    return {
      ...chosen,
      ...(ending !== undefined && chosen.status === 'completed' ? ending : {}),
      ...(headlineRequests ? { requests: headlineRequests } : {}),
      verdicts,
      scenarioData: {
        tables: [
          {
            title: `per rate (${config.warmupSec} s warm-up, ${config.durationSec} s measured; latency from the intended send time)`,
            head: ['rate', 'published', 'publish rate', 'completed/s', 'backlog growth', 'e2e p50', 'e2e p99', 'done p99', 'drain', 'kept up'],
            rows: [
              ...results.map((r) => [
                formatRate(r.ratePerSec),
                formatCount(r.published),
                formatRate(r.publishPerSec),
                formatRate(r.completePerSec),
                `${formatCount(Math.round(r.backlogGrowthPerSec))}/s`,
                ms(r.endToEndP50Us),
                ms(r.endToEndP99Us),
                ms(r.completionP99Us),
                `${r.drainSec.toFixed(2)} s`,
                r.keptUp ? 'yes' : `NO: ${r.reason}`,
              ]),
              ...(failure === undefined ? [] : [[formatRate(rates[results.length]!), '-', '-', '-', '-', '-', '-', '-', '-', 'FAILED: could not run']]),
              ...skipped.map((rate) => [formatRate(rate), '-', '-', '-', '-', '-', '-', '-', '-', 'not tried']),
            ],
          },
        ],
        histograms: {},
        records: {
          rates: results.map((r, k) => ({ ...r, ...ledgerRecord(outcomes[k]!.ledger), ...requestRecord(requests[k]) }) as Record<string, ScenarioValue>),
          // Requests of each rate by API action, so workload and housekeeping can be told apart later.
          rateRequests: results.flatMap((r, k) =>
            Object.entries(requests[k]?.byKind ?? {}).map(([kind, count]) => ({ ratePerSec: r.ratePerSec, kind, count })),
          ),
        },
        values: {
          highestRateHeldPerSec: held.length > 0 ? held.at(-1)!.ratePerSec : null,
          headlineRatePerSec: top.ratePerSec,
          durationSec: config.durationSec,
          warmupSec: config.warmupSec,
          /** Why a rate could not run and the run ended there; null when none failed so. */
          failure: failure ?? null,
        },
      },
    };
  },
};

/** One rate's ledger as record fields (the result's top-level ledger is the headline rate's alone). */
function ledgerRecord(ledger: LedgerCounts): Record<string, ScenarioValue> {
  return {
    expected: ledger.expected,
    accepted: publishedCount(ledger),
    publishFailed: ledger.publishFailed,
    notSent: ledger.notSent ?? 0,
    delivered: ledger.delivered,
    completed: ledger.completed,
    lost: ledger.lost,
    duplicateDeliveries: ledger.duplicateDeliveries,
    unknown: ledger.unknown,
  };
}

/** One rate's request totals as record fields; none for brokers that do not count requests. */
function requestRecord(requests: RequestTotals | undefined): Record<string, ScenarioValue> {
  if (!requests) return {};
  const { workload, housekeeping, billedWorkload } = requestSplitOf(requests);
  return { requests: requests.total, workloadRequests: workload, housekeepingRequests: housekeeping, billedRequests: requests.billed, billedWorkloadRequests: billedWorkload };
}

/** Requests sent since `before`, by API action, with their total and the billed count. */
function requestsSince(broker: RequestCounting, before: { byKind: Record<string, number>; billed: number }): RequestTotals {
  const byKind: Record<string, number> = {};
  for (const [kind, count] of Object.entries(broker.requestCounts())) {
    const sent = count - (before.byKind[kind] ?? 0);
    if (sent > 0) byKind[kind] = sent;
  }
  return requestTotals(byKind, broker.billedRequests() - before.billed);
}

function plannedMessages(rate: number, config: Pick<RunConfig, 'durationSec' | 'warmupSec'>): number {
  return Math.max(1, Math.round(rate * (config.warmupSec + config.durationSec)));
}

/** The run config of one rate: its message count, warm-up, batch size, publishers and time bound. */
export function configForRate(config: RunConfig, rate: number, remainingMs: number): RunConfig {
  const messages = plannedMessages(rate, config);
  const warmupMessages = Math.min(messages - 1, Math.round(rate * config.warmupSec));
  // On schedule a batch holds what falls due within --linger-ms (the pipeline cuts it there); only a
  // publisher that fell behind sends fuller ones, up to --batch.
  const scheduledBatch = Math.max(1, Math.min(config.publishBatch, Math.floor((rate * config.lingerMs) / 1000) + 1));
  const publishConcurrency = Math.min(
    MAX_PUBLISHERS,
    Math.max(config.publishConcurrency, Math.ceil((rate * PUBLISH_CALL_SEC) / scheduledBatch)),
  );
  const scheduleSec = config.warmupSec + config.durationSec;
  const timeoutMs = Math.min(remainingMs, Math.round((scheduleSec * 1.5 + 5) * 1000));
  return { ...config, ratePerSec: rate, messages, warmupMessages, publishConcurrency, timeoutMs };
}

/** Did one rate hold? Reads the run's timeline over the measured window (whole seconds). */
export function judge(rate: number, config: RunConfig, outcome: PipelineOutcome): RateResult {
  const scheduleSec = config.warmupSec + config.durationSec;
  const published = outcome.timeline.reduce((sum, point) => sum + point.published, 0);
  const publishSec = (outcome.publishEndUs - outcome.startUs) / 1e6;
  const publishLagSec = publishSec - scheduleSec;
  const drainSec = (outcome.endUs - outcome.publishEndUs) / 1e6;
  const backlog = backlogSeries(outcome.timeline);
  // Whole seconds inside the measured window: from the end of the warm-up to the end of the schedule.
  const from = Math.ceil(config.warmupSec);
  const to = Math.max(from + 1, Math.floor(scheduleSec));
  const at = (second: number): number => (second <= 0 ? 0 : (backlog[Math.min(second, backlog.length) - 1] ?? 0));
  let completedInWindow = 0;
  for (let s = from; s < to; s++) completedInWindow += outcome.timeline[s]?.completed ?? 0;
  const windowSec = to - from;
  const backlogGrowthPerSec = (at(to) - at(from)) / windowSec;
  const e2e = summarize(outcome.histograms.endToEnd);
  const completion = summarize(outcome.histograms.completion);

  let reason = '';
  if (outcome.status === 'timeout') {
    reason = `not done within this rate's bound of ${formatCount(config.timeoutMs / 1000)} s (${formatCount(published)} of ${formatCount(config.messages)} published)`;
  } else if (outcome.status !== 'completed') reason = `run ${outcome.status}: ${outcome.reason ?? ''}`.trim();
  else if (outcome.ledger.lost > 0) reason = `${formatCount(outcome.ledger.lost)} messages lost`;
  else if (publishLagSec > Math.max(0.25, 0.05 * scheduleSec)) reason = `publishing fell ${publishLagSec.toFixed(2)} s behind the schedule`;
  // A quarter second of traffic as slack: the backlog is read once a second, and one pause moves it that much.
  else if (at(to) - at(from) > rate * (0.05 * windowSec + 0.25)) reason = `backlog grew ${formatCount(Math.round(backlogGrowthPerSec))} msg/s`;
  else if (drainSec > Math.max(1, 0.1 * scheduleSec)) reason = `draining took ${drainSec.toFixed(2)} s after the last publish`;
  return {
    ratePerSec: rate,
    messages: config.messages,
    published,
    publishPerSec: publishSec > 0 ? published / publishSec : 0,
    completePerSec: completedInWindow / windowSec,
    backlogGrowthPerSec,
    publishLagSec,
    drainSec,
    endToEndP50Us: e2e.p50,
    endToEndP99Us: e2e.p99,
    completionP99Us: completion.p99,
    batchWaitMaxUs: outcome.histograms.batchWait ? summarize(outcome.histograms.batchWait).max : 0,
    keptUp: reason === '',
    reason,
    status: outcome.status,
  };
}

