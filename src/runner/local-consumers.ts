// Consumers in this process as a ConsumerSet: `consumers` loops (src/pipeline/subscriber.ts), consumer c
// reading queue c % queues on a handle of its own, sharing one executor and, with a worker pool, one
// pool of slots; the run's own consumers, and each fan-out group's. And how loops in a process stop
// (a consumer process stops its own the same way).
//
// LIMITATION: they share this process's event loop with the publishers and with each other. With a
// pool each consumer opens a second connection for its acks, so an ack never queues behind that
// consumer's blocking receive (redis-stream reads and acks on one connection).

import type { Broker } from '../broker.ts';
import type { Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import type { Executor } from '../pipeline/executor.ts';
import type { ConsumerSet, SubscriberSink } from '../pipeline/sink.ts';
import { Subscriber, type ConsumerHooks } from '../pipeline/subscriber.ts';
import { TaskPool } from '../pipeline/task-pool.ts';
import { until, withinMs } from '../pipeline/waits.ts';

export interface LocalConsumersOptions {
  /** The handle each consumer duplicates its own from. */
  readonly broker: Broker;
  /** Queues to read; consumer c reads queues[c % queues.length]. */
  readonly queues: readonly string[];
  readonly config: Pick<RunConfig, 'consumers' | 'receiveBatch' | 'receiveWaitMs' | 'retryDelayMs' | 'messages'>;
  /** Tasks running at once across these consumers, one worker pool; 0 = each consumer runs whole batches. */
  readonly taskConcurrency: number;
  readonly executor: Executor;
  readonly clock: Clock;
  /** A scenario's per-delivery behaviour. */
  readonly hooks?: ConsumerHooks;
  /** No handle is opened once performance.now() has passed this (--timeout ran out while connecting); default: no limit. */
  readonly connectDeadlineMs?: number;
  /** What the consumers' grace is for once stopped (stopSubscribers); default `settle`. */
  readonly stopGrace?: StopGrace;
  /** The sink consumer `c` reports to, given the set's sink; default that sink. */
  readonly sinkOf?: (consumer: number, sink: SubscriberSink) => SubscriberSink;
}

/** Consumer handles opened at once while a run connects: a few round trips each, so many at a time. */
const CONNECT_CONCURRENCY = 16;

export class LocalConsumers implements ConsumerSet {
  readonly #options: LocalConsumersOptions;
  readonly #pool: TaskPool | undefined;
  /** Every handle opened; with a pool, consumer c receives on 2c and settles on 2c + 1. */
  readonly #handles: Broker[] = [];
  #subscribers: Subscriber[] = [];
  #runs: Promise<void>[] = [];
  #runToken = '';

  constructor(options: LocalConsumersOptions) {
    this.#options = options;
    this.#pool = options.taskConcurrency > 0 ? new TaskPool(options.taskConcurrency) : undefined;
  }

  /** Connections opened so far. */
  get connections(): number {
    return this.#handles.length;
  }

  /** Opens every consumer's handles, side by side and in order; on a failure closes those opened and rejects. */
  async prepare(runToken: string): Promise<void> {
    this.#runToken = runToken;
    const { broker, config, connectDeadlineMs = Number.POSITIVE_INFINITY } = this.#options;
    const wanted = config.consumers * (this.#pool ? 2 : 1);
    try {
      for (let first = 0; first < wanted && performance.now() < connectDeadlineMs; first += CONNECT_CONCURRENCY) {
        const count = Math.min(CONNECT_CONCURRENCY, wanted - first);
        const batch = await Promise.allSettled(Array.from({ length: count }, () => broker.duplicate()));
        for (const result of batch) if (result.status === 'fulfilled') this.#handles.push(result.value);
        const failed = batch.find((result) => result.status === 'rejected');
        if (failed) throw failed.reason;
      }
    } catch (error) {
      await this.stop(0);
      throw error;
    }
  }

  start(sink: SubscriberSink): void {
    const { queues, config, executor, clock, hooks } = this.#options;
    const pool = this.#pool;
    const step = pool ? 2 : 1;
    for (let k = 0; k + step <= this.#handles.length; k += step) {
      const c = k / step;
      const subscriber = new Subscriber(
        this.#handles[k]!,
        {
          queue: queues[c % queues.length]!,
          receiveBatch: config.receiveBatch,
          receiveWaitMs: config.receiveWaitMs,
          retryDelayMs: config.retryDelayMs,
          messages: config.messages,
          runToken: this.#runToken,
          executor,
          clock,
          ...(hooks ? { hooks } : {}),
          ...(pool ? { pool, settleHandle: this.#handles[k + 1]! } : {}),
        },
        this.#options.sinkOf ? this.#options.sinkOf(c, sink) : sink,
      );
      this.#subscribers.push(subscriber);
      this.#runs.push(subscriber.run());
    }
  }

  inHand(): number {
    let count = 0;
    for (const subscriber of this.#subscribers) count += subscriber.inHand;
    return count;
  }

  /** Closes the pool, gives what the consumers hold up to `graceMs` to settle, then closes every handle. */
  async stop(graceMs?: number): Promise<void> {
    this.#pool?.close();
    await stopSubscribers(this.#subscribers, this.#runs, this.#handles, { graceMs, grace: this.#options.stopGrace });
  }
}

/**
 * What stopped loops get their grace for before their handles close: `settle`, for what they hold to be
 * settled (a receive still blocked is cut short by the close: the run's own consumers); `round`, for the
 * round in progress to end, a receive in flight included, so a batch on its way is still acked and
 * booked (consumer processes and fan-out groups).
 */
export type StopGrace = 'settle' | 'round';

/** How long stopped consumers get before their handles close, ms. */
const STOP_GRACE_MS = 250;
/** Longest closing the handles may take (a broker that is gone may never answer), ms. */
const CLOSE_LIMIT_MS = 3000;
/** How long the loops get to return once their handles are closed, ms: a task longer than that is left behind. */
const RETURN_LIMIT_MS = 250;

/**
 * Stops `subscribers`, gives them up to `graceMs` for what `grace` says, halts them (a task that outlives
 * the grace leaves its messages to the broker: its ack would find a closed handle), closes `handles`
 * (which ends receives still blocked) within CLOSE_LIMIT_MS, and waits a moment for their loops (`runs`) to return.
 */
export async function stopSubscribers(
  subscribers: readonly Subscriber[],
  runs: readonly Promise<void>[],
  handles: readonly Broker[],
  { graceMs = STOP_GRACE_MS, grace = 'settle' }: { graceMs?: number | undefined; grace?: StopGrace | undefined } = {},
): Promise<void> {
  for (const subscriber of subscribers) subscriber.stop();
  if (grace === 'round') await withinMs(Promise.all(runs), graceMs);
  else await until(() => subscribers.every((subscriber) => subscriber.inHand === 0), graceMs);
  for (const subscriber of subscribers) subscriber.halt();
  await withinMs(Promise.all(handles.map((handle) => handle.close().catch(() => undefined))), CLOSE_LIMIT_MS);
  await withinMs(Promise.all(runs), RETURN_LIMIT_MS);
}
