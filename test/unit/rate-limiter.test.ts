import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/clock.ts';
import { RateLimiter } from '../../src/pipeline/rate-limiter.ts';

/** A clock that only moves when the limiter sleeps: the test controls time completely. */
function fakeTime(startUs = 1_000_000): { clock: Clock; sleep: (ms: number) => Promise<void>; sleeps: number[] } {
  let now = startUs;
  const sleeps: number[] = [];
  return {
    clock: { nowUs: () => now },
    sleeps,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms * 1000;
    },
  };
}

describe('RateLimiter', () => {
  it('schedules message k at start + k / rate, independent of when earlier ones went', () => {
    const time = fakeTime();
    const limiter = new RateLimiter(1000, 1_000_000, time.clock, time.sleep);
    expect(limiter.intervalUs).toBe(1000);
    expect(limiter.intendedUs(0)).toBe(1_000_000);
    expect(limiter.intendedUs(2500)).toBe(3_500_000);
  });

  it('waits until the message is due, then releases it', async () => {
    const time = fakeTime();
    const limiter = new RateLimiter(100, 1_000_000, time.clock, time.sleep);
    await limiter.waitFor(50); // due 0.5 s after the start
    expect(time.clock.nowUs()).toBeGreaterThanOrEqual(limiter.intendedUs(50));
    expect(time.clock.nowUs() - limiter.intendedUs(50)).toBeLessThan(1000);
    expect(time.sleeps.reduce((a, b) => a + b, 0)).toBe(500);
  });

  it('does not wait for a message that is already late (open loop: no catching up by slowing down)', async () => {
    const time = fakeTime(5_000_000);
    const limiter = new RateLimiter(10, 1_000_000, time.clock, time.sleep);
    await limiter.waitFor(3);
    expect(time.sleeps).toEqual([]);
  });

  it('never sleeps for zero ms when less than a millisecond is left', async () => {
    const time = fakeTime(1_000_000);
    const limiter = new RateLimiter(4000, 1_000_000, time.clock, time.sleep); // 250 µs apart
    await limiter.waitFor(1);
    expect(time.sleeps).toEqual([1]);
  });

  it('refuses a rate that is not a positive number', () => {
    const time = fakeTime();
    for (const rate of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new RateLimiter(rate, 0, time.clock, time.sleep)).toThrow(/positive/);
    }
  });
});

describe('RateLimiter.dueBy', () => {
  it('counts the messages due by a time, each due at exactly its intended time', () => {
    const time = fakeTime();
    const limiter = new RateLimiter(3000, 1_000_000, time.clock, time.sleep);
    expect(limiter.dueBy(999_999)).toBe(0);
    expect(limiter.dueBy(1_000_000)).toBe(1);
    // 1/3000 s does not divide evenly in floating point; message 7 is still due at its own time.
    expect(limiter.dueBy(limiter.intendedUs(7))).toBe(8);
    expect(limiter.dueBy(limiter.intendedUs(7) + 5_000)).toBe(23);
  });
});
