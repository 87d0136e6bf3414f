// `npm run bench`: is the harness ever the bottleneck it claims to measure? Each case runs in its own
// process, in rounds that interleave the cases so drift on a noisy machine hits them alike, and every
// figure printed is a median of rounds or a ratio to a baseline measured in the same run. Each group is
// a hand-written loop against the harness on the same broker: Redis list (RPUSH/LPOP), Redis stream
// (XADD/XREADGROUP), SQS (the SDK's batch calls, on one embedded fauxqs for the whole run), NATS
// JetStream (js.publish and consumer.fetch, on NATS_URL, the local 4222 or a throw-away nats-server),
// BullMQ (addBulk, a Worker fetching by hand, moveToCompleted), BullMQ also against the list loop,
// PostgreSQL (INSERT/UPDATE ... SKIP LOCKED/DELETE on DATABASE_URL, the local 5432 or a throw-away
// cluster), and RabbitMQ (amqplib on a quorum queue) where a RabbitMQ answers.
//
// LIMITATION: the brokers run on the same 2 cores as the harness; ratios hold for this host, absolute
// rates do not transfer to another. The SQS group measures fauxqs as much as the client side, and on
// fewer messages, since the emulator moves a few thousand per second. Not a test: nothing here fails
// on a slow machine.
//
// usage: npm run bench [-- --quick]   (quick: 100,000 messages (SQS 5,000, NATS and BullMQ 20,000, PostgreSQL 50,000, RabbitMQ 100,000), 1 round, memory 1,000,000 vs 100,000)

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { rabbitmqAdapter } from '../adapters/rabbitmq.ts';
import { resolvePostgres } from '../src/services/postgres-server.ts';
import { resolveRedis } from '../src/services/redis-server.ts';
import { resolveSqs } from '../src/services/sqs-endpoint.ts';
import { resolveNats } from '../src/services/nats-server.ts';
import { UsageError } from '../src/errors.ts';
import { formatBytes, formatRate } from '../src/format.ts';
import { formatMicroBench, runMicroBench } from './micro.ts';
import { formatRedisCost, measureRedisCost } from './redis-cost.ts';

const run = promisify(execFile);
const quick = process.argv.includes('--quick');
const MESSAGES = quick ? 100_000 : 500_000;
const SQS_MESSAGES = quick ? 5_000 : 20_000;
/** Brokers that move a few thousand messages a second on this host (NATS JetStream with file storage, BullMQ's three Lua scripts per job). */
const BROKER_MESSAGES = quick ? 20_000 : 50_000;
/** Quorum queues write every message to disk: a few times fewer than Redis moves in the same time. */
const RABBITMQ_MESSAGES = quick ? 100_000 : 200_000;
/** PostgreSQL moves some ten thousand messages a second here, with fsync on: fewer than Redis. */
const POSTGRES_MESSAGES = quick ? 50_000 : 100_000;
const ROUNDS = quick ? 1 : 5;
const MEMORY_LARGE = quick ? 1_000_000 : 5_000_000;
const TARGET = 0.8;
/** Reliable list and stream against the harness's simple mode: the floor for both. */
const SIMPLE_TARGET = 0.4;
/** Messages per case when measuring what a message costs Redis (on a server of its own). */
const COST_MESSAGES = quick ? 20_000 : 100_000;

/** One case of a group: its name in case.ts, how the summary labels it, and whether it has the target. */
interface GroupCase {
  readonly name: string;
  readonly label: string;
  readonly targeted: boolean;
}

/** A baseline and the harness cases divided by it, on one broker and message count. */
interface Group {
  /** Says what (a) is, after "median rates and ratio to". */
  readonly title: string;
  readonly baseline: GroupCase;
  readonly harness: readonly GroupCase[];
  readonly messages: number;
  readonly url: string;
}

interface CaseResult {
  readonly ratePerSec: number;
  readonly peakRssBytes: number;
}

