import { build } from 'hdr-histogram-js';
import { describe, expect, it } from 'vitest';
import {
  HIGHEST_US,
  clampedCount,
  createLatencyHistogram,
  decodeHistogram,
  encodeHistogram,
  mergeHistograms,
  percentileDistribution,
  recordCorrected,
  recordLatency,
  summarize,
} from '../../src/metrics/histogram.ts';

function uniform(from: number, to: number) {
  const h = createLatencyHistogram();
  for (let v = from; v <= to; v++) recordLatency(h, v);
  return h;
}

describe('summarize', () => {
  it('is all zeros for an empty histogram', () => {
    expect(summarize(createLatencyHistogram())).toEqual({
      count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0,
    });
  });

  it('reads percentiles of 1..10000 µs uniform within 0.1%', () => {
    const s = summarize(uniform(1, 10_000));
    expect(s.count).toBe(10_000);
    expect(s.min).toBe(1);
    expect(Math.abs(s.max - 10_000) / 10_000).toBeLessThan(0.001);
    expect(Math.abs(s.mean - 5000.5) / 5000.5).toBeLessThan(0.001);
    expect(Math.abs(s.p50 - 5000) / 5000).toBeLessThan(0.001);
    expect(Math.abs(s.p90 - 9000) / 9000).toBeLessThan(0.001);
    expect(Math.abs(s.p99 - 9900) / 9900).toBeLessThan(0.001);
    expect(Math.abs(s.p999 - 9990) / 9990).toBeLessThan(0.001);
  });

  it('puts a rare slow value only in the tail', () => {
    const h = createLatencyHistogram();
    for (let i = 0; i < 999; i++) recordLatency(h, 100);
    recordLatency(h, 50_000);
    const s = summarize(h);
    expect(s.p50).toBe(100);
    expect(s.p99).toBe(100);
    expect(s.p999).toBe(100);
    expect(s.max).toBeGreaterThanOrEqual(50_000);
    expect(Math.abs(s.max - 50_000) / 50_000).toBeLessThan(0.001);
  });

  it('is exact below 2048 µs and within 0.1% up to an hour', () => {
    for (const v of [1, 7, 999, 2047, 123_456, 98_765_432, HIGHEST_US]) {
      const h = createLatencyHistogram();
      recordLatency(h, v);
      const p50 = summarize(h).p50;
      if (v < 2048) expect(p50).toBe(v);
      else expect(Math.abs(p50 - v) / v).toBeLessThan(0.001);
    }
  });
});

describe('encode / decode', () => {
  it('round-trips counts and percentiles', () => {
    const h = createLatencyHistogram();
    for (let i = 0; i < 20_000; i++) recordLatency(h, 50 + ((i * 7919) % 300_000));
    const back = decodeHistogram(encodeHistogram(h));
    expect(back.totalCount).toBe(h.totalCount);
    expect(summarize(back)).toEqual(summarize(h));
    for (const p of [0, 1, 25, 50, 75, 99, 99.99, 100]) {
      expect(back.getValueAtPercentile(p)).toBe(h.getValueAtPercentile(p));
    }
  });

  it('round-trips an empty histogram', () => {
    const back = decodeHistogram(encodeHistogram(createLatencyHistogram()));
    expect(summarize(back).count).toBe(0);
  });

  it.each([
    ['not base64', 'this is not base64 !!!'],
    ['empty', ''],
    ['base64 of plain text', Buffer.from('hello world, not a histogram').toString('base64')],
    ['a truncated encoding', encodeHistogram(uniform(1, 5000)).slice(0, 30)],
  ])('throws a plain error on %s', (_name, garbage) => {
    expect(() => decodeHistogram(garbage)).toThrowError(new Error('histogram: not a valid encoded histogram'));
  });
});

describe('mergeHistograms', () => {
  it('equals recording both sets into one histogram, not the average of percentiles', () => {
    const fast = createLatencyHistogram();
    const slow = createLatencyHistogram();
    const both = createLatencyHistogram();
    for (let i = 1; i <= 9000; i++) {
      recordLatency(fast, i);
      recordLatency(both, i);
    }
    for (let i = 0; i < 1000; i++) {
      recordLatency(slow, 1_000_000 + i);
      recordLatency(both, 1_000_000 + i);
    }
    const merged = mergeHistograms([fast, slow]);
    expect(summarize(merged)).toEqual(summarize(both));
    expect(merged.totalCount).toBe(10_000);
    // p50 of the union lies in the fast set; averaging the two p50s would give ~502 ms.
    expect(summarize(merged).p50).toBeLessThan(10_000);
    expect(summarize(merged).p99).toBeGreaterThanOrEqual(1_000_000 * 0.999);
    // The inputs are untouched.
    expect(fast.totalCount).toBe(9000);
  });

  it('merges histograms shipped as encoded strings', () => {
    const parts = [uniform(1, 3000), uniform(3001, 6000), uniform(6001, 10_000)];
    const merged = mergeHistograms(parts.map((h) => decodeHistogram(encodeHistogram(h))));
    expect(summarize(merged)).toEqual(summarize(uniform(1, 10_000)));
  });

  it('returns an empty histogram for an empty list', () => {
    expect(summarize(mergeHistograms([])).count).toBe(0);
  });
});

