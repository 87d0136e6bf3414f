// The task a message triggers: a duration drawn from a distribution, spent sleeping (I/O-bound work,
// the seed's 1-second request) or burning CPU, and a chance of failing so retries can be measured.
//
// LIMITATION: a `sleep` task is a timer, so it lasts at least its duration plus the event loop's
// lateness; a `cpu` task blocks the whole process it runs in, consumers and publishers included.

import type { TaskSpec } from '../config.ts';
import { sleep } from './waits.ts';

export const NO_TASK: TaskSpec = { durationMs: 0, distribution: 'fixed', work: 'sleep', failureRate: 0 };

/** A small seeded PRNG (mulberry32): runs with the same seed draw the same durations and failures. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Executor {
  readonly #spec: TaskSpec;
  readonly #random: () => number;

  constructor(spec: TaskSpec, random: () => number = Math.random) {
    this.#spec = spec;
    this.#random = random;
  }

  /** True when tasks take no time and never fail: the consumer can skip the executor entirely. */
  get trivial(): boolean {
    return this.#spec.durationMs === 0 && this.#spec.failureRate === 0;
  }

  /** Draws one task duration in ms. */
  sampleDurationMs(): number {
    const { durationMs, distribution } = this.#spec;
    if (durationMs === 0) return 0;
    switch (distribution) {
      case 'fixed':
        return durationMs;
      case 'uniform':
        return this.#random() * 2 * durationMs;
      case 'exponential':
        return -Math.log(1 - this.#random()) * durationMs;
    }
  }

  /** Runs one task; resolves true when it succeeded, false when it failed (never rejects). */
  async run(): Promise<boolean> {
    const ms = this.sampleDurationMs();
    if (ms > 0) {
      if (this.#spec.work === 'cpu') burn(ms);
      else await sleep(ms);
    }
    return this.#spec.failureRate === 0 || this.#random() >= this.#spec.failureRate;
  }
}

function burn(ms: number): void {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
}
