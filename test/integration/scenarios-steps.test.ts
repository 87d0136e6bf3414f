// Multi-step scenarios (scale-out, fixed-rate) under a fault between steps: the broker, a throw-away
// redis-server, stalls (CLIENT PAUSE, or a TCP front that stops answering new connections) just as the
// second step starts. The run must end as failed with the reason and keep every step measured before
// it, through the runner and the CLI (exit 1, a result file); fixed-rate keeps each rate's ledger and
// requests.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisListAdapter } from '../../adapters/redis-list.ts';
import { redisStreamAdapter } from '../../adapters/redis-stream.ts';
import type { Broker, BrokerAdapter, QueueSpec } from '../../src/broker.ts';
import type { RunConfig } from '../../src/config.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import { printSummary } from '../../src/report/print.ts';
import { buildResult, type ResultFile } from '../../src/report/result-file.ts';
import { runScenario } from '../../src/runner/runner.ts';
import { startRedisServer, type StartedRedisServer } from '../../src/services/redis-server.ts';
import { findScenario } from '../../scenarios/index.ts';
import { runCli } from '../helpers/cli.ts';
import { pauseRedis } from '../helpers/redis.ts';
import { scenarioRunner, type Target } from '../helpers/scenarios.ts';
import { useSqsEndpoint } from '../helpers/sqs.ts';

const sqsEndpoint = useSqsEndpoint();
const { connection, configFor, run } = scenarioRunner(sqsEndpoint);

let server: StartedRedisServer;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

/** Pauses every client of the throw-away server for `ms`. */
const pauseServer = (ms: number): Promise<void> => pauseRedis(server.url, ms);

/**
 * `adapter` whose handles stall the server (CLIENT PAUSE for `pauseMs`) the moment a queue ending in
 * `suffix` is prepared: the second step or rate starts into a broker that does not answer.
 */