async function runCase(name: string, messages: number, url: string): Promise<CaseResult> {
  const script = fileURLToPath(new URL('./case.ts', import.meta.url));
  // `--import tsx` resolves from cwd: the project root, wherever this was started from.
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script, name, String(messages), url], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    timeout: 600_000,
    maxBuffer: 1 << 20,
  });
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as CaseResult;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function groupsFor(redisUrl: string, sqsUrl: string, natsUrl: string, postgresUrl: string, rabbitmqUrl: string | undefined): Group[] {
  const count = MESSAGES.toLocaleString('en-US');
  const rabbitmq: Group[] =
    rabbitmqUrl === undefined
      ? []
      : [
          {
            title: `(aR), the hand-written amqplib loop, quorum queue, confirms and acks per batch (${RABBITMQ_MESSAGES.toLocaleString('en-US')} messages, batch 100):`,
            baseline: { name: 'raw-rabbitmq', label: '(aR) raw amqplib loop', targeted: false },
            harness: [{ name: 'harness-rabbitmq', label: '(bR) harness, rabbitmq quorum', targeted: true }],
            messages: RABBITMQ_MESSAGES,
            url: rabbitmqUrl,
          },
        ];
  return [
    {
      title: `(a), the hand-written ioredis RPUSH/LPOP loop (${count} messages, batch 100):`,
      baseline: { name: 'raw-list', label: '(a) raw ioredis loop', targeted: false },
      harness: [
        { name: 'harness-simple', label: '(b) harness, simple', targeted: true },
        { name: 'harness-reliable', label: '(c) harness, reliable', targeted: false },
      ],
      messages: MESSAGES,
      url: redisUrl,
    },
    {
      title: `(a'), the hand-written SQS SDK loop (${SQS_MESSAGES.toLocaleString('en-US')} messages, batch 10):`,
      baseline: { name: 'raw-sqs', label: "(a') raw SQS SDK loop", targeted: false },
      harness: [{ name: 'harness-sqs', label: "(b') harness, sqs standard", targeted: true }],
      messages: SQS_MESSAGES,
      url: sqsUrl,
    },
    {
      title: `(a"), the hand-written XADD/XREADGROUP loop (${count} messages, batch 100):`,
      baseline: { name: 'raw-stream', label: '(a") raw stream loop', targeted: false },
      harness: [{ name: 'harness-stream', label: '(b") harness, redis-stream', targeted: true }],
      messages: MESSAGES,
      url: redisUrl,
    },
    {
      title: `(aN), the hand-written JetStream publish/fetch loop (${BROKER_MESSAGES.toLocaleString('en-US')} messages, batch 100):`,
      baseline: { name: 'raw-nats', label: '(aN) raw JetStream loop', targeted: false },
      harness: [{ name: 'harness-nats', label: '(bN) harness, nats', targeted: true }],
      messages: BROKER_MESSAGES,
      url: natsUrl,
    },
    {
      title: `(aB), the hand-written BullMQ loop (${BROKER_MESSAGES.toLocaleString('en-US')} messages, batch 100):`,
      baseline: { name: 'raw-bullmq', label: '(aB) raw BullMQ loop', targeted: false },
      harness: [{ name: 'harness-bullmq', label: '(bB) harness, bullmq', targeted: true }],
      messages: BROKER_MESSAGES,
      url: redisUrl,
    },
    {
      title: `(aP), the hand-written pg SKIP LOCKED loop (${POSTGRES_MESSAGES.toLocaleString('en-US')} messages, batch 100):`,
      baseline: { name: 'raw-postgres', label: "(aP) raw pg loop", targeted: false },
      harness: [{ name: 'harness-postgres', label: "(bP) harness, postgres", targeted: true }],
      messages: POSTGRES_MESSAGES,
      url: postgresUrl,
    },
    ...rabbitmq,
  ];
}

/** Runs every case of every group once per round, interleaved; returns each case's rates by name. */
async function measure(groups: readonly Group[]): Promise<Map<string, number[]>> {
  const rates = new Map<string, number[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const group of groups) {
      for (const { name } of [group.baseline, ...group.harness]) {
        const { ratePerSec } = await runCase(name, group.messages, group.url);
        rates.set(name, [...(rates.get(name) ?? []), ratePerSec]);
        console.log(`  round ${round} ${name.padEnd(17)} ${formatRate(ratePerSec)}`);
      }
    }
  }
  return rates;
}

/**
 * Median rates, and each case's ratio to the baseline as the median of its per-round ratios: a case
 * and its baseline run back to back in every round, so a ratio within a round cancels most of the
 * machine's drift, which a ratio of medians taken over different rounds would not.
 */
function formatGroup(group: Group, rates: ReadonlyMap<string, readonly number[]>): string {
  const baselineRates = rates.get(group.baseline.name)!;
  const lines = [`median rates, and ratio to ${group.title} (median of ${ROUNDS} round(s), range in brackets)`];
  for (const { name, label, targeted } of [group.baseline, ...group.harness]) {
    const caseRates = rates.get(name)!;
    const ratios = caseRates.map((rate, round) => rate / baselineRates[round]!);
    const spread = ratios.length > 1 ? ` [${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}]` : '';
    const target = targeted ? `  (target >= ${TARGET.toFixed(2)})` : '';
    lines.push(`  ${label.padEnd(27)} ${formatRate(median(caseRates)).padStart(12)}  ${median(ratios).toFixed(2)}x${spread}${target}`);
  }
  return lines.join('\n');
}

/** The reliable list, the stream and the raw stream loop against harness simple mode, per round as above. */
function formatAgainstSimple(rates: ReadonlyMap<string, readonly number[]>): string {
  const simple = rates.get('harness-simple')!;
  const lines = [`ratio to (b), the harness in simple mode (median of ${ROUNDS} round(s), range in brackets):`];
  const cases = [
    { name: 'harness-reliable', label: '(c) harness, reliable', targeted: true },
    { name: 'harness-stream', label: '(b") harness, redis-stream', targeted: true },
    { name: 'raw-stream', label: '(a") raw stream loop', targeted: false },
  ];
  for (const { name, label, targeted } of cases) {
    const ratios = rates.get(name)!.map((rate, round) => rate / simple[round]!);
    const spread = ratios.length > 1 ? ` [${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}]` : '';
    const target = targeted ? `  (target >= ${SIMPLE_TARGET.toFixed(2)})` : '';
    lines.push(`  ${label.padEnd(27)} ${median(ratios).toFixed(2)}x${spread}${target}`);
  }
  return lines.join('\n');
}

