// Publisher -> broker -> subscriber -> executor, run once with a ledger that proves what arrived.
// Phases: connect (before the clock starts), run (publish while consuming), drain (until every message
// is accounted for, the broker is empty, or the deadline passes), stop. The parts are apart: publishers
// (publisher.ts), consumers (local-consumers.ts, or a set the caller brings), the books every consumer
// reports to (books.ts), and the drain with its loss rules (drain.ts). Preparing and tearing down queues
// is the runner's job.
//
// LIMITATION: publishers, consumers and tasks share this process's event loop (the outcome's harness
// cost says how busy it was). Under --rate a batch goes out when it is full or its oldest message has
// waited --linger-ms, so its messages count up to that wait as latency (batchWait says how much).

import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Broker, QueueDepth } from '../broker.ts';
import type { Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import { formatCount } from '../format.ts';
import { Executor, seededRandom } from '../pipeline/executor.ts';
import { newRunToken } from '../pipeline/message.ts';
import type { ConsumerSet, SubscriberSink } from '../pipeline/sink.ts';
import type { ConsumerHooks } from '../pipeline/subscriber.ts';
import { Pauses, withinMs } from '../pipeline/waits.ts';
import type { PipelineOutcome, RunProgress, RunStatus } from '../outcome.ts';
import { RunBooks } from './books.ts';
import { DepthWatch, Drain } from './drain.ts';
import { LocalConsumers } from './local-consumers.ts';
import { Publishers, type PublishErrorPolicy, type PublishJournal, type PublishShare, type PublishTarget } from './publisher.ts';

/**
 * Per-message behaviour a scenario can change; every hook is optional and runs on the hot path, so
 * it must be cheap and must not throw. `index` is the message's index, `receiveCount` the broker's.
 * The consumer hooks (runTask, retryDelayMs, onExecuted) reach the pipeline's own consumers only.
 */
export interface PipelineHooks extends ConsumerHooks {
  /** Publish delay of message `index`, ms (the broker needs `capabilities.delay`); 0 = none. */
  publishDelayMs?(index: number): number;
  /** Every delivery of a harness message, warm-up included: send (or intended send) and receive times, monotonic µs. */
  onDelivered?(index: number, receiveCount: number, sentUs: number, receivedUs: number): void;
}

export interface PipelineContext {
  /** The run's handle: the pipeline's own consumers duplicate theirs from it; publishes and depth go through it unless `target` is set. */
  readonly broker: Broker;
  /** Where publishes go and whose depth the drain watches, when that is not `broker` (fan-out's copier). */
  readonly target?: PublishTarget;
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
   * Consumers run elsewhere (child processes, fan-out groups) that report to the pipeline's books; it
   * runs none of its own then. They run the config's task; of the hooks only onDelivered sees their deliveries.
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
  readonly publishErrors?: PublishErrorPolicy;
  /**
   * A worker's share of a run spread over several processes or hosts (src/runner/worker.ts): its
   * publishers send only these indices, at this share of the rate, and other workers publish into and
   * consume from the same queues, so this pipeline's books alone never say the run is done: the drain
   * ends on an empty, quiet broker instead.
   */
  readonly share?: PublishShare;
  /** Told of every publish batch before and after its call (a worker's journal). */
  readonly publishJournal?: PublishJournal;
  /** Handed the run's books once it is over, before the outcome is returned (a worker writes its ledger's whole state). */
  readonly onBooks?: (books: RunBooks) => void;
  /** The sink consumer `c` of the pipeline's own reports to, given the run's sink; default that sink (a worker tees it into its journal). */
  readonly consumerSink?: (consumer: number, sink: SubscriberSink) => SubscriberSink;
}

/** How long consumers may finish the batch in hand once the run is over, before their handles close. */
const CONSUMER_GRACE_MS = 250;
/** The same after an interrupt, a timeout or a failure: work in hand gets this long to finish, ms. */
const STOP_GRACE_MS = 2000;
/** Longest the run waits for a depth sample once it is over (the broker may be gone), ms; closing handles has as long. */
const FINAL_SAMPLE_LIMIT_MS = 3000;
/** The pipeline's own bounds after a run, for the result's `limits`. */
export const PIPELINE_LIMITS = { stopGraceMs: STOP_GRACE_MS, closeMs: FINAL_SAMPLE_LIMIT_MS } as const;
const EMPTY_DEPTH: QueueDepth = { ready: 0, inFlight: 0, delayed: 0, dead: 0 };

export async function runPipeline(context: PipelineContext): Promise<PipelineOutcome> {
  // Consumers connect before the clock starts: connection set-up is not part of the measured run, but
  // it is part of --timeout, which bounds the whole run (what set-up took is taken from what is left).
  const setupStartedMs = performance.now();
  // One token for the publishers and every consumer, wherever it runs.
  const runToken = context.runToken ?? newRunToken();
  const consumers = context.consumers ?? ownConsumers(context, setupStartedMs + context.config.timeoutMs);
  await consumers.prepare(runToken);
  try {
    await context.beforePublish?.();
  } catch (error) {
    await consumers.stop(0);
    throw error;
  }
  const connections = consumers instanceof LocalConsumers ? consumers.connections : 0;
  return new PipelineRun(context, runToken, consumers, connections, performance.now() - setupStartedMs).run();
}

/** The pipeline's own consumers, in this process; none is connected once `connectDeadlineMs` (performance.now()) has passed. */
function ownConsumers(context: PipelineContext, connectDeadlineMs: number): LocalConsumers {
  const { config } = context;
  return new LocalConsumers({
    broker: context.broker,
    queues: context.queues,
    config,
    taskConcurrency: config.taskConcurrency,
    executor: new Executor(config.task, seededRandom(config.seed)),
    clock: context.clock,
    hooks: context.hooks,
    connectDeadlineMs,
    ...(context.consumerSink ? { sinkOf: context.consumerSink } : {}),
  });
}

class PipelineRun {
  readonly #ctx: PipelineContext;
  readonly #config: RunConfig;
  readonly #clock: Clock;
  readonly #books: RunBooks;
  readonly #consumers: ConsumerSet;
  readonly #publishers: Publishers;
  readonly #depth: DepthWatch;
  readonly #drain: Drain;
  readonly #startUs: number;
  /** Waits of publishers and consumers' back-offs; #finish cuts them short. */
  readonly #pauses = new Pauses();
  #stopped = false;
  #publishEndUs = 0;
  /** When the drain ended otherwise (empty broker, timeout, interrupt), monotonic µs. */
  #drainEndUs = 0;
  #status: RunStatus = 'completed';
  #reason: string | undefined;
  /** What connecting took before this run's clock started, ms: it comes off --timeout. */
  readonly #setupMs: number;
  /** Connections the run's own consumers opened (0 with consumers elsewhere), for the timeout reason. */
  readonly #connections: number;

  constructor(context: PipelineContext, runToken: string, consumers: ConsumerSet, connections: number, setupMs: number) {
    this.#ctx = context;
    this.#config = context.config;
    this.#clock = context.clock;
    this.#consumers = consumers;
    this.#connections = connections;
    this.#setupMs = setupMs;
    this.#startUs = context.clock.nowUs();
    const deadlineUs = this.#startUs + (context.config.timeoutMs - setupMs) * 1000;
    const target = context.target ?? context.broker;
    this.#books = new RunBooks(context.config, context.clock, this.#startUs, context.hooks?.onDelivered);
    this.#depth = new DepthWatch(target, context.queues, this.#books.timeline, context.clock);
    const hooks = context.hooks;
    this.#publishers = new Publishers(
      {
        target,
        config: context.config,
        clock: context.clock,
        queues: context.queues,
        runToken,
        startUs: this.#startUs,
        deadlineUs,
        publishDelayMs: hooks?.publishDelayMs,
        publishErrors: context.publishErrors,
        ...(context.share ? { share: context.share } : {}),
        ...(context.publishJournal ? { journal: context.publishJournal } : {}),
      },
      this.#books,
      this,
    );
    this.#drain = new Drain({
      books: this.#books,
      config: context.config,
      capabilities: target.capabilities,
      clock: context.clock,
      depth: this.#depth,
      inHand: () => consumers.inHand(),
      tickMs: this.#tickMs,
      deadlineUs,
      control: this,
      shared: context.share !== undefined,
    });
  }

  /** True once the run stops (finished, timed out, interrupted, failed, or over). */
  get stopped(): boolean {
    return this.#stopped;
  }

  async run(): Promise<PipelineOutcome> {
    const config = this.#config;
    const clock = this.#clock;
    const books = this.#books;
    const cpuBefore = process.cpuUsage();
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const onAbort = (): void => this.finish('interrupted', 'interrupted by signal');
    // A signal that came while queues were being prepared stops the run before it publishes anything.
    if (this.#ctx.signal?.aborted) onAbort();
    else this.#ctx.signal?.addEventListener('abort', onAbort, { once: true });
    // --timeout bounds publish and drain together; waits in progress (pacing, back-off) are cut short.
    // Connecting took the whole of --timeout: nothing is published.
    if (this.#setupMs >= config.timeoutMs) this.finish('timeout', this.timeoutReason());
    const deadlineTimer = setTimeout(() => this.finish('timeout', this.timeoutReason()), Math.max(0, config.timeoutMs - this.#setupMs));

    const consumers = this.#consumers;
    const afterPublish = this.#ctx.afterPublish;
    const startConsumers = (): void => {
      if (!this.#stopped) consumers.start(books.sink());
    };
    const ticker = this.#startTicker();
    try {
      if (!afterPublish) startConsumers();
      await this.#publishers.run(config.publishConcurrency);
      this.#publishEndUs = clock.nowUs();
      if (afterPublish && !this.#stopped) {
        await afterPublish();
        startConsumers();
      }
      await this.#drain.run();
    } finally {
      clearTimeout(deadlineTimer);
      this.#drainEndUs ||= clock.nowUs();
      // Also when something threw: no publisher or consumer may outlive the run.
      this.#stop();
      clearInterval(ticker.timer);
      // Batches in hand get time to settle (longer when the run was cut short, so in-flight work is not
      // thrown away), then the handles close: closing ends receives still blocked. Consumers still busy
      // after that (a task longer than the grace) are left behind: their messages stay with the broker.
      await Promise.all([withinMs(ticker.idle(), FINAL_SAMPLE_LIMIT_MS), consumers.stop(this.#status === 'completed' ? CONSUMER_GRACE_MS : STOP_GRACE_MS)]);
      // Whatever the publishers never got to: neither published nor lost.
      this.markNotSent(this.#publishers.nextIndex, this.#publishers.end);
      this.#ctx.signal?.removeEventListener('abort', onAbort);
      loopDelay.disable();
    }
    // A full drain ends at the last completion, not after the consumers' last blocking receive returned.
    const drained = this.#status === 'completed' && this.#drain.acceptedDone() && books.lastCompletionUs > 0;
    const endUs = drained ? books.lastCompletionUs : this.#drainEndUs;
    const finalDepth = (await withinMs(this.#depth.sample().catch(() => undefined), FINAL_SAMPLE_LIMIT_MS)) ?? this.#depth.last ?? EMPTY_DEPTH;
    const cpu = process.cpuUsage(cpuBefore);
    this.#ctx.onBooks?.(books);
    const wallMs = (endUs - this.#startUs) / 1000;
    // Consumer processes are the harness too: their CPU adds up, and so do their peaks (an upper bound).
    const children = consumers.usage?.();
    const cpuUserMs = cpu.user / 1000 + (children?.cpuUserMs ?? 0);
    const cpuSystemMs = cpu.system / 1000 + (children?.cpuSystemMs ?? 0);
    const consumerRequests = consumers.requestCounts?.();
    return {
      status: this.#status,
      reason: this.#reason,
      startUs: this.#startUs,
      publishEndUs: this.#publishEndUs || endUs,
      endUs,
      lastDeliveryUs: books.lastDeliveryUs,
      ledger: books.ledger.counts(),
      missing: books.ledger.missing(20),
      counters: { ...books.counters },
      histograms: books.histograms,
      timeline: books.timeline.points(),
      timelineBuckets: books.timeline.series(),
      finalDepth,
      errors: [...books.errors.values()],
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

  /** Ends the run: publishing stops at once, the drain at its next look. The first status and reason stand. */
  finish(status: RunStatus, reason: string): void {
    if (this.#status === 'completed') {
      this.#status = status;
      this.#reason = reason;
    }
    this.#stop();
  }

  /** Sleeps `ms`, or less if the run stops meanwhile. */
  pause(ms: number): Promise<void> {
    return this.#pauses.pause(ms);
  }

  /** Why --timeout ended the run, naming the phase it ran out in. */
  timeoutReason(): string {
    const limit = `--timeout ${formatCount(this.#config.timeoutMs / 1000)} s ran out`;
    if (this.#setupMs >= this.#config.timeoutMs) {
      return `${limit} while connecting (${(this.#setupMs / 1000).toFixed(1)} s, ${formatCount(this.#connections)} connections of consumers opened)`;
    }
    if (!this.#publishEndUs) return `${limit} while publishing (${formatCount(this.#books.published)} of ${formatCount(this.#config.messages)} published)`;
    return `${limit} while draining, with ${formatCount(this.#drain.outstanding())} messages outstanding`;
  }

  /** Books indices `from` up to `to` as never sent, here and in the consumers' own books. */
  markNotSent(from: number, to: number): void {
    this.#books.ledger.markNotSent(from, to);
    this.#consumers.notSent?.(from, to);
  }

  #stop(): void {
    this.#stopped = true;
    this.#pauses.stop();
  }

  get #tickMs(): number {
    return this.#ctx.tickMs ?? 500;
  }

  #startTicker(): { timer: NodeJS.Timeout; idle: () => Promise<void> } {
    let pending: Promise<void> = Promise.resolve();
    let busy = false;
    let lastCompleted = 0;
    let lastUs = this.#startUs;
    const books = this.#books;
    const timer = setInterval(() => {
      if (busy) return; // a slow depth call never piles up
      busy = true;
      pending = this.#depth
        .sample()
        .catch((error: unknown) => {
          books.noteError('depth', error);
          return this.#depth.last;
        })
        .then(() => {
          const nowUs = this.#clock.nowUs();
          const completed = books.ledger.completedCount();
          const rate = ((completed - lastCompleted) * 1e6) / Math.max(1, nowUs - lastUs);
          lastCompleted = completed;
          lastUs = nowUs;
          const depth = this.#depth.last;
          this.#ctx.onProgress?.({
            phase: this.#publishEndUs ? 'drain' : 'run',
            elapsedMs: (nowUs - this.#startUs) / 1000,
            expected: this.#config.messages,
            published: books.published,
            completed,
            publishFailed: books.publishFailed,
            completeRatePerSec: rate,
            depth: depth ? depth.ready + depth.inFlight + depth.delayed : undefined,
          });
        })
        .finally(() => {
          busy = false;
        });
    }, this.#tickMs);
    return { timer, idle: () => pending };
  }
}
