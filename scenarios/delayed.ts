// delayed: messages scheduled for later (RQ's enqueue_in, rq-scheduler), each due --delay-ms after it
// is sent plus its share of --delay-window-ms, so due times spread evenly over the window. Answers:
// how late does a scheduled message arrive (delivered minus scheduled), and does any arrive early.
//
// How each broker delays: redis-list (reliable) and redis-stream keep delayed messages in a sorted
// set scored by due time, which every consumer's receive promotes atomically in a Lua script (seed
// 002's ZSET design; safe with several consumers, nothing lost if one dies); SQS uses DelaySeconds
// (whole seconds, at most 900 s: a delay is rounded up to the next second, which shows as lateness).
//
// LIMITATION: lateness is measured from the send time (taken just before the publish call) plus the
// delay, on the monotonic clock; the Redis adapters compute due times from the wall clock
// (Date.now()) when the publish reaches them, so the publish call's own time counts as lateness and a
// wall-clock step (NTP) would show as early or late deliveries. A consumer waiting on an empty queue
// wakes for a due message at the latest after --receive-wait-ms.

import { UsageError } from '../src/errors.ts';
import { createLatencyHistogram, recordLatency, summarize } from '../src/metrics/histogram.ts';
import { formatCount, formatLatency } from '../src/format.ts';
import { runPipeline } from '../src/runner/pipeline.ts';
import { BucketCounts, percent, unitName } from './kit.ts';
import { ledgerVerdicts } from './verdicts.ts';
import type { Scenario } from '../src/scenario.ts';
import type { ScenarioOutcome } from '../src/outcome.ts';

/**
 * The Redis adapters keep due times in whole ms of Date.now(), which truncates: a message can come up
 * to 1 ms before its exact due time without any broker being wrong. Earlier than that is early.
 */
const GRANULARITY_US = 1000;

export const delayed: Scenario = {
  name: 'delayed',
  measures: 'lateness of scheduled messages (delivered minus scheduled), as a histogram, and whether any arrive early',
  limitations: 'SQS delays are whole seconds; the Redis adapters schedule on the wall clock, the harness measures on the monotonic one',
  requires: ['delay'],
  defaults: { messages: 2000, delayMs: 2000, delayWindowMs: 1000 },
  configure(config, capabilities) {
    const longest = config.delayMs + config.delayWindowMs;
    if (longest === 0) throw new UsageError('scenario delayed needs --delay-ms or --delay-window-ms above 0');
    if (longest > capabilities.maxDelayMs) {
      throw new UsageError(
        `--delay-ms + --delay-window-ms is ${longest} ms, over ${config.adapter}'s longest delay of ${capabilities.maxDelayMs} ms`,
      );
    }
    return config;
  },
  async run(context): Promise<ScenarioOutcome> {
    const { config } = context;
    const delayOf = (index: number): number => config.delayMs + Math.floor((config.delayWindowMs * index) / config.messages);
    const lateness = createLatencyHistogram();
    const buckets = new BucketCounts();
    const seen = new Uint8Array(config.messages);
    let early = 0;
    let earliestUs = 0;
    /** Came before the exact time, but within the 1 ms granularity of due times; counted as on time. */
    let withinGranularity = 0;
    let withinUs = 0;
    const outcome = await runPipeline({
      ...context,
      hooks: {
        publishDelayMs: delayOf,
        onDelivered(index, _receiveCount, sentUs, receivedUs) {
          if (seen[index]) return; // lateness is about the first delivery
          seen[index] = 1;
          const lateUs = receivedUs - (sentUs + delayOf(index) * 1000);
          if (lateUs < -GRANULARITY_US) {
            early++;
            earliestUs = Math.max(earliestUs, -lateUs);
            return;
          }
          if (lateUs < 0) {
            withinGranularity++;
            withinUs = Math.max(withinUs, -lateUs);
          }
          recordLatency(lateness, Math.max(0, lateUs)); // within the granularity: on time, not a clock error
          buckets.add(lateUs);
        },
      },
    });

    const late = summarize(lateness);
    const delivered = late.count + early;
    const verdicts: string[] = [];
    verdicts.push(
      `lateness (delivered minus scheduled) over ${formatCount(delivered)} messages due ${formatCount(config.delayMs)} to ` +
        `${formatCount(config.delayMs + config.delayWindowMs)} ms after sending: p50 ${formatLatency(late.p50)}, p99 ${formatLatency(late.p99)}, max ${formatLatency(late.max)}`,
    );
    verdicts.push(
      early === 0
        ? 'none delivered early' +
            (withinGranularity > 0
              ? ` (${formatCount(withinGranularity)} came up to ${formatLatency(withinUs)} before the exact time, within the 1 ms granularity of due times: counted as on time)`
              : '')
        : `${formatCount(early)} DELIVERED EARLY, up to ${formatLatency(earliestUs)} before their time ` +
            '(the adapter schedules on the wall clock, the harness measures on the monotonic one: a clock step shows here)',
    );
    const granularity = context.broker.capabilities.delayGranularity;
    if (granularity !== undefined) {
      verdicts.push(`${granularity.says}: each delay was rounded up to the next ${unitName(granularity.ms)}, which counts as lateness here`);
    }
    verdicts.push(...ledgerVerdicts(outcome));

    const rows = BucketCounts.LABELS.map((label, k) => [label, formatCount(buckets.counts[k]!), percent(buckets.counts[k]!, delivered)]);
    rows.push(['early', formatCount(early), percent(early, delivered)]);
    return {
      ...outcome,
      verdicts,
      scenarioData: {
        tables: [{ title: 'lateness histogram (first delivery minus scheduled time)', head: ['late by', 'messages', 'share'], rows }],
        histograms: { lateness },
        records: {
          lateness: [
            ...BucketCounts.LABELS.map((label, k) => ({ bucket: label, messages: buckets.counts[k]! })),
            { bucket: 'early', messages: early },
          ],
        },
        values: {
          delayMs: config.delayMs,
          delayWindowMs: config.delayWindowMs,
          delivered,
          early,
          earliestUs,
          withinGranularity,
          latenessP50Us: late.p50,
          latenessP99Us: late.p99,
          latenessMaxUs: late.max,
        },
      },
    };
  },
};
