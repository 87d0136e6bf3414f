// Fault: poison messages in the run's queue, put there straight through the broker's own client
// (not through an adapter): bodies that are not JSON, JSON of the wrong shape, an index out of range,
// and one as large as the broker takes (1 MiB on Redis, SQS's 256 KiB maximum). Some are there before
// the run starts, one arrives while it publishes. Each is counted as malformed (or, for the
// well-formed message without the run's token, as foreign) and acked; the run completes with every
// real message accounted for and nothing left in the queue.

import { CreateQueueCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { redisListAdapter } from '../../adapters/redis-list.ts';
import { redisStreamAdapter } from '../../adapters/redis-stream.ts';
import { sqsAdapter } from '../../adapters/sqs.ts';
import type { BrokerAdapter, BrokerOptions } from '../../src/broker.ts';
import { throughput } from '../../scenarios/throughput.ts';
import type { RunConfig } from '../../src/config.ts';
import { runScenario, type RunnerEvent } from '../../src/runner/runner.ts';
import { runConfig, sleep } from '../helpers/faults.ts';
import { redisUrl, uniqueNamespace } from '../helpers/redis.ts';
import { useSqsEndpoint } from '../helpers/sqs.ts';

const MESSAGES = 2000;
const CHANNEL = 'poison';

/** Bodies no harness ever sends; `hugeBytes` sets the size of the large one. */
function poisonBodies(hugeBytes: number): string[] {
  return [
    'not json at all',
    '{"x":1}',
    '{"i":"seven","t":1}',
    `{"i":${MESSAGES + 5},"t":1,"p":"+5511999999999","m":""}`, // a harness shape without the run's token: foreign
    'a:b:c', // looks a little like redis-list's envelope, is not one
    'x'.repeat(hugeBytes),
  ];
}

/** Poison bodies shaped like messages, but without the run's token. */
const FOREIGN_POISON = 1;

/** Another writer's body arriving mid-run. */
const LATE_POISON = '\u0000\u0001 binary-ish junk \uFFFD';

interface Target {
  readonly adapter: BrokerAdapter;
  readonly mode: string;
  readonly hugeBytes: number;
  connection(): Omit<BrokerOptions, 'namespace'>;
  /** Puts raw bodies into the run's queue, as another program would. */
  inject(namespace: string, bodies: readonly string[]): Promise<void>;
}

const redisTargets: Target[] = [
  ...(['reliable', 'simple'] as const).map(
    (mode): Target => ({
      adapter: redisListAdapter,
      mode,
      hugeBytes: 1024 * 1024,
      connection: () => ({ url: redisUrl(), commandTimeoutMs: 3000 }),
      inject: async (namespace, bodies) => {
        const client = new Redis(redisUrl());
        await client.rpush(`${namespace}:${CHANNEL}:ready`, ...bodies);
        await client.quit();
      },
    }),
  ),
  {
    adapter: redisStreamAdapter,
    mode: 'group',
    hugeBytes: 1024 * 1024,
    connection: () => ({ url: redisUrl(), commandTimeoutMs: 3000 }),
    inject: async (namespace, bodies) => {
      const client = new Redis(redisUrl());
      const key = `${namespace}:${CHANNEL}:stream`;
      for (const body of bodies) await client.xadd(key, '*', 'b', body);
      if (bodies.length > 1) {
        // Before the run, also entries of the wrong shape for the stream itself: another field name, several fields.
        await client.xadd(key, '*', 'payload', 'someone else');
        await client.xadd(key, '*', 'x', '1', 'y', '2');
      }
      await client.quit();
    },
  },
];

async function runWithPoison(target: Target, extraPoison: number): Promise<{ config: RunConfig; outcome: Awaited<ReturnType<typeof runScenario>>['outcome']; injected: number }> {
  const namespace = uniqueNamespace();
  const config = runConfig({
    adapter: target.adapter.name,
    mode: target.mode,
    channel: CHANNEL,
    messages: MESSAGES,
    ratePerSec: 4000, // half a second of publishing, so the late poison lands between real messages
    publishBatch: 10,
    consumers: 2,
    receiveBatch: 10,
  });
  const before = poisonBodies(target.hugeBytes);
  await target.inject(namespace, before);
  let late: Promise<void> | undefined;
  const onEvent = (event: RunnerEvent): void => {
    if (event.type === 'phase' && event.phase === 'run') late = sleep(150).then(() => target.inject(namespace, [LATE_POISON]));
  };
  const record = await runScenario({ adapter: target.adapter, connection: target.connection(), config, scenario: throughput, namespace, onEvent });
  await late;
  return { config, outcome: record.outcome, injected: before.length + 1 + extraPoison };
}

function expectPoisonAccountedFor(outcome: Awaited<ReturnType<typeof runWithPoison>>['outcome'], injected: number): void {
  expect(outcome.status, outcome.reason).toBe('completed');
  expect(outcome.counters.malformed).toBe(injected - FOREIGN_POISON);
  expect(outcome.ledger.unknown).toBe(injected - FOREIGN_POISON);
  expect(outcome.ledger.foreign).toBe(FOREIGN_POISON);
  // Every real message completed once; the poison did not disturb the books.
  expect(outcome.ledger.completed).toBe(MESSAGES);
  expect(outcome.ledger.lost).toBe(0);
  expect(outcome.ledger.duplicateDeliveries).toBe(0);
  // Acked, not left behind: the queue is empty at the end.
  expect(outcome.finalDepth).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  expect(outcome.verdicts).toContain(`${injected - FOREIGN_POISON} bodies were not harness messages (acked and counted)`);
  expect(outcome.verdicts).toContain("1 message did not carry this run's token (foreign: acked, never booked as deliveries)");
}

describe.each(redisTargets)('poison in a $adapter.name ($mode) queue', (target) => {
  it('is counted as malformed and acked; the run completes with every real message', async () => {
    const extra = target.adapter === redisStreamAdapter ? 2 : 0;
    const { outcome, injected } = await runWithPoison(target, extra);
    expectPoisonAccountedFor(outcome, injected);
  });
});

describe('poison in an sqs (standard) queue', () => {
  const endpoint = useSqsEndpoint();
  it('is counted as malformed and deleted; the run completes with every real message', async () => {
    process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
    const sqs = (): SQSClient =>
      new SQSClient({
        region: endpoint().region,
        endpoint: endpoint().endpoint,
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      });
    const target: Target = {
      adapter: sqsAdapter,
      mode: 'standard',
      hugeBytes: 256 * 1024, // SQS's maximum message size
      connection: () => ({
        url: endpoint().endpoint,
        commandTimeoutMs: 3000,
        settings: { region: endpoint().region, endpointKind: endpoint().kind, endpointVersion: endpoint().version },
      }),
      inject: async (namespace, bodies) => {
        const client = sqs();
        try {
          // The queue the run will prepare, made first so the poison is already in it (prepare is idempotent).
          const { QueueUrl } = await client.send(
            new CreateQueueCommand({ QueueName: `${namespace}-${CHANNEL}`, Attributes: { VisibilityTimeout: '30' } }),
          );
          for (const [k, body] of bodies.entries()) {
            const out = await client.send(new SendMessageBatchCommand({ QueueUrl, Entries: [{ Id: String(k), MessageBody: body }] }));
            if ((out.Failed ?? []).length > 0) throw new Error(`poison ${k} refused: ${out.Failed![0]!.Message}`);
          }
        } finally {
          client.destroy();
        }
      },
    };
    // SQS refuses bodies with characters outside its allowed set: the late poison stays within it.
    const { outcome, injected } = await runWithPoison({ ...target, inject: (ns, bodies) => target.inject(ns, bodies.map((b) => (b === LATE_POISON ? 'late junk, not json' : b))) }, 0);
    expectPoisonAccountedFor(outcome, injected);
  });
});
