import { describe, expect, it } from 'vitest';
import { coarsen, FINE_BUCKET_MS, layEndToEnd, seriesOfSeconds, Timeline, widthFor } from '../../src/metrics/timeline.ts';

const START = 5_000_000_000; // an arbitrary monotonic µs origin

const empty = (second: number) => ({ second, published: 0, received: 0, completed: 0, failed: 0 });
const fine = (startMs: number) => ({ startMs, published: 0, received: 0, completed: 0, failed: 0 });

describe('Timeline', () => {
  it('has no points before anything happens', () => {
    expect(new Timeline(START).points()).toEqual([]);
  });

  it('buckets by whole seconds since the start', () => {
    const t = new Timeline(START);
    t.add('published', 1, START);
    t.add('published', 2, START + 999_999);
    t.add('published', 4, START + 1_000_000);
    t.add('received', 3, START + 1_999_999.9);
    t.add('completed', 5, START + 2_000_000);
    t.add('failed', 1, START + 2_500_000);
    expect(t.points()).toEqual([
      { ...empty(0), published: 3 },
      { ...empty(1), published: 4, received: 3 },
      { ...empty(2), completed: 5, failed: 1 },
    ]);
  });

  it('fills seconds without events with zeros', () => {
    const t = new Timeline(START);
    t.add('completed', 10, START + 100);
    t.add('completed', 7, START + 4_000_000);
    const points = t.points();
    expect(points.map((p) => p.second)).toEqual([0, 1, 2, 3, 4]);
    expect(points.map((p) => p.completed)).toEqual([10, 0, 0, 0, 7]);
    expect(points[2]).toEqual(empty(2));
  });

  it('accepts events out of order', () => {
    const t = new Timeline(START);
    t.add('received', 1, START + 3_200_000);
    t.add('received', 1, START + 1_200_000);
    t.add('received', 1, START + 3_900_000);
    expect(t.points().map((p) => p.received)).toEqual([0, 1, 0, 2]);
  });

  it('puts events from before the start in second 0', () => {
    const t = new Timeline(START);
    t.add('published', 2, START - 5_000_000);
    t.add('published', 1, Number.NaN);
    expect(t.points()).toEqual([{ ...empty(0), published: 3 }]);
  });

  it('keeps the last depth sample of each second and leaves unsampled seconds without one', () => {
    const t = new Timeline(START);
    t.setDepth(100, START + 200_000);
    t.setDepth(80, START + 900_000);
    t.add('published', 1, START + 1_500_000);
    t.setDepth(0, START + 2_100_000);
    const points = t.points();
    expect(points).toHaveLength(3);
    expect(points[0]!.depth).toBe(80);
    expect('depth' in points[1]!).toBe(false);
    expect(points[2]).toEqual({ ...empty(2), depth: 0 });
  });

  it('rejects a wall-clock time passed by mistake instead of growing without bound', () => {
    const t = new Timeline(1_000);
    expect(() => t.add('published', 1, Date.now() * 1000)).toThrow(/monotonic/);
  });
});

