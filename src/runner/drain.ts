// The drain, once publishing is over: it waits until every published message is accounted for, the
// broker is empty, or time runs out, and it alone decides when what is still missing is declared lost.
//
// LIMITATION: an empty broker is taken at its word only once the ledger has agreed with it for a full
// receive wait (and, with losses outstanding on a broker with visibility timeouts, for a visibility
// timeout): a depth may be approximate and late. Completions of messages whose publish was refused (a
// batch stored in part) never stand in for accepted ones still out.

import type { BrokerCapabilities, QueueDepth } from '../broker.ts';
import type { Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import type { Timeline } from '../metrics/timeline.ts';
import type { RunStatus } from '../outcome.ts';
import type { RunBooks } from './books.ts';
import { sumDepths, type PublishTarget } from './publisher.ts';

/** Receives that have all failed for this long end the drain as failed (the broker is gone), ms. */
const RECEIVE_OUTAGE_LIMIT_MS = 15_000;
/** Longest the drain sleeps between looks, ms (it is woken as soon as the last message is booked). */
const POLL_MS = 100;

/** The broker's depth as last sampled, summed over the run's queues, and how many samples there were. */
export class DepthWatch {
  readonly #target: PublishTarget;
  readonly #queues: readonly string[];
  readonly #timeline: Timeline;
  readonly #clock: Clock;
  last: QueueDepth | undefined;
  /** Bumped on every sample, so the drain counts distinct samples. */
  samples = 0;

  constructor(target: PublishTarget, queues: readonly string[], timeline: Timeline, clock: Clock) {
    this.#target = target;
    this.#queues = queues;
    this.#timeline = timeline;
    this.#clock = clock;
  }

  /** Samples every queue's depth, keeps the sum and puts it on the timeline. */
  async sample(): Promise<QueueDepth> {
    const total = sumDepths(await Promise.all(this.#queues.map((queue) => this.#target.depth(queue))));
    this.last = total;
    this.samples++;
    this.#timeline.setDepth(total.ready + total.inFlight + total.delayed, this.#clock.nowUs());
    return total;
  }
}

/** What the drain asks of the run it belongs to. */
export interface DrainControl {
  /** True once the run stops: the drain ends. */
  readonly stopped: boolean;
  finish(status: RunStatus, reason: string): void;
  timeoutReason(): string;
}

export interface DrainOptions {
  readonly books: RunBooks;
  readonly config: RunConfig;
  readonly capabilities: BrokerCapabilities;
  readonly clock: Clock;
  readonly depth: DepthWatch;
  /** Messages received and not yet settled, by every consumer of the run. */
  readonly inHand: () => number;
  /** Tick period (depth samples), ms. */
  readonly tickMs: number;
  /** When --timeout runs out, monotonic µs. */
  readonly deadlineUs: number;
  readonly control: DrainControl;
  /**
   * Other workers publish into and consume from the same queues (a run spread over several): these
   * books never see the whole run, so only an empty, quiet broker ends the drain.
   */
  readonly shared?: boolean;
}

export class Drain {
  readonly #options: DrainOptions;

  constructor(options: DrainOptions) {
    this.#options = options;
  }

  /** Waits until every published message is accounted for, the broker is empty, or time runs out. */
  async run(): Promise<void> {
    const { clock, books, depth, control, deadlineUs } = this.#options;
    let emptySamples = 0;
    let emptySinceUs = clock.nowUs();
    let lastSample = depth.samples;
    while (!control.stopped) {
      if (this.accountedFor()) return;
      const nowUs = clock.nowUs();
      if (nowUs > deadlineUs) {
        control.finish('timeout', control.timeoutReason());
        return;
      }
      // Every receive has failed for a long while: the broker is gone, and waiting for --timeout helps nobody.
      if (books.lastReceiveErrorUs > books.lastReceiveOkUs && nowUs - books.lastReceiveOkUs > RECEIVE_OUTAGE_LIMIT_MS * 1000) {
        control.finish('failed', `no receive has succeeded for ${RECEIVE_OUTAGE_LIMIT_MS / 1000} s: ${books.errors.get('receive') ?? 'receive failed'}`);
        return;
      }
      await this.#wait();
      // The broker empty on three samples in a row with nothing in our hands, and the ledger quiet for as
      // long as anything outstanding could still take to arrive: only then are the rest declared lost.
      if (depth.samples === lastSample) continue;
      lastSample = depth.samples;
      const last = depth.last;
      const empty = last !== undefined && last.ready + last.inFlight + last.delayed === 0;
      const quiet = empty && this.#options.inHand() === 0 && books.lastDeliveryUs < emptySinceUs;
      if (!quiet) {
        emptySamples = 0;
        emptySinceUs = clock.nowUs();
        continue;
      }
      if (++emptySamples >= 3 && clock.nowUs() >= this.#lossDeclarableUs(emptySinceUs)) return;
    }
  }

  /** Every accepted message completed or dead-lettered. Refused ones that were stored anyway do not count towards it. */
  acceptedDone(): boolean {
    const { books, config, depth, shared } = this.#options;
    if (shared) return false;
    const dead = config.maxReceives > 0 ? (depth.last?.dead ?? 0) : 0;
    return books.ledger.completedCount() - books.ledger.failedButCompletedCount() + dead >= books.published;
  }

  /**
   * Nothing more can arrive: every accepted message is done, and every refused one turned up too. While
   * a refused message is unaccounted for it may still be in the broker (a batch refused part-way), so
   * the drain goes on until the broker is empty instead.
   */
  accountedFor(): boolean {
    const { books } = this.#options;
    return this.acceptedDone() && books.ledger.failedButCompletedCount() >= books.publishFailed;
  }

  /** Accepted messages not completed yet (never-sent ones aside). */
  outstanding(): number {
    const { books, config } = this.#options;
    const acceptedCompleted = books.ledger.completedCount() - books.ledger.failedButCompletedCount();
    return Math.max(0, config.messages - books.publishFailed - acceptedCompleted);
  }

  /** Sleeps until the next look, or until the last message is booked. */
  #wait(): Promise<void> {
    const { books, tickMs } = this.#options;
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        books.onCompleted = undefined;
        resolve();
      };
      const timer = setTimeout(wake, Math.min(POLL_MS, tickMs));
      books.onCompleted = () => {
        if (this.accountedFor()) wake();
      };
    });
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
    const { config, books, capabilities } = this.#options;
    const receiveWaitUs = config.receiveWaitMs * 1000;
    let untilUs = Math.max(emptySinceUs, books.mayReturnUntilUs) + receiveWaitUs;
    if (!this.acceptedDone() && capabilities.visibilityTimeout) {
      untilUs = Math.max(untilUs, emptySinceUs + config.visibilityTimeoutMs * 1000 + receiveWaitUs);
    }
    return untilUs;
  }
}
