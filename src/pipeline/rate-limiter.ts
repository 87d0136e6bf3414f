// Open-loop pacing for `--rate`: message k is due at start + k/rate, whatever happened before, so a
// stalled broker shows up as latency (measured from the intended time) instead of a slower send rate.
//
// LIMITATION: waits are whole-millisecond timers, so a message goes out a timer's lateness after it is
// due (about a millisecond on an idle machine); a late message is sent at once, never skipped.

import type { Clock } from '../clock.ts';

export type Sleeper = (ms: number) => Promise<void>;

export class RateLimiter {
  readonly #startUs: number;
  readonly #intervalUs: number;
  readonly #clock: Clock;
  readonly #sleep: Sleeper;

  constructor(ratePerSec: number, startUs: number, clock: Clock, sleep: Sleeper) {
    if (!(ratePerSec > 0) || !Number.isFinite(ratePerSec)) throw new RangeError('rate must be a positive number');
    this.#startUs = startUs;
    this.#intervalUs = 1e6 / ratePerSec;
    this.#clock = clock;
    this.#sleep = sleep;
  }

  /** Microseconds between two messages. */
  get intervalUs(): number {
    return this.#intervalUs;
  }

  /** When message `index` is meant to be sent, monotonic µs. */
  intendedUs(index: number): number {
    return this.#startUs + index * this.#intervalUs;
  }

  /** How many messages (indices 0 … n-1) are due by `untilUs`, monotonic µs. */
  dueBy(untilUs: number): number {
    // The tiny epsilon keeps index k due at exactly intendedUs(k) despite floating-point division.
    return Math.max(0, Math.floor((untilUs - this.#startUs) / this.#intervalUs + 1e-9) + 1);
  }

  /** Resolves once message `index` is due; at once if it is already late. */
  async waitFor(index: number): Promise<void> {
    const due = this.intendedUs(index);
    for (;;) {
      const aheadUs = due - this.#clock.nowUs();
      if (aheadUs <= 0) return;
      // Timers fire late by up to a millisecond: sleep in whole ms, and never for nothing.
      await this.#sleep(Math.max(1, Math.floor(aheadUs / 1000)));
    }
  }
}
