// One clock for the workers of a run spread over hosts: each reads a reference clock that every
// worker can reach (the broker's own where it has one: Redis `TIME`, PostgreSQL `clock_timestamp()`)
// over several round trips, keeps the one with the shortest round trip (offset = reference - middle
// of the trip, uncertainty = half the trip), and from then on stamps every time of its run on that
// reference: its monotonic clock plus one constant. Two times taken by one worker subtract exactly
// (the constant cancels); times of two workers subtract within the sum of their uncertainties.
//
// LIMITATION: a broker with no clock to read (SQS, RabbitMQ, NATS) leaves each worker on its own
// wall clock, with no bound it can state (what NTP keeps the hosts to). The offset is read once, at
// the start: a host whose clock drifts during a long run (tens of ppm) drifts away from it. A
// reference that takes longer to answer in one direction than in the other is off by up to the
// uncertainty, never by more.

import pg from 'pg';
import { Redis } from 'ioredis';
import type { Clock } from '../clock.ts';

/** Times of a worker's run are µs since this instant (2020-01-01T00:00:00Z): 15 digits until 2051, as a message body carries them. */
export const RUN_EPOCH_MS = Date.UTC(2020, 0, 1);
/** Round trips to the reference; the shortest one counts. */
const ROUNDS = 16;
/** Longest connecting to the reference and each round trip may take, ms. */
const REFERENCE_TIMEOUT_MS = 3_000;

/** What a worker learnt of its clock against the run's reference. */
export interface ClockReading {
  /** What the worker compared with: `redis TIME`, `postgresql clock_timestamp()`, or `this host's clock` when nothing could be. */
  readonly reference: string;
  /** Reference time minus this host's wall clock, µs, when it was read: how far this host's clock is off. 0 with no reference. */
  readonly offsetUs: number;
  /** Half the shortest round trip, µs: the offset is right to within this. Null when there was no reference (unknown). */
  readonly uncertaintyUs: number | null;
  /** Round trips made. */
  readonly rounds: number;
  /** Why the reference could not be read, when it could not. */
  readonly problem?: string;
}

/** A worker's clock on the reference: µs since RUN_EPOCH_MS, from this host's monotonic clock plus one constant. */
export class ReferenceClock implements Clock {
  readonly reading: ClockReading;
  /** Added to performance.now() in µs to get reference µs since the run epoch. */
  readonly #shiftUs: number;

  constructor(reading: ClockReading, shiftUs: number) {
    this.reading = reading;
    this.#shiftUs = shiftUs;
  }

  nowUs(): number {
    return performance.now() * 1000 + this.#shiftUs;
  }

  /** An instant given as Unix ms (a --start-at), as this clock reads it: µs since the run epoch. */
  static fromWallMs(wallMs: number): number {
    return (wallMs - RUN_EPOCH_MS) * 1000;
  }
}

/** This host's wall clock in µs since the Unix epoch, read through the monotonic clock (µs resolution). */
function wallUs(monotonicMs: number): number {
  return (performance.timeOrigin + monotonicMs) * 1000;
}

/** A clock with no reference: this host's own wall clock, its error unknown. */
export function localClock(problem?: string): ReferenceClock {
  const reading: ClockReading = { reference: "this host's clock", offsetUs: 0, uncertaintyUs: null, rounds: 0, ...(problem ? { problem } : {}) };
  return new ReferenceClock(reading, (performance.timeOrigin - RUN_EPOCH_MS) * 1000);
}

/** Reads a reference, giving its time in µs since the Unix epoch, once per call. */
interface Reference {
  readonly name: string;
  read(): Promise<number>;
  close(): Promise<void>;
}

/** Redis's `TIME`, µs since the Unix epoch. */
async function redisReference(url: string): Promise<Reference> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: REFERENCE_TIMEOUT_MS,
    commandTimeout: REFERENCE_TIMEOUT_MS,
    enableOfflineQueue: false,
  });
  // Failures come back from the calls themselves; the client's own event would only be logged.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw error;
  }
  return {
    name: 'redis TIME',
    read: async () => {
      const [seconds, micros] = await client.time();
      return Number(seconds) * 1e6 + Number(micros);
    },
    close: async () => void (await client.quit().catch(() => client.disconnect())),
  };
}

/** PostgreSQL's `clock_timestamp()` (the time of the call, not of the transaction), µs since the Unix epoch. */
async function postgresReference(url: string): Promise<Reference> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: REFERENCE_TIMEOUT_MS, query_timeout: REFERENCE_TIMEOUT_MS });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return {
    name: 'postgresql clock_timestamp()',
    read: async () => {
      const { rows } = await client.query<{ us: string }>('SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text AS us');
      return Number(rows[0]!.us);
    },
    close: () => client.end().catch(() => undefined),
  };
}

/** The servers whose clock a worker can read, by the scheme of the broker's URL. */
const REFERENCES: Readonly<Record<string, (url: string) => Promise<Reference>>> = {
  redis: redisReference,
  rediss: redisReference,
  postgres: postgresReference,
  postgresql: postgresReference,
};

/** The reference for a broker at `url`, by its scheme; undefined for a server whose clock cannot be read. */
async function openReference(url: string | undefined): Promise<Reference | undefined> {
  const scheme = url === undefined ? undefined : /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  const open = scheme === undefined ? undefined : REFERENCES[scheme];
  return open === undefined || !Object.hasOwn(REFERENCES, scheme!) ? undefined : open(url!);
}

/**
 * This worker's clock on the run's reference, read from the broker at `url` where it has a clock;
 * else (or when reading it fails, said in `problem`) this host's own clock with an unknown error.
 */
export async function measureClock(url: string | undefined, rounds = ROUNDS): Promise<ReferenceClock> {
  let reference: Reference | undefined;
  try {
    reference = await openReference(url);
  } catch (error) {
    return localClock(`could not reach the broker's clock (${error instanceof Error ? error.message : String(error)})`);
  }
  if (reference === undefined) return localClock();
  try {
    await reference.read(); // the first call pays for anything lazy (a prepared path, a warm socket)
    let best: { tripUs: number; middleMs: number; referenceUs: number } | undefined;
    for (let k = 0; k < rounds; k++) {
      const beforeMs = performance.now();
      const referenceUs = await reference.read();
      const afterMs = performance.now();
      const tripUs = (afterMs - beforeMs) * 1000;
      if (best === undefined || tripUs < best.tripUs) best = { tripUs, middleMs: (beforeMs + afterMs) / 2, referenceUs };
    }
    // Whole µs, the reference's own resolution; the uncertainty rounded up, never down.
    const reading: ClockReading = {
      reference: reference.name,
      offsetUs: Math.round(best!.referenceUs - wallUs(best!.middleMs)),
      uncertaintyUs: Math.ceil(best!.tripUs / 2),
      rounds,
    };
    return new ReferenceClock(reading, best!.referenceUs - RUN_EPOCH_MS * 1000 - best!.middleMs * 1000);
  } catch (error) {
    return localClock(`could not read the broker's clock (${error instanceof Error ? error.message : String(error)})`);
  } finally {
    await reference.close();
  }
}
