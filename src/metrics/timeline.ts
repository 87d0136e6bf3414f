// Counters over time for the run's timeline: what was published, received, completed and failed in
// each bucket since the start, and the queue depth sampled at the end of it. Kept twice: per second
// (`points()`, what scenarios read their backlog and windows from) and in 100 ms buckets (`series()`,
// what the result file and the report's charts use, so a run of under a second still draws a line).
//
// LIMITATION: depth only as often as the run samples it (once per tick); a bucket without a sample
// has no depth. The fine buckets widen tenfold (to 1 s, then 10 s …) once a run outgrows
// MAX_FINE_BUCKETS, so memory stays bounded however long it runs.

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

/** One bucket of a series: the counts from `startMs` to `startMs` + the series' `bucketMs`. */
export interface TimelineBucket {
  /** Milliseconds since the timeline's start at which the bucket begins: k × bucketMs. */
  startMs: number;
  published: number;
  received: number;
  completed: number;
  failed: number;
  /** ready + inFlight + delayed at the last sample taken in the bucket; absent when none was. */
  depth?: number;
}

/** Counts in buckets of one width; as stored in a result file's `timeline`. */
export interface TimelineSeries {
  /** Width of every bucket, ms (100 for short runs; 1000 in files written before it was recorded). */
  bucketMs: number;
  points: TimelineBucket[];
}

/** Width of the fine buckets a run starts with, ms. */
export const FINE_BUCKET_MS = 100;
/** Fine buckets kept before they widen tenfold: an hour at 100 ms. */
const MAX_FINE_BUCKETS = 36_000;
/** A week: anything later is a caller mixing clocks, and would otherwise allocate without bound. */
const MAX_SECONDS = 7 * 24 * 3600;

export type TimelineKind = 'published' | 'received' | 'completed' | 'failed';

/** Counters and depth samples in equal buckets; depth NaN where a bucket had no sample. */
class Buckets {
  readonly counts: Record<TimelineKind, number[]> = { published: [], received: [], completed: [], failed: [] };
  depth: number[] = [];
  length = 0;

  /** Grows every array (zero-filled) so that index `k` exists. */
  reach(k: number): void {
    while (this.length <= k) {
      this.counts.published.push(0);
      this.counts.received.push(0);
      this.counts.completed.push(0);
      this.counts.failed.push(0);
      this.depth.push(Number.NaN);
      this.length++;
    }
  }

  /** Merges every `factor` buckets into one, the last depth sample of each group kept. */
  widen(factor: number): void {
    const merged = new Buckets();
    for (let k = 0; k < this.length; k++) {
      const into = Math.floor(k / factor);
      merged.reach(into);
      for (const kind of KINDS) merged.counts[kind][into]! += this.counts[kind][k]!;
      if (!Number.isNaN(this.depth[k]!)) merged.depth[into] = this.depth[k]!;
    }
    Object.assign(this.counts, merged.counts);
    this.depth = merged.depth;
    this.length = merged.length;
  }
}

const KINDS: readonly TimelineKind[] = ['published', 'received', 'completed', 'failed'];

export class Timeline {
  readonly #startUs: number;
  readonly #seconds = new Buckets();
  readonly #fine = new Buckets();
  #fineMs = FINE_BUCKET_MS;

  /** `startUs` is monotonic µs (src/clock.ts); every `atUs` is read on the same clock. */
  constructor(startUs: number) {
    this.#startUs = startUs;
  }

  /** Adds `count` events at `atUs`. Times before the start (or NaN) land in the first bucket. */
  add(kind: TimelineKind, count: number, atUs: number): void {
    const elapsedUs = this.#elapsedUs(atUs);
    // Indices first: finding the fine one may widen (and so replace) the fine arrays.
    const second = this.#index(this.#seconds, elapsedUs, 1000);
    const fine = this.#fineIndex(elapsedUs);
    this.#seconds.counts[kind][second]! += count;
    this.#fine.counts[kind][fine]! += count;
  }

  /** Records the queue depth seen at `atUs`; the last sample of a bucket wins. */
  setDepth(depth: number, atUs: number): void {
    const elapsedUs = this.#elapsedUs(atUs);
    const second = this.#index(this.#seconds, elapsedUs, 1000);
    const fine = this.#fineIndex(elapsedUs);
    this.#seconds.depth[second] = depth;
    this.#fine.depth[fine] = depth;
  }