describe('Timeline.series', () => {
  it('keeps 100 ms buckets, so a run of under a second has several points', () => {
    const t = new Timeline(START);
    t.add('published', 10, START);
    t.add('published', 5, START + 99_999);
    t.add('completed', 7, START + 250_000);
    t.setDepth(3, START + 260_000);
    t.add('completed', 8, START + 799_000);
    const series = t.series();
    expect(series.bucketMs).toBe(FINE_BUCKET_MS);
    expect(series.points.map((p) => p.startMs)).toEqual([0, 100, 200, 300, 400, 500, 600, 700]);
    expect(series.points[0]).toEqual({ ...fine(0), published: 15 });
    expect(series.points[2]).toEqual({ ...fine(200), completed: 7, depth: 3 });
    expect(series.points[7]).toEqual({ ...fine(700), completed: 8 });
    // The per-second view of the same events is one point.
    expect(t.points()).toEqual([{ ...empty(0), published: 15, completed: 15, depth: 3 }]);
  });

  it('widens to at most maxPoints buckets on the 1-2-5 ladder, counts added and the last depth kept', () => {
    const t = new Timeline(START);
    for (let k = 0; k < 100; k++) t.add('completed', 1, START + k * 100_000); // 10 s, one event per 100 ms
    t.setDepth(9, START + 1_250_000);
    t.setDepth(4, START + 1_450_000);
    const series = t.series(30);
    expect(series.bucketMs).toBe(500);
    expect(series.points).toHaveLength(20);
    expect(series.points.every((p) => p.completed === 5)).toBe(true);
    expect(series.points[2]!.depth).toBe(4);
    expect('depth' in series.points[3]!).toBe(false);
    expect(t.series(100).bucketMs).toBe(100);
    expect(t.series(99).bucketMs).toBe(200);
  });

  it('widens its buckets tenfold once a run outgrows an hour of them, keeping every count', () => {
    const t = new Timeline(START);
    t.add('published', 1, START + 50_000);
    t.setDepth(2, START + 1_500_000_000);
    t.add('published', 2, START + 3_600_000_000 + 10); // just past an hour of 100 ms buckets
    const series = t.series();
    expect(series.bucketMs).toBe(1000);
    expect(series.points).toHaveLength(3601);
    expect(series.points[0]).toEqual({ ...fine(0), published: 1 });
    expect(series.points[1500]!.depth).toBe(2);
    expect(series.points[3600]).toEqual({ ...fine(3_600_000), published: 2 });
    expect(series.points.reduce((n, p) => n + p.published, 0)).toBe(3);
  });
});

describe('coarsen and widthFor', () => {
  it('picks the narrowest width of 1, 2 or 5 × 10^k that is a multiple of the bucket and fits', () => {
    expect(widthFor(100, 20_000, 200)).toBe(100);
    expect(widthFor(100, 20_100, 200)).toBe(200);
    expect(widthFor(100, 60_000, 200)).toBe(500);
    expect(widthFor(1000, 3_600_000, 3000)).toBe(2000);
    // A width off the ladder (a file anyone wrote) still gets a whole multiple of itself.
    expect(widthFor(300, 90_000, 100)).toBe(900);
  });

  it('reads a per-second timeline as a series of 1,000 ms buckets and widens it from there', () => {
    const seconds = Array.from({ length: 10 }, (_, second) => ({ ...empty(second), completed: 10, depth: second }));
    const series = seriesOfSeconds(seconds);
    expect(series.bucketMs).toBe(1000);
    expect(series.points[3]).toEqual({ ...fine(3000), completed: 10, depth: 3 });
    const wide = coarsen(series, 4);
    expect(wide.bucketMs).toBe(5000);
    expect(wide.points).toEqual([
      { ...fine(0), completed: 50, depth: 4 },
      { ...fine(5000), completed: 50, depth: 9 },
    ]);
  });

  it('takes points out of order or with gaps, as a file may hold them', () => {
    const wide = coarsen({ bucketMs: 100, points: [{ ...fine(900), failed: 1 }, { ...fine(0), failed: 2 }, { ...fine(-500), failed: 4 }] }, 1);
    expect(wide).toEqual({ bucketMs: 1000, points: [{ ...fine(0), failed: 7 }] });
    expect(coarsen({ bucketMs: 100, points: [] }, 10)).toEqual({ bucketMs: 100, points: [] });
  });
});

describe('layEndToEnd', () => {
  it("lays steps on one axis by their offsets, in the widest step's buckets, gaps filled with 0", () => {
    const first = { bucketMs: 100, points: [{ ...fine(0), completed: 1 }, { ...fine(100), completed: 2, depth: 5 }] };
    const second = { bucketMs: 100, points: [{ ...fine(0), completed: 4 }] };
    expect(layEndToEnd([{ offsetMs: 0, series: first }, { offsetMs: 450, series: second }])).toEqual({
      bucketMs: 100,
      points: [{ ...fine(0), completed: 1 }, { ...fine(100), completed: 2, depth: 5 }, fine(200), fine(300), { ...fine(400), completed: 4 }],
    });
    const long = { bucketMs: 1000, points: [{ ...fine(0), published: 3 }] };
    expect(layEndToEnd([{ offsetMs: 0, series: first }, { offsetMs: 1200, series: long }])).toEqual({
      bucketMs: 1000,
      points: [{ ...fine(0), completed: 3, depth: 5 }, { ...fine(1000), published: 3 }],
    });
    expect(layEndToEnd([])).toEqual({ bucketMs: FINE_BUCKET_MS, points: [] });
  });
});
