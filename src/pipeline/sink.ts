// How consumers report, wherever they run: the SubscriberSink every consumer loop (src/pipeline/
// subscriber.ts) reports to, and the ConsumerSet a run starts and stops. The pipeline books every
// report through one sink (src/runner/books.ts), whether the loop runs in its own process, in a child
// process (through a journal, src/runner/journal.ts) or in a fan-out group: one shape of record.
//
// LIMITATION: a sink is called synchronously on the consumer's hot path; it must be cheap and must not
// throw. The batch methods are optional, so a sink may book one message at a time (tests do).

import type { ConsumerSetUsage } from '../outcome.ts';

/** Where a subscriber's reports go. Every time is monotonic µs (src/clock.ts), comparable across processes. */
export interface SubscriberSink {
  /** One delivery of harness message `index`, sent at `sentUs`, received at `receivedUs`. */
  delivered(index: number, sentUs: number, receivedUs: number, receiveCount: number): void;
  /**
   * Optional: one receive's bodies at once, all received at `receivedUs`, as parallel arrays. An entry
   * with a negative index was not one of the run's messages (reported apart, by malformed() or
   * foreign()); every other entry is a delivery, as delivered() would have had it.
   */
  deliveredBatch?(receivedUs: number, indices: readonly number[], sentTimes: readonly number[], receiveCounts: readonly number[]): void;
  /** A body that was not a message at all, or named an index out of range (acked and dropped). */
  malformed(): void;
  /** A well-formed message without the run's token: another run's, or forged (acked and dropped). */
  foreign(): void;
  /** One task ran for `executionUs`. */
  executed(index: number, executionUs: number): void;
  /** Message `index` was acked after its task: done. */
  completed(index: number, sentUs: number, ackedUs: number): void;
  /** Optional: the messages one ack settled, all at `ackedUs`; entries with a negative index are skipped. */
  completedBatch?(ackedUs: number, indices: readonly number[], sentTimes: readonly number[]): void;
  /**
   * `count` tasks failed and their messages were nacked, to come back after `retryDelayMs` (absent: the
   * run's --retry-delay-ms), or the nack failed: then the broker redelivers them after its visibility timeout.
   */
  failed(count: number, atUs: number, retryDelayMs?: number): void;
  /** A receive call returned; `empty` when it brought nothing. */
  receiveCall(empty: boolean): void;
  /**
   * A broker call failed (the loop backs off and goes on), a task broke its promise not to throw
   * (`task`: its message is nacked), or a consumer process died (`process`).
   */
  error(operation: 'receive' | 'ack' | 'nack' | 'task' | 'process', message: string): void;
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

/**
 * A run's consumers: in this process (src/runner/local-consumers.ts), in child processes
 * (src/runner/process-consumers.ts) or in fan-out groups (src/runner/fan-out.ts). All report to one sink.
 */
export interface ConsumerSet {
  /**
   * Connects everything, before the run's clock starts. `runToken` is the run's identity: consumers
   * book only bodies that carry it (src/pipeline/message.ts). Rejects with what went wrong, leaving nothing open.
   */
  prepare(runToken: string): Promise<void>;
  /** Starts consuming; every report goes to `sink`. */
  start(sink: SubscriberSink): void;
  /** Messages received and not yet settled, as far as the reports tell. */
  inHand(): number;
  /**
   * Stops every consumer and closes its handles; resolves after the last reports reached the sink.
   * Consumers in this process get up to `graceMs` first (default: the set's own) to settle what they
   * hold; consumer processes keep their own grace. Never rejects.
   */
  stop(graceMs?: number): Promise<void>;
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

/** Reports one receive's bodies to `sink`: in one call where it books batches, else delivery by delivery. */
export function reportDelivered(
  sink: SubscriberSink,
  receivedUs: number,
  indices: readonly number[],
  sentTimes: readonly number[],
  receiveCounts: readonly number[],
): void {
  if (sink.deliveredBatch) {
    sink.deliveredBatch(receivedUs, indices, sentTimes, receiveCounts);
    return;
  }
  for (let k = 0; k < indices.length; k++) if (indices[k]! >= 0) sink.delivered(indices[k]!, sentTimes[k]!, receivedUs, receiveCounts[k]!);
}

/** Reports the completions of one ack to `sink`: in one call where it books batches, else one by one. */
export function reportCompleted(sink: SubscriberSink, ackedUs: number, indices: readonly number[], sentTimes: readonly number[]): void {
  if (sink.completedBatch) {
    sink.completedBatch(ackedUs, indices, sentTimes);
    return;
  }
  for (let k = 0; k < indices.length; k++) if (indices[k]! >= 0) sink.completed(indices[k]!, sentTimes[k]!, ackedUs);
}
