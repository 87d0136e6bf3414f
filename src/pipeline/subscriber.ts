// The consumer loop, the only one: the run's own consumers (src/runner/local-consumers.ts), consumer
// child processes (src/runner/consumer-process.ts) and fan-out groups (src/runner/fan-out.ts) all run
// it. Receive, report each delivery, run the tasks, nack the failures, ack the rest, report the
// completions; it books nothing itself, its sink does (src/pipeline/sink.ts), so one ledger stays the
// only source of truth.
//
// Tasks run in whole batches (a receive's tasks together, then one nack and one ack), or in a worker
// pool shared by several loops (--concurrency, src/pipeline/task-pool.ts): a loop receives only as many
// messages as it took free slots, starts each task at once, and settles finished ones together
// ACK_COALESCE_MS later, on a handle of their own so an ack never queues behind a blocking receive.
//
// Order matters for the books: a delivery is reported before its task runs, a completion only after
// the ack succeeded; a sink that keeps intents (a child's journal) hears of each ack and nack before it
// is sent and of its outcome after. `freeze()` stops the loop between broker calls (no receive, ack or
// nack in flight), so the messages in hand at that moment are exactly the ones the broker still thinks
// are out: what a crash right then takes with it.
//
// LIMITATION: per-message hooks are functions, so only loops in the run's own process take them;
// consumer processes run the executor's task with the run's retry delay.

import { settledDespite, type Broker, type ReceivedMessage } from '../broker.ts';
import type { Clock } from '../clock.ts';
import { describeError } from '../errors.ts';
import type { Executor } from './executor.ts';
import { FOREIGN, MessageDecoder } from './message.ts';
import { reportCompleted, reportDelivered, type SubscriberSink } from './sink.ts';
import type { TaskPool } from './task-pool.ts';
import { backoffMs, Pauses } from './waits.ts';

/** Per-delivery behaviour a scenario can change; each runs on the hot path, so it must be cheap and must not throw. */
export interface ConsumerHooks {
  /** Runs the task of one delivery instead of the executor; resolves true on success, never rejects. */
  runTask?(index: number, receiveCount: number): Promise<boolean>;
  /** Delay before a failed delivery is given again, ms; default the loop's `retryDelayMs`. */
  retryDelayMs?(index: number, receiveCount: number): number;
  /** Every task run: its execution time in µs and whether it succeeded. */
  onExecuted?(index: number, receiveCount: number, executionUs: number, ok: boolean): void;
}

export interface SubscriberOptions {
  readonly queue: string;
  /** Most messages per receive (and, with a pool, per coalesced ack). */
  readonly receiveBatch: number;
  readonly receiveWaitMs: number;
  /** Delay before a failed task's message is given again, ms, where `hooks.retryDelayMs` does not say. */
  readonly retryDelayMs: number;
  /** Messages in the run: a body whose index is not below this is not one of ours. */
  readonly messages: number;
  /** The run's token: bodies without it are foreign. */
  readonly runToken: string;
  readonly executor: Executor;
  readonly clock: Clock;
  /** Called synchronously each time a received batch enters the consumer's hands (before its tasks run). */
  readonly onHold?: () => void;
  /** A scenario's per-delivery behaviour; absent: the executor's task and `retryDelayMs`. */
  readonly hooks?: ConsumerHooks;
  /** The worker pool this loop shares with others; absent: whole batches. */
  readonly pool?: TaskPool;
  /** With a pool: the handle acks and nacks go through; default the receiving handle. */
  readonly settleHandle?: Broker;
}

/** Longest a finished pooled task waits for neighbours to share its ack call, ms. */
const ACK_COALESCE_MS = 2;
/** Thrown by a broker call attempted after halt(): the loop parks instead of calling. */
const FROZEN = Symbol('frozen');
/** The index of a body that was not one of the run's messages. */
const NOT_OURS = -1;

/** Messages to settle together, with what the books need of them: parallel arrays. */
interface Settlement {
  readonly messages: ReceivedMessage[];
  /** Each message's index, or NOT_OURS. */
  readonly indices: number[];
  readonly sentTimes: number[];
  /** Each task's success; undefined when no task ran (all are acked). */
  readonly outcomes: boolean[] | undefined;
}

