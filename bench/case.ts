// One benchmark case in its own process, so each one's peak memory is its own and no case warms the
// JIT for the next. Prints one JSON line: { ratePerSec, peakRssBytes }.
//
// usage: tsx bench/case.ts <case> <messages> <redis-url>
//   case: raw-list | harness-simple | harness-reliable

import { redisListAdapter } from '../adapters/redis-list.ts';
import { throughput } from '../scenarios/throughput.ts';
import { DEFAULTS, type RunConfig } from '../src/config.ts';
import { NO_TASK } from '../src/pipeline/executor.ts';
import { runScenario } from '../src/runner/runner.ts';
import { rawRedisListLoop, type LoopShape } from './baselines.ts';

export const SHAPE = { payloadBytes: 200, batch: 100, publishers: 4, consumers: 4, timeoutMs: 300_000 } as const;

async function harnessRate(mode: string, messages: number, url: string): Promise<number> {
  const config: RunConfig = {
    ...DEFAULTS,
    adapter: 'redis-list',
    mode,
    scenario: 'throughput',
    messages,
    payloadBytes: SHAPE.payloadBytes,
    publishBatch: SHAPE.batch,
    receiveBatch: SHAPE.batch,
    publishConcurrency: SHAPE.publishers,
    consumers: SHAPE.consumers,
    timeoutMs: SHAPE.timeoutMs,
    task: NO_TASK,
    channel: 'bench',
  };
  const record = await runScenario({
    adapter: redisListAdapter,
    connection: { url, commandTimeoutMs: 5000 },
    config,
    scenario: throughput,
  });
  const { outcome } = record;
  if (outcome.status !== 'completed' || outcome.ledger.lost > 0) {
    throw new Error(`harness ${mode} run ${outcome.status}, ${outcome.ledger.lost} lost`);
  }
  return outcome.ledger.completed / ((outcome.endUs - outcome.startUs) / 1e6);
}

async function main(): Promise<void> {
  const [name, messagesText, url] = process.argv.slice(2);
  const messages = Number(messagesText);
  if (!name || !Number.isSafeInteger(messages) || !url) throw new Error('usage: case.ts <case> <messages> <redis-url>');
  const shape: LoopShape = { ...SHAPE, messages };
  let ratePerSec: number;
  switch (name) {
    case 'raw-list':
      ratePerSec = await rawRedisListLoop(url, shape);
      break;
    case 'harness-simple':
      ratePerSec = await harnessRate('simple', messages, url);
      break;
    case 'harness-reliable':
      ratePerSec = await harnessRate('reliable', messages, url);
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
