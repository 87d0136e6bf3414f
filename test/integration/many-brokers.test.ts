// QUEUE=REDIS,REDIS:simple,memory from the real command line: one workload on each broker in turn, one
// result file each and one comparison of exactly those; a broker without a server is listed and the
// rest still run (exit 1); a bad name or a flag one broker cannot take stops it all before it starts (exit 2).

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/services/children.ts';
import { runCli, startCli } from '../helpers/cli.ts';
import { sleep, waitFor } from '../helpers/faults.ts';

let dir = '';
let closedPort = 0;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-many-'));
  closedPort = await freePort('127.0.0.1');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface ComparisonJson {
  readonly groups: readonly { readonly columns: readonly { readonly label: string; readonly runs: readonly { readonly file: string }[] }[] }[];
}

describe('several brokers in one command', () => {
  it('runs each broker of the list, writes a result file each and one comparison naming all three', async () => {
    const out = path.join(dir, 'three');
    const run = await runCli(['scenario', '600', '--quiet', '--results-dir', out], { QUEUE: 'REDIS,REDIS:simple,memory', COLUMNS: '400' }, 120_000);
    expect(run.stderr).toContain('every broker gets --batch 100, --receive-batch 100');
    expect(run.code).toBe(0);
    const files = (await readdir(out)).sort();
    const results = files.filter((f) => /-throughput-600\.json$/.test(f));
    // Names start with each run's start time, and the runs go in list order: sorted by name, their order
    // depends on whether they crossed a second boundary, so compare them by broker.
    const byBroker = results.map((f) => f.replace(/^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ-/, '')).sort();
    expect(byBroker).toEqual(['memory-default-throughput-600.json', 'redis-list-reliable-throughput-600.json', 'redis-list-simple-throughput-600.json']);
    const comparisons = files.filter((f) => f.includes('-comparison-'));
    expect(comparisons).toEqual([
      expect.stringMatching(/-comparison-throughput\.html$/),
      expect.stringMatching(/-comparison-throughput\.json$/),
      expect.stringMatching(/-comparison-throughput\.md$/),
    ]);
    // One workload, so one table: every broker a column of the same group, each from its own file.
    const json = JSON.parse(await readFile(path.join(out, comparisons[1]!), 'utf8')) as ComparisonJson;
    expect(json.groups).toHaveLength(1);
    expect(json.groups[0]!.columns.map((c) => c.label).sort()).toEqual(['memory default', 'redis-list reliable', 'redis-list simple']);
    expect(json.groups[0]!.columns.flatMap((c) => c.runs.map((r) => path.basename(r.file))).sort()).toEqual(results);
    const markdown = await readFile(path.join(out, comparisons[2]!), 'utf8');
    expect(markdown).toMatch(/^### throughput: 600 messages/);
    expect(markdown).toContain('| memory default | redis-list reliable | redis-list simple |');
    // The printed table is that comparison.
    expect(run.stdout).toMatch(/│ +│ memory default +│ redis-list reliable +│ redis-list simple +│/);
    expect(run.stdout).not.toContain('Not completed');
    // The folder can be compared again: the comparison written beside the results is not taken for a bad result.
    const again = await runCli(['compare', out, '--format', 'json'], { COLUMNS: '400' }, 60_000);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as ComparisonJson).groups[0]!.columns).toHaveLength(3);
  });

  it('still runs the others when one broker has no server, names it with the reason and exits 1', async () => {
    const out = path.join(dir, 'one-missing');
    const run = await runCli(
      ['scenario', '300', '--quiet', '--results-dir', out],
      { QUEUE: 'memory,RABBITMQ,REDIS', RABBITMQ_URL: `amqp://guest:guest@127.0.0.1:${closedPort}`, COLUMNS: '400' },
      120_000,
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`Not completed \\(1 of 3\\):\\n  rabbitmq quorum: skipped: [^\\n]*127\\.0\\.0\\.1:${closedPort}[^\\n]*ECONNREFUSED`));
    const files = await readdir(out);
    expect(files.filter((f) => f.endsWith('-throughput-300.json')).sort()).toEqual([
      expect.stringMatching(/-memory-default-throughput-300\.json$/),
      expect.stringMatching(/-redis-list-reliable-throughput-300\.json$/),
    ]);
    expect(run.stdout).toMatch(/│ +│ memory default +│ redis-list reliable +│/);
    expect(run.stdout).not.toMatch(/│ rabbitmq/);
  });

  it('lists a broker that lacks what the scenario needs, with the reason, and runs the rest (exit 1)', async () => {
    const out = path.join(dir, 'no-delay');
    const run = await runCli(['scenario', '100', '--scenario', 'delayed', '--delay-ms', '100', '--delay-window-ms', '100', '--quiet', '--results-dir', out], { QUEUE: 'REDIS:simple,memory' }, 120_000);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^redis-list simple: skipped: scenario delayed needs delay, which it does not support\n/);
    expect(run.stdout).toContain('Not completed (1 of 2):\n  redis-list simple: skipped: scenario delayed needs delay, which it does not support\n');
    expect((await readdir(out)).filter((f) => f.endsWith('-delayed-100.json'))).toEqual([expect.stringMatching(/-memory-default-delayed-100\.json$/)]);
  });

  it('holds every broker to the smallest batch limit and says so in one line', async () => {
    const out = path.join(dir, 'with-sqs');
    const run = await runCli(['scenario', '200', '--quiet', '--results-dir', out], { QUEUE: 'memory,SQS', COLUMNS: '400' }, 120_000);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('every broker gets --batch 10, --receive-batch 10 (sqs standard takes at most 10 per call)\n');
    expect(run.stdout).toMatch(/^throughput: 200 messages of 200 B, publish batch 10 × 4 in flight, 4 consumers \(receive batch 10\)/);
  });

  it('stops at Ctrl-C: the broker in hand writes its result, the rest never start, exit 130', async () => {
    const out = path.join(dir, 'interrupted');
    // A paced run of about 10 s on the first broker, so the signal lands in its run phase.
    const cli = startCli(['scenario', '5000', '--rate', '500', '--results-dir', out], { QUEUE: 'memory,REDIS' }, 60_000);
    await waitFor('the run phase', () => /^run: /m.test(cli.stderr()), 30_000);
    await sleep(500);
    cli.child.kill('SIGINT');
    const run = await cli.done;
    expect(run.code).toBe(130);
    expect(run.stdout).toMatch(/Not completed \(2 of 2\):\n  memory default: interrupted, see [^\n]+-memory-default-throughput-5000\.json\n  redis-list reliable: not started \(interrupted\)\n/);
    expect(run.stderr).not.toContain('redis-list reliable: running');
    // An interrupted run is no comparison: its result file is kept, nothing compared is written.
    expect(await readdir(out)).toEqual([expect.stringMatching(/-memory-default-throughput-5000\.json$/)]);
  });

  it.each([
    ['a name that is no broker', { QUEUE: 'REDIS,NOPE' }, [], /^brokerbench: unknown QUEUE "NOPE"; use one of: [^\n]+\n$/],
    ['a flag one broker cannot take', { QUEUE: 'memory,SQS' }, ['--batch', '50'], /^brokerbench: sqs standard: --batch 50 is over sqs's limit of 10 messages per call\n$/],
    ['a broker named twice', { QUEUE: 'REDIS,redis-list' }, [], /^brokerbench: QUEUE names redis-list reliable twice; [^\n]+\n$/],
    ['--mode with several brokers', { QUEUE: 'REDIS,memory' }, ['--mode', 'simple'], /^brokerbench: --mode and --fifo apply to one broker; [^\n]+\n$/],
  ])('refuses %s in one line, exit 2, before anything is written', async (_name, env, args, message) => {
    const out = path.join(dir, 'refused');
    const run = await runCli(['scenario', '100', '--quiet', '--results-dir', out, ...args], env);
    expect(run.stderr).toMatch(message);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
  });
});
