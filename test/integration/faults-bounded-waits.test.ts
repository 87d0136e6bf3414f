// Fault: a broker that never answers. Every wait has a limit and a message naming the one that ran
// out: connecting to a server that accepts and says nothing (Redis and SQS), publishing paced slower
// than --timeout allows, draining slow tasks past --timeout, and a server frozen mid-run (SIGSTOP),
// where publish, receive, the final depth sample and teardown each give up on their own limit.

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisListAdapter } from '../../adapters/redis-list.ts';
import { throughput } from '../../scenarios/throughput.ts';
import { readResult, type ResultFile } from '../../src/report/result-file.ts';
import { runScenario } from '../../src/runner/runner.ts';
import { startRedisServer } from '../../src/services/redis-server.ts';
import { runCli } from '../helpers/cli.ts';
import { runConfig, sleep, startBlackHole, startSlowDoor, waitFor, type BlackHole } from '../helpers/faults.ts';
import { redisUrl } from '../helpers/redis.ts';

let dir: string;
let hole: BlackHole;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-waits-'));
  hole = await startBlackHole();
});
afterAll(async () => {
  await hole.close();
  await rm(dir, { recursive: true, force: true });
});

/** The one result file in `out`. */
async function onlyResult(out: string): Promise<ResultFile> {
  const names = await readdir(out);
  expect(names.filter((name) => name.endsWith('.tmp'))).toEqual([]);
  const files = names.filter((name) => name.endsWith('.json'));
  expect(files).toHaveLength(1);
  return readResult(path.join(out, files[0]!));
}

