// One clock for every timestamp the harness compares. process.hrtime reads CLOCK_MONOTONIC, which
// every process on one Linux host shares, so a send time taken in one process and a receive time
// taken in another subtract correctly, with sub-microsecond resolution and no wall-clock jumps.

/** Monotonic time in microseconds (fractional), comparable across processes on one host. */
export function nowUs(): number {
  const [seconds, nanos] = process.hrtime();
  return seconds * 1e6 + nanos / 1e3;
}

/** A clock that can be replaced in tests. */
export interface Clock {
  nowUs(): number;
}

export const systemClock: Clock = { nowUs };
