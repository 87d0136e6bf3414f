// Latency histograms: build, record (clamped, optionally corrected for coordinated omission),
// summarize, encode for shipping between processes, and merge. Every value is in microseconds.
//
// LIMITATION: 3 significant digits (a value is known to within 0.1%), 1 µs to 1 hour; values outside
// are clamped and counted, and those counts do not survive encoding.

import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';

/** Lowest value kept apart from zero, in µs. */
export const LOWEST_US = 1;
/** Highest value tracked, in µs: one hour. Anything above is clamped here. */
export const HIGHEST_US = 3_600_000_000;
const SIGNIFICANT_DIGITS = 3;

// For a histogram with lowest discernible value 1, a value's bucket is floor(log2 v) - this
// (at least 0) and its sub-bucket width is 2^bucket. 3 digits: 2 * 10^3 -> 2048 sub-buckets.
const SUB_BUCKET_HALF_COUNT_MAGNITUDE = Math.ceil(Math.log2(2 * 10 ** SIGNIFICANT_DIGITS)) - 1;

/** How many records each histogram had clamped; kept beside it since the library object has no slot. */
const clamps = new WeakMap<Histogram, number>();

/**
 * 1 µs .. 1 hour, 3 significant digits, 32-bit counts, no auto-resize (so memory is fixed at ~95 KB).
 * Plain JS, not wasm: wasm records ~4x faster (≈21 vs ≈88 ns) but its memory is not garbage
 * collected (every histogram must be `destroy()`ed) and a wasm histogram cannot be `add()`ed to a JS
 * one; 70 ns per message is noise next to a broker round trip.
 */
export function createLatencyHistogram(): Histogram {
  return build({
    lowestDiscernibleValue: LOWEST_US,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    bitBucketSize: 32,
    autoResize: false,
    useWebAssembly: false,
  });
}

/**
 * The numbers a report prints, in µs. All zero when nothing was recorded. `min` and `max` are the
 * edges of their sub-buckets (within 0.1% of the true value), read from the counts alone, so a
 * summary comes out the same whether the histogram was recorded here, decoded, or merged.
 */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export function summarize(h: Histogram): LatencySummary {
  const count = h.totalCount;
  if (count === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    count,
    min: h.getValueAtPercentile(0),
    mean: h.mean,
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.getValueAtPercentile(100),
  };
}

/** Compressed base64 (the HdrHistogram V2 format every HdrHistogram port reads). Clamp counts are not carried. */
export function encodeHistogram(h: Histogram): string {
  return encodeIntoCompressedBase64(h);
}

export function decodeHistogram(encoded: string): Histogram {
  let h: Histogram;
  try {
    h = decodeFromCompressedBase64(encoded);
  } catch (cause) {
    throw new Error('histogram: not a valid encoded histogram', { cause });
  }
  if (!Number.isFinite(h.totalCount) || h.totalCount < 0) {
    throw new Error('histogram: not a valid encoded histogram');
  }
  return h;
}

/** A new histogram holding every value of every input: merged, never averaged. Clamp counts add up. */
export function mergeHistograms(list: readonly Histogram[]): Histogram {
  const merged = createLatencyHistogram();
  let clamped = 0;
  for (const h of list) {
    merged.add(h);
    clamped += clamps.get(h) ?? 0;
  }
  if (clamped > 0) clamps.set(merged, clamped);
  return merged;
}

/** How many values `recordLatency` / `recordCorrected` had to clamp into [1 µs, 1 hour] for this histogram. */
export function clampedCount(h: Histogram): number {
  return clamps.get(h) ?? 0;
}

/** Rounds to whole µs and clamps into range, counting values that were outside (negative, NaN, > 1 h). */
function clampUs(h: Histogram, valueUs: number): number {
  const v = Math.round(valueUs);
  if (v >= LOWEST_US && v <= HIGHEST_US) return v;
  // Below 0.5 µs but not negative is sub-resolution, not an error: round up without counting.
  if (valueUs >= 0 && v < LOWEST_US) return LOWEST_US;
  clamps.set(h, (clamps.get(h) ?? 0) + 1);
  return v > HIGHEST_US ? HIGHEST_US : LOWEST_US;
}

/** Records a latency, clamping to [1, highest] so a negative (clock) or huge value never throws; counts clamps. */
export function recordLatency(h: Histogram, valueUs: number): void {
  h.recordValue(clampUs(h, valueUs));
}

/** Records `count` equal latencies at once, clamped and counted like recordLatency. */
export function recordLatencyTimes(h: Histogram, valueUs: number, count: number): void {
  h.recordValueWithCount(clampUs(h, valueUs), count);
}

/**
 * Records latencies in runs of equal values, one histogram call per run. A publish batch shares one
 * send time and a receive batch one receive time, so a received batch is mostly a single run: this
 * turns ~100 records per batch into one or two, with exactly the same counts. `flush()` after a batch.
 */
export class RunRecorder {
  readonly #histogram: Histogram;
  #valueUs = 0;
  #count = 0;

  constructor(histogram: Histogram) {
    this.#histogram = histogram;
  }

  add(valueUs: number): void {
    if (this.#count > 0 && valueUs === this.#valueUs) {
      this.#count++;
      return;
    }
    this.flush();
    this.#valueUs = valueUs;
    this.#count = 1;
  }

  flush(): void {
    if (this.#count === 0) return;
    recordLatencyTimes(this.#histogram, this.#valueUs, this.#count);
    this.#count = 0;
  }
}

/**
 * Under a fixed rate: records the value plus the samples a stalled sender would have taken
 * (value - k·interval for every k while ≥ interval), as `recordValueWithExpectedInterval` does,
 * the coordinated-omission correction. `expectedIntervalUs` = 1e6 / ratePerSec; ≤ 0 records plainly.
 *
 * Same counts as the library, but samples falling in one sub-bucket are recorded with one
 * `recordValueWithCount`, so a 1-hour stall at 1 µs intervals costs ~20k calls, not 3.6 billion.
 */
export function recordCorrected(h: Histogram, valueUs: number, expectedIntervalUs: number): void {
  const v = clampUs(h, valueUs);
  h.recordValue(v);
  const interval = expectedIntervalUs;
  if (!(interval > 0) || !Number.isFinite(interval) || v < 2 * interval) return;
  const last = Math.floor(v / interval) - 1; // highest k with v - k·interval >= interval
  let k = 1;
  while (k <= last) {
    const x = v - k * interval;
    const bucket = Math.max(Math.floor(Math.log2(x)) - SUB_BUCKET_HALF_COUNT_MAGNITUDE, 0);
    const width = 2 ** bucket;
    const subBucketLow = Math.floor(x / width) * width;
    const n = Math.min(Math.floor((x - subBucketLow) / interval) + 1, last - k + 1);
    // The group's lowest sample, so minNonZeroValue matches sample-by-sample recording.
    h.recordValueWithCount(v - (k + n - 1) * interval, n);
    k += n;
  }
}

/** The standard HdrHistogram `.hgrm` percentile text; values divided by `scaleToMs` (1000: µs -> ms). */
export function percentileDistribution(h: Histogram, scaleToMs = 1000): string {
  return h.outputPercentileDistribution(5, scaleToMs);
}
