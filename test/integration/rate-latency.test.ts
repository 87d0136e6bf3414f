// Latency at a fixed rate is the broker's plus what the user configured: a batch leaves when full or
// once its oldest message has waited --linger-ms, the wait is its own histogram, and a broker stall
// (CLIENT PAUSE on a throw-away redis-server) shows in end-to-end latency counted from the intended
// send times. Bounds on the stall are lower bounds only: a slower machine can only raise them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisListAdapter } from '../../adapters/redis-list.ts';
import { systemClock } from '../../src/clock.ts';
import { summarize } from '../../src/metrics/histogram.ts';
import { runPipeline } from '../../src/runner/pipeline.ts';
import { startRedisServer, type StartedRedisServer } from '../../src/services/redis-server.ts';
import { runCli } from '../helpers/cli.ts';
import { pauseRedis } from '../helpers/redis.ts';
import { runConfig } from '../helpers/faults.ts';
import { prepareQueueFixture, uniqueNamespace } from '../helpers/fixture.ts';

let server: StartedRedisServer;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

/** Pauses every client of the throw-away server for `ms`. */
const pauseServer = (ms: number): Promise<void> => pauseRedis(server.url, ms);

describe('--rate with the default batch of 100', () => {
  it('a batch waits at most --linger-ms for its messages, and a 300 ms broker stall shows in end-to-end p99', async () => {
    const namespace = uniqueNamespace();
    const fixture = await prepareQueueFixture(await redisListAdapter.open({ namespace, mode: 'reliable', url: server.url, commandTimeoutMs: 5_000 }), namespace);
    try {
      const config = runConfig({ messages: 2_000, ratePerSec: 1_000, publishBatch: 100, consumers: 2 });
      expect(config.lingerMs).toBe(5);
      const stall = setTimeout(() => void pauseServer(300), 800);
      const outcome = await runPipeline({ broker: fixture.broker, config, queues: [fixture.queue], clock: systemClock, tickMs: 100 });
      clearTimeout(stall);
      expect(outcome.status).toBe('completed');
      expect(outcome.ledger).toMatchObject({ completed: 2_000, lost: 0 });
      // Every message waited for its batch at most the linger (to the histogram's 3 significant digits), never for 100 messages.
      const batchWait = outcome.histograms.batchWait!;
      expect(batchWait.totalCount).toBe(2_000);
      expect(summarize(batchWait).max).toBeLessThanOrEqual(5_000 * 1.001);
      // Messages due during the stall waited it out, counted from their intended send times.
      const e2e = summarize(outcome.histograms.endToEnd);
      expect(e2e.max).toBeGreaterThanOrEqual(250_000);
      expect(e2e.p99).toBeGreaterThanOrEqual(150_000);
    } finally {
      await fixture.cleanup();
    }
  }, 60_000);

  it('--linger-ms 0 sends every message in a batch of its own while on schedule; the flag is in the result', async () => {
    const namespace = uniqueNamespace();
    const fixture = await prepareQueueFixture(await redisListAdapter.open({ namespace, mode: 'reliable', url: server.url, commandTimeoutMs: 5_000 }), namespace);
    try {
      const config = runConfig({ messages: 200, ratePerSec: 500, publishBatch: 100, lingerMs: 0 });
      const outcome = await runPipeline({ broker: fixture.broker, config, queues: [fixture.queue], clock: systemClock, tickMs: 100 });
      expect(outcome.ledger).toMatchObject({ completed: 200, lost: 0 });
      expect(outcome.histograms.batchWait!.maxValue).toBeLessThanOrEqual(1);
    } finally {
      await fixture.cleanup();
    }
  }, 60_000);

  it('the CLI takes --linger-ms, refuses a negative one in one line (exit 2), and prints the batch wait', async () => {
    const bad = await runCli(['scenario', '100', '--rate', '100', '--linger-ms', '-1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('brokerbench: --linger-ms must be a number of 0 or more, got -1');
    const ok = await runCli(['scenario', '200', '--rate', '400', '--linger-ms', '3', '--results-dir', (await import('node:os')).tmpdir()], { REDIS_URL: server.url, COLUMNS: '400' });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/│ batch wait +│/);
    expect(ok.stdout).toContain('rate 400/s (linger 3 ms)');
  }, 60_000);
});
