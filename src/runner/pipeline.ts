// Publisher -> broker -> subscriber -> executor, run once with a ledger that proves what arrived.
// Phases: run (publish while consuming), drain (until every message is accounted for, the broker
// is empty, or the deadline passes). Preparing and tearing down queues is the runner's job.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Histogram } from 'hdr-histogram-js';
import type { Broker, QueueDepth, ReceivedMessage } from '../broker.ts';
import type { Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import { createLatencyHistogram } from '../metrics/histogram.ts';
import { Ledger, type LedgerCounts } from '../metrics/ledger.ts';
import { Timeline, type TimelinePoint } from '../metrics/timeline.ts';
import { Executor, seededRandom, sleep } from '../pipeline/executor.ts';
import { decodeMessage, MessageEncoder } from '../pipeline/message.ts';
import { RateLimiter } from '../pipeline/rate-limiter.ts';

/** How the run ended. */
export type RunStatus = 'completed' | 'timeout' | 'failed' | 'interrupted';

/** A live snapshot, emitted on every tick for progress displays. */
export interface RunProgress {
  readonly phase: 'run' | 'drain';
  readonly elapsedMs: number;
  readonly expected: number;
  readonly published: number;
  readonly completed: number;
  readonly publishFailed: number;
  /** Messages completed per second over the last tick. */
  readonly completeRatePerSec: number;
  /** ready + inFlight + delayed at the last sample; undefined before the first. */
  readonly depth: number | undefined;
}

/** Counters the run keeps besides the ledger's. */
export interface RunCounters {
  readonly publishCalls: number;
  readonly publishErrors: number;
  readonly receiveCalls: number;
  readonly emptyReceives: number;
  readonly receiveErrors: number;
  readonly ackErrors: number;
  /** Deliveries with a receive count above 1 (the broker itself said it was a redelivery). */
  readonly redeliveries: number;
  /** Tasks that failed and were nacked for a retry. */
  readonly taskFailures: number;
  /** Bodies that were not the harness's messages; acked and counted. */
  readonly malformed: number;
}

export interface PipelineHistograms {
  /** Send (or intended send) to the broker acknowledging the write, µs. */
  readonly publish: Histogram;
  /** Send to received by a consumer, µs. */
  readonly endToEnd: Histogram;
  /** Task execution time, µs (empty when there is no task). */
  readonly execution: Histogram;
  /** Send to acked after the task, µs. */
  readonly completion: Histogram;
}

export interface PipelineOutcome {
  readonly status: RunStatus;
  /** Why the run did not complete, one line; undefined when it did. */
  readonly reason: string | undefined;
  /** Monotonic µs when publishing started and when the last message was published / the run ended. */
  readonly startUs: number;
  readonly publishEndUs: number;
  readonly endUs: number;
  readonly ledger: LedgerCounts;
  /** First few indices published but never completed. */
  readonly missing: number[];
  readonly counters: RunCounters;
  readonly histograms: PipelineHistograms;
  readonly timeline: TimelinePoint[];
  /** Depth when the run ended. */
  readonly finalDepth: QueueDepth;
  /** First error of each kind, for the report; never contains secrets (adapters redact). */
  readonly errors: readonly string[];
  /** The harness's own cost: CPU time and event-loop delay while it ran. */
  readonly harness: HarnessUsage;
}

export interface HarnessUsage {
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  /** CPU time over wall time; 1.0 = one core busy all the time. */
  readonly cpuCores: number;
  readonly peakRssBytes: number;
  /** Event-loop delay percentiles, ms: a high p99 means the harness itself was the bottleneck. */
  readonly eventLoopDelayP50Ms: number;
  readonly eventLoopDelayP99Ms: number;
}

export interface PipelineContext {
  /** Handle used by publishers and for depth; consumers take their own via duplicate(). */
  readonly broker: Broker;
  readonly config: RunConfig;
  /** Queue names, already prepared. */
  readonly queues: readonly string[];
  readonly clock: Clock;
  /** Aborting stops publishing at once and ends the drain; the outcome is marked interrupted. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: RunProgress) => void;
  /** Tick period in ms (progress and depth samples). */
  readonly tickMs?: number;
}

const MAX_CONSECUTIVE_PUBLISH_ERRORS = 20;
const ERROR_BACKOFF_MS = 100;
/** How long consumers may finish the batch in hand once the run is over, before their handles close. */
const CONSUMER_GRACE_MS = 250;
const EMPTY_DEPTH: QueueDepth = { ready: 0, inFlight: 0, delayed: 0, dead: 0 };

export async function runPipeline(context: PipelineContext): Promise<PipelineOutcome> {
  // Consumers connect before the clock starts: connection set-up is not part of the measured run.
  const handles: Broker[] = [];
  try {
    for (let c = 0; c < context.config.consumers; c++) handles.push(await context.broker.duplicate());
  } catch (error) {
    await Promise.all(handles.map((handle) => handle.close().catch(() => undefined)));
    throw error;
  }
  return new PipelineRun(context, handles).run();
}

class PipelineRun {
  readonly #ctx: PipelineContext;
  readonly #config: RunConfig;
  readonly #ledger: Ledger;
  readonly #timeline: Timeline;
  readonly #executor: Executor;
  readonly #histograms: PipelineHistograms;
  readonly #startUs: number;
  readonly #deadlineUs: number;
  readonly #errors = new Map<string, string>();
  #stopConsumers = false;
  #stopPublishing = false;
  #publishEndUs = 0;
  /** Next message index to publish: publishers claim batches from it. */
  #nextIndex = 0;
  /** Messages received and not yet acked or nacked, across this process's consumers. */
  #processing = 0;
  /** Bumped on every depth sample, so the drain counts distinct samples. */
  #depthSamples = 0;
  /** When the last completion was booked, monotonic µs: the end of a run that drained fully. */
  #lastCompletionUs = 0;
  /** When the drain ended otherwise (empty broker, timeout, interrupt), monotonic µs. */
  #drainEndUs = 0;
  /** Wakes the drain as soon as the last message is booked, instead of at its next poll. */
  #wakeDrain: (() => void) | undefined;
  #published = 0;
  #publishFailed = 0;
  #depth: QueueDepth | undefined;
  #status: RunStatus = 'completed';
  #reason: string | undefined;
  #counters = {
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

  readonly #consumerHandles: readonly Broker[];

  constructor(context: PipelineContext, consumerHandles: readonly Broker[]) {
    this.#ctx = context;
    this.#consumerHandles = consumerHandles;
    this.#config = context.config;
    this.#ledger = new Ledger(context.config.messages);
    this.#startUs = context.clock.nowUs();
    this.#deadlineUs = this.#startUs + context.config.timeoutMs * 1000;
    this.#timeline = new Timeline(this.#startUs);
    this.#executor = new Executor(context.config.task, seededRandom(context.config.seed));
    this.#histograms = {
      publish: createLatencyHistogram(),
      endToEnd: createLatencyHistogram(),
      execution: createLatencyHistogram(),
      completion: createLatencyHistogram(),
    };
  }

  async run(): Promise<PipelineOutcome> {
    const { config, clock } = this.#ctx;
    const cpuBefore = process.cpuUsage();
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const onAbort = (): void => this.#finish('interrupted', 'interrupted by signal');
    this.#ctx.signal?.addEventListener('abort', onAbort, { once: true });

    const consumerHandles = this.#consumerHandles;
    const consumers = consumerHandles.map((handle, c) =>
      this.#consume(handle, this.#ctx.queues[c % this.#ctx.queues.length]!),
    );
    const publishers = Array.from({ length: config.publishConcurrency }, () => this.#publish());
    const ticker = this.#startTicker();
    try {
      await Promise.all(publishers);
      this.#publishEndUs = clock.nowUs();
      await this.#drain();
    } finally {
      this.#drainEndUs ||= clock.nowUs();
      this.#stopConsumers = true;
      clearInterval(ticker.timer);
      await ticker.idle();
      // Give batches in hand a moment to settle, then close: closing ends receives still blocked.
      await Promise.race([Promise.all(consumers), sleep(CONSUMER_GRACE_MS)]);
      await Promise.all(consumerHandles.map((handle) => handle.close().catch(() => undefined)));
      await Promise.all(consumers);
      this.#ctx.signal?.removeEventListener('abort', onAbort);
      loopDelay.disable();
    }
    // A full drain ends at the last completion, not after the consumers' last blocking receive returned.
    const drained = this.#status === 'completed' && this.#accountedFor() && this.#lastCompletionUs > 0;
    const endUs = drained ? this.#lastCompletionUs : this.#drainEndUs;
    const finalDepth = await this.#sampleDepth().catch(() => this.#depth ?? EMPTY_DEPTH);
    const cpu = process.cpuUsage(cpuBefore);
    const wallMs = (endUs - this.#startUs) / 1000;
    return {
      status: this.#status,
      reason: this.#reason,
      startUs: this.#startUs,
      publishEndUs: this.#publishEndUs || endUs,
      endUs,
      ledger: this.#ledger.counts(),
      missing: this.#ledger.missing(20),
      counters: { ...this.#counters },
      histograms: this.#histograms,
      timeline: this.#timeline.points(),
      finalDepth,
      errors: [...this.#errors.values()],
      harness: {
        cpuUserMs: cpu.user / 1000,
        cpuSystemMs: cpu.system / 1000,
        cpuCores: wallMs > 0 ? (cpu.user + cpu.system) / 1000 / wallMs : 0,
        peakRssBytes: process.resourceUsage().maxRSS * 1024,
        eventLoopDelayP50Ms: loopDelay.percentile(50) / 1e6,
        eventLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      },
    };
  }

  /** One publisher: claims the next batch of indices until all are sent, paced when a rate is set. */
  async #publish(): Promise<void> {
    const { config, broker, clock, queues } = this.#ctx;
    const encoder = new MessageEncoder(config.payloadBytes);
    const limiter =
      config.ratePerSec > 0 ? new RateLimiter(config.ratePerSec, this.#startUs, clock, sleep) : undefined;
    let consecutiveErrors = 0;
    while (!this.#stopPublishing) {
      const first = this.#nextIndex;
      if (first >= config.messages) return;
      const count = Math.min(config.publishBatch, config.messages - first);
      this.#nextIndex += count;
      const batchNumber = Math.floor(first / config.publishBatch);
      const queue = queues[batchNumber % queues.length]!;
      let sentUs: number;
      const messages = new Array<{ body: string }>(count);
      if (limiter) {
        // Sent when the batch's last message is due; each message keeps its own intended time.
        await limiter.waitFor(first + count - 1);
        for (let k = 0; k < count; k++) messages[k] = { body: encoder.encode(first + k, limiter.intendedUs(first + k)) };
        sentUs = limiter.intendedUs(first);
      } else {
        sentUs = clock.nowUs();
        for (let k = 0; k < count; k++) messages[k] = { body: encoder.encode(first + k, sentUs) };
      }
      this.#counters.publishCalls++;
      try {
        await broker.publish(queue, messages);
        const ackUs = clock.nowUs();
        this.#published += count;
        consecutiveErrors = 0;
        this.#timeline.add('published', count, ackUs);
        if (first + count > config.warmupMessages) this.#recordPublish(first, count, ackUs, sentUs, limiter);
      } catch (error) {
        this.#publishFailed += count;
        for (let k = 0; k < count; k++) this.#ledger.markPublishFailed(first + k);
        this.#counters.publishErrors++;
        this.#noteError('publish', error);
        if (++consecutiveErrors >= MAX_CONSECUTIVE_PUBLISH_ERRORS) {
          this.#finish('failed', `${consecutiveErrors} publish calls failed in a row: ${describeError(error)}`);
          return;
        }
        await sleep(ERROR_BACKOFF_MS);
      }
      if (clock.nowUs() > this.#deadlineUs) this.#finish('timeout', `--timeout ${config.timeoutMs} ms ran out while publishing`);
    }
  }

  #recordPublish(first: number, count: number, ackUs: number, sentUs: number, limiter: RateLimiter | undefined): void {
    const h = this.#histograms.publish;
    if (!limiter) {
      h.recordValueWithCount(clampUs(ackUs - sentUs), count);
      return;
    }
    for (let k = 0; k < count; k++) {
      if (first + k >= this.#config.warmupMessages) h.recordValue(clampUs(ackUs - limiter.intendedUs(first + k)));
    }
  }

  /** One consumer: receive a batch, run its tasks, ack what succeeded, nack what failed. */
  async #consume(handle: Broker, queue: string): Promise<void> {
    const { config, clock } = this.#ctx;
    const receiveOptions = { maxMessages: config.receiveBatch, waitMs: config.receiveWaitMs };
    const warmup = config.warmupMessages;
    const ledger = this.#ledger;
    const e2e = this.#histograms.endToEnd;
    while (!this.#stopConsumers) {
      let batch: ReceivedMessage[];
      try {
        this.#counters.receiveCalls++;
        batch = await handle.receive(queue, receiveOptions);
      } catch (error) {
        if (this.#stopConsumers) return; // the handle was closed under a blocked receive
        this.#counters.receiveErrors++;
        this.#noteError('receive', error);
        await sleep(ERROR_BACKOFF_MS);
        continue;
      }
      if (batch.length === 0) {
        this.#counters.emptyReceives++;
        continue;
      }
      const receivedUs = clock.nowUs();
      this.#processing += batch.length;
      this.#timeline.add('received', batch.length, receivedUs);
      // Indices and send times of this batch, decoded once; -1 marks a body that is not ours.
      const indices = new Array<number>(batch.length);
      const sentTimes = new Array<number>(batch.length);
      for (let k = 0; k < batch.length; k++) {
        const message = batch[k]!;
        const stamp = decodeMessage(message.body);
        if (stamp === undefined || stamp.i >= config.messages) {
          indices[k] = -1;
          sentTimes[k] = 0;
          this.#counters.malformed++;
          ledger.markUnknown();
          continue;
        }
        indices[k] = stamp.i;
        sentTimes[k] = stamp.t;
        ledger.markDelivered(stamp.i);
        if (message.receiveCount > 1) this.#counters.redeliveries++;
        if (stamp.i >= warmup) e2e.recordValue(clampUs(receivedUs - stamp.t));
      }
      try {
        if (this.#executor.trivial) {
          await this.#settle(handle, queue, batch, indices, sentTimes, undefined);
        } else {
          const outcomes = await Promise.all(batch.map((_, k) => (indices[k]! < 0 ? true : this.#execute(indices[k]!))));
          await this.#settle(handle, queue, batch, indices, sentTimes, outcomes);
        }
      } finally {
        this.#processing -= batch.length;
      }
    }
  }

  async #execute(index: number): Promise<boolean> {
    const started = this.#ctx.clock.nowUs();
    const ok = await this.#executor.run();
    if (index >= this.#config.warmupMessages) {
      this.#histograms.execution.recordValue(clampUs(this.#ctx.clock.nowUs() - started));
    }
    return ok;
  }

  /** Acks the successes (and malformed bodies), nacks the failures, then books the completions. */
  async #settle(
    handle: Broker,
    queue: string,
    batch: ReceivedMessage[],
    indices: number[],
    sentTimes: number[],
    outcomes: boolean[] | undefined,
  ): Promise<void> {
    let toAck: ReceivedMessage[] = batch;
    if (outcomes) {
      toAck = [];
      const toNack: ReceivedMessage[] = [];
      for (let k = 0; k < batch.length; k++) (outcomes[k] ? toAck : toNack).push(batch[k]!);
      if (toNack.length > 0) {
        this.#counters.taskFailures += toNack.length;
        this.#timeline.add('failed', toNack.length, this.#ctx.clock.nowUs());
        try {
          await handle.nack(queue, toNack, this.#config.retryDelayMs);
        } catch (error) {
          this.#counters.ackErrors++;
          this.#noteError('nack', error);
        }
      }
    }
    if (toAck.length === 0) return;
    try {
      await handle.ack(queue, toAck);
    } catch (error) {
      // Not acked: an at-least-once broker delivers them again, so they are not booked as completed.
      this.#counters.ackErrors++;
      this.#noteError('ack', error);
      return;
    }
    const ackedUs = this.#ctx.clock.nowUs();
    const warmup = this.#config.warmupMessages;
    const completion = this.#histograms.completion;
    let completed = 0;
    for (let k = 0; k < batch.length; k++) {
      const index = indices[k]!;
      if (index < 0 || (outcomes && !outcomes[k])) continue;
      this.#ledger.markCompleted(index);
      completed++;
      if (index >= warmup) completion.recordValue(clampUs(ackedUs - sentTimes[k]!));
    }
    this.#timeline.add('completed', completed, ackedUs);
    this.#lastCompletionUs = ackedUs;
    if (this.#wakeDrain && this.#accountedFor()) this.#wakeDrain();
  }

  /** Waits until every published message is accounted for, the broker is empty, or time runs out. */
  async #drain(): Promise<void> {
    const { clock, config } = this.#ctx;
    let emptySamples = 0;
    let lastSample = this.#depthSamples;
    while (!this.#stopConsumers) {
      if (this.#accountedFor()) return;
      if (clock.nowUs() > this.#deadlineUs) {
        this.#finish('timeout', `--timeout ${config.timeoutMs} ms ran out with ${this.#outstanding()} messages outstanding`);
        return;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(100, this.#tickMs));
        this.#wakeDrain = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wakeDrain = undefined;
      // The broker empty on three samples in a row with nothing in our hands: the rest can never arrive.
      if (this.#depthSamples === lastSample) continue;
      lastSample = this.#depthSamples;
      const depth = this.#depth;
      const empty = depth !== undefined && depth.ready + depth.inFlight + depth.delayed === 0;
      emptySamples = empty && this.#processing === 0 ? emptySamples + 1 : 0;
      if (emptySamples >= 3) return;
    }
  }

  #accountedFor(): boolean {
    const dead = this.#config.maxReceives > 0 ? (this.#depth?.dead ?? 0) : 0;
    return this.#ledger.completedCount() + dead >= this.#published;
  }

  #outstanding(): number {
    return Math.max(0, this.#config.messages - this.#publishFailed - this.#ledger.completedCount());
  }

  get #tickMs(): number {
    return this.#ctx.tickMs ?? 500;
  }

  #startTicker(): { timer: NodeJS.Timeout; idle: () => Promise<void> } {
    let pending: Promise<void> = Promise.resolve();
    let busy = false;
    let lastCompleted = 0;
    let lastUs = this.#startUs;
    const timer = setInterval(() => {
      if (busy) return; // a slow depth call never piles up
      busy = true;
      pending = this.#sampleDepth()
        .catch((error: unknown) => {
          this.#noteError('depth', error);
          return this.#depth;
        })
        .then(() => {
          const nowUs = this.#ctx.clock.nowUs();
          const completed = this.#ledger.completedCount();
          const rate = ((completed - lastCompleted) * 1e6) / Math.max(1, nowUs - lastUs);
          lastCompleted = completed;
          lastUs = nowUs;
          this.#ctx.onProgress?.({
            phase: this.#publishEndUs ? 'drain' : 'run',
            elapsedMs: (nowUs - this.#startUs) / 1000,
            expected: this.#config.messages,
            published: this.#published,
            completed,
            publishFailed: this.#publishFailed,
            completeRatePerSec: rate,
            depth: this.#depth ? this.#depth.ready + this.#depth.inFlight + this.#depth.delayed : undefined,
          });
        })
        .finally(() => {
          busy = false;
        });
    }, this.#tickMs);
    return { timer, idle: () => pending };
  }

  async #sampleDepth(): Promise<QueueDepth> {
    const depths = await Promise.all(this.#ctx.queues.map((queue) => this.#ctx.broker.depth(queue)));
    const total = depths.reduce(
      (sum, d) => ({
        ready: sum.ready + d.ready,
        inFlight: sum.inFlight + d.inFlight,
        delayed: sum.delayed + d.delayed,
        dead: sum.dead + d.dead,
      }),
      EMPTY_DEPTH,
    );
    this.#depth = total;
    this.#depthSamples++;
    this.#timeline.setDepth(total.ready + total.inFlight + total.delayed, this.#ctx.clock.nowUs());
    return total;
  }

  #finish(status: RunStatus, reason: string): void {
    if (this.#status === 'completed') {
      this.#status = status;
      this.#reason = reason;
    }
    this.#stopPublishing = true;
    this.#stopConsumers = true;
  }

  #noteError(operation: string, error: unknown): void {
    if (!this.#errors.has(operation)) this.#errors.set(operation, `${operation}: ${describeError(error)}`);
  }
}

const MAX_TRACKABLE_US = 3_600_000_000;

/** Histograms take whole µs from 1 to an hour; anything outside is clamped, never thrown. */
function clampUs(valueUs: number): number {
  return valueUs < 1 ? 1 : valueUs > MAX_TRACKABLE_US ? MAX_TRACKABLE_US : Math.round(valueUs);
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
