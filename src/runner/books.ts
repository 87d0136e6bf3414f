// The run's books: the ledger, the timeline, the latency histograms, the counters and the first error
// of each kind, and the one sink every consumer reports to, wherever it runs (this process, a child's
// journal, a fan-out group): a delivery is booked here the same way whichever path it took.
//
// LIMITATION: one process's books. A batch is booked with one timeline add and one histogram call per
// run of equal latencies; a sink that reports message by message (delivered, completed) costs a call each.

import type { Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import { describeError } from '../errors.ts';
import { createLatencyHistogram, recordLatency, RunRecorder } from '../metrics/histogram.ts';
import { Ledger } from '../metrics/ledger.ts';
import { Timeline } from '../metrics/timeline.ts';
import type { SubscriberSink } from '../pipeline/sink.ts';
import type { PipelineHistograms, RunCounters } from '../outcome.ts';

/** Sees every delivery of a harness message, warm-up included: send (or intended send) and receive times, monotonic µs. */
export type DeliveryObserver = (index: number, receiveCount: number, sentUs: number, receivedUs: number) => void;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class RunBooks {
  readonly ledger: Ledger;
  readonly timeline: Timeline;
  readonly histograms: PipelineHistograms;
  readonly counters: Mutable<RunCounters> = {
    publishCalls: 0,
    publishErrors: 0,
    receiveCalls: 0,
    emptyReceives: 0,
    receiveErrors: 0,
    ackErrors: 0,
    redeliveries: 0,
    taskFailures: 0,
    malformed: 0,
  };
  /** The first error of each operation, one line each. */
  readonly errors = new Map<string, string>();
  /** Messages the broker accepted, and those whose publish failed. */
  published = 0;
  publishFailed = 0;
  /** When the last delivery was booked, monotonic µs: the drain's quiet period counts from it. */
  lastDeliveryUs = 0;
  /** When the last completion was booked, monotonic µs: the end of a run that drained fully. */
  lastCompletionUs = 0;
  /** Until when a nacked message may still come back (its retry delay), monotonic µs. */
  mayReturnUntilUs = 0;
  /** Monotonic µs of the last receive that answered, and of the last that failed (outage detection). */
  lastReceiveOkUs: number;
  lastReceiveErrorUs = 0;
  /** Called after every batch of completions booked, while the drain waits for the last one. */
  onCompleted: (() => void) | undefined;

  readonly #config: RunConfig;
  readonly #clock: Clock;
  readonly #onDelivered: DeliveryObserver | undefined;
  /** End-to-end and completion latencies of a batch come in runs of equal values: one record per run. */
  readonly #endToEndRuns: RunRecorder;
  readonly #completionRuns: RunRecorder;

  constructor(config: RunConfig, clock: Clock, startUs: number, onDelivered?: DeliveryObserver) {
    this.#config = config;
    this.#clock = clock;
    this.#onDelivered = onDelivered;
    this.ledger = new Ledger(config.messages);
    this.timeline = new Timeline(startUs);
    this.lastReceiveOkUs = startUs;
    this.histograms = {
      publish: createLatencyHistogram(),
      endToEnd: createLatencyHistogram(),
      execution: createLatencyHistogram(),
      completion: createLatencyHistogram(),
      ...(config.ratePerSec > 0 ? { batchWait: createLatencyHistogram() } : {}),
    };
    this.#endToEndRuns = new RunRecorder(this.histograms.endToEnd);
    this.#completionRuns = new RunRecorder(this.histograms.completion);
  }

  /** Keeps the first error of `operation`. */
  noteError(operation: string, error: unknown): void {
    if (!this.errors.has(operation)) this.errors.set(operation, `${operation}: ${describeError(error)}`);
  }

  /** The one sink: every consumer's reports, booked. */
  sink(): SubscriberSink {
    const { ledger, timeline, counters } = this;
    const warmup = this.#config.warmupMessages;
    const { endToEnd, execution, completion } = this.histograms;
    const endToEndRuns = this.#endToEndRuns;
    const completionRuns = this.#completionRuns;
    const onDelivered = this.#onDelivered;
    return {
      delivered: (index, sentUs, receivedUs, receiveCount) => {
        timeline.add('received', 1, receivedUs);
        ledger.markDelivered(index);
        if (receivedUs > this.lastDeliveryUs) this.lastDeliveryUs = receivedUs;
        if (receiveCount > 1) counters.redeliveries++;
        if (index >= warmup) recordLatency(endToEnd, receivedUs - sentUs);
        onDelivered?.(index, receiveCount, sentUs, receivedUs);
      },
      deliveredBatch: (receivedUs, indices, sentTimes, receiveCounts) => {
        // Every body received counts on the timeline, the run's or not.
        timeline.add('received', indices.length, receivedUs);
        for (let k = 0; k < indices.length; k++) {
          const index = indices[k]!;
          if (index < 0) continue;
          ledger.markDelivered(index);
          if (receiveCounts[k]! > 1) counters.redeliveries++;
          if (index >= warmup) endToEndRuns.add(receivedUs - sentTimes[k]!);
          onDelivered?.(index, receiveCounts[k]!, sentTimes[k]!, receivedUs);
        }
        endToEndRuns.flush();
        if (receivedUs > this.lastDeliveryUs) this.lastDeliveryUs = receivedUs;
      },
      malformed: () => {
        counters.malformed++;
        ledger.markUnknown();
      },
      foreign: () => ledger.markForeign(),
      executed: (index, executionUs) => {
        if (index >= warmup) recordLatency(execution, executionUs);
      },
      completed: (index, sentUs, ackedUs) => {
        ledger.markCompleted(index);
        if (index >= warmup) recordLatency(completion, ackedUs - sentUs);
        timeline.add('completed', 1, ackedUs);
        if (ackedUs > this.lastCompletionUs) this.lastCompletionUs = ackedUs;
        this.onCompleted?.();
      },
      completedBatch: (ackedUs, indices, sentTimes) => {
        let completed = 0;
        for (let k = 0; k < indices.length; k++) {
          const index = indices[k]!;
          if (index < 0) continue;
          ledger.markCompleted(index);
          completed++;
          if (index >= warmup) completionRuns.add(ackedUs - sentTimes[k]!);
        }
        completionRuns.flush();
        timeline.add('completed', completed, ackedUs);
        if (ackedUs > this.lastCompletionUs) this.lastCompletionUs = ackedUs;
        this.onCompleted?.();
      },
      failed: (count, atUs, retryDelayMs = this.#config.retryDelayMs) => {
        counters.taskFailures += count;
        this.mayReturnUntilUs = Math.max(this.mayReturnUntilUs, atUs + retryDelayMs * 1000);
        timeline.add('failed', count, atUs);
      },
      receiveCall: (empty) => {
        counters.receiveCalls++;
        if (empty) counters.emptyReceives++;
        this.lastReceiveOkUs = this.#clock.nowUs();
      },
      error: (operation, message) => {
        if (operation === 'receive') {
          // A call all the same, one that failed.
          counters.receiveCalls++;
          counters.receiveErrors++;
          this.lastReceiveErrorUs = this.#clock.nowUs();
        } else if (operation === 'ack' || operation === 'nack') {
          counters.ackErrors++;
        }
        this.noteError(operation, message);
      },
    };
  }
}
