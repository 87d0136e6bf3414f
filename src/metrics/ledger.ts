// The zero-loss proof: one bit per message for "delivered" and one for "completed", keyed by the
// message index 0..N-1, so 5,000,000 messages cost 1.25 MB and every index is accounted for.
//
// LIMITATION: one process's books; consumers elsewhere report to it (src/pipeline/subscriber.ts). It
// knows indices, not broker message ids, so a broker-side copy of a body counts as a duplicate delivery.

export interface LedgerCounts {
  /** N, the messages the run meant to publish. */
  expected: number;
  /** Indices the publisher reported as failed (never acknowledged by the broker). */
  publishFailed: number;
  /** Unique indices delivered at least once. */
  delivered: number;
  /** Every delivery of an index in range, first or not. Out-of-range ones go to `unknown` instead. */
  deliveries: number;
  /** Deliveries of an index already delivered. */
  duplicateDeliveries: number;
  /** Unique indices completed (task done and acked). */
  completed: number;
  duplicateCompletions: number;
  /**
   * Never sent at all: the run stopped (interrupt, timeout, failure) before their turn. Neither
   * published nor lost. Absent in result files written before it existed (read it as 0).
   */
  notSent?: number;
  /**
   * Published OK but never completed. A failed publish that was completed anyway is not lost. This
   * counts dead-lettered messages too (the ledger cannot see the dead-letter queue): what a run lost
   * is `lostCount`, which every report uses.
   */
  lost: number;
  /** Deliveries whose index was out of range or whose body was not a message at all (malformed). */
  unknown: number;
  /**
   * Deliveries of well-formed messages without the run's token (another run's, a peer's, a forged
   * send): never booked as deliveries, duplicates or latencies. Absent in result files written
   * before it existed (read it as 0).
   */
  foreign?: number;
}

/** Messages the broker accepted: meant to be published, less those refused and those never sent. */
export function publishedCount(counts: LedgerCounts): number {
  return counts.expected - counts.publishFailed - (counts.notSent ?? 0);
}

/**
 * The one definition of lost: published, not completed, and not dead-lettered by design. `deadLettered`
 * is what the dead-letter queue held at the end of a run that sent messages there (--max-receives);
 * 0 for any other run. The summary, the result file, compare and report all read it from here.
 */
export function lostCount(counts: Pick<LedgerCounts, 'lost'>, deadLettered: number): number {
  return Math.max(0, counts.lost - deadLettered);
}

export class Ledger {
  readonly #expected: number;
  readonly #delivered: Uint32Array;
  readonly #completed: Uint32Array;
  // Rare (a publish the broker did not acknowledge), so a Set rather than a third bitset.
  readonly #publishFailed = new Set<number>();
  /** Index ranges [from, to) never sent; few (the tail, plus a batch per publisher cut short). */
  readonly #notSent: [number, number][] = [];
  #deliveredCount = 0;
  #deliveries = 0;
  #duplicateDeliveries = 0;
  #completedCount = 0;
  /** Unique completions of indices whose publish was reported failed (stored after all). */
  #failedButCompletedCount = 0;
  #duplicateCompletions = 0;
  #unknown = 0;
  #foreign = 0;

  constructor(expected: number) {
    if (!Number.isSafeInteger(expected) || expected < 0) {
      throw new RangeError(`Ledger size must be a whole number of messages, not ${expected}.`);
    }
    this.#expected = expected;
    const words = Math.ceil(expected / 32);
    this.#delivered = new Uint32Array(words);
    this.#completed = new Uint32Array(words);
  }

  /** Bytes held by the bitsets (the Set of failed publishes aside). */
  get byteLength(): number {
    return this.#delivered.byteLength + this.#completed.byteLength;
  }