  /** One point per second from 0 to the last second seen, seconds without events filled with 0. */
  points(): TimelinePoint[] {
    return bucketsOf(this.#seconds, 1000).map(({ startMs, ...rest }) => ({ second: startMs / 1000, ...rest }));
  }

  /**
   * The fine buckets (100 ms, wider after an hour), widened on the 1-2-5 ladder to at most
   * `maxPoints` buckets; buckets without events filled with 0.
   */
  series(maxPoints = Number.POSITIVE_INFINITY): TimelineSeries {
    return coarsen({ bucketMs: this.#fineMs, points: bucketsOf(this.#fine, this.#fineMs) }, maxPoints);
  }

  /** µs since the start, 0 for times before it (and NaN); throws on a time no run reaches. */
  #elapsedUs(atUs: number): number {
    const raw = atUs - this.#startUs;
    if (raw / 1e6 > MAX_SECONDS) {
      throw new RangeError(
        `Timeline time ${atUs} µs is ${Math.floor(raw / 1e6)} s after the start: pass monotonic µs from src/clock.ts, not wall-clock time.`,
      );
    }
    return raw >= 0 ? raw : 0; // also catches NaN
  }

  #index(buckets: Buckets, elapsedUs: number, widthMs: number): number {
    const k = Math.floor(elapsedUs / (widthMs * 1000));
    buckets.reach(k);
    return k;
  }

  /** The fine bucket of `elapsedUs`, widening them all tenfold first when there would be too many. */
  #fineIndex(elapsedUs: number): number {
    while (Math.floor(elapsedUs / (this.#fineMs * 1000)) >= MAX_FINE_BUCKETS) {
      this.#fine.widen(10);
      this.#fineMs *= 10;
    }
    return this.#index(this.#fine, elapsedUs, this.#fineMs);
  }
}

function bucketsOf(buckets: Buckets, widthMs: number): TimelineBucket[] {
  const out: TimelineBucket[] = [];
  const c = buckets.counts;
  for (let k = 0; k < buckets.length; k++) {
    const point: TimelineBucket = { startMs: k * widthMs, published: c.published[k]!, received: c.received[k]!, completed: c.completed[k]!, failed: c.failed[k]! };
    const depth = buckets.depth[k]!;
    if (!Number.isNaN(depth)) point.depth = depth;
    out.push(point);
  }
  return out;
}

/**
 * The narrowest width of 1, 2 or 5 × 10^k ms that is a whole multiple of `bucketMs` and spans
 * `spanMs` in at most `maxPoints` buckets; else `bucketMs` times the smallest factor that does.
 */
export function widthFor(bucketMs: number, spanMs: number, maxPoints: number): number {
  const fits = (width: number): boolean => Math.ceil(spanMs / width) <= maxPoints;
  if (fits(bucketMs)) return bucketMs;
  for (let decade = 1; decade <= 1e12; decade *= 10) {
    for (const step of [1, 2, 5]) {
      const width = step * decade;
      if (width > bucketMs && width % bucketMs === 0 && fits(width)) return width;
    }
  }
  return bucketMs * Math.max(1, Math.ceil(spanMs / bucketMs / Math.max(1, maxPoints)));
}

/**
 * `series` in buckets wide enough that there are at most `maxPoints` (see widthFor): counts added,
 * the last depth sample of each kept. Points are taken as they come (a file's may be out of order or
 * have gaps): each lands in the bucket its `startMs` falls in, and buckets are returned in order.
 */
export function coarsen(series: TimelineSeries, maxPoints: number): TimelineSeries {
  const { bucketMs, points } = series;
  if (points.length === 0) return { bucketMs, points: [] };
  const spanMs = points.reduce((last, p) => Math.max(last, p.startMs), 0) + bucketMs;
  const width = widthFor(bucketMs, spanMs, Math.max(1, maxPoints));
  if (width === bucketMs) return { bucketMs, points: points.map((p) => ({ ...p })) };
  const merged = new Map<number, TimelineBucket>();
  for (const point of points) {
    const k = Math.floor(Math.max(0, point.startMs) / width);
    let into = merged.get(k);
    if (into === undefined) {
      into = { startMs: k * width, published: 0, received: 0, completed: 0, failed: 0 };
      merged.set(k, into);
    }
    for (const kind of KINDS) into[kind] += point[kind];
    if (point.depth !== undefined) into.depth = point.depth;
  }
  return { bucketMs: width, points: [...merged.keys()].sort((a, b) => a - b).map((k) => merged.get(k)!) };
}

/** A per-second timeline (what result files held before they recorded a bucket width) as a series. */
export function seriesOfSeconds(points: readonly TimelinePoint[]): TimelineSeries {
  return { bucketMs: 1000, points: points.map(({ second, ...rest }) => ({ startMs: second * 1000, ...rest })) };
}

/**
 * Series laid end to end on one time axis, each `offsetMs` after the first one's start (a scenario's
 * steps, run one after another), in buckets of the widest width among them: each bucket lands where
 * its start falls, counts add up, the last depth sample wins and gaps between them are filled with 0.
 */
export function layEndToEnd(parts: readonly { readonly offsetMs: number; readonly series: TimelineSeries }[]): TimelineSeries {
  const bucketMs = parts.reduce((widest, part) => Math.max(widest, part.series.bucketMs), FINE_BUCKET_MS);
  const out: TimelineBucket[] = [];
  for (const { offsetMs, series } of parts) {
    for (const point of series.points) {
      const k = Math.floor((Math.max(0, offsetMs) + point.startMs) / bucketMs);
      while (out.length <= k) out.push({ startMs: out.length * bucketMs, published: 0, received: 0, completed: 0, failed: 0 });
      const into = out[k]!;
      for (const kind of KINDS) into[kind] += point[kind];
      if (point.depth !== undefined) into.depth = point.depth;
    }
  }
  return { bucketMs, points: out };
}
