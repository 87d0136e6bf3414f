import { describe, expect, it } from 'vitest';
import { Ledger, lostCount } from '../../src/metrics/ledger.ts';
import type { LedgerCounts } from '../../src/metrics/ledger.ts';

const zero = (expected: number): LedgerCounts => ({
  expected,
  publishFailed: 0,
  delivered: 0,
  deliveries: 0,
  duplicateDeliveries: 0,
  completed: 0,
  duplicateCompletions: 0,
  notSent: 0,
  lost: expected,
  unknown: 0,
  foreign: 0,
});

function deliverAndComplete(ledger: Ledger, indices: Iterable<number>) {
  for (const i of indices) {
    ledger.markDelivered(i);
    ledger.markCompleted(i);
  }
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('Ledger', () => {
  it('counts messages never sent as neither published nor lost', () => {
    const ledger = new Ledger(10);
    deliverAndComplete(ledger, [0, 1, 2]);
    ledger.markPublishFailed(3);
    ledger.markNotSent(8, 10);
    ledger.markNotSent(5, 6);
    expect(ledger.counts()).toMatchObject({ notSent: 3, publishFailed: 1, completed: 3, lost: 3 });
    expect(ledger.missing(10)).toEqual([4, 6, 7]);
  });

  it('starts with every message lost', () => {
    const ledger = new Ledger(10);
    expect(ledger.counts()).toEqual(zero(10));
    expect(ledger.missing(100)).toEqual(range(10));
  });

  it('shows nothing lost when every message is delivered and completed once', () => {
    const ledger = new Ledger(1000);
    deliverAndComplete(ledger, range(1000));
    expect(ledger.counts()).toEqual({ ...zero(1000), delivered: 1000, deliveries: 1000, completed: 1000, lost: 0 });
    expect(ledger.missing(10)).toEqual([]);
  });

  it('counts lost messages and lists them in order, up to the limit', () => {
    const ledger = new Ledger(100);
    const skipped = new Set([0, 31, 32, 63, 64, 99]);
    deliverAndComplete(ledger, range(100).filter((i) => !skipped.has(i)));
    expect(ledger.counts().lost).toBe(6);
    expect(ledger.missing(100)).toEqual([0, 31, 32, 63, 64, 99]);
    expect(ledger.missing(3)).toEqual([0, 31, 32]);
    expect(ledger.missing(0)).toEqual([]);
  });

  it('counts a delivered but never completed message as lost', () => {
    const ledger = new Ledger(3);
    ledger.markDelivered(0);
    deliverAndComplete(ledger, [1, 2]);
    expect(ledger.counts()).toMatchObject({ delivered: 3, completed: 2, lost: 1 });
    expect(ledger.missing(10)).toEqual([0]);
  });

  it('returns true only on first delivery and completion, and counts duplicates', () => {
    const ledger = new Ledger(4);
    expect(ledger.markDelivered(2)).toBe(true);
    expect(ledger.markDelivered(2)).toBe(false);
    expect(ledger.markDelivered(2)).toBe(false);
    expect(ledger.markCompleted(2)).toBe(true);
    expect(ledger.markCompleted(2)).toBe(false);
    expect(ledger.counts()).toMatchObject({
      delivered: 1, deliveries: 3, duplicateDeliveries: 2, completed: 1, duplicateCompletions: 1, lost: 3,
    });
  });

  it('counts out-of-range indices and malformed bodies as unknown, never as deliveries', () => {
    const ledger = new Ledger(5);
    for (const bad of [5, 6, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(ledger.markDelivered(bad)).toBe(false);
      expect(ledger.markCompleted(bad)).toBe(false);
    }
    ledger.markUnknown();
    expect(ledger.counts()).toEqual({ ...zero(5), unknown: 7 });
    expect(ledger.completedCount()).toBe(0);
  });

  it("counts foreign messages (another run's token, or none) on their own, never as deliveries or unknown", () => {
    const ledger = new Ledger(5);
    ledger.markForeign();
    ledger.markForeign();
    expect(ledger.counts()).toEqual({ ...zero(5), foreign: 2 });
  });

  it('counts a failed publish as failed, not lost, and one that completed anyway as completed', () => {
    const ledger = new Ledger(4);
    ledger.markPublishFailed(0); // failed, never seen
    ledger.markPublishFailed(1); // ambiguous failure: it arrived and was done
    ledger.markPublishFailed(2); // ambiguous failure: delivered, never completed
    deliverAndComplete(ledger, [1]);
    ledger.markDelivered(2);
    // 3 was published OK and never delivered
    expect(ledger.counts()).toEqual({
      ...zero(4), publishFailed: 3, delivered: 2, deliveries: 2, completed: 1, lost: 1,
    });
    expect(ledger.missing(10)).toEqual([3]);
  });

  it('counts a failed publish once however often it is reported', () => {
    const ledger = new Ledger(2);
    ledger.markPublishFailed(1);
    ledger.markPublishFailed(1);
    expect(ledger.counts()).toMatchObject({ publishFailed: 1, lost: 1 });
  });

  it('rejects a failed publish outside the range (a harness bug)', () => {
    expect(() => new Ledger(3).markPublishFailed(3)).toThrow(RangeError);
  });

  it('rejects a size that is not a whole number', () => {
    expect(() => new Ledger(-1)).toThrow(RangeError);
    expect(() => new Ledger(2.5)).toThrow(RangeError);
  });

  it('handles an empty run', () => {
    const ledger = new Ledger(0);
    expect(ledger.markDelivered(0)).toBe(false);
    expect(ledger.counts()).toEqual({ ...zero(0), unknown: 1 });
    expect(ledger.missing(5)).toEqual([]);
  });

  it('agrees with a plain model for every combination of failed × deliveries × completions', () => {
    // Each index gets one combination; 18 combinations repeated over 37 words' worth of indices.
    const combos: Array<{ failed: boolean; deliveries: number; completions: number }> = [];
    for (const failed of [false, true]) {
      for (const deliveries of [0, 1, 2]) {
        for (const completions of [0, 1, 2]) combos.push({ failed, deliveries, completions });
      }
    }
    const n = 18 * 66;
    const ledger = new Ledger(n);
    const expected = { ...zero(n), lost: 0 };
    const missing: number[] = [];
    for (let i = 0; i < n; i++) {
      const c = combos[i % combos.length]!;
      if (c.failed) ledger.markPublishFailed(i);
      for (let d = 0; d < c.deliveries; d++) expect(ledger.markDelivered(i)).toBe(d === 0);
      for (let d = 0; d < c.completions; d++) expect(ledger.markCompleted(i)).toBe(d === 0);
      if (i % 7 === 0) ledger.markUnknown();

      if (c.failed) expected.publishFailed++;
      if (c.deliveries > 0) expected.delivered++;
      expected.deliveries += c.deliveries;
      expected.duplicateDeliveries += Math.max(0, c.deliveries - 1);
      if (c.completions > 0) expected.completed++;
      expected.duplicateCompletions += Math.max(0, c.completions - 1);
      if (!c.failed && c.completions === 0) {
        expected.lost++;
        missing.push(i);
      }
      if (i % 7 === 0) expected.unknown++;
    }
    expect(ledger.counts()).toEqual(expected);
    expect(ledger.completedCount()).toBe(expected.completed);
    expect(ledger.missing(n)).toEqual(missing);
    expect(ledger.missing(5)).toEqual(missing.slice(0, 5));
  });

  it('keeps 5,000,000 messages in at most 2 MB of typed arrays', () => {
    const n = 5_000_000;
    const ledger = new Ledger(n);
    expect(ledger.byteLength).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(ledger.byteLength).toBe(2 * Math.ceil(n / 32) * 4); // two bits per message: 1.25 MB
    for (let i = 0; i < n; i++) {
      ledger.markDelivered(i);
      if (i !== 4_999_999 && i !== 1_234_567) ledger.markCompleted(i);
    }
    expect(ledger.completedCount()).toBe(n - 2);
    expect(ledger.counts()).toEqual({
      ...zero(n), delivered: n, deliveries: n, completed: n - 2, lost: 2,
    });
    expect(ledger.missing(10)).toEqual([1_234_567, 4_999_999]);
  });

  it('keeps completedCount() equal to counts().completed as completions arrive', () => {
    const ledger = new Ledger(200);
    for (let i = 0; i < 200; i++) {
      ledger.markCompleted((i * 37) % 200);
      ledger.markCompleted((i * 11) % 200);
      expect(ledger.completedCount()).toBe(ledger.counts().completed);
    }
    expect(ledger.completedCount()).toBe(200);
  });

  it('counts completions of refused messages apart, whichever comes first, so the drain cannot mistake them for accepted ones', () => {
    const ledger = new Ledger(10);
    ledger.markCompleted(1); // completed, then its publish is reported failed (the reply was lost)
    ledger.markPublishFailed(1);
    ledger.markPublishFailed(2); // reported failed, then turns up and completes
    ledger.markPublishFailed(2);
    ledger.markCompleted(2);
    ledger.markCompleted(2);
    ledger.markPublishFailed(3); // refused and never stored
    ledger.markCompleted(4);
    expect(ledger.completedCount()).toBe(3);
    expect(ledger.failedButCompletedCount()).toBe(2);
    expect(ledger.counts()).toMatchObject({ publishFailed: 3, completed: 3, duplicateCompletions: 1, lost: 6 });
  });
});

describe('lostCount', () => {
  it('leaves dead-lettered messages out of lost, and never goes below 0', () => {
    expect(lostCount({ lost: 20 }, 20)).toBe(0);
    expect(lostCount({ lost: 25 }, 20)).toBe(5);
    expect(lostCount({ lost: 3 }, 0)).toBe(3);
    // A dead-lettered copy of a message that was also completed: the ledger had it as done already.
    expect(lostCount({ lost: 2 }, 5)).toBe(0);
  });
});