  /** The publisher gave up on message `i`; it may still turn up if the failure was ambiguous. */
  markPublishFailed(i: number): void {
    if (!this.#inRange(i)) {
      throw new RangeError(`Ledger index ${i} is outside 0..${this.#expected - 1}.`);
    }
    if (this.#publishFailed.has(i)) return;
    this.#publishFailed.add(i);
    if (this.#has(this.#completed, i)) this.#failedButCompletedCount++;
  }

  /** Indices `from` up to (not including) `to` were never sent: the run stopped before them. */
  markNotSent(from: number, to: number): void {
    const start = Math.max(0, from);
    const end = Math.min(this.#expected, to);
    if (end > start) this.#notSent.push([start, end]);
  }

  /** True on the first delivery of `i`. An index out of range counts as unknown and returns false. */
  markDelivered(i: number): boolean {
    if (!this.#inRange(i)) {
      this.#unknown++;
      return false;
    }
    this.#deliveries++;
    const word = i >>> 5;
    const bit = 1 << (i & 31);
    const seen = this.#delivered[word]!;
    if ((seen & bit) !== 0) {
      this.#duplicateDeliveries++;
      return false;
    }
    this.#delivered[word] = seen | bit;
    this.#deliveredCount++;
    return true;
  }

  /** True on the first completion of `i`. An index out of range is ignored (its delivery was unknown). */
  markCompleted(i: number): boolean {
    if (!this.#inRange(i)) return false;
    const word = i >>> 5;
    const bit = 1 << (i & 31);
    const done = this.#completed[word]!;
    if ((done & bit) !== 0) {
      this.#duplicateCompletions++;
      return false;
    }
    this.#completed[word] = done | bit;
    this.#completedCount++;
    if (this.#publishFailed.size > 0 && this.#publishFailed.has(i)) this.#failedButCompletedCount++;
    return true;
  }

  /** A delivery whose body was not one of our messages. */
  markUnknown(): void {
    this.#unknown++;
  }

  /** A delivery of a well-formed message that is not the run's (its token is another run's, or missing). */
  markForeign(): void {
    this.#foreign++;
  }

  /** Unique completions so far, O(1): cheap enough for the drain check every tick. */
  completedCount(): number {
    return this.#completedCount;
  }

  /**
   * Unique completions of messages whose publish was reported failed, O(1). A refused batch can be
   * stored in part (a pipeline the server refuses part-way), so these turn up; they must not stand in
   * for accepted messages still out when the drain asks whether everything is accounted for.
   */
  failedButCompletedCount(): number {
    return this.#failedButCompletedCount;
  }

  counts(): LedgerCounts {
    const failedButCompleted = this.#failedButCompletedCount;
    const publishFailed = this.#publishFailed.size;
    let notSent = 0;
    for (const [from, to] of this.#notSent) notSent += to - from;
    return {
      expected: this.#expected,
      publishFailed,
      delivered: this.#deliveredCount,
      deliveries: this.#deliveries,
      duplicateDeliveries: this.#duplicateDeliveries,
      completed: this.#completedCount,
      duplicateCompletions: this.#duplicateCompletions,
      notSent,
      lost: this.#expected - notSent - publishFailed - (this.#completedCount - failedButCompleted),
      unknown: this.#unknown,
      foreign: this.#foreign,
    };
  }

  /** The first `limit` indices, ascending, that were published OK but never completed. */
  missing(limit: number): number[] {
    const out: number[] = [];
    const words = this.#completed.length;
    for (let w = 0; w < words && out.length < limit; w++) {
      const done = this.#completed[w]!;
      if (done === 0xffffffff) continue;
      const base = w * 32;
      const end = Math.min(base + 32, this.#expected);
      for (let i = base; i < end && out.length < limit; i++) {
        if ((done & (1 << (i & 31))) === 0 && !this.#publishFailed.has(i) && !this.#isNotSent(i)) out.push(i);
      }
    }
    return out;
  }

  #isNotSent(i: number): boolean {
    for (const [from, to] of this.#notSent) if (i >= from && i < to) return true;
    return false;
  }

  #inRange(i: number): boolean {
    return Number.isInteger(i) && i >= 0 && i < this.#expected;
  }

  #has(bits: Uint32Array, i: number): boolean {
    return (bits[i >>> 5]! & (1 << (i & 31))) !== 0;
  }
}