export class Subscriber {
  readonly #handle: Broker;
  readonly #settleHandle: Broker;
  readonly #options: SubscriberOptions;
  readonly #sink: SubscriberSink;
  readonly #decoder: MessageDecoder;
  readonly #hooks: ConsumerHooks | undefined;
  /** False when tasks take no time and never fail: whole batches are acked without running them. */
  readonly #runsTasks: boolean;
  #stopped = false;
  #frozen = false;
  /** Broker calls in flight, and who waits for them to reach 0. */
  #calls = 0;
  readonly #idle: (() => void)[] = [];
  /** Released by stop(): a frozen loop parks on it. */
  #release!: () => void;
  readonly #released = new Promise<void>((resolve) => (this.#release = resolve));
  /** Messages received and not yet acked or nacked. */
  #held = 0;
  /** Of #held, those in an ack or nack call now. */
  #settling = 0;
  #receiveErrors = 0;
  readonly #pauses = new Pauses();
  /** With a pool: finished tasks waiting to be settled together, and the timer that settles them. */
  #pending: Settlement | undefined;
  #pendingTimer: NodeJS.Timeout | undefined;

  constructor(handle: Broker, options: SubscriberOptions, sink: SubscriberSink) {
    this.#handle = handle;
    this.#settleHandle = options.settleHandle ?? handle;
    this.#options = options;
    this.#sink = sink;
    this.#hooks = options.hooks;
    this.#runsTasks = !options.executor.trivial || options.hooks?.runTask !== undefined;
    this.#decoder = new MessageDecoder(options.runToken);
  }

  /** Messages received and not yet acked or nacked. */
  get inHand(): number {
    return this.#held;
  }

  /** Messages in hand and in no ack or nack call yet: what this consumer would hold if it were halted now. */
  get holding(): number {
    return this.#held - this.#settling;
  }

