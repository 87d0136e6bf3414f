// Per-second counters for the run's timeline chart: what was published, received, completed and
// failed in each second since the start, and the queue depth sampled at the end of it.
//
// LIMITATION: one-second resolution, and depth only as often as the run samples it (once per tick);
// a second without a sample has no depth.

export interface TimelinePoint {
  /** Seconds since the timeline's start, 0-based. */
  second: number;
  published: number;
  received: number;
  completed: number;
  failed: number;
  /** ready + inFlight + delayed at the last sample taken in that second; absent when none was. */
  depth?: number;
}

/** A week: anything later is a caller mixing clocks, and would otherwise allocate without bound. */
const MAX_SECONDS = 7 * 24 * 3600;

export type TimelineKind = 'published' | 'received' | 'completed' | 'failed';

export class Timeline {
  readonly #startUs: number;
  readonly #counts: Record<TimelineKind, number[]> = { published: [], received: [], completed: [], failed: [] };
  // NaN marks a second with no depth sample.
  readonly #depth: number[] = [];
  #seconds = 0;

  /** `startUs` is monotonic µs (src/clock.ts); every `atUs` is read on the same clock. */
  constructor(startUs: number) {
    this.#startUs = startUs;
  }

  /** Adds `count` events at `atUs`. Times before the start (or NaN) land in second 0. */
  add(kind: TimelineKind, count: number, atUs: number): void {
    const s = this.#secondOf(atUs);
    this.#counts[kind][s]! += count;
  }

  /** Records the queue depth seen at `atUs`; the last sample of a second wins. */
  setDepth(depth: number, atUs: number): void {
    this.#depth[this.#secondOf(atUs)] = depth;
  }

  /** One point per second from 0 to the last second seen, seconds without events filled with 0. */
  points(): TimelinePoint[] {
    const out: TimelinePoint[] = [];
    const c = this.#counts;
    for (let s = 0; s < this.#seconds; s++) {
      const point: TimelinePoint = {
        second: s,
        published: c.published[s]!,
        received: c.received[s]!,
        completed: c.completed[s]!,
        failed: c.failed[s]!,
      };
      const depth = this.#depth[s]!;
      if (!Number.isNaN(depth)) point.depth = depth;
      out.push(point);
    }
    return out;
  }

  /** The second's index, growing every array (zero-filled) so that index exists. */
  #secondOf(atUs: number): number {
    const raw = Math.floor((atUs - this.#startUs) / 1e6);
    const s = raw >= 0 ? raw : 0; // also catches NaN
    if (s > MAX_SECONDS) {
      throw new RangeError(
        `Timeline time ${atUs} µs is ${raw} s after the start: pass monotonic µs from src/clock.ts, not wall-clock time.`,
      );
    }
    while (this.#seconds <= s) {
      this.#counts.published.push(0);
      this.#counts.received.push(0);
      this.#counts.completed.push(0);
      this.#counts.failed.push(0);
      this.#depth.push(Number.NaN);
      this.#seconds++;
    }
    return s;
  }
}
