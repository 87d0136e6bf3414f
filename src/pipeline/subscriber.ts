// A consumer loop that reports instead of booking: receive a batch, report each delivery, run the
// tasks, nack the failures, ack the rest, report the completions. Consumer child processes
// (src/runner/consumer-process.ts) and fan-out groups (src/runner/fan-out.ts) run it; the pipeline's
// sink books what it reports, so one ledger stays the only source of truth.
//
// Order matters for the books: a delivery is reported before its task runs, a completion only after
// the ack succeeded; a sink that keeps intents (a child's journal) hears of each ack and nack before
// it is sent and of its outcome after. `freeze()` stops the loop between broker calls (no receive, ack or nack in
// flight), so the messages in hand at that moment are exactly the ones the broker still thinks are
// out: what a crash right then takes with it.
//
// LIMITATION: the pipeline's own in-process consumers keep their own copy of this loop (with the
// worker pool and per-message hooks); this one runs whole batches at once and knows no hooks.

import { settledDespite, type Broker, type ReceivedMessage } from '../broker.ts';
import type { Clock } from '../clock.ts';
import type { Executor } from './executor.ts';
import { FOREIGN, MessageDecoder } from './message.ts';
import type { ConsumerSetUsage } from '../outcome.ts';
import { sleep, withinMs } from './waits.ts';

/** Where a subscriber's reports go. Every time is monotonic µs (src/clock.ts), comparable across processes. */
export interface SubscriberSink {
  /** One delivery of harness message `index`, sent at `sentUs`, received at `receivedUs`. */
  delivered(index: number, sentUs: number, receivedUs: number, receiveCount: number): void;
  /** A body that was not a message at all, or named an index out of range (acked and dropped). */
  malformed(): void;
  /** A well-formed message without the run's token: another run's, or forged (acked and dropped). */
  foreign(): void;
  /** One task ran for `executionUs`. */
  executed(index: number, executionUs: number): void;
  /** Message `index` was acked after its task: done. */
  completed(index: number, sentUs: number, ackedUs: number): void;
  /** `count` tasks failed and their messages were nacked (or the nack failed: then the broker redelivers them). */
  failed(count: number, atUs: number): void;
  /** A receive call returned; `empty` when it brought nothing. */
  receiveCall(empty: boolean): void;
  /** A broker call failed (the loop backs off and goes on), or a consumer process died (`process`). */
  error(operation: 'receive' | 'ack' | 'nack' | 'process', message: string): void;
  /**
   * Optional, for sinks that must outlive the process (src/runner/journal.ts): every delivery of the
   * batch just received has been reported, and none of its tasks has started.
   */
  received?(): void;
  /**
   * Optional: an ack or nack of `count` messages is about to be sent, the run's among them `indices`;
   * returns an id for settled(). Called only when the call is really made.
   */
  settling?(kind: 'ack' | 'nack', indices: readonly number[], count: number): number;
  /**
   * Optional: the call announced by settling() `id` returned (`ok`) or failed, at `atUs`. An ack that
   * settled part of its messages (PartialSettleError) is `ok` with `only`, the indices of ours it settled.
   */
  settled?(id: number, ok: boolean, atUs: number, only?: readonly number[]): void;
}

/** Consumers the pipeline does not run itself (child processes, fan-out groups): they report to a sink. */
export interface ConsumerSet {
  /**
   * Connects everything, before the run's clock starts. `runToken` is the run's identity: consumers
   * book only bodies that carry it (src/pipeline/message.ts). Rejects with what went wrong.
   */
  prepare(runToken: string): Promise<void>;
  /** Starts consuming; every report goes to `sink`. */
  start(sink: SubscriberSink): void;
  /** Messages received and not yet settled, as far as the reports tell. */
  inHand(): number;
  /** Stops every consumer and closes its handles; resolves after the last reports reached the sink. Never rejects. */
  stop(): Promise<void>;
  /**
   * Indices `from` up to (not including) `to` were never sent: the run stopped first. For sets with
   * books of their own (fan-out's per-group ledgers), so they do not count those as lost.
   */
  notSent?(from: number, to: number): void;
  /** API requests the set's own connections sent (consumer processes on SQS), by kind, and billed; undefined if none are counted. */
  requestCounts?(): { readonly byKind: Readonly<Record<string, number>>; readonly billed: number } | undefined;
  /** CPU and peak RSS of the set's own processes (every one it ran, dead ones included); undefined if it runs in this process. */
  usage?(): ConsumerSetUsage | undefined;
}

