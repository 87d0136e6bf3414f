// One benchmark case in its own process, so each one's peak memory is its own and no case warms the
// JIT for the next. Prints one JSON line: { ratePerSec, peakRssBytes }.
//
// usage: node --import tsx bench/case.ts <case> <messages> <url>
//   case: raw-list | harness-simple | harness-reliable | raw-stream | harness-stream   (url: Redis)
//         raw-sqs | harness-sqs                                                       (url: SQS endpoint)
//         raw-nats | harness-nats                                                     (url: NATS)
//         raw-bullmq | harness-bullmq                                                 (url: Redis)
//         raw-rabbitmq | harness-rabbitmq                                             (url: RabbitMQ, quorum queues)
//         raw-postgres | harness-postgres                                             (url: PostgreSQL)
// The SQS cases use batches of 10, SQS's limit; everything else is SHAPE.

import { bullmqAdapter } from '../adapters/bullmq.ts';
import { natsAdapter } from '../adapters/nats.ts';
import { postgresAdapter } from '../adapters/postgres.ts';
import { rabbitmqAdapter } from '../adapters/rabbitmq.ts';
import { redisListAdapter } from '../adapters/redis-list.ts';
import { redisStreamAdapter } from '../adapters/redis-stream.ts';
import { sqsAdapter } from '../adapters/sqs.ts';
import type { BrokerAdapter } from '../src/broker.ts';
import { throughput } from '../scenarios/throughput.ts';
import { DEFAULTS, type RunConfig } from '../src/config.ts';
import { NO_TASK } from '../src/pipeline/executor.ts';
import { runScenario } from '../src/runner/runner.ts';
import { rawBullmqLoop } from './baselines-bullmq.ts';
import { rawRedisListLoop, rawRedisStreamLoop, rawSqsLoop, type LoopShape } from './baselines.ts';
import { rawNatsLoop } from './baselines-nats.ts';
import { rawRabbitmqLoop } from './baselines-rabbitmq.ts';
import { rawPostgresLoop } from './baselines-postgres.ts';

export const SHAPE = { payloadBytes: 200, batch: 100, publishers: 4, consumers: 4, timeoutMs: 300_000 } as const;
/** SQS takes at most 10 messages per send, receive and delete. */
export const SQS_BATCH = 10;
/** The embedded fauxqs answers to any region; the same one for the raw loop and the harness. */
const SQS_REGION = 'us-east-1';

/** The harness's throughput scenario with the bench's shape; rate over its own start-to-last-completion span. */
async function harnessRate(adapter: BrokerAdapter, mode: string, shape: LoopShape, url: string): Promise<number> {
  const config: RunConfig = {
    ...DEFAULTS,
    adapter: adapter.name,
    mode,
    scenario: 'throughput',
    messages: shape.messages,
    payloadBytes: shape.payloadBytes,
    publishBatch: shape.batch,
    receiveBatch: shape.batch,
    publishConcurrency: shape.publishers,
    consumers: shape.consumers,
    timeoutMs: shape.timeoutMs,
    task: NO_TASK,
    channel: 'bench',
  };
  const settings = adapter === sqsAdapter ? { region: SQS_REGION } : undefined;
  const record = await runScenario({
    adapter,
    connection: { url, commandTimeoutMs: 5000, ...(settings ? { settings } : {}) },
    config,
    scenario: throughput,
  });
  const { outcome } = record;
  if (outcome.status !== 'completed' || outcome.ledger.lost > 0) {
    throw new Error(`harness ${adapter.name} ${mode} run ${outcome.status}, ${outcome.ledger.lost} lost`);
  }
  return outcome.ledger.completed / ((outcome.endUs - outcome.startUs) / 1e6);
}

async function main(): Promise<void> {
  const [name, messagesText, url] = process.argv.slice(2);
  const messages = Number(messagesText);
  if (!name || !Number.isSafeInteger(messages) || !url) throw new Error('usage: case.ts <case> <messages> <url>');
  const shape: LoopShape = { ...SHAPE, messages };
  const sqsShape: LoopShape = { ...shape, batch: SQS_BATCH };
  let ratePerSec: number;
  switch (name) {
    case 'raw-list':
      ratePerSec = await rawRedisListLoop(url, shape);
      break;
    case 'harness-simple':
      ratePerSec = await harnessRate(redisListAdapter, 'simple', shape, url);
      break;
    case 'harness-reliable':
      ratePerSec = await harnessRate(redisListAdapter, 'reliable', shape, url);
      break;
    case 'raw-stream':
      ratePerSec = await rawRedisStreamLoop(url, shape);
      break;
    case 'harness-stream':
      ratePerSec = await harnessRate(redisStreamAdapter, 'group', shape, url);
      break;
    case 'raw-sqs':
      ratePerSec = await rawSqsLoop(url, SQS_REGION, sqsShape);
      break;
    case 'harness-sqs':
      ratePerSec = await harnessRate(sqsAdapter, 'standard', sqsShape, url);
      break;
    case 'raw-nats':
      ratePerSec = await rawNatsLoop(url, shape);
      break;
    case 'harness-nats':
      ratePerSec = await harnessRate(natsAdapter, 'jetstream', shape, url);
      break;
    case 'raw-bullmq':
      ratePerSec = await rawBullmqLoop(url, shape);
      break;
    case 'harness-bullmq':
      ratePerSec = await harnessRate(bullmqAdapter, 'default', shape, url);
      break;
    case 'raw-rabbitmq':
      ratePerSec = await rawRabbitmqLoop(url, shape);
      break;
    case 'harness-rabbitmq':
      ratePerSec = await harnessRate(rabbitmqAdapter, 'quorum', shape, url);
      break;
    case 'raw-postgres':
      ratePerSec = await rawPostgresLoop(url, shape);
      break;
    case 'harness-postgres':
      ratePerSec = await harnessRate(postgresAdapter, 'default', shape, url);
      break;
    default:
      throw new Error(`unknown case ${name}`);
  }
  process.stdout.write(`${JSON.stringify({ ratePerSec, peakRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
