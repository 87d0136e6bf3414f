// The run's publishers: each claims the next batch of message indices, waits for it under --rate (a
// batch leaves when full or once its oldest message has waited --linger-ms), publishes it to the next
// queue in turn, and books the result; a failed call is booked as a refused batch and backed off.
//
// LIMITATION: publishers share this process's event loop with the consumers. A refused batch may have
// been stored in part (the books count what turns up of it apart); after `giveUpAfter` failures in a
// row the run fails.

import type { BrokerCapabilities, OutgoingMessage, QueueDepth } from '../broker.ts';
import type { Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import { describeError } from '../errors.ts';
import { recordLatency, recordLatencyTimes } from '../metrics/histogram.ts';
import { MessageEncoder } from '../pipeline/message.ts';
import { RateLimiter } from '../pipeline/rate-limiter.ts';
import { backoffMs } from '../pipeline/waits.ts';
import type { RunStatus } from '../outcome.ts';
import type { RunBooks } from './books.ts';

/**
 * What a run publishes through and watches the depth of: every Broker is one; so is fan-out's copier
 * (src/runner/fan-out.ts), which writes each batch to every group and is no Broker.
 */
export interface PublishTarget {
  /** What the broker behind it can do (the drain asks about visibility timeouts). */
  readonly capabilities: BrokerCapabilities;
  /** Writes a batch; resolves once every message of it was accepted. */
  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void>;
  /** Counts messages by state. */
  depth(queue: string): Promise<QueueDepth>;
}

/** When the publishers give up: after `giveUpAfter` failed calls in a row, backing off `backoffMs` after each. */
export interface PublishErrorPolicy {
  readonly giveUpAfter: number;
  readonly backoffMs: number;
}

/** What publishers ask of the run they belong to. */
export interface PublishControl {
  /** True once the run stops: no batch is claimed after. */
  readonly stopped: boolean;
  /** Resolves after `ms`, or as soon as the run stops. */
  pause(ms: number): Promise<void>;
  /** Ends the run (the first call's status and reason stand). */
  finish(status: RunStatus, reason: string): void;
  /** Why --timeout ended the run, naming the phase it ran out in. */
  timeoutReason(): string;
  /** Books indices `from` up to `to` as never sent, in every book. */
  markNotSent(from: number, to: number): void;
}

/**
 * A worker's share of a run spread over several (src/runner/worker.ts): the message indices its
 * publishers own and their share of --rate.
 */
export interface PublishShare {
  /** The indices owned, [first, end). */
  readonly first: number;
  readonly end: number;
  /** This share's rate, msg/s (0: as fast as possible): --rate × its part of the messages. */
  readonly ratePerSec: number;
}

/**
 * Where a publisher notes its batches so that a SIGKILL cannot hide them (a worker's journal,
 * src/runner/worker-journal.ts): before each call, and after it with the broker's answer.
 */
export interface PublishJournal {
  /** Indices first … first + count - 1 are about to be handed to the broker. */
  sending(first: number, count: number): void;
  /** The broker accepted them, at `atUs`. */
  sent(first: number, count: number, atUs: number): void;
  /** The broker refused them (or did not answer). */
  refused(first: number, count: number): void;
}

export interface PublisherOptions {
  readonly target: PublishTarget;
  readonly config: RunConfig;
  readonly clock: Clock;
  readonly queues: readonly string[];
  readonly runToken: string;
  /** When the run's clock started, and when --timeout runs out, monotonic µs. */
  readonly startUs: number;
  readonly deadlineUs: number;
  /** Publish delay of message `index`, ms; 0 = none. */
  readonly publishDelayMs?: (index: number) => number;
  /** Default: give up after 20 failures in a row, backing off 0.1 s doubling to 1 s (about 17 s in all). */
  readonly publishErrors?: PublishErrorPolicy;
  /** The indices (and rate) these publishers own; default every index of the run at --rate. */
  readonly share?: PublishShare;
  /** Told of every batch before and after its call. */
  readonly journal?: PublishJournal;
}

const MAX_CONSECUTIVE_PUBLISH_ERRORS = 20;

export class Publishers {
  readonly #options: PublisherOptions;
  readonly #books: RunBooks;
  readonly #control: PublishControl;
  /** Next message index to publish: publishers claim batches from it. */
  #nextIndex: number;
  /** One past the last index these publishers own. */
  readonly #end: number;
  /** Batches claimed so far: they go to the queues in turn. */
  #batchesClaimed = 0;

  constructor(options: PublisherOptions, books: RunBooks, control: PublishControl) {
    this.#options = options;
    this.#books = books;
    this.#control = control;
    this.#nextIndex = options.share?.first ?? 0;
    this.#end = options.share?.end ?? options.config.messages;
  }

  /** The first index no publisher has claimed: it and those after were never sent, if the run stops now. */
  get nextIndex(): number {
    return this.#nextIndex;
  }

  /** One past the last index these publishers own: from nextIndex up to it was never sent, if the run stops now. */
  get end(): number {
    return this.#end;
  }

  /** Runs `count` publishers until every message is sent or the run stops. */
  async run(count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, () => this.#publish()));
  }

  /** One publisher: claims the next batch of indices until all are sent, paced when a rate is set. */
  async #publish(): Promise<void> {
    const { config, target, clock, queues } = this.#options;
    const books = this.#books;
    const control = this.#control;
    const encoder = new MessageEncoder(config.payloadBytes, this.#options.runToken);
    // Pacing waits end early when the run stops (interrupt, timeout): the sleeper then throws.
    const pace = async (ms: number): Promise<void> => {
      await control.pause(ms);
      if (control.stopped) throw new Error('stopped');
    };
    const share = this.#options.share;
    const ratePerSec = share ? share.ratePerSec : config.ratePerSec;
    // A share's first index is due at the start: its limiter's start is moved back by that many intervals.
    const limiter = ratePerSec > 0 ? new RateLimiter(ratePerSec, this.#options.startUs - ((share?.first ?? 0) * 1e6) / ratePerSec, clock, pace) : undefined;
    const journal = this.#options.journal;
    const lingerUs = config.lingerMs * 1000;
    const delayOf = this.#options.publishDelayMs;
    let consecutiveErrors = 0;
    while (!control.stopped) {
      const first = this.#nextIndex;
      if (first >= this.#end) return;
      let count = Math.min(config.publishBatch, this.#end - first);
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
          control.markNotSent(first, first + count); // the run stopped before this batch was due
          return;
        }
        for (let k = 0; k < count; k++) messages[k] = { body: encoder.encode(first + k, limiter.intendedUs(first + k)) };
        sentUs = limiter.intendedUs(first);
        this.#recordBatchWait(first, count, claimUs, limiter);
      } else {
        sentUs = clock.nowUs();
        for (let k = 0; k < count; k++) messages[k] = { body: encoder.encode(first + k, sentUs) };
      }
      if (delayOf) {
        for (let k = 0; k < count; k++) {
          const delayMs = delayOf(first + k);
          if (delayMs > 0) messages[k]!.delayMs = delayMs;
        }
      }
      books.counters.publishCalls++;
      journal?.sending(first, count);
      try {
        await target.publish(queue, messages);
        const ackUs = clock.nowUs();
        journal?.sent(first, count, ackUs);
        books.published += count;
        consecutiveErrors = 0;
        books.timeline.add('published', count, ackUs);
        if (first + count > config.warmupMessages) this.#recordPublish(first, count, ackUs, sentUs, limiter);
      } catch (error) {
        journal?.refused(first, count);
        books.publishFailed += count;
        for (let k = 0; k < count; k++) books.ledger.markPublishFailed(first + k);
        books.counters.publishErrors++;
        books.noteError('publish', error);
        const policy = this.#options.publishErrors;
        if (++consecutiveErrors >= (policy?.giveUpAfter ?? MAX_CONSECUTIVE_PUBLISH_ERRORS)) {
          control.finish('failed', `${consecutiveErrors} publish calls failed in a row: ${describeError(error)}`);
          return;
        }
        // Back off: a scenario's fixed pause, else 0.1 s doubling to 1 s (about 17 s before giving up).
        const pauseMs = policy?.backoffMs ?? backoffMs(consecutiveErrors);
        if (pauseMs > 0) await control.pause(pauseMs);
      }
      if (clock.nowUs() > this.#options.deadlineUs) control.finish('timeout', control.timeoutReason());
    }
  }

  /**
   * Records how long each message of the batch past the warm-up waited for the batch to leave: from when
   * it was due, or when the batch was taken up if later, to when the batch's last message was due.
   */
  #recordBatchWait(first: number, count: number, claimUs: number, limiter: RateLimiter): void {
    const h = this.#books.histograms.batchWait!;
    const readyUs = Math.max(claimUs, limiter.intendedUs(first + count - 1));
    for (let i = Math.max(first, this.#options.config.warmupMessages); i < first + count; i++) {
      recordLatency(h, readyUs - Math.max(claimUs, limiter.intendedUs(i)));
    }
  }

  /** Records the publish latency of the batch's messages past the warm-up (a batch may straddle its end). */
  #recordPublish(first: number, count: number, ackUs: number, sentUs: number, limiter: RateLimiter | undefined): void {
    const h = this.#books.histograms.publish;
    const from = Math.max(first, this.#options.config.warmupMessages);
    if (!limiter) {
      recordLatencyTimes(h, ackUs - sentUs, first + count - from);
      return;
    }
    for (let i = from; i < first + count; i++) recordLatency(h, ackUs - limiter.intendedUs(i));
  }
}

/** Several queues' depths added up, field by field. */
export function sumDepths(depths: readonly QueueDepth[]): QueueDepth {
  return depths.reduce(
    (sum, d) => ({ ready: sum.ready + d.ready, inFlight: sum.inFlight + d.inFlight, delayed: sum.delayed + d.delayed, dead: sum.dead + d.dead }),
    { ready: 0, inFlight: 0, delayed: 0, dead: 0 },
  );
}