describe('connecting to a server that accepts and never answers', () => {
  const cases = [
    { queue: 'REDIS', message: /^brokerbench: redis-list connect: cannot reach redis:\/\/127\.0\.0\.1:\d+ \(connect timed out: no answer within 3000 ms\)/ },
    { queue: 'REDIS_STREAM', message: /^brokerbench: redis-stream connect: cannot reach redis:\/\/127\.0\.0\.1:\d+ \(connect timed out: no answer within 3000 ms\)/ },
    { queue: 'SQS', message: /^brokerbench: sqs open: cannot reach http:\/\/127\.0\.0\.1:\d+\/ \(no answer within 3000 ms\)/ },
  ];
  // Side by side: each mostly waits, and three in a row would take half a minute.
  it.concurrent.for(cases)('$queue: gives up within the connect limit, in one line naming connect', async ({ queue, message }, { expect }) => {
    const out = path.join(dir, `hole-${queue}`);
    const accepted = hole.accepted();
    const url = `${queue === 'SQS' ? 'http' : 'redis'}://127.0.0.1:${hole.port}`;
    const run = await runCli(['scenario', '10', '--results-dir', out], { QUEUE: queue, REDIS_URL: url, SQS_ENDPOINT: url });
    expect(hole.accepted()).toBeGreaterThan(accepted); // it really got through to the black hole
    expect(run.code, run.stderr).toBe(2);
    const lines = run.stderr.trim().split('\n');
    expect(lines.filter((line) => line.startsWith('brokerbench:'))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(message);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    // 3 s limit (SQS: plus two 1 s probes of what the endpoint is), tsx start-up, a loaded machine.
    expect(run.elapsedMs).toBeLessThan(20_000);
    expect((await readdir(out).catch(() => [])).filter((name) => name.endsWith('.json'))).toEqual([]);
  });
});

describe('--timeout', () => {
  const base = { QUEUE: 'REDIS', REDIS_URL: redisUrl(), CHANNEL_NAME: 'bounded' };

  it('cuts a paced publish short: status timeout, the message says publishing, the result is written', async () => {
    const out = path.join(dir, 'publish');
    // One message a second in batches of 100, each batch waiting to fill (a linger past the run): the
    // first batch would leave after 99 s.
    const run = await runCli(['scenario', '300', '--rate', '1', '--batch', '100', '--linger-ms', '200000', '--timeout', '2', '--results-dir', out, '--quiet'], base);
    expect(run.code, run.stderr).toBe(1);
    expect(run.elapsedMs).toBeLessThan(20_000);
    const result = await onlyResult(out);
    expect(result.status).toBe('timeout');
    expect(result.reason).toMatch(/^--timeout 2 s ran out while publishing \(0 of 300 published\)$/);
    expect(result.ledger).toMatchObject({ notSent: 300, lost: 0, publishFailed: 0 });
    expect(run.stdout).toMatch(/: timeout\n/);
  });

  it('bounds connecting the consumers too: 1,000 of them against --timeout 1 end as a timeout while connecting', async () => {
    // Through a door that holds each new connection 100 ms: 1,000 consumers, opened 16 at a time, take
    // over 6 s to connect on any machine (straight to a local Redis a fast one connects them within 1 s).
    const redis = new URL(redisUrl());
    const door = await startSlowDoor({ host: redis.hostname, port: Number(redis.port || 6379) }, 100);
    const out = path.join(dir, 'connect');
    redis.host = `127.0.0.1:${door.port}`;
    const run = await runCli(['scenario', '100', '--consumers', '1000', '--timeout', '1', '--results-dir', out, '--quiet'], { ...base, REDIS_URL: redis.toString() }).finally(
      () => door.close(),
    );
    expect(run.code, run.stderr).toBe(1);
    const result = await onlyResult(out);
    expect(result.status).toBe('timeout');
    expect(result.reason).toMatch(/^--timeout 1 s ran out while connecting \(\d+\.\d s, [\d,]+ connections of consumers opened\)$/);
    expect(result.ledger).toMatchObject({ completed: 0, lost: 0, notSent: 100 });
    // What comes after the run has bounds of its own, and the result says which.
    expect(result.limits).toEqual({ timeoutMs: 1000, commandMs: 3000, stopGraceMs: 2000, closeMs: 3000, childStartMs: 30_000, childStopGraceMs: 5000, teardownMs: 15_000 });
  });

  it('cuts a slow drain short: status timeout, the message says draining, the result is written', async () => {
    const out = path.join(dir, 'drain');
    const run = await runCli(
      ['scenario', '200', '--task-ms', '1000', '--consumers', '2', '--receive-batch', '5', '--timeout', '3', '--results-dir', out, '--quiet'],
      base,
    );
    expect(run.code, run.stderr).toBe(1);
    expect(run.elapsedMs).toBeLessThan(20_000);
    const result = await onlyResult(out);
    expect(result.status).toBe('timeout');
    expect(result.reason).toMatch(/^--timeout 3 s ran out while draining, with [\d,]+ messages outstanding$/);
    expect(result.ledger.completed).toBeGreaterThan(0);
    expect(result.ledger.completed).toBeLessThan(200);
    expect(result.ledger.notSent).toBe(0);
    expect(result.verdicts.join('\n')).toMatch(/not completed when the run stopped/);
  });
});

describe('a server frozen mid-run (SIGSTOP)', () => {
  it('ends by --timeout; publish, receive, the final sample and teardown each give up on their own limit', async () => {
    const server = await startRedisServer();
    try {
      const config = runConfig({ channel: 'frozen', messages: 5000, ratePerSec: 1000, publishBatch: 10, timeoutMs: 3000 });
      const started = Date.now();
      let running = false;
      const record = runScenario({
        adapter: redisListAdapter,
        connection: { url: server.url, commandTimeoutMs: 1000 },
        config,
        scenario: throughput,
        onEvent: (event) => {
          if (event.type === 'tick') running = true;
        },
      });
      record.catch(() => undefined);
      await waitFor('the run to be under way', () => running);
      server.process.kill('SIGSTOP');
      const { outcome } = await record;
      const elapsedMs = Date.now() - started;
      server.process.kill('SIGCONT');
      console.log(`frozen server: ${outcome.status} after ${elapsedMs} ms: ${outcome.reason}; errors: ${outcome.errors.join(' | ')}`);
      expect(outcome.status).toBe('timeout');
      expect(outcome.reason).toMatch(/^--timeout 3 s ran out while publishing/);
      expect(outcome.counters.publishErrors).toBeGreaterThan(0);
      expect(outcome.errors.join('\n')).toMatch(/publish: redis-list publish: Command timed out/);
      // Teardown could not reach the server either: said, with where the keys were left.
      expect(outcome.errors.join('\n')).toMatch(/^teardown: could not remove frozen \(redis-list teardown: Command timed out\); they stay under bb-/m);
      // --timeout 3 s, then the wrap-up limits (grace 2 s, closing, final sample, teardown: 1 s commands).
      expect(elapsedMs).toBeLessThan(25_000);
    } finally {
      server.process.kill('SIGCONT');
      await sleep(50);
      await server.stop();
    }
  });
});
