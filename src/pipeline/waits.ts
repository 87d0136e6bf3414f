// Waits, written once for the harness: a sleep, the back-off after broker calls that fail in a row, a
// promise given a limit, a condition polled until it holds or time runs out, and pauses that a stop
// cuts short. Every loop that waits (publishers, consumers, the drain, teardown) takes them from here.
//
// LIMITATION: timers, so every wait lasts at least its length plus the event loop's lateness; a poll
// sees its condition up to one poll interval late.

/** First back-off after a failed broker call, ms; it doubles with every failure in a row, up to the max. */
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 1000;

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The back-off after the `failures`-th failure in a row, ms: 100, 200, 400, 800, then 1000 for good. */
export function backoffMs(failures: number): number {
  return Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.max(0, failures - 1));
}

/** `promise`'s value, or undefined once `limitMs` has passed first. Never rejects on the timer's account. */
export async function withinMs<T>(promise: Promise<T>, limitMs: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(resolve, limitMs, undefined)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `done()` holds, checked every `pollMs`, or once `limitMs` has passed; true if it held. */
export async function until(done: () => boolean, limitMs: number, pollMs = 10): Promise<boolean> {
  const untilMs = performance.now() + limitMs;
  while (!done()) {
    if (performance.now() >= untilMs) return false;
    await sleep(pollMs);
  }
  return true;
}

/** Pauses that all end at once when their owner stops (a run, a consumer loop), and later ones at once. */
export class Pauses {
  readonly #wakers = new Set<() => void>();
  #stopped = false;

  /** Resolves after `ms`, or as soon as stop() is called; at once if it was already. */
  pause(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }

  /** Ends every pause in progress, and makes every later one end at once. */
  stop(): void {
    this.#stopped = true;
    for (const wake of [...this.#wakers]) wake();
  }
}
