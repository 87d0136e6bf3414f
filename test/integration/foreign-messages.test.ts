// Fault: forged messages in the run's queue while it runs. Another program sends bodies in the harness's
// layout as it was before run tokens (index in range, a send time), with the broker's own client: they
// must be counted as foreign, never as deliveries, duplicates or latencies, and the real messages'
// books must be untouched. The old code booked them as 3 duplicate deliveries with an end-to-end max
// of the whole uptime of the host.

import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { redisListAdapter } from '../../adapters/redis-list.ts';
import { sqsAdapter } from '../../adapters/sqs.ts';
import type { BrokerAdapter, BrokerOptions } from '../../src/broker.ts';
import { printSummary } from '../../src/report/print.ts';
import { buildResult, type ResultFile } from '../../src/report/result-file.ts';
import { runScenario, type RunnerEvent } from '../../src/runner/runner.ts';
import { findScenario } from '../../scenarios/index.ts';
import { throughput } from '../../scenarios/throughput.ts';
import { runConfig } from '../helpers/faults.ts';
import { redisUrl, uniqueNamespace } from '../helpers/redis.ts';
import { useSqsEndpoint } from '../helpers/sqs.ts';

const MESSAGES = 1000;
const CHANNEL = 'forged';
/** Indices the run really sends, so the old code took the forgeries for redeliveries of them. */
const FORGED_INDICES = [0, 7, 500];
/** The layout before tokens; `t` of 1 µs is what makes an end-to-end latency of the host's uptime. */
const forgedBody = (i: number): string => `{"i":${i},"t":1,"p":"+5511999999999","m":"${'x'.repeat(150)}"}`;

interface Target {
  readonly adapter: BrokerAdapter;
  readonly mode: string;
  connection(): Omit<BrokerOptions, 'namespace'>;
  /** Sends `bodies` to the run's queue `queue` as another program would, one call each. */
  forge(namespace: string, queue: string, bodies: readonly string[]): Promise<void>;
}

/** Runs `scenario` on `target` at a rate (about a second of publishing); forges bodies into `queue` once publishing is under way. */
async function runWithForgeries(target: Target, queue = CHANNEL, scenarioName = 'throughput', change: Parameters<typeof runConfig>[0] = {}): Promise<ResultFile> {
  const namespace = uniqueNamespace();
  const scenario = scenarioName === 'throughput' ? throughput : findScenario(scenarioName)!;
  const config = runConfig({
    adapter: target.adapter.name,
    mode: target.mode,
    scenario: scenario.name,
    channel: CHANNEL,
    messages: MESSAGES,
    ratePerSec: 1000,
    publishBatch: 10,
    receiveBatch: 10,
    ...change,
  });
  let forged: Promise<void> | undefined;
  const onEvent = (event: RunnerEvent): void => {
    // At the first tick that saw messages published: the run's consumers are reading the queue by then.
    if (event.type === 'tick' && event.progress.published > 0) forged ??= target.forge(namespace, queue, FORGED_INDICES.map(forgedBody));
  };
  const record = await runScenario({ adapter: target.adapter, connection: target.connection(), config, scenario, namespace, onEvent });
  await forged;
  return JSON.parse(JSON.stringify(buildResult(record))) as ResultFile;
}

/** `ledgerVerdicts`: the scenario prints the shared ledger verdicts (throughput does; scale-out has its own). */
function expectForgeriesSetApart(result: ResultFile, ledgerVerdicts = true): void {
  expect(result.status, result.reason).toBe('completed');
  expect(result.ledger.duplicateDeliveries).toBe(0);
  expect(result.latency.endToEnd.max).toBeLessThan(result.config.timeoutMs * 1000);
  expect(result.ledger.foreign).toBe(FORGED_INDICES.length);
  expect(result.ledger.deliveries).toBe(MESSAGES);
  expect(result.ledger.completed).toBe(MESSAGES);
  expect(result.ledger.lost).toBe(0);
  // Not a malformed body either: a well-formed message, just not this run's.
  expect(result.counters.malformed).toBe(0);
  // The forgeries' send time of 1 µs never reaches a histogram: the run's own latencies stay within its length.
  expect(result.latency.endToEnd.count).toBe(MESSAGES);
  expect(result.latency.endToEnd.max).toBeLessThan(result.config.timeoutMs * 1000);
  expect(result.latency.completion.max).toBeLessThan(result.config.timeoutMs * 1000);
  expect(result.runToken).toMatch(/^[0-9a-f]{16}$/);
  expect(result.finalDepth).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  expect(printSummary(result, undefined, { width: 400 })).toMatch(/foreign \(not this run's\)\s*│\s*3\b/);
  if (ledgerVerdicts) expect(result.verdicts).toContain("3 messages did not carry this run's token (foreign: acked, never booked as deliveries)");
}

describe('forged messages in a redis-list (reliable) queue', () => {
  const target: Target = {
    adapter: redisListAdapter,
    mode: 'reliable',
    connection: () => ({ url: redisUrl(), commandTimeoutMs: 3000 }),
    forge: async (namespace, queue, bodies) => {
      const client = new Redis(redisUrl());
      try {
        for (const body of bodies) await client.rpush(`${namespace}:${queue}:ready`, body);
      } finally {
        await client.quit();
      }
    },
  };

  it('are counted as foreign, not as deliveries, duplicates or latencies', async () => {
    expectForgeriesSetApart(await runWithForgeries(target));
  });

  it('are counted as foreign by consumers in child processes too (scale-out by processes)', async () => {
    // scale-out runs each step on queues of its own (`<channel>-n<k>`): the forgeries go to the first step's.
    expectForgeriesSetApart(await runWithForgeries(target, `${CHANNEL}-n0`, 'scale-out', { scaleSteps: [2], scaleBy: 'processes' }), false);
  });
});

describe('forged messages in an sqs (standard) queue', () => {
  const endpoint = useSqsEndpoint();
  it('are counted as foreign, not as deliveries, duplicates or latencies', async () => {
    process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
    const target: Target = {
      adapter: sqsAdapter,
      mode: 'standard',
      connection: () => ({
        url: endpoint().endpoint,
        commandTimeoutMs: 3000,
        settings: { region: endpoint().region, endpointKind: endpoint().kind, endpointVersion: endpoint().version },
      }),
      forge: async (namespace, queue, bodies) => {
        const client = new SQSClient({
          region: endpoint().region,
          endpoint: endpoint().endpoint,
          credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
        });
        try {
          const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: `${namespace}-${queue}` }));
          for (const body of bodies) await client.send(new SendMessageCommand({ QueueUrl, MessageBody: body }));
        } finally {
          client.destroy();
        }
      },
    };
    expectForgeriesSetApart(await runWithForgeries(target));
  });
});
