// `npm run bench`: is the harness ever the bottleneck it claims to measure? Each case runs in its own
// process, in rounds that interleave the cases so drift on a noisy machine hits them alike, and every
// figure printed is a median of rounds or a ratio to a baseline measured in the same run.
//
// LIMITATION: the broker runs on the same 2 cores as the harness; ratios hold for this host, absolute
// rates do not transfer to another. Not a test: nothing here fails on a slow machine.
//
// usage: npm run bench [-- --quick]   (quick: 100,000 messages, 1 round, memory 1,000,000 vs 100,000)

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { resolveRedis } from '../src/services/redis-server.ts';
import { formatBytes, formatRate } from '../src/report/format.ts';
import { formatMicroBench, runMicroBench } from './micro.ts';

const run = promisify(execFile);
const quick = process.argv.includes('--quick');
const MESSAGES = quick ? 100_000 : 500_000;
const ROUNDS = quick ? 1 : 3;
const MEMORY_LARGE = quick ? 1_000_000 : 5_000_000;

interface CaseResult {
  readonly ratePerSec: number;
  readonly peakRssBytes: number;
}

async function runCase(name: string, messages: number, url: string): Promise<CaseResult> {
  const script = fileURLToPath(new URL('./case.ts', import.meta.url));
  const tsx = fileURLToPath(new URL('../node_modules/tsx/dist/cli.mjs', import.meta.url));
  const { stdout } = await run(process.execPath, [tsx, script, name, String(messages), url], {
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

async function main(): Promise<void> {
  const redis = await resolveRedis({ REDIS_URL: process.env.REDIS_URL });
  try {
    console.log(`brokerbench bench: ${MESSAGES.toLocaleString('en-US')} messages of 200 B, batch 100, 4 publishers, 4 consumers, ${ROUNDS} round(s), Redis ${redis.kind}`);
    const cases = ['raw-list', 'harness-simple', 'harness-reliable'] as const;
    const rates = new Map<string, number[]>(cases.map((name) => [name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const name of cases) {
        const { ratePerSec } = await runCase(name, MESSAGES, redis.url);
        rates.get(name)!.push(ratePerSec);
        console.log(`  round ${round} ${name.padEnd(17)} ${formatRate(ratePerSec)}`);
      }
    }
    const baseline = median(rates.get('raw-list')!);
    console.log('\nmedian rates and ratio to (a), the hand-written ioredis RPUSH/LPOP loop:');
    const labels: Record<string, string> = {
      'raw-list': '(a) raw ioredis loop',
      'harness-simple': '(b) harness, simple',
      'harness-reliable': '(c) harness, reliable',
    };
    for (const name of cases) {
      const rate = median(rates.get(name)!);
      const target = name === 'harness-simple' ? '  (target >= 0.80)' : '';
      console.log(`  ${labels[name]!.padEnd(24)} ${formatRate(rate).padStart(12)}  ${(rate / baseline).toFixed(2)}x${target}`);
    }

    console.log(`\npeak memory, harness simple mode (target: ${MEMORY_LARGE.toLocaleString('en-US')} no more than 100 MB above ${MESSAGES.toLocaleString('en-US')}):`);
    const small = await runCase('harness-simple', MESSAGES, redis.url);
    const large = await runCase('harness-simple', MEMORY_LARGE, redis.url);
    const growth = large.peakRssBytes - small.peakRssBytes;
    console.log(`  ${MESSAGES.toLocaleString('en-US').padStart(9)} messages: peak RSS ${formatBytes(small.peakRssBytes)}`);
    console.log(`  ${MEMORY_LARGE.toLocaleString('en-US').padStart(9)} messages: peak RSS ${formatBytes(large.peakRssBytes)} (${growth >= 0 ? '+' : ''}${formatBytes(Math.abs(growth))}${growth < 0 ? ' less' : ''})`);

    console.log('\nper-message hot path (tinybench):');
    console.log(formatMicroBench(await runMicroBench()));
  } finally {
    await redis.stop();
  }
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