/** BullMQ against the raw list loop on the same Redis, per round as above: what the framework costs over the list underneath. */
function formatAgainstList(rates: ReadonlyMap<string, readonly number[]>): string {
  const list = rates.get('raw-list')!;
  const lines = [`ratio to (a), the raw ioredis list loop, on the same Redis (median of ${ROUNDS} round(s), range in brackets):`];
  for (const { name, label } of [{ name: 'raw-bullmq', label: '(aB) raw BullMQ loop' }, { name: 'harness-bullmq', label: '(bB) harness, bullmq' }]) {
    const ratios = rates.get(name)!.map((rate, round) => rate / list[round]!);
    const spread = ratios.length > 1 ? ` [${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}]` : '';
    lines.push(`  ${label.padEnd(27)} ${median(ratios).toFixed(3)}x${spread}`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const redis = await resolveRedis({ REDIS_URL: process.env.REDIS_URL });
  const sqs = await resolveSqs({ SQS_ENDPOINT: process.env.SQS_ENDPOINT }).catch(async (error: unknown) => {
    await redis.stop();
    throw error;
  });
  const nats = await resolveNats({ NATS_URL: process.env.NATS_URL }).catch(async (error: unknown) => {
    await Promise.all([sqs.stop(), redis.stop()]);
    throw error;
  });
  const postgres = await resolvePostgres({ DATABASE_URL: process.env.DATABASE_URL }).catch(async (error: unknown) => {
    await Promise.all([nats.stop(), sqs.stop(), redis.stop()]);
    throw error;
  });
  try {
    if (sqs.endpoint === undefined) {
      throw new UsageError('the bench sends load only to a local SQS endpoint: unset SQS_ENDPOINT, or set it to a URL such as http://localhost:4566');
    }
    console.log(
      `brokerbench bench: ${MESSAGES.toLocaleString('en-US')} messages (SQS ${SQS_MESSAGES.toLocaleString('en-US')}, NATS and BullMQ ${BROKER_MESSAGES.toLocaleString('en-US')}, ` +
        `PostgreSQL ${POSTGRES_MESSAGES.toLocaleString('en-US')}, RabbitMQ ${RABBITMQ_MESSAGES.toLocaleString('en-US')}) of 200 B, ` +
        `batch 100 (SQS 10), 4 publishers, 4 consumers, ${ROUNDS} round(s), Redis ${redis.kind}, SQS ${sqs.kind} (${sqs.version}), PostgreSQL ${postgres.kind}`,
    );
    // The RabbitMQ group runs where one answers (RABBITMQ_URL, else 127.0.0.1:5672); none is started for it.
    const rabbitmq = await rabbitmqAdapter.resolve!(process.env).catch((error: unknown) => {
      console.log(`RabbitMQ group left out: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    });
    const groups = groupsFor(redis.url, sqs.endpoint, nats.url, postgres.url, rabbitmq?.url);
    const rates = await measure(groups);
    for (const group of groups) console.log(`\n${formatGroup(group, rates)}`);
    console.log(`\n${formatAgainstSimple(rates)}`);
    console.log(`\n${formatAgainstList(rates)}`);

    console.log(`\nwhat one message costs Redis (${COST_MESSAGES.toLocaleString('en-US')} messages per case, each on a throw-away redis-server of its own, from INFO):`);
    const names = ['raw-list', 'harness-simple', 'harness-reliable', 'raw-stream', 'harness-stream', 'raw-bullmq', 'harness-bullmq'];
    console.log(formatRedisCost(await measureRedisCost(names, COST_MESSAGES, (name, url) => runCase(name, COST_MESSAGES, url))));

    console.log(`\npeak memory, harness simple mode (target: ${MEMORY_LARGE.toLocaleString('en-US')} no more than 100 MB above ${MESSAGES.toLocaleString('en-US')}):`);
    const small = await runCase('harness-simple', MESSAGES, redis.url);
    const large = await runCase('harness-simple', MEMORY_LARGE, redis.url);
    const growth = large.peakRssBytes - small.peakRssBytes;
    console.log(`  ${MESSAGES.toLocaleString('en-US').padStart(9)} messages: peak RSS ${formatBytes(small.peakRssBytes)}`);
    console.log(`  ${MEMORY_LARGE.toLocaleString('en-US').padStart(9)} messages: peak RSS ${formatBytes(large.peakRssBytes)} (${growth >= 0 ? '+' : ''}${formatBytes(Math.abs(growth))}${growth < 0 ? ' less' : ''})`);

    console.log('\nper-message hot path (tinybench):');
    console.log(formatMicroBench(await runMicroBench()));
  } finally {
    await postgres.stop();
    await nats.stop();
    await sqs.stop();
    await redis.stop();
  }
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