export interface SubscriberOptions {
  readonly queue: string;
  readonly receiveBatch: number;
  readonly receiveWaitMs: number;
  readonly retryDelayMs: number;
  /** Messages in the run: a body whose index is not below this is not one of ours. */
  readonly messages: number;
  /** The run's token: bodies without it are foreign. */
  readonly runToken: string;
  readonly executor: Executor;
  readonly clock: Clock;
  /** Called synchronously each time a received batch enters the consumer's hands (before its tasks run). */
  readonly onHold?: () => void;
}

const ERROR_BACKOFF_MS = 100;
/** Thrown by a broker call attempted after freeze(): the loop parks instead of calling. */
const FROZEN = Symbol('frozen');
/** Marks a hand entry that is settled (acked or nacked) while the rest of its batch is not. */
const SETTLED = -2;
/** Marks a hand entry whose body was not one of the run's messages. */
const NOT_OURS = -1;

export class Subscriber {
  readonly #handle: Broker;
  readonly #options: SubscriberOptions;
  readonly #sink: SubscriberSink;
  readonly #decoder: MessageDecoder;
  #stopped = false;
  #frozen = false;
  /** Broker calls in flight, and who waits for them to reach 0. */
  #calls = 0;
  readonly #idle: (() => void)[] = [];
  /** Released by stop(): a frozen loop parks on it. */
  #release!: () => void;
  readonly #released = new Promise<void>((resolve) => (this.#release = resolve));
  /** Batches received and not yet settled: [index, receivedUs] pairs (index NOT_OURS or SETTLED for the others). */
  readonly #inHand = new Set<number[]>();

  constructor(handle: Broker, options: SubscriberOptions, sink: SubscriberSink) {
    this.#handle = handle;
    this.#options = options;
    this.#sink = sink;
    this.#decoder = new MessageDecoder(options.runToken);
  }

