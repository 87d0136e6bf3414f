// Fault: the broker goes away mid-run and comes back on the same port. The harness reconnects with
// back-off, counts the errors, finishes well inside --timeout, and its ledger says exactly what the
// broker lost: with Redis persistence off, every message Redis held at the restart; with appendonly
// (fsync every second) and a clean shutdown, none. The embedded SQS (fauxqs, in memory) loses its
// queues: the harness makes them again and reports what vanished with them.
//
// How the Redis restart is made exact: CLIENT PAUSE WRITE freezes every change, the test counts what
// Redis holds (ready + in flight + delayed), then SIGTERM shuts the server down. Writes the pause held
// back never ran, so what was counted is exactly what a server without persistence takes with it.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { redisListAdapter } from '../../adapters/redis-list.ts';
import { redisStreamAdapter } from '../../adapters/redis-stream.ts';
import { sqsAdapter } from '../../adapters/sqs.ts';
import { throughput } from '../../scenarios/throughput.ts';
import { formatCount } from '../../src/format.ts';
import { runScenario } from '../../src/runner/runner.ts';
import { startRedisServer, type StartedRedisServer } from '../../src/services/redis-server.ts';
import { startFauxqs, type StartedFauxqs } from '../../src/services/sqs-endpoint.ts';
import { runConfig, sleep, waitFor } from '../helpers/faults.ts';
import { uniqueNamespace } from '../helpers/redis.ts';
import type { RunRecord } from '../../src/outcome.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** How long the broker stays away, ms. */
const OUTAGE_MS = 1000;
const TIMEOUT_MS = 40_000;

interface RestartFigures {
  readonly record: RunRecord;
  /** Messages Redis held when it went down: ready + in flight + delayed. */
  readonly heldAtRestart: number;
  readonly elapsedMs: number;
}

