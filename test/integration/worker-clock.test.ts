// A worker's clock against the broker's: Redis TIME and PostgreSQL clock_timestamp() on the real
// servers (on this host, so the offset found must be about nothing and within reach of its bound),
// and this host's own clock, its error unknown, for a broker without a clock or one that cannot be read.

import { describe, expect, it } from 'vitest';
import { resolvePostgres } from '../../src/services/postgres-server.ts';
import { localClock, measureClock, RUN_EPOCH_MS } from '../../src/runner/worker-clock.ts';
import { redisUrl } from '../helpers/redis.ts';

/** The wall clock, µs since the run epoch. */
const wallUs = (): number => (Date.now() - RUN_EPOCH_MS) * 1000;

describe('measureClock', () => {
  it('Redis TIME: an uncertainty from the best of 16 round trips, an offset of about nothing on this host, times on the reference', async () => {
    const clock = await measureClock(redisUrl());
    expect(clock.reading).toMatchObject({ reference: 'redis TIME', rounds: 16 });
    expect(clock.reading.problem).toBeUndefined();
    expect(clock.reading.uncertaintyUs).toBeGreaterThan(0);
    // Same host, same wall clock: what is found is the measuring's own error, far under a second.
    expect(Math.abs(clock.reading.offsetUs)).toBeLessThan(50_000);
    expect(Math.abs(clock.nowUs() - wallUs())).toBeLessThan(50_000);
    const a = clock.nowUs();
    const b = clock.nowUs();
    expect(b).toBeGreaterThanOrEqual(a);
  });

  it('PostgreSQL clock_timestamp()', async () => {
    const server = await resolvePostgres({ DATABASE_URL: process.env['DATABASE_URL'] });
    try {
      const clock = await measureClock(server.url);
      expect(clock.reading.reference).toBe('postgresql clock_timestamp()');
      expect(clock.reading.problem).toBeUndefined();
      expect(clock.reading.uncertaintyUs).toBeGreaterThan(0);
      expect(Math.abs(clock.reading.offsetUs)).toBeLessThan(50_000);
    } finally {
      await server.stop();
    }
  }, 30_000);

  it('a broker with no clock to read: this host\'s clock, its error unknown', async () => {
    const clock = await measureClock('amqp://guest:guest@127.0.0.1:5672');
    expect(clock.reading).toEqual({ reference: "this host's clock", offsetUs: 0, uncertaintyUs: null, rounds: 0 });
    expect(Math.abs(clock.nowUs() - wallUs())).toBeLessThan(50_000);
    expect((await measureClock(undefined)).reading.uncertaintyUs).toBeNull();
  });

  it('a clock that cannot be reached falls back to this host\'s, saying why', async () => {
    const clock = await measureClock('redis://127.0.0.1:1');
    expect(clock.reading.uncertaintyUs).toBeNull();
    expect(clock.reading.problem).toMatch(/^could not reach the broker's clock \(.+\)$/);
    const pgClock = await measureClock('postgres://postgres@127.0.0.1:1/postgres');
    expect(pgClock.reading.uncertaintyUs).toBeNull();
    expect(pgClock.reading.problem).toMatch(/^could not reach the broker's clock \(.*ECONNREFUSED.*\)$/);
    expect(localClock().reading.problem).toBeUndefined();
  });
});
