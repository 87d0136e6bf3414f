// The worker pool behind --concurrency: slots taken and given back, waiters woken, closing ends waits.

import { describe, expect, it } from 'vitest';
import { TaskPool } from '../../src/pipeline/task-pool.ts';
import { backlogSeries, backlogTable, BucketCounts, drawUnit } from '../../scenarios/kit.ts';

describe('TaskPool', () => {
  it('hands out at most its free slots, at least one, and takes them back', async () => {
    const pool = new TaskPool(5);
    expect(await pool.take(3)).toBe(3);
    expect(await pool.take(10)).toBe(2);
    expect(pool.free).toBe(0);
    expect(pool.busy).toBe(5);
    pool.release(4);
    expect(await pool.take(1)).toBe(1);
    expect(pool.free).toBe(3);
    pool.release(100);
    expect(pool.free).toBe(5);
  });

  it('makes a taker wait until a slot is released, and wakes it with that slot', async () => {
    const pool = new TaskPool(1);
    await pool.take(1);
    let got: number | undefined;
    const waiting = pool.take(4).then((n) => (got = n));
    await Promise.resolve();
    expect(got).toBeUndefined();
    pool.release(1);
    await waiting;
    expect(got).toBe(1);
    expect(pool.free).toBe(0);
  });

  it('ends every wait with 0 once closed', async () => {
    const pool = new TaskPool(1);
    await pool.take(1);
    const waits = [pool.take(1), pool.take(2)];
    pool.close();
    expect(await Promise.all(waits)).toEqual([0, 0]);
    expect(await pool.take(1)).toBe(0);
  });

  it('refuses a size below one', () => {
    expect(() => new TaskPool(0)).toThrow(RangeError);
  });
});

describe('scenario kit', () => {
  it('draws the same unit value for the same seed and message, and spreads them over [0, 1)', () => {
    expect(drawUnit(1, 42, 3)).toBe(drawUnit(1, 42, 3));
    expect(drawUnit(1, 42, 3)).not.toBe(drawUnit(2, 42, 3));
    const draws = Array.from({ length: 10_000 }, (_, i) => drawUnit(7, i, 1));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
    const below = draws.filter((x) => x < 0.3).length / draws.length;
    expect(below).toBeGreaterThan(0.27);
    expect(below).toBeLessThan(0.33);
  });

  it('reads the backlog off a timeline and keeps the last second in a shortened table', () => {
    const timeline = Array.from({ length: 30 }, (_, second) => ({ second, published: second < 10 ? 100 : 0, received: 40, completed: 40, failed: 0 }));
    const series = backlogSeries(timeline);
    expect(series[0]).toBe(60);
    expect(series[9]).toBe(600);
    expect(series[29]).toBe(1000 - 1200);
    const table = backlogTable(timeline, 12);
    expect(table.rows).toHaveLength(12);
    expect(table.rows[0]![0]).toBe('1');
    expect(table.rows.at(-1)![0]).toBe('30');
  });

  it('buckets latencies by their µs edges', () => {
    const buckets = new BucketCounts();
    for (const us of [0, 999, 1000, 50_000, 999_999, 1_000_000, 10_000_000]) buckets.add(us);
    expect(buckets.counts).toEqual([2, 1, 1, 1, 1, 1]);
    expect(buckets.total).toBe(7);
  });
});