  /** Messages received and not yet acked or nacked. */
  get inHand(): number {
    let count = 0;
    for (const hand of this.#inHand) for (let k = 0; k < hand.length; k += 2) if (hand[k] !== SETTLED) count++;
    return count;
  }

  /** Runs until stop(); never rejects. A frozen loop stays parked (its batch in hand) until stop(). */
  async run(): Promise<void> {
    while (!this.#stopped) {
      try {
        await this.#round();
      } catch (error) {
        if (error === FROZEN) return this.#released;
        throw error;
      }
    }
  }

  /** Ends the loop after the call in hand; a parked loop returns at once. */
  stop(): void {
    this.#stopped = true;
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

  /** One receive and the settling of what it brought. */
  async #round(): Promise<void> {
    const { queue, receiveBatch, receiveWaitMs, messages, executor, clock } = this.#options;
    const sink = this.#sink;
    let batch: ReceivedMessage[];
    try {
      batch = await this.#call(() => this.#handle.receive(queue, { maxMessages: receiveBatch, waitMs: receiveWaitMs }));
    } catch (error) {
      if (error === FROZEN) throw error;
      if (this.#stopped) return; // the handle was closed under a blocked receive
      sink.error('receive', messageOf(error));
      await sleep(ERROR_BACKOFF_MS);
      return;
    }
    sink.receiveCall(batch.length === 0);
    if (batch.length === 0) return;
    const receivedUs = clock.nowUs();
    const hand = new Array<number>(batch.length * 2);
    const sentTimes = new Array<number>(batch.length);
    for (let k = 0; k < batch.length; k++) {
      const message = batch[k]!;
      const stamp = this.#decoder.decode(message.body);
      const ours = stamp !== undefined && stamp !== FOREIGN && stamp.i < messages;
      hand[2 * k] = ours ? stamp.i : NOT_OURS;
      hand[2 * k + 1] = receivedUs;
      sentTimes[k] = ours ? stamp.t : 0;
      if (ours) sink.delivered(stamp.i, stamp.t, receivedUs, message.receiveCount);
      else if (stamp === FOREIGN) sink.foreign();
      else sink.malformed();
    }
    sink.received?.();
    this.#inHand.add(hand);
    this.#options.onHold?.();
    try {
      let outcomes: boolean[] | undefined;
      if (!executor.trivial) {
        outcomes = await Promise.all(
          batch.map(async (_, k) => {
            const index = hand[2 * k]!;
            if (index < 0) return true;
            const started = clock.nowUs();
            const ok = await executor.run();
            sink.executed(index, clock.nowUs() - started);
            return ok;
          }),
        );
      }
      await this.#settle(batch, hand, sentTimes, outcomes);
    } catch (error) {
      // Frozen meanwhile: FROZEN propagates and the batch stays in hand, unacked.
      if (error !== FROZEN) this.#inHand.delete(hand);
      throw error;
    }
    this.#inHand.delete(hand);
  }

  async #settle(batch: ReceivedMessage[], hand: number[], sentTimes: number[], outcomes: boolean[] | undefined): Promise<void> {
    const { queue, retryDelayMs, clock } = this.#options;
    let toAck: ReceivedMessage[] = batch;
    if (outcomes) {
      toAck = [];
      const toNack: ReceivedMessage[] = [];
      const nacked: number[] = [];
      for (let k = 0; k < batch.length; k++) {
        if (outcomes[k]) {
          toAck.push(batch[k]!);
        } else {
          toNack.push(batch[k]!);
          nacked.push(k);
        }
      }
      if (toNack.length > 0) {
        let id = 0;
        try {
          await this.#call(() => {
            id = this.#announce('nack', nacked.map((k) => hand[2 * k]!), toNack.length);
            return this.#handle.nack(queue, toNack, retryDelayMs);
          });
          if (id) this.#sink.settled?.(id, true, clock.nowUs());
        } catch (error) {
          if (error === FROZEN) throw error;
          if (id) this.#sink.settled?.(id, false, clock.nowUs());
          // Not given back: the broker redelivers them after the visibility timeout instead.
          this.#sink.error('nack', messageOf(error));
        }
        for (const k of nacked) hand[2 * k] = SETTLED;
        this.#sink.failed(toNack.length, clock.nowUs());
      }
    }
    if (toAck.length === 0) return;
    /** Set when the ack settled only these (a partial failure); undefined when it settled all. */
    let acked: Set<ReceivedMessage> | undefined;
    let id = 0;
    try {
      await this.#call(() => {
        if (this.#sink.settling) {
          const indices: number[] = [];
          for (let k = 0; k < batch.length; k++) if (hand[2 * k]! >= 0 && (!outcomes || outcomes[k])) indices.push(hand[2 * k]!);
          id = this.#announce('ack', indices, toAck.length);
        }
        return this.#handle.ack(queue, toAck);
      });
    } catch (error) {
      if (error === FROZEN) throw error;
      // Not acked: an at-least-once broker delivers them again, so they are not reported as completed.
      // Those the broker says it did settle are gone for good: reported, or they would count as lost.
      this.#sink.error('ack', messageOf(error));
      const settled = settledDespite(error);
      if (settled.length === 0) {
        if (id) this.#sink.settled?.(id, false, clock.nowUs());
        return;
      }
      acked = new Set(settled);
    }
    const ackedUs = clock.nowUs();
    const done: number[] = [];
    for (let k = 0; k < batch.length; k++) {
      if (hand[2 * k]! >= 0 && (!outcomes || outcomes[k]) && (!acked || acked.has(batch[k]!))) done.push(k);
    }
    if (id) this.#sink.settled?.(id, true, ackedUs, acked ? done.map((k) => hand[2 * k]!) : undefined);
    for (const k of done) this.#sink.completed(hand[2 * k]!, sentTimes[k]!, ackedUs);
  }

  /** Tells a sink that keeps intents what is about to be settled; 0 when it keeps none. */
  #announce(kind: 'ack' | 'nack', indices: readonly number[], count: number): number {
    return this.#sink.settling?.(kind, indices, count) ?? 0;
  }

  /** A broker call, counted so freeze() can wait for it; refused with FROZEN once frozen. */
  async #call<T>(call: () => Promise<T>): Promise<T> {
    if (this.#frozen) throw FROZEN;
    this.#calls++;
    try {
      return await call();
    } finally {
      if (--this.#calls === 0) for (const wake of this.#idle.splice(0)) wake();
    }
  }
}

/** How long stopped consumers get to finish the batch in hand before their handles close, ms. */
const STOP_GRACE_MS = 250;

/**
 * Stops `subscribers`, gives the batches in hand `graceMs` to settle, then closes `handles` (which ends
 * receives still blocked) and waits for every loop (`runs`, their run() promises) to return.
 */
export async function stopSubscribers(
  subscribers: readonly Subscriber[],
  runs: readonly Promise<void>[],
  handles: readonly Broker[],
  graceMs = STOP_GRACE_MS,
): Promise<void> {
  for (const subscriber of subscribers) subscriber.stop();
  await withinMs(Promise.all(runs), graceMs);
  await Promise.all(handles.map((handle) => handle.close().catch(() => undefined)));
  await Promise.all(runs);
}

function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}
