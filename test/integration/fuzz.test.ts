// Property-based: random and hostile argument vectors, environment values and result files thrown at
// the CLI and at the result readers. Whatever comes in: an exit code of 0, 1 or 2, never a stack trace,
// no file outside the results folder, no secret from the environment in anything printed or written.
//
// A fixed seed and a few runs in CI, so a red run is a reproducible input, never a roll of the dice;
// more on demand: BROKERBENCH_FUZZ_RUNS=200 BROKERBENCH_FUZZ_SEED=$RANDOM npx vitest run test/integration/fuzz.test.ts

import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { compareFiles } from '../../src/report/compare.ts';
import { reportFiles } from '../../src/report/html.ts';
import { readResult } from '../../src/report/result-file.ts';
import { runCli } from '../helpers/cli.ts';
import { redisUrl } from '../helpers/redis.ts';

const CLI_RUNS = Number(process.env['BROKERBENCH_FUZZ_RUNS'] ?? 6);
const FILE_RUNS = Number(process.env['BROKERBENCH_FUZZ_RUNS'] ?? 6) * 10;
const SEED = Number(process.env['BROKERBENCH_FUZZ_SEED'] ?? 20261201);
const FIXTURES = fileURLToPath(new URL('../fixtures/results/same', import.meta.url));

const REDIS_PASSWORD = 'fuzz-redis-password-31337';
const AWS_SECRET = 'fuzz-aws-secret-key-0123456789abcdef';

const FLAGS = [
  '--queue', '--mode', '--scenario', '--queues', '--payload-bytes', '--batch', '--publishers', '--rate', '--linger-ms',
  '--consumers', '--receive-batch', '--receive-wait-ms', '--visibility-timeout-ms', '--max-receives', '--retry-delay-ms',
  '--task-ms', '--task-dist', '--task-work', '--fail-rate', '--warmup', '--maxlen', '--seed', '--concurrency', '--rates',
  '--duration', '--warmup-sec', '--retry-intervals', '--poison-rate', '--delay-ms', '--delay-window-ms', '--processes',
  '--kill-at', '--maxmemory', '--steps', '--scale-by', '--groups', '--channel', '--fifo', '--no-such-flag',
];
const HOSTILE = [
  '', ' ', '0', '-1', '1.5', '1e400', '1e12', 'NaN', 'Infinity', '0x10', '%', '%zz', '../../escape', '/etc/passwd',
  '\u001b[2J\u001b]0;x\u0007', 'simple', 'reliable', 'fifo', 'group', 'fan-out', 'crash-recovery', 'scale-out', 'backlog',
  'retry-dlq', 'delayed', '1,2', '0,0', '2147484', '1e-300', '20000000', '64mb', 'true', '{"a":1}', "'; DROP TABLE x;--",
];
const value = fc.oneof(fc.constantFrom(...HOSTILE), fc.integer({ min: -5, max: 300 }).map(String), fc.string({ maxLength: 12 }));
const args = fc.array(fc.tuple(fc.constantFrom(...FLAGS), value), { maxLength: 4 }).map((pairs) => pairs.flat());
const count = fc.oneof(fc.constantFrom(...HOSTILE), fc.integer({ min: 1, max: 60 }).map(String));
const environment = fc.record({
  QUEUE: fc.constantFrom('REDIS', 'REDIS_STREAM', 'redis-list', 'SQS', 'KAFKA', '', 'REDIS:simple'),
  REDIS_URL: fc.constantFrom(
    redisUrl(),
    // A password the server does not expect: the run must fail in one line without showing it.
    redisUrl().replace('redis://', `redis://:${REDIS_PASSWORD}@`),
    `redis://:${REDIS_PASSWORD.replace('-', '/')}@127.0.0.1:1`,
    'http://127.0.0.1:1',
    'not a url',
  ),
  CHANNEL_NAME: fc.constantFrom('fuzz', '', 'bad name!', '../x'),
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-fuzz-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every file under `root`, relative to it. */
async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)));
}

