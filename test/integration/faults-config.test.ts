// Fault: bad configuration. Every flag and variable is checked before anything is started or reached:
// one line on stderr naming what is wrong, exit code 2, nothing on stdout, no result file. The broker
// URLs point at a black hole here, so a check that came after connecting would show (and hang for 3 s).
// Complements test/integration/cli.test.ts, which covers unknown QUEUE/mode/scenario/flags, counts that
// are not numbers, zero or negative, and a Redis batch over the limit.

import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { startBlackHole, type BlackHole } from '../helpers/faults.ts';

let dir: string;
let hole: BlackHole;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-config-'));
  hole = await startBlackHole();
});
afterAll(async () => {
  await hole.close();
  await rm(dir, { recursive: true, force: true });
});

interface BadInput {
  readonly name: string;
  readonly args: readonly string[];
  readonly env: Record<string, string | undefined>;
  readonly message: RegExp;
  /** The message count given; default 10. */
  readonly count?: string;
}

const REDIS = { QUEUE: 'REDIS' };
const SQS = { QUEUE: 'SQS' };

const cases: BadInput[] = [
  { name: 'a rate that is not a number', args: ['--rate', 'abc'], env: REDIS, message: /^--rate must be a number, got "abc"$/ },
  { name: 'a rate too large to be a number', args: ['--rate', '1e400'], env: REDIS, message: /^--rate must be a number, got "1e400"$/ },
  { name: 'a negative rate', args: ['--rate', '-5'], env: REDIS, message: /^--rate must be a number of 0 or more, got -5$/ },
  { name: 'a fractional count', args: [], env: REDIS, message: /^messages must be a positive integer, got "1.5"$/, count: '1.5' },
  // Past what the run can hold or time: each once ended in a stack, an out-of-memory crash or a timer loop.
  { name: 'more messages than the ledger holds', args: [], env: REDIS, count: '1e12', message: /^1000000000000 messages is over the 1,000,000,000 one run can track/ },
  { name: 'a blank count', args: [], env: REDIS, count: ' ', message: /^messages must be a number, got " "$/ },
  { name: 'a hexadecimal count', args: [], env: REDIS, count: '0x10', message: /^messages must be a number, got "0x10"$/ },
  { name: 'a fixed-rate duration of 1e9 s', args: ['--scenario', 'fixed-rate', '--duration', '1e9'], env: REDIS, message: /^--duration 1000000000 is over the limit of 604800 seconds/ },
  { name: 'a timeout past what a timer holds', args: ['--timeout', '2147484'], env: REDIS, message: /^--timeout 2147484 is over the limit of 604800 seconds/ },
  { name: 'a receive wait of 1e12 ms', args: ['--receive-wait-ms', '1e12'], env: REDIS, message: /^--receive-wait-ms 1000000000000 is over the limit of 60000 ms/ },
  { name: 'a rate of 1e-300', args: ['--rate', '1e-300'], env: REDIS, message: /^--rate 1e-300 is outside one message a day to 100,000,000 msg\/s$/ },
  { name: 'payloads of 20 MB', args: ['--payload-bytes', '20000000'], env: REDIS, message: /^this run would hold about [\d,]+ MiB at once \(--payload-bytes 20000000 .*lower --payload-bytes/ },
  { name: '100 million publishers', args: ['--publishers', '100000000'], env: REDIS, message: /^this run would hold about [\d,]+ MiB at once .*100000000 publish batches/ },
  { name: 'zero consumers', args: ['--consumers', '0'], env: REDIS, message: /^--consumers must be a positive integer, got 0$/ },
  // Repeated, the last value counts (as an array it used to read as not given, so the default ran).
  { name: 'a repeated flag, last one bad', args: ['--consumers', '2', '--consumers', '0'], env: REDIS, message: /^--consumers must be a positive integer, got 0$/ },
  { name: 'negative publishers', args: ['--publishers', '-1'], env: REDIS, message: /^--publishers must be a .*integer, got "-1"$/ },
  { name: 'a zero timeout', args: ['--timeout', '0'], env: REDIS, message: /^--timeout must be a positive number of seconds, got 0$/ },
  { name: 'a negative timeout, told in seconds', args: ['--timeout', '-5'], env: REDIS, message: /^--timeout must be a positive number of seconds, got -5$/ },
  { name: 'a negative retry interval, told in seconds', args: ['--scenario', 'retry-dlq', '--retry-intervals', '0.2,-1'], env: REDIS, message: /^--retry-intervals must be seconds of 0 or more, got -1$/ },
  { name: 'an invalid choice, on one line', args: ['--task-dist', 'bogus'], env: REDIS, message: /^Invalid values: Argument: task-dist, Given: "bogus", Choices: "fixed", "uniform", "exponential"$/ },
  { name: 'a negative --maxlen', args: ['--queue', 'stream', '--maxlen', '-3'], env: REDIS, message: /^--maxlen must be a non-negative integer, got "-3"$/ },
  { name: '--maxlen on a list', args: ['--maxlen', '100'], env: REDIS, message: /^--maxlen trims a Redis stream, so it applies to redis-stream, not redis-list$/ },
  { name: 'a failure rate over 1', args: ['--fail-rate', '2'], env: REDIS, message: /^--fail-rate must be between 0 and 1, got 2$/ },
  { name: 'a negative task time', args: ['--task-ms', '-3'], env: REDIS, message: /^--task-ms must be a number of 0 or more, got -3$/ },
  { name: 'a warm-up that leaves nothing', args: ['--warmup', '10'], env: REDIS, message: /^--warmup 10 leaves no measured message out of 10$/ },
  { name: 'fewer consumers than queues', args: ['--queues', '4', '--consumers', '2'], env: REDIS, message: /^--consumers 2 is fewer than --queues 4/ },
  { name: 'dead letters on a mode without them', args: ['--mode', 'simple', '--max-receives', '3'], env: REDIS, message: /^--max-receives needs dead letters, which redis-list in simple mode does not support$/ },
  { name: 'an SQS batch over 10', args: ['--batch', '11'], env: SQS, message: /^--batch 11 is over sqs's limit of 10 messages per call$/ },
  { name: 'an SQS receive batch over 10', args: ['--receive-batch', '20'], env: SQS, message: /^--receive-batch 20 is over sqs's limit of 10 messages per call$/ },
  { name: "a payload over SQS's 1 MiB", args: ['--payload-bytes', '1100000'], env: SQS, message: /^--payload-bytes 1100000 is over sqs's maximum message size of 1048576 bytes$/ },
  { name: 'a bad CHANNEL_NAME', args: [], env: { ...REDIS, CHANNEL_NAME: 'bad name!' }, message: /^CHANNEL_NAME "bad name!" must be 1 to 40 letters, digits, '-' or '_'$/ },
  { name: 'a REDIS_URL that is not redis://', args: [], env: { ...REDIS, REDIS_URL: 'http://:hunter2hunter2@127.0.0.1:HOLE' }, message: /^REDIS_URL "http:\/\/:\*\*\*@127\.0\.0\.1:\d+\/" is not a redis:\/\/ or rediss:\/\/ URL/ },
  { name: 'an SQS_ENDPOINT that is not http(s)', args: [], env: { ...SQS, SQS_ENDPOINT: 'ftp://127.0.0.1:HOLE' }, message: /^SQS_ENDPOINT "ftp:\/\/127\.0\.0\.1:\d+" is not an http\(s\) URL/ },
  { name: 'SQS_ENDPOINT=aws without AWS_REGION', args: [], env: { ...SQS, SQS_ENDPOINT: 'aws', AWS_REGION: '' }, message: /^SQS_ENDPOINT=aws needs AWS_REGION/ },
];

describe('bad configuration', () => {
  // Side by side: each is a short-lived process, and nineteen in a row would take a minute.
  it.concurrent.for(cases)('refuses $name: one line, exit 2, before reaching anything', async ({ name, args, env, message, count }, { expect }) => {
    const out = path.join(dir, name.replace(/\W+/g, '-'));
    const hostile = { REDIS_URL: `redis://127.0.0.1:${hole.port}`, SQS_ENDPOINT: `http://127.0.0.1:${hole.port}`, CHANNEL_NAME: 'config' };
    const merged = { ...hostile, ...env };
    for (const key of ['REDIS_URL', 'SQS_ENDPOINT'] as const) merged[key] = merged[key]?.replace('HOLE', String(hole.port));
    const run = await runCli(['scenario', count ?? '10', ...args, '--results-dir', out], merged);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.endsWith('\n')).toBe(true);
    const lines = run.stderr.trim().split('\n');
    expect(lines, run.stderr).toHaveLength(1);
    expect(lines[0]!.startsWith('brokerbench: ')).toBe(true);
    expect(lines[0]!.slice('brokerbench: '.length)).toMatch(message);
    expect(run.stderr).not.toContain('hunter2');
    expect(run.elapsedMs).toBeLessThan(15_000);
    expect((await readdir(out).catch(() => [])).filter((file) => file.endsWith('.json'))).toEqual([]);
    // None of the refusals (this one or any running beside it) got as far as connecting.
    expect(hole.accepted()).toBe(0);
  });
});

describe('a .env that cannot be read as variables', () => {
  it.concurrent.for([
    ['a folder', async (file: string) => mkdir(file)],
    ['not text', async (file: string) => writeFile(file, Buffer.from([0x51, 0x3d, 0x00, 0xff, 0xfe, 0x0a]))],
  ] as const)('%s: one line, exit 2, before reaching anything', async ([name, make], { expect }) => {
    const cwd = path.join(dir, `dotenv-${name.replace(/\W+/g, '-')}`);
    await mkdir(cwd);
    await make(path.join(cwd, '.env'));
    const run = await runCli(['scenario', '10', '--results-dir', path.join(cwd, 'results')], { QUEUE: 'REDIS', REDIS_URL: `redis://127.0.0.1:${hole.port}` }, 60_000, cwd);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/^brokerbench: \.env: (cannot read it \(EISDIR\)|not text); make it a .*text file of NAME=value lines, or remove it\n$/);
    expect(hole.accepted()).toBe(0);
  });
});