function stallingAt(adapter: BrokerAdapter, suffix: string, pauseMs: number): BrokerAdapter {
  let stalled = false;
  const wrap = (broker: Broker): Broker =>
    new Proxy(broker, {
      get(target, property) {
        if (property === 'prepare') {
          return async (spec: QueueSpec) => {
            if (!stalled && spec.name.endsWith(suffix)) {
              stalled = true;
              await pauseServer(pauseMs);
            }
            return target.prepare(spec);
          };
        }
        if (property === 'duplicate') return async () => wrap(await target.duplicate());
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  return { ...adapter, open: async (options) => wrap(await adapter.open(options)) };
}

async function runStalled(name: string, adapter: BrokerAdapter, target: Target, suffix: string, change: Partial<RunConfig>): Promise<ResultFile> {
  const scenario = findScenario(name)!;
  const record = await runScenario({
    adapter: stallingAt(adapter, suffix, 4_000),
    connection: { ...connection(target, server.url), commandTimeoutMs: 1_000 },
    config: configFor(scenario, target, change),
    scenario,
  });
  const result = buildResult(record);
  expect(printSummary(result, undefined, { width: 400 })).toContain(result.scenarioData!.tables[0]!.title);
  return JSON.parse(JSON.stringify(result)) as ResultFile;
}

describe('a step that cannot run ends the run as failed, with the steps before it kept', () => {
  it('scale-out --scale-by processes on redis-stream: step 1 kept, the run failed with the reason', async () => {
    const result = await runStalled('scale-out', redisStreamAdapter, 'redis-stream', '-n1', {
      messages: 200,
      scaleSteps: [1, 2],
      scaleBy: 'processes',
      task: { ...NO_TASK, durationMs: 1 },
    });
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/^step 2 \(2 consumer processes\) could not run: /);
    const steps = result.scenarioData!.records['steps']!;
    expect(steps.map((step) => [step['consumers'], step['completed'], step['lost'], step['status']])).toEqual([[1, 200, 0, 'completed']]);
    expect(result.ledger).toMatchObject({ expected: 200, completed: 200, lost: 0 });
    expect(result.scenarioData!.values['failure']).toBe(result.reason);
    expect(result.verdicts.some((line) => line.startsWith('skipped 2 consumer processes: step 2'))).toBe(true);
  }, 60_000);

  it('fixed-rate on redis-stream: the first rate and its ledger kept, the run failed with the reason', async () => {
    const result = await runStalled('fixed-rate', redisStreamAdapter, 'redis-stream', '-r1', {
      ratesPerSec: [100, 200],
      durationSec: 1,
      warmupSec: 0.5,
    });
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/^200\/s could not run: /);
    const rates = result.scenarioData!.records['rates']!;
    expect(rates.map((rate) => [rate['ratePerSec'], rate['accepted'], rate['completed'], rate['lost']])).toEqual([[100, 150, 150, 0]]);
    expect(result.verdicts).toContain(`RUN FAILED: ${result.reason}`);
    expect(result.scenarioData!.tables[0]!.rows.at(-1)!.at(-1)).toBe('FAILED: could not run');
  }, 60_000);

});

/**
 * A loopback TCP front for the throw-away server that forwards every connection until the first one
 * closes, and from then on accepts new connections and never answers them: the consumer process of
 * scale-out's first step hangs up when the step ends, so the second step's processes meet a broker
 * that has stalled, while the parent's own connections (opened first) keep working.
 */
async function stallAfterFirstClose(targetPort: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let stalled = false;
  const front = createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    client.on('close', () => {
      sockets.delete(client);
      stalled = true;
    });
    if (stalled) return;
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('error', () => undefined);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  return {
    port: (front.address() as AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    },
  };
}

describe('through the CLI', () => {
  it('scale-out --steps 1,2 --scale-by processes whose second step meets a stalled broker: exit 1, failed, step 1 in the result file', async () => {
    const front = await stallAfterFirstClose(server.port);
    const dir = mkdtempSync(path.join(tmpdir(), 'bb-steps-'));
    try {
      const cli = await runCli(
        ['scenario', '300', '--scenario', 'scale-out', '--steps', '1,2', '--scale-by', 'processes', '--task-ms', '1', '--quiet', '--results-dir', dir],
        { REDIS_URL: `redis://127.0.0.1:${front.port}`, QUEUE: 'REDIS' },
        120_000,
      );
      expect(cli.stderr).not.toMatch(/internal error/);
      expect(cli.code).toBe(1);
      const files = readdirSync(dir).filter((name) => name.endsWith('.json'));
      expect(files).toHaveLength(1);
      const result = JSON.parse(readFileSync(path.join(dir, files[0]!), 'utf8')) as ResultFile;
      expect(result.status).toBe('failed');
      expect(result.reason).toMatch(/^step 2 \(2 consumer processes\) could not run: /);
      const steps = result.scenarioData!.records['steps']!;
      expect(steps.map((step) => [step['consumers'], step['completed'], step['lost']])).toEqual([[1, 300, 0]]);
      expect(cli.stdout).toContain(`result: ${path.join(dir, files[0]!)}`);
    } finally {
      await front.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);
});

describe('fixed-rate books each rate apart', () => {
  it('redis-list: a rate interrupted part-way ends the run as interrupted, not as the completed rate before it', async () => {
    const scenario = findScenario('fixed-rate')!;
    const interrupt = new AbortController();
    const record = await runScenario({
      adapter: redisListAdapter,
      connection: connection('redis-list'),
      config: configFor(scenario, 'redis-list', { ratesPerSec: [100, 200], durationSec: 1, warmupSec: 0.5 }),
      scenario,
      signal: interrupt.signal,
      // The second rate plans 300 messages: stop once it has published some.
      onEvent: (event) => {
        if (event.type === 'tick' && event.progress.expected === 300 && event.progress.published > 0) interrupt.abort();
      },
    });
    const result = buildResult(record);
    expect(result.status).toBe('interrupted');
    expect(result.reason).toBe('at 200/s: interrupted by signal');
    const rates = result.scenarioData!.records['rates']!;
    expect(rates.map((rate) => [rate['ratePerSec'], rate['status']])).toEqual([
      [100, 'completed'],
      [200, 'interrupted'],
    ]);
    // The top-level books are still the held rate's.
    expect(result.ledger.completed).toBe(150);
  }, 60_000);

  it('sqs: requests counted per rate beside its ledger; the headline requests are the headline rate\'s', async () => {
    const result = await run('fixed-rate', 'sqs', { ratesPerSec: [20, 40], durationSec: 1, warmupSec: 0.5 });
    const rates = result.scenarioData!.records['rates']!;
    expect(rates.map((rate) => rate['ratePerSec'])).toEqual([20, 40]);
    const byRate = result.scenarioData!.records['rateRequests']!;
    for (const rate of rates) {
      expect(rate['completed']).toBe(rate['accepted']);
      const kinds = byRate.filter((entry) => entry['ratePerSec'] === rate['ratePerSec']);
      const sent = kinds.find((entry) => entry['kind'] === 'SendMessageBatch')?.['count'] as number;
      // 30 or 60 messages in batches of at most 10, each batch at most ~5 ms of the schedule.
      expect(sent).toBeGreaterThanOrEqual((rate['accepted'] as number) / 10);
      expect(kinds.some((entry) => entry['kind'] === 'ReceiveMessage')).toBe(true);
      expect(rate['requests']).toBe(kinds.reduce((sum, entry) => sum + (entry['count'] as number), 0));
    }
    const headline = result.scenarioData!.values['headlineRatePerSec'];
    const row = rates.find((rate) => rate['ratePerSec'] === headline)!;
    expect(result.requests!.total).toBe(row['requests']);
    expect(result.requests!.byKind).toEqual(
      Object.fromEntries(byRate.filter((entry) => entry['ratePerSec'] === headline).map((entry) => [entry['kind'], entry['count']])),
    );
    expect(result.ledger.completed).toBe(row['completed']);
  }, 90_000);

  it('refuses --warmup, whose message count each rate\'s time-based warm-up would override, in one line (exit 2)', async () => {
    const cli = await runCli(['scenario', '--scenario', 'fixed-rate', '--rates', '100', '--warmup', '10']);
    expect(cli.code).toBe(2);
    expect(cli.stderr.trim()).toBe('brokerbench: fixed-rate warms up by time: use --warmup-sec instead of --warmup');
  });
});
