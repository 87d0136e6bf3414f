import { describe, expect, it } from 'vitest';
import { Timeline } from '../../src/metrics/timeline.ts';

const START = 5_000_000_000; // an arbitrary monotonic µs origin

const empty = (second: number) => ({ second, published: 0, received: 0, completed: 0, failed: 0 });

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