describe('the CLI under random and hostile input', () => {
  it('exits 0, 1 or 2, prints no stack trace and no secret, writes only into its results folder', async () => {
    let k = 0;
    await fc.assert(
      fc.asyncProperty(count, args, environment, async (messages, flags, env) => {
        const cwd = path.join(dir, `cli-${k++}`);
        await mkdir(cwd);
        // Every run bounded: the last value of a flag counts, so these win over the fuzzed ones.
        const argv = ['scenario', messages, ...flags, '--timeout', '5', '--receive-wait-ms', '200', '--results-dir', path.join(cwd, 'results'), '--quiet'];
        const run = await runCli(argv, { ...env, SQS_ENDPOINT: 'http://127.0.0.1:1', AWS_SECRET_ACCESS_KEY: AWS_SECRET, AWS_ACCESS_KEY_ID: undefined }, 60_000, cwd);
        const said = `${run.stdout}${run.stderr}`;
        const context = `${JSON.stringify(argv)} ${JSON.stringify(env)}\n${run.stderr.slice(-600)}`;
        expect([0, 1, 2], context).toContain(run.code);
        expect(run.stderr, context).not.toMatch(/^\s+at |internal error/m);
        expect(said, context).not.toContain(REDIS_PASSWORD);
        expect(said, context).not.toContain(AWS_SECRET);
        for (const file of await filesUnder(cwd)) {
          expect(file.startsWith(`results${path.sep}`), `${file} ${context}`).toBe(true);
          const text = await readFile(path.join(cwd, file), 'utf8');
          expect(text).not.toContain(REDIS_PASSWORD);
          expect(text).not.toContain(AWS_SECRET);
          if (file.endsWith('.json')) await readResult(path.join(cwd, file));
        }
      }),
      { numRuns: CLI_RUNS, seed: SEED, endOnFailure: true },
    );
  });
});

/** A JSON path into `value`, picked by `choice` (0..1) at every level; [] is the value itself. */
function pathInto(value: unknown, choices: readonly number[]): (string | number)[] {
  const out: (string | number)[] = [];
  let here = value;
  for (const choice of choices) {
    if (typeof here !== 'object' || here === null) break;
    const keys: (string | number)[] = Array.isArray(here) ? here.map((_, i) => i) : Object.keys(here);
    if (keys.length === 0) break;
    const key = keys[Math.floor(choice * keys.length) % keys.length]!;
    out.push(key);
    here = (here as Record<string | number, unknown>)[key];
  }
  return out;
}

function setAt(root: Record<string, unknown>, at: readonly (string | number)[], replacement: unknown): void {
  let here: Record<string | number, unknown> = root;
  for (const key of at.slice(0, -1)) here = here[key] as Record<string | number, unknown>;
  const last = at.at(-1);
  if (last !== undefined) here[last] = replacement;
}

describe('compare and report under damaged and hostile result files', () => {
  it('say what is wrong in one line per file and never throw', async () => {
    const source = (await readdir(FIXTURES)).filter((name) => name.endsWith('.json'));
    const originals = await Promise.all(source.map(async (name) => JSON.parse(await readFile(path.join(FIXTURES, name), 'utf8')) as Record<string, unknown>));
    const replacement = fc.oneof(fc.jsonValue(), fc.constantFrom(...HOSTILE), fc.constant(undefined));
    let k = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: originals.length - 1 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { minLength: 1, maxLength: 5 }),
        replacement,
        async (which, choices, value) => {
          // The damaged file beside an intact one of the same workload, so both reach grouping and printing.
          const folder = path.join(dir, `files-${k++}`);
          await mkdir(folder);
          const sibling = source[(which + 1) % source.length]!;
          await cp(path.join(FIXTURES, sibling), path.join(folder, sibling));
          const damaged = structuredClone(originals[which]!);
          const at = pathInto(damaged, choices);
          setAt(damaged, at, value);
          await writeFile(path.join(folder, source[which]!), JSON.stringify(damaged) ?? 'undefined');
          const context = `${source[which]} at ${JSON.stringify(at)} = ${JSON.stringify(value)}`;
          for (const format of ['table', 'md', 'json'] as const) {
            const outcome = await compareFiles([folder], { format }).catch((error: unknown) => error);
            if (outcome instanceof Error && !(outcome instanceof UsageError)) throw new Error(`${context}: ${outcome.stack}`);
          }
          const report = await reportFiles([folder], { outFile: path.join(folder, 'out', 'report.html') }).catch((error: unknown) => error);
          if (report instanceof Error && !(report instanceof UsageError)) throw new Error(`${context}: ${report.stack}`);
          await rm(folder, { recursive: true, force: true });
        },
      ),
      { numRuns: FILE_RUNS, seed: SEED, endOnFailure: true },
    );
  });
});
