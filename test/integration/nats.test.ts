// The nats adapter through the runner as the CLI drives it, on the NATS server its registry entry finds
// (NATS_URL, the local 4222, or a throw-away nats-server -js): throughput, crash-recovery with seeded
// random kills, retry-dlq with dead letters moved by the max-deliveries advisory, native fan-out, the
// delayed scenario refused by capability, the throw-away server's life, and the one-line error for a
// server that is not there. Each asserts the books; no timing assertions.

import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { natsAdapter } from '../../adapters/nats.ts';
import { streamsWithPrefix } from '../../adapters/nats-registry.ts';
import { UsageError } from '../../src/errors.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import { lostOf } from '../../src/report/result-file.ts';
import { freePort } from '../../src/services/children.ts';
import { startNatsServer } from '../../src/services/nats-server.ts';
import { findScenario } from '../../scenarios/index.ts';
import { runCli } from '../helpers/cli.ts';
import { uniqueNamespace } from '../helpers/fixture.ts';
import { expectFannedOut, expectRecovered, scenarioRunner, scenarioValues } from '../helpers/scenarios.ts';
import { useSqsEndpoint } from '../helpers/sqs.ts';

const sqsEndpoint = useSqsEndpoint();
const { configFor, connection, run } = scenarioRunner(sqsEndpoint);

/** Streams of runner namespaces (`bb-<run id>_…`) on the test server: a run must leave none of its own. */
async function runStreams(): Promise<string[]> {
  return (await streamsWithPrefix(connection('nats').url!, 'bb-')).filter((name) => /^bb-[0-9a-f]{8}_/.test(name));
}


describe('nats', () => {
  it('throughput: every message completed once, nothing lost, and the run left no stream behind', async () => {
    const before = await runStreams();
    const result = await run('throughput', 'nats', { messages: 3_000, consumers: 3 });
    expect(result.status).toBe('completed');
    expect(result.ledger).toMatchObject({ expected: 3_000, completed: 3_000, deliveries: 3_000, lost: 0, duplicateDeliveries: 0 });
    expect(result.broker).toMatchObject({ name: 'nats', mode: 'jetstream' });
    expect(result.broker.serverVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(await runStreams()).toEqual(before);
  });

  it.each([51, 52, 53])('crash-recovery, random kill seed %i: nothing lost, what the victim held came back after ack_wait', async (seed) => {
    const result = await run('crash-recovery', 'nats', {
      messages: 200,
      ratePerSec: 400,
      publishBatch: 10,
      visibilityTimeoutMs: 1_000,
      killMode: 'random',
      seed,
      task: { ...NO_TASK, durationMs: 40 },
    });
    expectRecovered(result);
  });

  it('retry-dlq: completed + dead-lettered = published, the dead counted in the dead-letter stream', async () => {
    const result = await run('retry-dlq', 'nats', { messages: 300, retryIntervalsMs: [50, 100], poisonRate: 0.1, task: { ...NO_TASK, failureRate: 0.4 } });
    expect(result.status).toBe('completed');
    expect(result.config.maxReceives).toBe(3);
    const v = scenarioValues(result);
    expect((v['completed'] as number) + (v['deadLettered'] as number)).toBe(300);
    expect(v['balanced']).toBe(true);
    expect(v['deadLettered']).toBe(v['expectedDead']);
    expect(v['deadLettered'] as number).toBeGreaterThan(0);
    expect(v['deliveriesBeyondAttempts']).toBe(0);
    expect(result.finalDepth.dead).toBe(v['deadLettered']);
    // The ledger's undelivered are exactly the dead letters: lost, by the one definition, is none.
    expect(lostOf(result)).toBe(0);
  });

  it('fan-out: one stream read by a durable consumer per group, every message reaching both, once each', async () => {
    const before = await runStreams();
    const result = await run('fan-out', 'nats', { messages: 1_000, fanOutGroups: 2, consumers: 2 });
    expectFannedOut(result, 1_000, true);
    expect(await runStreams()).toEqual(before);
  });

  it('delayed: refused by capability, and a delayed publish is refused with the reason, writing nothing', async () => {
    expect(() => configFor(findScenario('delayed')!, 'nats', {})).toThrow(UsageError);
    const cli = await runCli(['scenario', '10', '--scenario', 'delayed', '--results-dir', path.join(tmpdir(), 'bb-nats-delayed')], { QUEUE: 'NATS' });
    expect(cli.code).toBe(2);
    expect(cli.stderr.trim()).toBe('brokerbench: scenario delayed needs delay, which nats (jetstream) does not support');
    const broker = await natsAdapter.open({ namespace: uniqueNamespace(), ...connection('nats') });
    try {
      await broker.prepare({ name: 'q', visibilityTimeoutMs: 30_000, maxReceives: 0 });
      await expect(broker.publish('q', [{ body: 'now' }, { body: 'later', delayMs: 1_000 }])).rejects.toThrow(
        /^nats publish: queue \S+_q: nats-server 2\.9 has no per-message delay/,
      );
      expect(await broker.depth('q')).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
    } finally {
      await broker.teardown('q');
      await broker.close();
    }
  });

  it('a throw-away nats-server -js: answers with JetStream, and stop() ends it and removes its store', async () => {
    const stores = async (): Promise<string[]> => (await readdir(tmpdir())).filter((name) => name.startsWith('brokerbench-nats-'));
    const before = await stores();
    const server = await startNatsServer();
    const made = (await stores()).filter((name) => !before.includes(name));
    expect(made).toHaveLength(1);
    const broker = await natsAdapter.open({ namespace: uniqueNamespace(), url: server.url, commandTimeoutMs: 3_000 });
    try {
      await broker.prepare({ name: 'q', visibilityTimeoutMs: 30_000, maxReceives: 0 });
      await broker.publish('q', [{ body: 'kept' }]);
      const [message] = await broker.receive('q', { maxMessages: 1, waitMs: 1_000 });
      expect(message).toMatchObject({ body: 'kept', receiveCount: 1 });
    } finally {
      await broker.close();
      await server.stop();
      await server.stop();
    }
    const opening = natsAdapter.open({ namespace: 'bb-test-gone', url: server.url, commandTimeoutMs: 2_000 });
    await expect(opening).rejects.toThrow(/cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    expect(existsSync(path.join(tmpdir(), made[0]!))).toBe(false);
  });

  it('an unreachable NATS_URL: one line naming the server and how to start one, exit 2, the token never shown', async () => {
    const port = await freePort('127.0.0.1');
    const cli = await runCli(['scenario', '10', '--results-dir', path.join(tmpdir(), `bb-nats-${port}`)], {
      QUEUE: 'NATS',
      NATS_URL: `nats://s3cretT0ken@127.0.0.1:${port}`,
    });
    expect(cli.code).toBe(2);
    const lines = cli.stderr.trim().split('\n');
    expect(lines.filter((line) => line.startsWith('brokerbench:'))).toHaveLength(1);
    expect(lines.at(-1)).toBe(
      `brokerbench: nats open: cannot reach NATS at nats://***@127.0.0.1:${port} (ECONNREFUSED); ` +
        'start one with `nats-server -js` or `docker compose up -d nats`, or set NATS_URL',
    );
    expect(cli.stderr).not.toMatch(/s3cretT0ken|^\s+at /m);
    expect(cli.stdout).toBe('');
  });
});
