// Publisher -> broker -> subscriber -> executor, run once with a ledger that proves what arrived.
// Phases: run (publish while consuming), drain (until every message is accounted for, the broker
// is empty, or the deadline passes). Preparing and tearing down queues is the runner's job.
//
// LIMITATION: publishers, consumers and tasks share this process's event loop (the outcome's harness
// cost says how busy it was). Under --rate a batch goes out when it is full or its oldest message has
// waited --linger-ms, so its messages count up to that wait as latency (batchWait says how much). The
// drain ends on an empty broker only once the ledger has agreed with it for a full receive wait (and,
// with losses outstanding on a broker with visibility timeouts, for a visibility timeout): a depth may
// be approximate and late. Completions of messages whose publish was refused (a batch stored in part)
// never stand in for accepted ones still out.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { settledDespite, type Broker, type QueueDepth, type ReceivedMessage } from '../broker.ts';
import type { Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import { createLatencyHistogram, recordLatency, recordLatencyTimes, RunRecorder } from '../metrics/histogram.ts';
import { Ledger } from '../metrics/ledger.ts';
import { Timeline } from '../metrics/timeline.ts';
import { describeError } from '../errors.ts';
import { Executor, seededRandom } from '../pipeline/executor.ts';
import { FOREIGN, MessageDecoder, MessageEncoder, newRunToken } from '../pipeline/message.ts';
import { RateLimiter } from '../pipeline/rate-limiter.ts';
import { TaskPool } from '../pipeline/task-pool.ts';
import type { ConsumerSet, SubscriberSink } from '../pipeline/sink.ts';
import { backoffMs, Pauses, until, withinMs } from '../pipeline/waits.ts';
import type { PipelineHistograms, PipelineOutcome, RunProgress, RunStatus } from '../outcome.ts';

/**
 * Per-message behaviour a scenario can change; every hook is optional and runs on the hot path, so
 * it must be cheap and must not throw. `index` is the message's index, `receiveCount` the broker's.
 */
export interface PipelineHooks {
  /** Publish delay of message `index`, ms (the broker needs `capabilities.delay`); 0 = none. */
  publishDelayMs?(index: number): number;
  /** Runs the task of one delivery instead of the config's executor; resolves true on success, never rejects. */
  runTask?(index: number, receiveCount: number): Promise<boolean>;
  /** Delay before a failed delivery is given again, ms; default `config.retryDelayMs`. */
  retryDelayMs?(index: number, receiveCount: number): number;
  /** Every delivery of a harness message, warm-up included: send (or intended send) and receive times, monotonic µs. */
  onDelivered?(index: number, receiveCount: number, sentUs: number, receivedUs: number): void;
  /** Every task run, warm-up included: its execution time in µs and whether it succeeded. */
  onExecuted?(index: number, receiveCount: number, executionUs: number, ok: boolean): void;
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
  /** A scenario's per-message behaviour (delays, its own tasks, retry schedules, observers). */
  readonly hooks?: PipelineHooks;
  /**
   * Consumers run elsewhere (child processes, fan-out groups) that report to the pipeline; it runs none
   * of its own then. They run the config's task; of the hooks only onDelivered sees their deliveries.
   */
  readonly consumers?: ConsumerSet;
  /**
   * Runs once every connection of the run is open, before its clock starts and anything is published:
   * backlog reads the server's memory here, so the consumers' connection buffers are not counted as
   * the messages' memory.
   */
  readonly beforePublish?: () => Promise<void>;
  /**
   * When set, consumers start only once every message is published and this has resolved, so a
   * scenario can look at the full queue in between (backlog measures the broker's memory there).
   */
  readonly afterPublish?: () => Promise<void>;
  /**
   * The run's identity, written into every body (src/pipeline/message.ts): consumers book only bodies
   * that carry it, and count the rest as foreign. Default: a fresh random token for this pipeline.
   */
  readonly runToken?: string;
  /** When the publisher gives up: after this many failed calls in a row (default 20), backing off this long after each (default 100 ms). */
  readonly publishErrors?: { readonly giveUpAfter: number; readonly backoffMs: number };
}

const MAX_CONSECUTIVE_PUBLISH_ERRORS = 20;
/** Where a pooled consumer's finished tasks wait to be acked (or nacked) together. */
interface Settler {
  add(message: ReceivedMessage, index: number, sentUs: number, ok: boolean): void;
  /** Settles whatever is waiting now. */
  flush(): void;
}

/** Longest a finished pooled task waits for neighbours to share its ack call, ms. */
const ACK_COALESCE_MS = 2;
/** How long consumers may finish the batch in hand once the run is over, before their handles close. */
const CONSUMER_GRACE_MS = 250;
/** The same after an interrupt, a timeout or a failure: work in hand gets this long to finish, ms. */
const STOP_GRACE_MS = 2000;
/** Longest the run waits for a depth sample once it is over (the broker may be gone), ms. */
const FINAL_SAMPLE_LIMIT_MS = 3000;
/** Receives that have all failed for this long end the drain as failed (the broker is gone), ms. */
const RECEIVE_OUTAGE_LIMIT_MS = 15_000;
/** The pipeline's own bounds after a run, for the result's `limits`. */
export const PIPELINE_LIMITS = { stopGraceMs: STOP_GRACE_MS, closeMs: FINAL_SAMPLE_LIMIT_MS } as const;
const EMPTY_DEPTH: QueueDepth = { ready: 0, inFlight: 0, delayed: 0, dead: 0 };

/** Consumer handles opened at once while a run connects: a few round trips each, so many at a time. */
const CONNECT_CONCURRENCY = 16;

export async function runPipeline(context: PipelineContext): Promise<PipelineOutcome> {
  // Consumers connect before the clock starts: connection set-up is not part of the measured run, but
  // it is part of --timeout, which bounds the whole run (what set-up took is taken from what is left).
  const setupStartedMs = performance.now();
  const deadlineMs = setupStartedMs + context.config.timeoutMs;
  // One token for the publishers and every consumer, wherever it runs.
  const runToken = context.runToken ?? newRunToken();
  if (context.consumers) {
    await context.consumers.prepare(runToken);
    await context.beforePublish?.();
    return new PipelineRun({ ...context, runToken }, [], [], performance.now() - setupStartedMs).run();
  }
  // With a worker pool each consumer also gets a handle to ack on, so a finished task's ack never
  // queues behind that consumer's blocking receive (redis-stream reads and acks on one connection).
  const pooled = context.config.taskConcurrency > 0;
  const wanted = context.config.consumers * (pooled ? 2 : 1);
  const opened: Broker[] = [];
  try {
    // Opened side by side, in order (consumer c reads queue c % queues); none once --timeout has run out.
    for (let first = 0; first < wanted && performance.now() < deadlineMs; first += CONNECT_CONCURRENCY) {
      const count = Math.min(CONNECT_CONCURRENCY, wanted - first);
      const batch = await Promise.allSettled(Array.from({ length: count }, () => context.broker.duplicate()));
      for (const result of batch) if (result.status === 'fulfilled') opened.push(result.value);
      const failed = batch.find((result) => result.status === 'rejected');
      if (failed) throw failed.reason;
    }
    await context.beforePublish?.();
  } catch (error) {
    await Promise.all(opened.map((handle) => handle.close().catch(() => undefined)));
    throw error;
  }
  const handles = pooled ? opened.filter((_, k) => k % 2 === 0) : opened;
  const settleHandles = pooled ? opened.filter((_, k) => k % 2 === 1) : [];
  return new PipelineRun({ ...context, runToken }, handles, settleHandles, performance.now() - setupStartedMs).run();
}

class PipelineRun {
  readonly #ctx: PipelineContext;
  readonly #config: RunConfig;
  readonly #ledger: Ledger;
  readonly #timeline: Timeline;
  readonly #executor: Executor;
  readonly #runToken: string;
  readonly #decoder: MessageDecoder;
  readonly #histograms: PipelineHistograms;
  /** End-to-end and completion latencies of a batch come in runs of equal values: one record per run. */
  readonly #endToEndRuns: RunRecorder;
  readonly #completionRuns: RunRecorder;
  readonly #startUs: number;
  readonly #deadlineUs: number;
  readonly #errors = new Map<string, string>();
  #stopConsumers = false;
  #stopPublishing = false;
  /** Pacing and back-off waits; #finish cuts them short. */
  readonly #pauses = new Pauses();
  /** Monotonic µs of the last receive that answered, and of the last that failed (outage detection). */
  #lastReceiveOkUs = 0;
  #lastReceiveErrorUs = 0;
  #publishEndUs = 0;
  /** Next message index to publish: publishers claim batches from it. */
  #nextIndex = 0;
  /** Batches claimed so far: they go to the queues in turn. */
  #batchesClaimed = 0;
  /** Messages received and not yet acked or nacked, across this process's consumers. */
  #processing = 0;
  /** Bumped on every depth sample, so the drain counts distinct samples. */
  #depthSamples = 0;
  /** When the last completion was booked, monotonic µs: the end of a run that drained fully. */
  #lastCompletionUs = 0;
  /** When the last delivery was booked, monotonic µs: the drain's quiet period counts from it. */
  #lastDeliveryUs = 0;
  /** Until when a nacked message may still come back (its retry delay), monotonic µs. */
  #mayReturnUntilUs = 0;
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
  /** One per consumer with a worker pool (acks and nacks go through it); empty otherwise. */
  readonly #settleHandles: readonly Broker[];
  /** The shared worker pool of `--concurrency` slots; undefined when each consumer runs whole batches. */
  readonly #pool: TaskPool | undefined;
  readonly #hooks: PipelineHooks;
  /** Set once the consumer handles are closed: late tasks then leave their messages to the broker. */
  #handlesClosed = false;

  /** What connecting took before this run's clock started, ms: it comes off --timeout. */
  readonly #setupMs: number;

  constructor(context: PipelineContext, consumerHandles: readonly Broker[], settleHandles: readonly Broker[], setupMs: number) {
    this.#setupMs = setupMs;
    this.#ctx = context;
    this.#consumerHandles = consumerHandles;
    this.#settleHandles = settleHandles;
    this.#hooks = context.hooks ?? {};
    this.#pool = context.config.taskConcurrency > 0 ? new TaskPool(context.config.taskConcurrency) : undefined;
    this.#config = context.config;
    this.#ledger = new Ledger(context.config.messages);
    this.#startUs = context.clock.nowUs();
    this.#deadlineUs = this.#startUs + (context.config.timeoutMs - setupMs) * 1000;
    this.#timeline = new Timeline(this.#startUs);
    this.#executor = new Executor(context.config.task, seededRandom(context.config.seed));
    this.#runToken = context.runToken ?? newRunToken();
    this.#decoder = new MessageDecoder(this.#runToken);
    this.#histograms = {
      publish: createLatencyHistogram(),
      endToEnd: createLatencyHistogram(),
      execution: createLatencyHistogram(),
      completion: createLatencyHistogram(),
      ...(context.config.ratePerSec > 0 ? { batchWait: createLatencyHistogram() } : {}),
    };
    this.#endToEndRuns = new RunRecorder(this.#histograms.endToEnd);
    this.#completionRuns = new RunRecorder(this.#histograms.completion);
  }

  async run(): Promise<PipelineOutcome> {
    const { config, clock } = this.#ctx;
    const cpuBefore = process.cpuUsage();
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const onAbort = (): void => this.#finish('interrupted', 'interrupted by signal');
    // A signal that came while queues were being prepared stops the run before it publishes anything.
    if (this.#ctx.signal?.aborted) onAbort();
    else this.#ctx.signal?.addEventListener('abort', onAbort, { once: true });
    this.#lastReceiveOkUs = this.#startUs;
    // --timeout bounds publish and drain together; waits in progress (pacing, back-off) are cut short.
    // Connecting took the whole of --timeout: nothing is published.
    if (this.#setupMs >= config.timeoutMs) this.#finish('timeout', this.#timeoutReason());
    const deadlineTimer = setTimeout(() => this.#finish('timeout', this.#timeoutReason()), Math.max(0, config.timeoutMs - this.#setupMs));

    const consumerHandles = this.#consumerHandles;
    const external = this.#ctx.consumers;
    const afterPublish = this.#ctx.afterPublish;
    let consumers: Promise<void>[] = [];
    const startConsumers = (): void => {
      external?.start(this.#sink());
      consumers = consumerHandles.map((handle, c) => {
        const queue = this.#ctx.queues[c % this.#ctx.queues.length]!;
        return this.#pool ? this.#consumePooled(handle, this.#settleHandles[c]!, queue, this.#pool) : this.#consume(handle, queue);
      });
    };
    const ticker = this.#startTicker();
    try {
      if (!afterPublish) startConsumers();
      await Promise.all(Array.from({ length: config.publishConcurrency }, () => this.#publish()));
      this.#publishEndUs = clock.nowUs();
      if (afterPublish && !this.#stopConsumers) {
        await afterPublish();
        startConsumers();
      }
      await this.#drain();
    } finally {
      clearTimeout(deadlineTimer);
      this.#drainEndUs ||= clock.nowUs();
      // Also when something threw: no publisher or consumer may outlive the run.
      this.#stopPublishing = true;
      this.#stopConsumers = true;
      this.#pauses.stop();
      this.#pool?.close();
      clearInterval(ticker.timer);
      await withinMs(ticker.idle(), FINAL_SAMPLE_LIMIT_MS);
      await external?.stop();
      // Give batches in hand time to settle (longer when the run was cut short, so in-flight work is
      // not thrown away), then close: closing ends receives still blocked. Consumers still busy after
      // that (a task longer than the grace) are left behind: their late acks find closed handles.
      const graceMs = this.#status === 'completed' ? CONSUMER_GRACE_MS : STOP_GRACE_MS;
      await this.#settled(graceMs);
      this.#handlesClosed = true;
      await withinMs(
        Promise.all([...consumerHandles, ...this.#settleHandles].map((handle) => handle.close().catch(() => undefined))),
        FINAL_SAMPLE_LIMIT_MS,
      );
      await withinMs(Promise.all(consumers), CONSUMER_GRACE_MS);
      // Whatever the publishers never got to: neither published nor lost.
      this.#markNotSent(this.#nextIndex, config.messages);
      this.#ctx.signal?.removeEventListener('abort', onAbort);
      loopDelay.disable();
    }
    // A full drain ends at the last completion, not after the consumers' last blocking receive returned.
    const drained = this.#status === 'completed' && this.#acceptedDone() && this.#lastCompletionUs > 0;
    const endUs = drained ? this.#lastCompletionUs : this.#drainEndUs;
    const finalDepth = (await withinMs(this.#sampleDepth().catch(() => undefined), FINAL_SAMPLE_LIMIT_MS)) ?? this.#depth ?? EMPTY_DEPTH;
    const cpu = process.cpuUsage(cpuBefore);
    const wallMs = (endUs - this.#startUs) / 1000;
    // Consumer processes are the harness too: their CPU adds up, and so do their peaks (an upper bound).
    const children = external?.usage?.();
    const cpuUserMs = cpu.user / 1000 + (children?.cpuUserMs ?? 0);
    const cpuSystemMs = cpu.system / 1000 + (children?.cpuSystemMs ?? 0);
    const consumerRequests = external?.requestCounts?.();
    return {
      status: this.#status,
      reason: this.#reason,
      startUs: this.#startUs,
      publishEndUs: this.#publishEndUs || endUs,
      endUs,
      lastDeliveryUs: this.#lastDeliveryUs,
      ledger: this.#ledger.counts(),
      missing: this.#ledger.missing(20),
      counters: { ...this.#counters },
      histograms: this.#histograms,
      timeline: this.#timeline.points(),
      finalDepth,
      errors: [...this.#errors.values()],
      harness: {
        cpuUserMs,
        cpuSystemMs,
        cpuCores: wallMs > 0 ? (cpuUserMs + cpuSystemMs) / wallMs : 0,
        peakRssBytes: process.resourceUsage().maxRSS * 1024 + (children?.peakRssBytes ?? 0),
        eventLoopDelayP50Ms: loopDelay.percentile(50) / 1e6,
        eventLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
        ...(children ? { consumerProcesses: children } : {}),
      },
      ...(consumerRequests ? { consumerRequests } : {}),
    };
  }

  /** One publisher: claims the next batch of indices until all are sent, paced when a rate is set. */
  async #publish(): Promise<void> {
    const { config, broker, clock, queues } = this.#ctx;
    const encoder = new MessageEncoder(config.payloadBytes, this.#runToken);
    // Pacing waits end early when the run stops (interrupt, timeout): the sleeper then throws.
    const pace = async (ms: number): Promise<void> => {
      await this.#pause(ms);
      if (this.#stopPublishing) throw new Error('stopped');
    };
    const limiter =
      config.ratePerSec > 0 ? new RateLimiter(config.ratePerSec, this.#startUs, clock, pace) : undefined;
    const lingerUs = config.lingerMs * 1000;
    let consecutiveErrors = 0;
    while (!this.#stopPublishing) {
      const first = this.#nextIndex;
      if (first >= config.messages) return;
      let count = Math.min(config.publishBatch, config.messages - first);
      // At a fixed rate a batch leaves when full or once its oldest message has waited --linger-ms, as a
      // Kafka producer's does: it takes what is due by then, or everything already due when behind.
      const claimUs = limiter ? clock.nowUs() : 0;
      if (limiter) count = Math.min(count, Math.max(1, limiter.dueBy(Math.max(claimUs, limiter.intendedUs(first) + lingerUs)) - first));
      this.#nextIndex += count;
      const queue = queues[this.#batchesClaimed++ % queues.length]!;
      let sentUs: number;
      const messages = new Array<{ body: string; delayMs?: number }>(count);
      if (limiter) {
        // Sent when the batch's last message is due; each message keeps its own intended time.
        try {
          await limiter.waitFor(first + count - 1);
        } catch {
          this.#markNotSent(first, first + count); // the run stopped before this batch was due
          return;
        }
        for (let k = 0; k < count; k++) messages[k] = { body: encoder.encode(first + k, limiter.intendedUs(first + k)) };
        sentUs = limiter.intendedUs(first);
        this.#recordBatchWait(first, count, claimUs, limiter);
      } else {
        sentUs = clock.nowUs();
        for (let k = 0; k < count; k++) messages[k] = { body: encoder.encode(first + k, sentUs) };
      }
      const delayOf = this.#hooks.publishDelayMs;
      if (delayOf) {
        for (let k = 0; k < count; k++) {
          const delayMs = delayOf(first + k);
          if (delayMs > 0) messages[k]!.delayMs = delayMs;
        }
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
        const policy = this.#ctx.publishErrors;
        if (++consecutiveErrors >= (policy?.giveUpAfter ?? MAX_CONSECUTIVE_PUBLISH_ERRORS)) {
          this.#finish('failed', `${consecutiveErrors} publish calls failed in a row: ${describeError(error)}`);
          return;
        }
        // Back off: a scenario's fixed pause, else 0.1 s doubling to 1 s (about 17 s before giving up).
        const pauseMs = policy?.backoffMs ?? backoffMs(consecutiveErrors);
        if (pauseMs > 0) await this.#pause(pauseMs);
      }
      if (clock.nowUs() > this.#deadlineUs) this.#finish('timeout', this.#timeoutReason());
    }
  }

  /**
   * Records how long each message of the batch past the warm-up waited for the batch to leave: from when
   * it was due, or when the batch was taken up if later, to when the batch's last message was due.
   */
  #recordBatchWait(first: number, count: number, claimUs: number, limiter: RateLimiter): void {
    const h = this.#histograms.batchWait!;
    const readyUs = Math.max(claimUs, limiter.intendedUs(first + count - 1));
    for (let i = Math.max(first, this.#config.warmupMessages); i < first + count; i++) {
      recordLatency(h, readyUs - Math.max(claimUs, limiter.intendedUs(i)));
    }
  }

  /** Records the publish latency of the batch's messages past the warm-up (a batch may straddle its end). */
  #recordPublish(first: number, count: number, ackUs: number, sentUs: number, limiter: RateLimiter | undefined): void {
    const h = this.#histograms.publish;
    const from = Math.max(first, this.#config.warmupMessages);
    if (!limiter) {
      recordLatencyTimes(h, ackUs - sentUs, first + count - from);
      return;
    }
    for (let i = from; i < first + count; i++) recordLatency(h, ackUs - limiter.intendedUs(i));
  }

  /** One consumer: receive a batch, run its tasks, ack what succeeded, nack what failed. */
  async #consume(handle: Broker, queue: string): Promise<void> {
    const { config } = this.#ctx;
    const receiveOptions = { maxMessages: config.receiveBatch, waitMs: config.receiveWaitMs };
    let receiveErrors = 0;
    while (!this.#stopConsumers) {
      let batch: ReceivedMessage[];
      try {
        this.#counters.receiveCalls++;
        batch = await handle.receive(queue, receiveOptions);
      } catch (error) {
        if (this.#stopConsumers) return; // the handle was closed under a blocked receive
        this.#receiveFailed(error);
        await this.#pause(backoffMs(++receiveErrors));
        continue;
      }
      receiveErrors = 0;
      this.#lastReceiveOkUs = this.#ctx.clock.nowUs();
      if (batch.length === 0) {
        this.#counters.emptyReceives++;
        continue;
      }
      this.#processing += batch.length;
      const { indices, sentTimes } = this.#book(batch);
      try {
        if (this.#executor.trivial && !this.#hooks.runTask) {
          await this.#settle(handle, queue, batch, indices, sentTimes, undefined);
        } else {
          const outcomes = await Promise.all(
            batch.map((message, k) => (indices[k]! < 0 ? true : this.#execute(indices[k]!, message.receiveCount))),
          );
          // Tasks that outlived the stop grace leave their messages to the broker (the handle is closed).
          if (this.#handlesClosed) return;
          await this.#settle(handle, queue, batch, indices, sentTimes, outcomes);
        }
      } finally {
        this.#processing -= batch.length;
      }
    }
  }

  /**
   * A worker-pool consumer: takes free slots, receives at most that many messages, and starts each
   * task at once without waiting for the rest of its batch; each message is acked (or nacked) on its own.
   */
  async #consumePooled(handle: Broker, settleHandle: Broker, queue: string, pool: TaskPool): Promise<void> {
    const { config } = this.#ctx;
    const settler = this.#settler(settleHandle, queue, config.receiveBatch);
    let receiveErrors = 0;
    while (!this.#stopConsumers) {
      const slots = await pool.take(config.receiveBatch);
      if (slots === 0) return; // the pool closed: the run is over
      let batch: ReceivedMessage[];
      try {
        this.#counters.receiveCalls++;
        batch = await handle.receive(queue, { maxMessages: slots, waitMs: config.receiveWaitMs });
      } catch (error) {
        pool.release(slots);
        if (this.#stopConsumers) return;
        this.#receiveFailed(error);
        await this.#pause(backoffMs(++receiveErrors));
        continue;
      }
      receiveErrors = 0;
      this.#lastReceiveOkUs = this.#ctx.clock.nowUs();
      if (batch.length < slots) pool.release(slots - batch.length);
      if (batch.length === 0) {
        this.#counters.emptyReceives++;
        continue;
      }
      this.#processing += batch.length;
      const { indices, sentTimes } = this.#book(batch);
      for (let k = 0; k < batch.length; k++) {
        const message = batch[k]!;
        const index = indices[k]!;
        // Not awaited: the end of the run waits for what is in hand (#processing), not for these promises.
        void (async () => {
          let ok = false;
          try {
            ok = index < 0 ? true : await this.#execute(index, message.receiveCount);
          } catch (error) {
            // Only a scenario hook that broke its promise not to throw lands here; the message is nacked.
            this.#noteError('task', error);
          } finally {
            pool.release(1); // the worker is free; its ack goes out with its neighbours'
          }
          settler.add(message, index, sentTimes[k]!, ok);
        })();
      }
    }
    settler.flush();
  }

  /**
   * Gathers finished pooled tasks and settles them together: when a receive batch's worth is waiting,
   * or ACK_COALESCE_MS after the first one finished. Tasks that end together (the same fixed time)
   * then share one ack call instead of one call each (on SQS, one request instead of ten).
   */
  #settler(settleHandle: Broker, queue: string, most: number): Settler {
    let messages: ReceivedMessage[] = [];
    let indices: number[] = [];
    let sentTimes: number[] = [];
    let outcomes: boolean[] = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      clearTimeout(timer);
      timer = undefined;
      if (messages.length === 0) return;
      const batch = { messages, indices, sentTimes, outcomes };
      messages = [];
      indices = [];
      sentTimes = [];
      outcomes = [];
      void (async () => {
        try {
          if (!this.#handlesClosed) await this.#settle(settleHandle, queue, batch.messages, batch.indices, batch.sentTimes, batch.outcomes);
        } finally {
          this.#processing -= batch.messages.length;
        }
      })();
    };
    return {
      add: (message, index, sentUs, ok) => {
        messages.push(message);
        indices.push(index);
        sentTimes.push(sentUs);
        outcomes.push(ok);
        if (messages.length >= most || this.#stopConsumers) flush();
        else timer ??= setTimeout(flush, ACK_COALESCE_MS);
      },
      flush,
    };
  }

  /** Books a received batch in the ledger, the timeline and the end-to-end histogram; -1 marks a body that is not ours (malformed or foreign). */
  #book(batch: readonly ReceivedMessage[]): { indices: number[]; sentTimes: number[] } {
    const { config, clock } = this.#ctx;
    const receivedUs = clock.nowUs();
    this.#timeline.add('received', batch.length, receivedUs);
    const warmup = config.warmupMessages;
    const ledger = this.#ledger;
    const e2e = this.#endToEndRuns;
    const onDelivered = this.#hooks.onDelivered;
    const decoder = this.#decoder;
    const indices = new Array<number>(batch.length);
    const sentTimes = new Array<number>(batch.length);
    for (let k = 0; k < batch.length; k++) {
      const message = batch[k]!;
      const stamp = decoder.decode(message.body);
      if (stamp === FOREIGN) {
        // Another run's message (or a forged one): acked like a malformed body, never booked as a delivery.
        indices[k] = -1;
        sentTimes[k] = 0;
        ledger.markForeign();
        continue;
      }
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
      if (stamp.i >= warmup) e2e.add(receivedUs - stamp.t);
      onDelivered?.(stamp.i, message.receiveCount, stamp.t, receivedUs);
    }
    e2e.flush();
    this.#lastDeliveryUs = receivedUs;
    return { indices, sentTimes };
  }

  async #execute(index: number, receiveCount: number): Promise<boolean> {
    const started = this.#ctx.clock.nowUs();
    const runTask = this.#hooks.runTask;
    const ok = runTask ? await runTask(index, receiveCount) : await this.#executor.run();
    const executionUs = this.#ctx.clock.nowUs() - started;
    if (index >= this.#config.warmupMessages) recordLatency(this.#histograms.execution, executionUs);
    this.#hooks.onExecuted?.(index, receiveCount, executionUs, ok);
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
      const nackIndices: number[] = [];
      for (let k = 0; k < batch.length; k++) {
        if (outcomes[k]) {
          toAck.push(batch[k]!);
        } else {
          toNack.push(batch[k]!);
          nackIndices.push(indices[k]!);
        }
      }
      if (toNack.length > 0) {
        this.#counters.taskFailures += toNack.length;
        this.#timeline.add('failed', toNack.length, this.#ctx.clock.nowUs());
        await this.#nack(handle, queue, toNack, nackIndices);
      }
    }
    if (toAck.length === 0) return;
    /** Set when the ack settled only these (a partial failure); undefined when it settled all. */
    let acked: Set<ReceivedMessage> | undefined;
    try {
      await handle.ack(queue, toAck);
    } catch (error) {
      // Not acked: an at-least-once broker delivers them again, so they are not booked as completed.
      // Those the broker says it did settle are gone for good: booked, or they would count as lost.
      this.#counters.ackErrors++;
      this.#noteError('ack', error);
      const settled = settledDespite(error);
      if (settled.length === 0) return;
      acked = new Set(settled);
    }
    const ackedUs = this.#ctx.clock.nowUs();
    const warmup = this.#config.warmupMessages;
    const completion = this.#completionRuns;
    let completed = 0;
    for (let k = 0; k < batch.length; k++) {
      const index = indices[k]!;
      if (index < 0 || (outcomes && !outcomes[k]) || (acked && !acked.has(batch[k]!))) continue;
      this.#ledger.markCompleted(index);
      completed++;
      if (index >= warmup) completion.add(ackedUs - sentTimes[k]!);
    }
    completion.flush();
    this.#timeline.add('completed', completed, ackedUs);
    this.#lastCompletionUs = ackedUs;
    if (this.#wakeDrain && this.#accountedFor()) this.#wakeDrain();
  }

  /** Nacks failed deliveries, grouped by their retry delay when a scenario sets one per delivery. */
  async #nack(handle: Broker, queue: string, toNack: ReceivedMessage[], indices: number[]): Promise<void> {
    const delayOf = this.#hooks.retryDelayMs;
    const groups = new Map<number, ReceivedMessage[]>();
    if (!delayOf) {
      groups.set(this.#config.retryDelayMs, toNack);
    } else {
      for (let k = 0; k < toNack.length; k++) {
        const message = toNack[k]!;
        const delayMs = delayOf(indices[k]!, message.receiveCount);
        const group = groups.get(delayMs);
        if (group) group.push(message);
        else groups.set(delayMs, [message]);
      }
    }
    for (const [delayMs, messages] of groups) {
      this.#mayReturnUntilUs = Math.max(this.#mayReturnUntilUs, this.#ctx.clock.nowUs() + delayMs * 1000);
      try {
        await handle.nack(queue, messages, delayMs);
      } catch (error) {
        this.#counters.ackErrors++;
        this.#noteError('nack', error);
      }
    }
  }

  /** Waits until every published message is accounted for, the broker is empty, or time runs out. */
  async #drain(): Promise<void> {
    const { clock } = this.#ctx;
    let emptySamples = 0;
    let emptySinceUs = clock.nowUs();
    let lastSample = this.#depthSamples;
    while (!this.#stopConsumers) {
      if (this.#accountedFor()) return;
      const nowUs = clock.nowUs();
      if (nowUs > this.#deadlineUs) {
        this.#finish('timeout', this.#timeoutReason());
        return;
      }
      // Every receive has failed for a long while: the broker is gone, and waiting for --timeout helps nobody.
      if (this.#lastReceiveErrorUs > this.#lastReceiveOkUs && nowUs - this.#lastReceiveOkUs > RECEIVE_OUTAGE_LIMIT_MS * 1000) {
        this.#finish('failed', `no receive has succeeded for ${RECEIVE_OUTAGE_LIMIT_MS / 1000} s: ${this.#errors.get('receive') ?? 'receive failed'}`);
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
      // The broker empty on three samples in a row with nothing in our hands, and the ledger quiet for as
      // long as anything outstanding could still take to arrive: only then are the rest declared lost.
      if (this.#depthSamples === lastSample) continue;
      lastSample = this.#depthSamples;
      const depth = this.#depth;
      const empty = depth !== undefined && depth.ready + depth.inFlight + depth.delayed === 0;
      const quiet = empty && this.#inHand() === 0 && this.#lastDeliveryUs < emptySinceUs;
      if (!quiet) {
        emptySamples = 0;
        emptySinceUs = clock.nowUs();
        continue;
      }
      if (++emptySamples >= 3 && clock.nowUs() >= this.#lossDeclarableUs(emptySinceUs)) return;
    }
  }

  /**
   * The earliest moment the drain may take an empty broker's word that accepted messages are gone. A
   * depth can be approximate and late (SQS's ApproximateNumberOf* on AWS), so an empty reading alone is
   * not enough: a full receive wait must pass after it with nothing delivered; a nacked message may come
   * back until its retry delay has run out; and where unacked messages come back after a visibility
   * timeout, one that a consumer took and never settled (a crash, a receive lost in transit) may be out
   * of sight for that long, so losses are declared only a visibility timeout after the broker went quiet.
   */
  #lossDeclarableUs(emptySinceUs: number): number {
    const receiveWaitUs = this.#config.receiveWaitMs * 1000;
    let untilUs = Math.max(emptySinceUs, this.#mayReturnUntilUs) + receiveWaitUs;
    if (!this.#acceptedDone() && this.#ctx.broker.capabilities.visibilityTimeout) {
      untilUs = Math.max(untilUs, emptySinceUs + this.#config.visibilityTimeoutMs * 1000 + receiveWaitUs);
    }
    return untilUs;
  }

  /** Messages received and not yet settled, by this run's consumers and by those reporting from elsewhere. */
  #inHand(): number {
    return this.#processing + (this.#ctx.consumers?.inHand() ?? 0);
  }

  /** Books what consumers outside this run report, as the in-process consumers book it themselves. */
  #sink(): SubscriberSink {
    const warmup = this.#config.warmupMessages;
    const { endToEnd, execution, completion } = this.#histograms;
    const ledger = this.#ledger;
    const counters = this.#counters;
    const timeline = this.#timeline;
    const onDelivered = this.#hooks.onDelivered;
    return {
      delivered: (index, sentUs, receivedUs, receiveCount) => {
        timeline.add('received', 1, receivedUs);
        ledger.markDelivered(index);
        if (receivedUs > this.#lastDeliveryUs) this.#lastDeliveryUs = receivedUs;
        if (receiveCount > 1) counters.redeliveries++;
        if (index >= warmup) recordLatency(endToEnd, receivedUs - sentUs);
        onDelivered?.(index, receiveCount, sentUs, receivedUs);
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
        if (ackedUs > this.#lastCompletionUs) this.#lastCompletionUs = ackedUs;
        if (this.#wakeDrain && this.#accountedFor()) this.#wakeDrain();
      },
      failed: (count, atUs) => {
        counters.taskFailures += count;
        this.#mayReturnUntilUs = Math.max(this.#mayReturnUntilUs, atUs + this.#config.retryDelayMs * 1000);
        timeline.add('failed', count, atUs);
      },
      receiveCall: (empty) => {
        counters.receiveCalls++;
        if (empty) counters.emptyReceives++;
      },
      error: (operation, message) => {
        if (operation === 'receive') counters.receiveErrors++;
        else if (operation !== 'process') counters.ackErrors++;
        this.#noteError(operation, message);
      },
    };
  }

  /** Why --timeout ended the run, naming the phase it ran out in. */
  #timeoutReason(): string {
    const limit = `--timeout ${this.#config.timeoutMs / 1000} s ran out`;
    if (this.#setupMs >= this.#config.timeoutMs) {
      return `${limit} while connecting (${(this.#setupMs / 1000).toFixed(1)} s, ${this.#consumerHandles.length + this.#settleHandles.length} connections of consumers opened)`;
    }
    if (!this.#publishEndUs) return `${limit} while publishing (${this.#published} of ${this.#config.messages} published)`;
    return `${limit} while draining, with ${this.#outstanding()} messages outstanding`;
  }

  #receiveFailed(error: unknown): void {
    this.#counters.receiveErrors++;
    this.#lastReceiveErrorUs = this.#ctx.clock.nowUs();
    this.#noteError('receive', error);
  }

  /** Sleeps `ms`, or less if the run stops meanwhile. */
  #pause(ms: number): Promise<void> {
    return this.#pauses.pause(ms);
  }

  /** Resolves once nothing is in hand, or after `graceMs`. */
  async #settled(graceMs: number): Promise<void> {
    await until(() => this.#inHand() === 0, graceMs);
  }

  /** Every accepted message completed or dead-lettered. Refused ones that were stored anyway do not count towards it. */
  #acceptedDone(): boolean {
    const dead = this.#config.maxReceives > 0 ? (this.#depth?.dead ?? 0) : 0;
    return this.#ledger.completedCount() - this.#ledger.failedButCompletedCount() + dead >= this.#published;
  }

  /**
   * Nothing more can arrive: every accepted message is done, and every refused one turned up too. While
   * a refused message is unaccounted for it may still be in the broker (a batch refused part-way), so
   * the drain goes on until the broker is empty instead.
   */
  #accountedFor(): boolean {
    return this.#acceptedDone() && this.#ledger.failedButCompletedCount() >= this.#publishFailed;
  }

  #outstanding(): number {
    const acceptedCompleted = this.#ledger.completedCount() - this.#ledger.failedButCompletedCount();
    return Math.max(0, this.#config.messages - this.#publishFailed - acceptedCompleted);
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
    const total = sumDepths(await Promise.all(this.#ctx.queues.map((queue) => this.#ctx.broker.depth(queue))));
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
    this.#pauses.stop();
  }

  /** Books indices `from` up to `to` as never sent, here and in the consumers' own books. */
  #markNotSent(from: number, to: number): void {
    this.#ledger.markNotSent(from, to);
    this.#ctx.consumers?.notSent?.(from, to);
  }

  #noteError(operation: string, error: unknown): void {
    if (!this.#errors.has(operation)) this.#errors.set(operation, `${operation}: ${describeError(error)}`);
  }
}

/** Several queues' depths added up, field by field. */
export function sumDepths(depths: readonly QueueDepth[]): QueueDepth {
  return depths.reduce(
    (sum, d) => ({ ready: sum.ready + d.ready, inFlight: sum.inFlight + d.inFlight, delayed: sum.delayed + d.delayed, dead: sum.dead + d.dead }),
    EMPTY_DEPTH,
  );
}
