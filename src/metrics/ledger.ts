// The zero-loss proof: one bit per message for "delivered" and one for "completed", keyed by the
// message index 0..N-1, so 5,000,000 messages cost 1.25 MB and every index is accounted for.
//
// A run spread over several workers (src/runner/worker.ts) keeps one ledger per worker; each writes
// it as a compact LedgerState (the bitsets deflated) and mergeLedgers combines them index by index,
// so lost and duplicated are exact for the whole run, across workers too.
//
// LIMITATION: one process's books; consumers elsewhere report to it (src/pipeline/subscriber.ts). It
// knows indices, not broker message ids, so a broker-side copy of a body counts as a duplicate delivery.

import { deflateRawSync, inflateRawSync } from 'node:zlib';

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
   * Only in a run merged from several workers: messages a worker that was killed had handed to the
   * broker without an answer when it died, and that no consumer ever saw. Neither published nor lost:
   * the broker may never have stored them. Absent elsewhere (read it as 0).
   */
  inDoubt?: number;
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
  return counts.expected - counts.publishFailed - (counts.notSent ?? 0) - (counts.inDoubt ?? 0);
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

  /** The whole ledger, compact: what a worker writes so its books can be merged with the others' (mergeLedgers). */
  state(): LedgerState {
    return {
      expected: this.#expected,
      delivered: encodeBits(this.#delivered),
      completed: encodeBits(this.#completed),
      publishFailed: [...this.#publishFailed].sort((a, b) => a - b),
      notSent: this.#notSent.map(([from, to]) => [from, to] as [number, number]),
      deliveries: this.#deliveries,
      completions: this.#completedCount + this.#duplicateCompletions,
      unknown: this.#unknown,
      foreign: this.#foreign,
    };
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

/**
 * A ledger as a worker of a many-worker run writes it: the two bitsets as base64 of their raw-deflated
 * little-endian 32-bit words (a run where everything completed compresses to almost nothing), the
 * rare sets as lists, and the totals the bitsets cannot hold.
 */
export interface LedgerState {
  readonly expected: number;
  /** Indices delivered at least once: bit i of word i >>> 5. */
  readonly delivered: string;
  /** Indices completed at least once, in the same layout. */
  readonly completed: string;
  /** Indices whose publish the broker refused, ascending. */
  readonly publishFailed: readonly number[];
  /** Index ranges [from, to) never sent. */
  readonly notSent: readonly (readonly [number, number])[];
  /** Every delivery of an index in range, first or not. */
  readonly deliveries: number;
  /** Every completion, first or not. */
  readonly completions: number;
  readonly unknown: number;
  readonly foreign: number;
}

/** What one worker's books say, for the merge: its ledger, and which indices it published and how. */
export interface LedgerPart {
  readonly ledger: LedgerState;
  /** The indices this worker's publishers owned: [first, end). Its publish facts count for these alone. */
  readonly first: number;
  readonly end: number;
  /**
   * Ranges [from, to) of its indices handed to the broker with no answer when the worker was killed:
   * published if any consumer saw them, else in doubt. Empty for a worker that finished.
   */
  readonly inDoubt: readonly (readonly [number, number])[];
}

/**
 * Combines the ledgers of every worker of a run, index by index: delivered and completed are OR'd, so
 * a message delivered by two workers is one unique delivery and one duplicate; duplicates are every
 * delivery less the unique ones; each index's publish facts (refused, never sent, in doubt) come from
 * the worker that owned it; lost is published, not completed. Throws RangeError when the parts do not
 * describe one run (different sizes, owned ranges that overlap or leave a gap).
 */
export function mergeLedgers(
  parts: readonly LedgerPart[],
  missingLimit = 20,
): { counts: LedgerCounts; missing: number[]; deliveredNotCompleted: number[] } {
  if (parts.length === 0) throw new RangeError('no ledgers to merge');
  const expected = parts[0]!.ledger.expected;
  const words = Math.ceil(expected / 32);
  const delivered = new Uint32Array(words);
  const completed = new Uint32Array(words);
  let deliveries = 0;
  let completions = 0;
  let unknown = 0;
  let foreign = 0;
  const deliveredBy: Uint32Array[] = [];
  for (const part of parts) {
    if (part.ledger.expected !== expected) throw new RangeError(`ledgers of ${expected} and ${part.ledger.expected} messages are not of one run`);
    const own = decodeBits(part.ledger.delivered, words);
    deliveredBy.push(own);
    orInto(delivered, own);
    orInto(completed, decodeBits(part.ledger.completed, words));
    deliveries += part.ledger.deliveries;
    completions += part.ledger.completions;
    unknown += part.ledger.unknown;
    foreign += part.ledger.foreign;
  }
  const owned = [...parts].sort((a, b) => a.first - b.first);
  let covered = 0;
  for (const part of owned) {
    if (part.first !== covered || part.end < part.first) throw new RangeError(`the workers' index ranges do not tile 0..${expected}: one starts at ${part.first}, expected ${covered}`);
    covered = part.end;
  }
  if (covered !== expected) throw new RangeError(`the workers' index ranges end at ${covered}, not at ${expected}`);
  const has = (bits: Uint32Array, i: number): boolean => (bits[i >>> 5]! & (1 << (i & 31))) !== 0;
  // Indices whose fate the publish facts decide (refused, never sent, in doubt and never seen), as a third bitset.
  const notPublished = new Uint32Array(words);
  const mark = (i: number): boolean => {
    if (has(notPublished, i)) return false;
    notPublished[i >>> 5]! |= 1 << (i & 31);
    return true;
  };
  let publishFailed = 0;
  let failedButCompleted = 0;
  let notSent = 0;
  let inDoubt = 0;
  for (const part of owned) {
    for (const i of part.ledger.publishFailed) {
      if (!Number.isInteger(i) || i < part.first || i >= part.end || !mark(i)) continue;
      publishFailed++;
      if (has(completed, i)) failedButCompleted++;
    }
    for (const [from, to] of part.ledger.notSent) {
      for (let i = Math.max(from, part.first); i < Math.min(to, part.end); i++) if (mark(i)) notSent++;
    }
    for (const [from, to] of part.inDoubt) {
      // Seen by a consumer: the broker had it, so it was published (and lost if never completed).
      for (let i = Math.max(from, part.first); i < Math.min(to, part.end); i++) if (!has(delivered, i) && mark(i)) inDoubt++;
    }
  }
  const deliveredCount = popcount(delivered);
  const completedCount = popcount(completed);
  const missing: number[] = [];
  for (let i = 0; i < expected && missing.length < missingLimit; i++) {
    if (!has(completed, i) && !has(notPublished, i)) missing.push(i);
  }
  // Per part: indices it was delivered that nobody completed (what a dead at-most-once consumer took with it).
  const deliveredNotCompleted = deliveredBy.map((own) => {
    let count = 0;
    for (let w = 0; w < words; w++) count += popcount32(own[w]! & ~completed[w]!);
    return count;
  });
  return {
    deliveredNotCompleted,
    counts: {
      expected,
      publishFailed,
      delivered: deliveredCount,
      deliveries,
      duplicateDeliveries: deliveries - deliveredCount,
      completed: completedCount,
      duplicateCompletions: completions - completedCount,
      notSent,
      inDoubt,
      lost: expected - notSent - publishFailed - inDoubt - (completedCount - failedButCompleted),
      unknown,
      foreign,
    },
    missing,
  };
}

function encodeBits(bits: Uint32Array): string {
  const bytes = Buffer.alloc(bits.length * 4);
  for (let k = 0; k < bits.length; k++) bytes.writeUInt32LE(bits[k]!, k * 4);
  return deflateRawSync(bytes).toString('base64');
}

/** The bitset of `words` words from its encoding; RangeError for anything that does not decode to exactly that. */
function decodeBits(encoded: string, words: number): Uint32Array {
  let bytes: Buffer;
  try {
    bytes = inflateRawSync(Buffer.from(encoded, 'base64'), { maxOutputLength: Math.max(1, words * 4) });
  } catch (cause) {
    throw new RangeError('a ledger bitset does not decode', { cause });
  }
  if (bytes.length !== words * 4) throw new RangeError(`a ledger bitset holds ${bytes.length} bytes, not ${words * 4}`);
  const bits = new Uint32Array(words);
  for (let k = 0; k < words; k++) bits[k] = bytes.readUInt32LE(k * 4);
  return bits;
}

function orInto(target: Uint32Array, source: Uint32Array): void {
  for (let k = 0; k < target.length; k++) target[k]! |= source[k]!;
}

function popcount(bits: Uint32Array): number {
  let total = 0;
  for (let k = 0; k < bits.length; k++) total += popcount32(bits[k]!);
  return total;
}

function popcount32(word: number): number {
  let v = word >>> 0;
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}