  /** Runs until stop() (or, with a pool, until the pool closes); never rejects. A frozen loop stays parked until stop(). */
  async run(): Promise<void> {
    const pool = this.#options.pool;
    try {
      while (!this.#stopped) {
        if (!pool) await this.#round();
        else if (!(await this.#roundPooled(pool))) break;
      }
    } catch (error) {
      if (error === FROZEN) return this.#released;
      throw error;
    }
    this.#flushPending();
  }

  /** Ends the loop after the call in hand; a parked loop or a back-off returns at once. */
  stop(): void {
    this.#stopped = true;
    this.#pauses.stop();
    this.#release();
  }

  /** Makes no broker call from now on (calls in flight go on); what is in hand stays there, unacked. */
  halt(): void {
    this.#frozen = true;
  }

  /**
   * Halts, and resolves once no broker call is in flight and what the last ones returned has been
   * reported. Batches in hand stay unacked (a journal lists them).
   */
  async freeze(): Promise<void> {
    this.#frozen = true;
    do {
      while (this.#calls > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
      // Let the loop report what the last call returned (it runs in microtasks, before this macrotask).
      await new Promise<void>((resolve) => setImmediate(resolve));
    } while (this.#calls > 0);
  }

  /** Whole batches: one receive, its tasks together, and the settling of what it brought. */
  async #round(): Promise<void> {
    const batch = await this.#receive(this.#options.receiveBatch);
    if (batch === undefined) return this.#pauses.pause(backoffMs(this.#receiveErrors));
    if (batch.length === 0) return;
    const { indices, sentTimes } = this.#deliver(batch);
    let outcomes: boolean[] | undefined;
    if (this.#runsTasks) {
      outcomes = await Promise.all(batch.map((message, k) => (indices[k]! < 0 ? true : this.#execute(indices[k]!, message.receiveCount))));
    }
    const settlement = { messages: batch, indices, sentTimes, outcomes };
    if (outcomes) await this.#settle(this.#handle, settlement);
    else await this.#ack(this.#handle, settlement);
  }

  /**
   * With a pool: takes free slots, receives at most that many messages and starts each task at once;
   * a finished task frees its slot and waits to be settled with its neighbours. False once the pool closed.
   */
  async #roundPooled(pool: TaskPool): Promise<boolean> {
    const slots = await pool.take(this.#options.receiveBatch);
    if (slots === 0) return false;
    let batch: ReceivedMessage[] | undefined;
    try {
      batch = await this.#receive(slots);
    } finally {
      if (batch === undefined) pool.release(slots);
    }
    if (batch === undefined) {
      await this.#pauses.pause(backoffMs(this.#receiveErrors));
      return true;
    }
    if (batch.length < slots) pool.release(slots - batch.length);
    if (batch.length === 0) return true;
    const { indices, sentTimes } = this.#deliver(batch);
    for (let k = 0; k < batch.length; k++) void this.#runPooled(pool, batch[k]!, indices[k]!, sentTimes[k]!);
    return true;
  }

  /** One receive of up to `most` messages; undefined when it failed (reported; the caller backs off). */
  async #receive(most: number): Promise<ReceivedMessage[] | undefined> {
    const { queue, receiveWaitMs } = this.#options;
    let batch: ReceivedMessage[];
    this.#calling();
    try {
      batch = await this.#handle.receive(queue, { maxMessages: most, waitMs: receiveWaitMs });
    } catch (error) {
      this.#called();
      if (this.#stopped) return undefined; // the handle was closed under a blocked receive
      this.#receiveErrors++;
      this.#sink.error('receive', describeError(error));
      return undefined;
    }
    this.#called();
    this.#receiveErrors = 0;
    this.#sink.receiveCall(batch.length === 0);
    return batch;
  }

  /** Decodes a received batch and reports it, before any of its tasks runs; NOT_OURS marks the bodies that are not the run's. */
  #deliver(batch: readonly ReceivedMessage[]): { indices: number[]; sentTimes: number[] } {
    const { messages, clock } = this.#options;
    const sink = this.#sink;
    const receivedUs = clock.nowUs();
    const indices = new Array<number>(batch.length);
    const sentTimes = new Array<number>(batch.length);
    const receiveCounts = new Array<number>(batch.length);
    for (let k = 0; k < batch.length; k++) {
      const message = batch[k]!;
      const stamp = this.#decoder.decode(message.body);
      receiveCounts[k] = message.receiveCount;
      if (stamp !== undefined && stamp !== FOREIGN && stamp.i < messages) {
        indices[k] = stamp.i;
        sentTimes[k] = stamp.t;
        continue;
      }
      // Another run's message (or a forged one) or no message at all: acked, never booked as a delivery.
      indices[k] = NOT_OURS;
      sentTimes[k] = 0;
      if (stamp === FOREIGN) sink.foreign();
      else sink.malformed();
    }
    reportDelivered(sink, receivedUs, indices, sentTimes, receiveCounts);
    sink.received?.();
    this.#held += batch.length;
    this.#options.onHold?.();
    return { indices, sentTimes };
  }

  /** Runs one task (the scenario's, else the executor's) and reports it; resolves its success, never rejects. */
  async #execute(index: number, receiveCount: number): Promise<boolean> {
    const { clock, executor } = this.#options;
    const hooks = this.#hooks;
    const started = clock.nowUs();
    let ok: boolean;
    try {
      ok = hooks?.runTask ? await hooks.runTask(index, receiveCount) : await executor.run();
    } catch (error) {
      // Only a scenario hook that broke its promise not to throw lands here; the message is nacked.
      this.#sink.error('task', describeError(error));
      return false;
    }
    const executionUs = clock.nowUs() - started;
    this.#sink.executed(index, executionUs);
    hooks?.onExecuted?.(index, receiveCount, executionUs, ok);
    return ok;
  }

  async #runPooled(pool: TaskPool, message: ReceivedMessage, index: number, sentUs: number): Promise<void> {
    const ok = index < 0 || (await this.#execute(index, message.receiveCount));
    pool.release(1); // the worker is free; its ack goes out with its neighbours'
    const pending = (this.#pending ??= { messages: [], indices: [], sentTimes: [], outcomes: [] });
    pending.messages.push(message);
    pending.indices.push(index);
    pending.sentTimes.push(sentUs);
    pending.outcomes!.push(ok);
    if (pending.messages.length >= this.#options.receiveBatch || this.#stopped) this.#flushPending();
    else this.#pendingTimer ??= setTimeout(() => this.#flushPending(), ACK_COALESCE_MS);
  }

  /** Settles the finished pooled tasks waiting now, on the settle handle. */
  #flushPending(): void {
    clearTimeout(this.#pendingTimer);
    this.#pendingTimer = undefined;
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    this.#settle(this.#settleHandle, pending).catch((error: unknown) => {
      // Halted meanwhile: the messages stay in hand, unacked, for the broker to give again.
      if (error !== FROZEN) throw error;
    });
  }

  /** Nacks the failed tasks' messages, acks the rest (malformed and foreign bodies too), then reports the completions. */
  async #settle(handle: Broker, batch: Settlement): Promise<void> {
    let ack: Settlement = batch;
    const outcomes = batch.outcomes;
    if (outcomes) {
      ack = { messages: [], indices: [], sentTimes: [], outcomes: undefined };
      let failed: number[] | undefined;
      for (let k = 0; k < outcomes.length; k++) {
        if (outcomes[k]) {
          ack.messages.push(batch.messages[k]!);
          ack.indices.push(batch.indices[k]!);
          ack.sentTimes.push(batch.sentTimes[k]!);
        } else {
          (failed ??= []).push(k);
        }
      }
      if (failed) await this.#nack(handle, batch, failed);
    }
    if (ack.messages.length > 0) await this.#ack(handle, ack);
  }

  /** Nacks the messages at `failed` (positions in `batch`), grouped by their retry delay when the hooks set one per delivery. */
  async #nack(handle: Broker, batch: Settlement, failed: number[]): Promise<void> {
    const { queue, retryDelayMs, clock } = this.#options;
    const sink = this.#sink;
    const delayOf = this.#hooks?.retryDelayMs;
    const groups = new Map<number, number[]>();
    if (!delayOf) groups.set(retryDelayMs, failed);
    else {
      for (const k of failed) {
        const delayMs = delayOf(batch.indices[k]!, batch.messages[k]!.receiveCount);
        const group = groups.get(delayMs);
        if (group) group.push(k);
        else groups.set(delayMs, [k]);
      }
    }
    for (const [delayMs, positions] of groups) {
      const messages = positions.map((k) => batch.messages[k]!);
      this.#calling();
      const id = sink.settling?.('nack', positions.map((k) => batch.indices[k]!), messages.length) ?? 0;
      this.#settling += messages.length;
      try {
        await handle.nack(queue, messages, delayMs);
        this.#called();
        if (id) sink.settled?.(id, true, clock.nowUs());
      } catch (error) {
        this.#called();
        if (id) sink.settled?.(id, false, clock.nowUs());
        // Not given back: the broker redelivers them after the visibility timeout instead.
        sink.error('nack', describeError(error));
      }
      this.#settling -= messages.length;
      this.#held -= messages.length;
      sink.failed(messages.length, clock.nowUs(), delayMs);
    }
  }

  /** Acks `ack` and reports the completions of the run's messages it settled. */
  async #ack(handle: Broker, ack: Settlement): Promise<void> {
    const { queue, clock } = this.#options;
    const sink = this.#sink;
    /** Set when the ack settled only these (a partial failure); undefined when it settled all. */
    let only: Set<ReceivedMessage> | undefined;
    this.#calling();
    const id = sink.settling ? sink.settling('ack', ack.indices.filter((index) => index >= 0), ack.messages.length) : 0;
    this.#settling += ack.messages.length;
    try {
      await handle.ack(queue, ack.messages);
      this.#called();
    } catch (error) {
      this.#called();
      this.#settling -= ack.messages.length;
      // Not acked: an at-least-once broker delivers them again, so they are not reported as completed.
      // Those the broker says it did settle are gone for good: reported, or they would count as lost.
      sink.error('ack', describeError(error));
      const settled = settledDespite(error);
      if (settled.length === 0) {
        if (id) sink.settled?.(id, false, clock.nowUs());
        this.#held -= ack.messages.length;
        return;
      }
      only = new Set(settled);
    }
    if (only === undefined) this.#settling -= ack.messages.length;
    const ackedUs = clock.nowUs();
    let { indices, sentTimes } = ack;
    if (only) {
      const settled = only;
      indices = indices.filter((_, k) => settled.has(ack.messages[k]!));
      sentTimes = sentTimes.filter((_, k) => settled.has(ack.messages[k]!));
    }
    if (id) sink.settled?.(id, true, ackedUs, only ? indices.filter((index) => index >= 0) : undefined);
    reportCompleted(sink, ackedUs, indices, sentTimes);
    this.#held -= ack.messages.length;
  }

  /** Before every broker call: counted, so freeze() can wait for it; refused with FROZEN once halted. */
  #calling(): void {
    if (this.#frozen) throw FROZEN;
    this.#calls++;
  }

  /** After every broker call, before what it returned is reported. */
  #called(): void {
    if (--this.#calls === 0) for (const wake of this.#idle.splice(0)) wake();
  }
}
