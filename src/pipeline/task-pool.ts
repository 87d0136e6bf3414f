// The worker pool behind `--concurrency`: a counting semaphore shared by every consumer, so at most
// `size` tasks run at once however many consumers receive. A consumer takes slots before it receives
// and receives no more messages than it holds slots, so no message waits in a consumer's hands for a
// worker (which would hide queueing time from the broker's backlog and eat its visibility timeout).
//
// LIMITATION: one process's pool. Slots are handed out first come, first served among waiting
// consumers; there is no priority or fairness beyond that.

export class TaskPool {
  readonly size: number;
  #free: number;
  #closed = false;
  readonly #waiters: (() => void)[] = [];

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`pool size must be a whole number of at least 1, not ${size}`);
    this.size = size;
    this.#free = size;
  }

  /** Slots not taken right now. */
  get free(): number {
    return this.#free;
  }

  /** Tasks holding a slot right now. */
  get busy(): number {
    return this.size - this.#free;
  }

  /**
   * Waits until at least one slot is free, then takes up to `most` of the free ones and returns how
   * many it took; returns 0 once the pool is closed.
   */
  async take(most: number): Promise<number> {
    while (!this.#closed && this.#free === 0) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    if (this.#closed) return 0;
    const taken = Math.max(1, Math.min(most, this.#free));
    this.#free -= taken;
    return taken;
  }

  /** Gives `count` slots back and wakes a waiting consumer for each. */
  release(count: number): void {
    this.#free = Math.min(this.size, this.#free + count);
    for (let k = 0; k < count && this.#waiters.length > 0; k++) this.#waiters.shift()!();
  }

  /** Ends every wait (they return 0) and every later `take`. */
  close(): void {
    this.#closed = true;
    for (const wake of this.#waiters.splice(0)) wake();
  }
}
