// --cost-rate and --instance-usd-month from the real command line: bad values end in one line and exit
// code 2 with nothing run or written, on scenario, compare and report alike; and end to end, two real
// runs (Redis lists, the embedded SQS) compared at 200 messages a second and $30 an instance, whose cost
// figures are checked against what their own result files imply.

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestSplitOf } from '../../src/metrics/requests.ts';
import { readResult, type ResultFile } from '../../src/report/result-file.ts';
import { runCli } from '../helpers/cli.ts';
import { uniqueNamespace } from '../helpers/fixture.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/results/same', import.meta.url));
const SECONDS_PER_MONTH = 730 * 3600;

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-cost-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const usd = (value: number): string => `$${value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;

describe('bad cost flags', () => {
  const bad: [string, string[], RegExp][] = [
    ['a zero rate', ['--cost-rate', '0'], /^brokerbench: --cost-rate must be a positive number of messages per second, got "0"$/],
    ['a negative rate', ['--cost-rate=-200'], /^brokerbench: --cost-rate must be a positive number of messages per second, got "-200"$/],
    ['a rate that is not a number', ['--cost-rate', 'lots'], /^brokerbench: --cost-rate must be a number, got "lots"$/],
    ['a zero instance price', ['--cost-rate', '200', '--instance-usd-month', '0'], /^brokerbench: --instance-usd-month must be a positive number of US dollars, got "0"$/],
    ['an instance price without a rate', ['--instance-usd-month', '30'], /^brokerbench: --instance-usd-month prices the instances a sustained rate needs/],
  ];
  const commands: [string, (out: string) => string[], Record<string, string>][] = [
    ['compare', () => ['compare', FIXTURES], {}],
    ['report', (out) => ['report', FIXTURES, '--out', path.join(out, 'report.html')], {}],
    ['scenario', (out) => ['scenario', '100', '--quiet', '--results-dir', out], { QUEUE: 'REDIS' }],
    ['scenario of several brokers', (out) => ['scenario', '100', '--quiet', '--results-dir', out], { QUEUE: 'REDIS,SQS' }],
  ];
  // Every bad value through compare; each other command with one of them (one process each is slow).
  const cases = commands.flatMap(([command, args, env], k) =>
    (k === 0 ? bad : [bad[k % bad.length]!]).map(([what, flags, message]) => [command, what, args, flags, env, message] as const),
  );

  it.each(cases)('%s refuses %s: one line, exit 2, nothing written', async (_command, _what, args, flags, env, message) => {
    const out = path.join(dir, `bad-${Math.random().toString(36).slice(2)}`);
    const run = await runCli([...args(out), ...flags], { CHANNEL_NAME: uniqueNamespace(), ...env });
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(message)]);
    expect(run.stdout).toBe('');
    expect(await readdir(out).catch(() => [])).toEqual([]);
  });
});

describe('cost of two real runs, end to end', () => {
  it('prints and writes figures that are what the result files imply', async () => {
    const out = path.join(dir, 'redis-sqs');
    const run = await runCli(
      ['scenario', '1000', '--quiet', '--results-dir', out, '--cost-rate', '200', '--instance-usd-month', '30'],
      { QUEUE: 'REDIS,SQS', CHANNEL_NAME: uniqueNamespace(), COLUMNS: '400' },
      180_000,
    );
    expect(run.code, run.stderr).toBe(0);
    const files = await readdir(out);
    const read = async (pattern: RegExp): Promise<ResultFile> => readResult(path.join(out, files.find((f) => pattern.test(f))!));
    const redis = await read(/-redis-list-reliable-throughput-1000\.json$/);
    const sqs = await read(/-sqs-standard-throughput-1000\.json$/);

    // What the files imply: SQS's billed workload per completed message at $0.40 a million over a
    // 730-hour month at 200/s; Redis as whole instances of what it completed; where the two meet.
    const messages = 200 * SECONDS_PER_MONTH;
    const billedPerMessage = requestSplitOf(sqs.requests!).billedWorkload / sqs.ledger.completed;
    expect(sqs.requests!.byKind['SendMessageBatch']).toBeGreaterThan(0);
    const sqsMonth = (messages * billedPerMessage * 0.4) / 1e6;
    const instances = Math.max(1, Math.ceil(200 / redis.throughput.completePerSec));
    const breakEven = 30 / (SECONDS_PER_MONTH * ((billedPerMessage * 0.4) / 1e6));

    // The printed section.
    const section = run.stdout.slice(run.stdout.indexOf('cost at a sustained 200/s'));
    expect(section.split('\n')[0]).toBe('cost at a sustained 200/s: 525,600,000 messages a month (730 hours)');
    // Under the answer, before the detailed table.
    expect(run.stdout.indexOf('cost at a sustained')).toBeGreaterThan(run.stdout.indexOf('│ $/1M'));
    expect(run.stdout.indexOf('cost at a sustained')).toBeLessThan(run.stdout.indexOf('runs merged'));
    expect(section).toMatch(
      new RegExp(`│ sqs standard +│ ${escape(usd(sqsMonth))} +│ ${billedPerMessage.toFixed(3)} billed requests per message: SQS standard ${escape(Math.round(messages * billedPerMessage).toLocaleString('en-US'))} requests × \\$0\\.40/M`),
    );
    expect(section).toMatch(new RegExp(`│ redis-list reliable +│ ${escape(usd(30 * instances))} +│ ${instances} instances? × \\$30\\.00: one completed`));
    expect(section).toContain(`- redis-list reliable vs sqs standard: break-even at ${breakEven.toLocaleString('en-US', { maximumSignificantDigits: 3 })}/s`);

    // The comparison written beside the results: the same figures, unrounded.
    const json = JSON.parse(await readFile(path.join(out, files.find((f) => f.endsWith('-comparison-throughput.json'))!), 'utf8')) as {
      cost: {
        ratePerSec: number;
        instanceUsdMonth: number;
        messagesPerMonth: number;
        groups: { columns: { kind: string; label: string; usdPerMonth: number; instances?: number }[]; breakEven: { selfHosted: string; requestPriced: string; ratePerSec: number }[] }[];
      };
    };
    expect(json.cost).toMatchObject({ ratePerSec: 200, instanceUsdMonth: 30, messagesPerMonth: messages });
    const [group] = json.cost.groups;
    const byLabel = new Map(group!.columns.map((c) => [c.label, c]));
    expect(byLabel.get('sqs standard')!.kind).toBe('requests');
    expect(byLabel.get('sqs standard')!.usdPerMonth).toBeCloseTo(sqsMonth, 9);
    expect(byLabel.get('redis-list reliable')).toMatchObject({ kind: 'instances', instances, usdPerMonth: 30 * instances });
    expect(group!.breakEven).toHaveLength(1);
    expect(group!.breakEven[0]).toMatchObject({ selfHosted: 'redis-list reliable', requestPriced: 'sqs standard' });
    expect(group!.breakEven[0]!.ratePerSec).toBeCloseTo(breakEven, 9);

    const markdown = await readFile(path.join(out, files.find((f) => f.endsWith('-comparison-throughput.md'))!), 'utf8');
    expect(markdown).toContain(`| sqs standard | ${usd(sqsMonth)} |`);
    const html = await readFile(path.join(out, files.find((f) => f.endsWith('-comparison-throughput.html'))!), 'utf8');
    expect(html).toContain(`<tr><th scope="row">sqs standard</th><td>${usd(sqsMonth)}</td>`);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
