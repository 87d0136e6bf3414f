// The command line as a user meets it: a real run writes a readable result file; bad input ends in
// one line, exit code 2, quickly, and leaves no result behind.

import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adapters } from '../../adapters/index.ts';
import { readResult } from '../../src/report/result-file.ts';
import { runCli } from '../helpers/cli.ts';
import { redisUrl } from '../helpers/redis.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const base = { REDIS_URL: redisUrl(), CHANNEL_NAME: 'cli-test', QUEUE: undefined };

describe('brokerbench scenario', () => {
  it('runs QUEUE=REDIS end to end and writes a result file that reads back', async () => {
    const out = path.join(dir, 'ok');
    const run = await runCli(['scenario', '2000', '--results-dir', out], { ...base, QUEUE: 'REDIS' });
    expect(run.stderr).not.toMatch(/Error|at .*\.ts/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/throughput on redis-list \(reliable\)/);
    expect(run.stdout).toMatch(/nothing lost: 2,000 of 2,000/);
    const files = (await readdir(out)).filter((name) => name.endsWith('.json'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ-redis-list-reliable-throughput-2000\.json$/);
    const result = await readResult(path.join(out, files[0]!));
    expect(result).toMatchObject({ status: 'completed', scenario: 'throughput', broker: { name: 'redis-list', mode: 'reliable' } });
    expect(result.ledger.lost).toBe(0);
    expect(result.latency.endToEnd.count).toBe(2000);
    expect(result.config.channel).toBe('cli-test');
  });

  it('reproduces the seed with --mode simple and says so', async () => {
    const run = await runCli(['scenario', '1000', '--mode', 'simple', '--results-dir', path.join(dir, 'simple')], { ...base, QUEUE: 'REDIS_LIST' });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/redis-list \(simple\)/);
  });

  const bad: [string, string[], Record<string, string | undefined>, RegExp][] = [
    ['an unknown QUEUE', ['scenario', '10'], { QUEUE: 'KAFKA' }, /^brokerbench: unknown QUEUE "KAFKA"; use one of: .*redis-list/],
    ['a count that is not a number', ['scenario', 'lots'], { QUEUE: 'REDIS' }, /^brokerbench: messages must be a number, got "lots"/],
    ['a zero count', ['scenario', '0'], { QUEUE: 'REDIS' }, /^brokerbench: messages must be a positive integer/],
    ['two counts', ['scenario', '10', '20'], { QUEUE: 'REDIS' }, /^brokerbench: Unknown argument: 20/],
    ['a negative count', ['scenario', '-5'], { QUEUE: 'REDIS' }, /^brokerbench: messages must be a positive integer/],
    ['a batch over the limit', ['scenario', '10', '--batch', '20000'], { QUEUE: 'REDIS' }, /--batch 20000 is over redis-list's limit/],
    ['an unknown scenario', ['scenario', '10', '--scenario', 'nope'], { QUEUE: 'REDIS' }, /^brokerbench: unknown scenario "nope"/],
    ['an unknown mode', ['scenario', '10', '--mode', 'fast'], { QUEUE: 'REDIS' }, /^brokerbench: redis-list has no mode "fast"/],
    ['an unknown flag', ['scenario', '10', '--bogus'], { QUEUE: 'REDIS' }, /^brokerbench: Unknown argument: bogus/],
    ['an unreachable Redis', ['scenario', '10'], { QUEUE: 'REDIS', REDIS_URL: 'redis://:hunter2@127.0.0.1:1' }, /^brokerbench: redis-list connect: cannot reach redis:\/\/:\*\*\*@127\.0\.0\.1:1/],
  ];

  it.each(bad)('refuses %s: one line, exit 2, no result file', async (_name, args, env, message) => {
    const out = path.join(dir, `bad-${Math.random().toString(36).slice(2)}`);
    const run = await runCli([...args, '--results-dir', out], { ...base, ...env });
    expect(run.code).toBe(2);
    // Progress may have said which phase it reached; the error itself is the one last line, no stack.
    const lines = run.stderr.trim().split('\n');
    expect(lines.filter((line) => line.startsWith('brokerbench:'))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(message);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(run.stderr).not.toMatch(/hunter2/);
    expect(run.stdout).toBe('');
    expect(run.elapsedMs).toBeLessThan(10_000); // generous: tsx start-up on a loaded 2-core machine
    const written = await readdir(out).catch(() => []);
    expect(written.filter((name) => name.endsWith('.json'))).toEqual([]);
  });

  it('refuses a results folder it cannot write, before connecting to anything', async () => {
    const file = path.join(dir, 'a-file');
    await writeFile(file, 'not a folder');
    const run = await runCli(['scenario', '10', '--results-dir', path.join(file, 'results')], { ...base, QUEUE: 'REDIS' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^brokerbench: cannot write results to .*a-file\/results \(ENOTDIR\); choose another folder with --results-dir\n$/);
  });
});

describe('brokerbench --help', () => {
  const help = async (command: string, columns = '80'): Promise<string> => {
    const run = await runCli([command, '--help'], { COLUMNS: columns });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    return run.stdout;
  };
  /** The lines of a titled section, up to the next blank line. */
  const sectionOf = (text: string, title: string): string => {
    const at = text.indexOf(`\n${title}\n`);
    expect(at, title).toBeGreaterThan(0);
    return text.slice(at + title.length + 2).split('\n\n')[0]!;
  };

  it('scenario --help: the flags in groups with types and defaults, every broker\'s modes, the variables, examples and exit codes, in 80 columns', async () => {
    const text = await help('scenario');
    for (const line of text.split('\n')) if (!/^ {2}(QUEUE=|npm |npx )/.test(line)) expect([...line].length, line).toBeLessThanOrEqual(80);
    for (const group of ['Workload:', 'Broker:', 'fixed-rate:', 'retry-dlq:', 'crash-recovery:', 'scale-out:', 'Output:']) expect(text).toContain(`\n${group}\n`);
    expect(sectionOf(text, 'Broker:')).toMatch(/--maxmemory .*\[size\] \[default: off\]/s);
    expect(sectionOf(text, 'crash-recovery:')).toMatch(/--kill-mode .*\[choice: random, staged\]\s+\[default: random\]/s);
    expect(sectionOf(text, 'Workload:')).toMatch(/--batch +messages per publish call \[count\] \[default: 100;/);
    // Every broker and every one of its modes, one line each at this width, read from the registry.
    const brokers = sectionOf(text, 'Brokers and modes (QUEUE=NAME or NAME:MODE, names in any case):').split('\n');
    for (const adapter of adapters) {
      const line = brokers.find((l) => l.startsWith(`  ${adapter.name} `));
      expect(line, adapter.name).toBeDefined();
      for (const mode of adapter.modes) expect(line).toContain(mode);
      for (const alias of adapter.aliases) expect(line).toContain(alias);
    }
    const environment = sectionOf(text, 'Environment (also read from .env in the working folder):');
    for (const name of ['QUEUE', 'CHANNEL_NAME', 'REDIS_URL', 'SQS_ENDPOINT', 'RABBITMQ_URL', 'NATS_URL', 'DATABASE_URL', 'AWS_SECRET_ACCESS_KEY']) {
      expect(environment).toMatch(new RegExp(`^ {2}${name} +\\S`, 'm'));
    }
    expect(sectionOf(text, 'Examples:')).toMatch(/^ {2}QUEUE=REDIS npm run scenario -- 500000$/m);
    expect(sectionOf(text, 'Examples:')).toMatch(/^ {2}QUEUE=REDIS,SQS npm run scenario -- 10000$/m);
    const codes = sectionOf(text, 'Exit codes:');
    expect(codes.match(/^ {2}\d+ /gm)?.map((c) => c.trim())).toEqual(['0', '1', '2', '130']);
    expect(codes).toMatch(/^ {2}130 +interrupted/m);
  });

  it('names a workload file in its examples that exists', async () => {
    const text = await help('scenario', '200');
    const file = /--workload (\S+)/.exec(sectionOf(text, 'Examples:'))?.[1];
    expect(file).toBeDefined();
    expect(existsSync(path.join(import.meta.dirname, '../..', file!))).toBe(true);
  });

  it('compare --help and report --help: their flags, formats, examples and exit codes', async () => {
    const compare = await help('compare');
    expect(sectionOf(compare, 'Input:')).toMatch(/--baseline /);
    expect(sectionOf(compare, 'Output:')).toMatch(/\[choice: table, md, json, csv\]/);
    expect(sectionOf(compare, 'Exit codes:').match(/^ {2}\d+ /gm)?.map((c) => c.trim())).toEqual(['0', '1', '2']);
    expect(sectionOf(compare, 'Examples:')).toMatch(/--baseline results\/old\.json results\/new\//);
    const report = await help('report');
    expect(sectionOf(report, 'Output:')).toMatch(/--out +where the HTML file goes \[file\] \[default: report\.html\]/);
    expect(sectionOf(report, 'Exit codes:')).not.toMatch(/baseline/);
  });
});
