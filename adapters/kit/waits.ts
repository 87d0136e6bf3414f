// Bounded waits and back-off, written once for every adapter: a call that may hang gets a deadline,
// and a retry waits longer each time, up to a cap.

/** What `withTimeout` rejects with when the deadline passes first. */
export class TimeoutError extends Error {
  constructor(what: string, readonly timeoutMs: number) {
    super(`${what} timed out: no answer within ${timeoutMs} ms`);
    this.name = 'TimeoutError';
  }
}

/**
 * Settles as `work` does, or rejects with a TimeoutError once `timeoutMs` passed. `work` gets a signal
 * that is aborted then, to stop what it started (an SDK request, a socket); a late outcome is ignored.
 */
export async function withTimeout<T>(timeoutMs: number, what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new TimeoutError(what, timeoutMs);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  try {
    return await Promise.race([work(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The wait before retry number `attempt` (1, 2, …): `baseMs` doubled each time, never over `maxMs`. */
export function backoffMs(attempt: number, baseMs: number, maxMs = Infinity): number {
  return Math.min(baseMs * 2 ** (attempt - 1), maxMs);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