/** A redis-list (reliable) run at 1,000 msg/s with consumers slower than that, restarted once a backlog builds. */
async function redisRunWithRestart(persistence: 'off' | 'aof'): Promise<RestartFigures> {
  const dir = mkdtempSync(path.join(tmpdir(), 'brokerbench-restart-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const args = persistence === 'aof' ? ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec'] : [];
  let server: StartedRedisServer = await startRedisServer({ args });
  cleanups.push(() => server.stop());
  const namespace = uniqueNamespace();
  const config = runConfig({
    channel: 'restart',
    messages: 1500,
    ratePerSec: 1000,
    publishBatch: 20,
    publishConcurrency: 2,
    consumers: 2,
    receiveBatch: 10,
    // 2 consumers x 10 messages per 40 ms: about 500 msg/s, so a backlog builds while publishing.
    task: { durationMs: 40, distribution: 'fixed', work: 'sleep', failureRate: 0 },
    visibilityTimeoutMs: 1000,
    timeoutMs: TIMEOUT_MS,
  });
  const started = Date.now();
  const running = runScenario({
    adapter: redisListAdapter,
    connection: { url: server.url, commandTimeoutMs: 2000 },
    config,
    scenario: throughput,
    namespace,
  });
  running.catch(() => undefined);

  const base = `${namespace}:${config.channel}:`;
  const probe = new Redis(server.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  await waitFor('a backlog of 200 messages', async () => (await probe.llen(`${base}ready`)) >= 200);
  await probe.call('CLIENT', 'PAUSE', '10000', 'WRITE');
  const [ready, inFlight, delayed] = await Promise.all([
    probe.llen(`${base}ready`),
    probe.zcard(`${base}inflight`),
    probe.zcard(`${base}delayed`),
  ]);
  probe.disconnect();
  // SIGTERM is a clean shutdown: with appendonly the AOF is flushed, without it nothing is kept.
  await server.stop();
  await sleep(OUTAGE_MS);
  server = await startRedisServer({ port: server.port, args });
  const record = await running;
  return { record, heldAtRestart: ready + inFlight + delayed, elapsedMs: Date.now() - started };
}

describe('the broker restarts mid-run', () => {
  it('redis-list, persistence off: reconnects, counts the errors, and loses exactly what Redis held', async () => {
    const { record, heldAtRestart, elapsedMs } = await redisRunWithRestart('off');
    const { outcome } = record;
    const { ledger, counters } = outcome;
    console.log(
      `persistence off: ${heldAtRestart} messages in Redis at the restart; lost ${ledger.lost}, ` +
        `completed ${ledger.completed}, publish failed ${ledger.publishFailed}, errors publish/receive/ack ` +
        `${counters.publishErrors}/${counters.receiveErrors}/${counters.ackErrors}, ${elapsedMs} ms`,
    );
    expect(outcome.status, outcome.reason).toBe('completed');
    expect(elapsedMs).toBeLessThan(TIMEOUT_MS);
    expect(heldAtRestart).toBeGreaterThan(0);
    // The errors of the outage are counted, not fatal.
    expect(counters.publishErrors + counters.receiveErrors + counters.ackErrors).toBeGreaterThan(0);
    expect(outcome.errors.join('\n')).toMatch(/redis-list (publish|receive|ack)/);
    // Exactly what the server held is lost; everything else accepted was completed.
    expect(ledger.lost).toBe(heldAtRestart);
    expect(ledger.completed + ledger.lost).toBe(ledger.expected - ledger.publishFailed - (ledger.notSent ?? 0));
    expect(outcome.verdicts[0]).toMatch(new RegExp(`^LOST ${formatCount(heldAtRestart)} of `));
    expect(outcome.finalDepth).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });

  it('redis-list, appendonly with fsync every second: the same restart loses nothing', async () => {
    const { record, heldAtRestart, elapsedMs } = await redisRunWithRestart('aof');
    const { outcome } = record;
    const { ledger, counters } = outcome;
    console.log(
      `persistence aof (everysec), clean shutdown: ${heldAtRestart} messages in Redis at the restart; lost ${ledger.lost}, ` +
        `completed ${ledger.completed}, publish failed ${ledger.publishFailed}, duplicates ${ledger.duplicateDeliveries}, ` +
        `errors publish/receive/ack ${counters.publishErrors}/${counters.receiveErrors}/${counters.ackErrors}, ${elapsedMs} ms`,
    );
    expect(outcome.status, outcome.reason).toBe('completed');
    expect(elapsedMs).toBeLessThan(TIMEOUT_MS);
    expect(heldAtRestart).toBeGreaterThan(0);
    expect(counters.publishErrors + counters.receiveErrors + counters.ackErrors).toBeGreaterThan(0);
    expect(ledger.lost).toBe(0);
    expect(ledger.completed).toBe(ledger.expected - ledger.publishFailed);
    expect(outcome.verdicts[0]).toMatch(/^nothing lost/);
  });

  it('redis-stream: the consumer group vanishes with the server and is made again', async () => {
    let server = await startRedisServer();
    cleanups.push(() => server.stop());
    const config = runConfig({
      adapter: 'redis-stream',
      mode: 'group',
      channel: 'restart',
      messages: 1000,
      ratePerSec: 1000,
      publishBatch: 20,
      publishConcurrency: 2,
      consumers: 2,
      receiveBatch: 10,
      task: { durationMs: 40, distribution: 'fixed', work: 'sleep', failureRate: 0 },
      visibilityTimeoutMs: 1000,
      timeoutMs: TIMEOUT_MS,
    });
    const started = Date.now();
    const running = runScenario({
      adapter: redisStreamAdapter,
      connection: { url: server.url, commandTimeoutMs: 2000 },
      config,
      scenario: throughput,
    });
    running.catch(() => undefined);
    await sleep(500);
    await server.stop();
    await sleep(OUTAGE_MS);
    server = await startRedisServer({ port: server.port });
    const { outcome } = await running;
    const { ledger, counters } = outcome;
    console.log(
      `redis-stream restart: lost ${ledger.lost}, completed ${ledger.completed}, publish failed ${ledger.publishFailed}, ` +
        `errors publish/receive/ack ${counters.publishErrors}/${counters.receiveErrors}/${counters.ackErrors}, ${Date.now() - started} ms`,
    );
    expect(outcome.status, outcome.reason).toBe('completed');
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS);
    expect(counters.receiveErrors).toBeGreaterThan(0);
    expect(ledger.lost).toBeGreaterThan(0);
    expect(ledger.completed + ledger.lost).toBe(ledger.expected - ledger.publishFailed);
    // Messages published after the restart were all received: the group came back.
    expect(ledger.completed).toBeGreaterThan(ledger.expected / 3);
  });

  it('sqs on the embedded fauxqs: killed and restarted, the queue is made again and the loss is reported', async () => {
    let fauxqs: StartedFauxqs = await startFauxqs();
    cleanups.push(() => fauxqs.stop());
    const config = runConfig({
      adapter: 'sqs',
      mode: 'standard',
      channel: 'restart',
      messages: 600,
      ratePerSec: 400,
      publishBatch: 10,
      publishConcurrency: 2,
      consumers: 2,
      receiveBatch: 10,
      task: { durationMs: 100, distribution: 'fixed', work: 'sleep', failureRate: 0 },
      visibilityTimeoutMs: 2000,
      timeoutMs: TIMEOUT_MS,
    });
    const started = Date.now();
    const running = runScenario({
      adapter: sqsAdapter,
      connection: {
        url: fauxqs.endpoint,
        commandTimeoutMs: 2000,
        settings: { region: 'us-east-1', endpointKind: 'embedded', endpointVersion: fauxqs.version },
      },
      config,
      scenario: throughput,
    });
    running.catch(() => undefined);
    await sleep(800);
    fauxqs.process.kill('SIGKILL');
    await fauxqs.stop();
    await sleep(OUTAGE_MS);
    fauxqs = await startFauxqs({ port: fauxqs.port });
    const { outcome } = await running;
    const { ledger, counters } = outcome;
    console.log(
      `sqs (fauxqs) restart: lost ${ledger.lost}, completed ${ledger.completed}, publish failed ${ledger.publishFailed}, ` +
        `errors publish/receive/ack ${counters.publishErrors}/${counters.receiveErrors}/${counters.ackErrors}, ${Date.now() - started} ms`,
    );
    expect(['completed', 'failed']).toContain(outcome.status);
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS);
    expect(counters.publishErrors + counters.receiveErrors).toBeGreaterThan(0);
    expect(outcome.errors.join('\n')).toMatch(/sqs (publish|receive)/);
    // In-memory queues take their messages with them: the ledger says how many, and the books balance.
    expect(ledger.lost).toBeGreaterThan(0);
    expect(ledger.completed + ledger.lost).toBe(ledger.expected - ledger.publishFailed - (ledger.notSent ?? 0));
    // The queue was made again, so publishing and consuming went on after the restart.
    expect(outcome.status, outcome.reason).toBe('completed');
    expect(ledger.completed).toBeGreaterThan(ledger.expected / 3);
  });
});