describe('recordLatency clamping', () => {
  it('clamps negative, NaN and over-an-hour values without throwing, and counts them', () => {
    const h = createLatencyHistogram();
    recordLatency(h, -5);
    recordLatency(h, Number.NaN);
    recordLatency(h, 10 * HIGHEST_US);
    recordLatency(h, Number.POSITIVE_INFINITY);
    expect(h.totalCount).toBe(4);
    expect(clampedCount(h)).toBe(4);
    expect(h.minNonZeroValue).toBe(1);
    expect(Math.abs(h.maxValue - HIGHEST_US) / HIGHEST_US).toBeLessThan(0.001);
  });

  it('rounds sub-microsecond and fractional values without counting them as clamped', () => {
    const h = createLatencyHistogram();
    recordLatency(h, 0);
    recordLatency(h, 0.3);
    recordLatency(h, 41.6);
    expect(clampedCount(h)).toBe(0);
    expect(h.minNonZeroValue).toBe(1);
    expect(h.maxValue).toBe(42);
  });

  it('adds up clamp counts when merging', () => {
    const a = createLatencyHistogram();
    const b = createLatencyHistogram();
    recordLatency(a, -1);
    recordLatency(b, -1);
    recordLatency(b, 1e15);
    expect(clampedCount(mergeHistograms([a, b]))).toBe(3);
  });
});

describe('recordCorrected', () => {
  function library(value: number, interval: number) {
    const h = build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3 });
    h.recordValueWithExpectedInterval(value, interval);
    return h;
  }

  it('adds the samples a stalled sender missed', () => {
    const h = createLatencyHistogram();
    recordCorrected(h, 10_000, 1000); // 10000, 9000, ..., 1000
    expect(h.totalCount).toBe(10);
    expect(h.minNonZeroValue).toBe(1000);
    expect(h.maxValue).toBe(10_000);
  });

  it('records one value when the latency is within the interval or the interval is not positive', () => {
    for (const [value, interval] of [[500, 1000], [1999, 1000], [5000, 0], [5000, -1], [5000, Number.NaN]] as const) {
      const h = createLatencyHistogram();
      recordCorrected(h, value, interval);
      expect(h.totalCount).toBe(1);
    }
  });

  it.each([
    [123_456, 100],
    [10_000_000, 1000],
    [70_000, 1],
    [5_000, 2_000],
  ])('matches recordValueWithExpectedInterval for %d µs every %d µs', (value, interval) => {
    const ours = createLatencyHistogram();
    recordCorrected(ours, value, interval);
    const theirs = library(value, interval);
    expect(ours.totalCount).toBe(theirs.totalCount);
    expect(summarize(ours)).toEqual(summarize(theirs));
    for (let p = 0; p <= 100; p += 2.5) expect(ours.getValueAtPercentile(p)).toBe(theirs.getValueAtPercentile(p));
  });

  it('matches sample-by-sample recording for a fractional interval (3000 per second)', () => {
    // The library steps by repeated subtraction, so its float error can shift a sample across a
    // sub-bucket edge; the reference here computes each sample as value - k·interval, like ours.
    const value = 2_500_000;
    const interval = 1e6 / 3000;
    const ours = createLatencyHistogram();
    recordCorrected(ours, value, interval);
    const reference = createLatencyHistogram();
    reference.recordValue(value);
    for (let k = 1; value - k * interval >= interval; k++) reference.recordValue(value - k * interval);
    expect(ours.totalCount).toBe(7500);
    expect(summarize(ours)).toEqual(summarize(reference));
    const theirs = library(value, interval);
    expect(ours.totalCount).toBe(theirs.totalCount);
    expect(Math.abs(summarize(ours).p50 - summarize(theirs).p50) / summarize(theirs).p50).toBeLessThan(0.001);
  });

  it('handles an hour-long stall at a 1 µs interval (3.6 billion samples) in grouped records', () => {
    const h = createLatencyHistogram();
    recordCorrected(h, HIGHEST_US, 1);
    expect(h.totalCount).toBe(HIGHEST_US);
    expect(Math.abs(summarize(h).p50 - HIGHEST_US / 2) / (HIGHEST_US / 2)).toBeLessThan(0.001);
  });

  it('clamps like recordLatency', () => {
    const h = createLatencyHistogram();
    recordCorrected(h, -3, 100);
    expect(h.totalCount).toBe(1);
    expect(clampedCount(h)).toBe(1);
  });
});

describe('percentileDistribution', () => {
  it('prints the standard .hgrm table in ms', () => {
    const text = percentileDistribution(uniform(1, 10_000));
    expect(text).toMatch(/Value\s+Percentile\s+TotalCount\s+1\/\(1-Percentile\)/);
    expect(text).toMatch(/#\[Mean\s+=\s+5\.0/);
    expect(text).toMatch(/#\[Max\s+=\s+10\.0/);
    expect(text).toMatch(/Total count\s+=\s+10000\]/);
  });
});
