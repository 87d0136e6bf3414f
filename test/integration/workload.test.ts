// Workload files and the `brokerbench` launcher, as a user meets them: every shipped workload loads and
// passes the same checks as flags; a small one runs on Redis and its result records it; flags win over
// the file; a bad file is one line and exit 2 with nothing written. The launcher's JSON is JSON, and its
// exit codes and signals are the program's.

import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readResult } from '../../src/report/result-file.ts';
import { readWorkload } from '../../src/workload.ts';
import { findScenario } from '../../scenarios/index.ts';
import { runCli, type CliRun } from '../helpers/cli.ts';
import { waitFor } from '../helpers/faults.ts';
import { redisUrl } from '../helpers/redis.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const WORKLOADS = path.join(ROOT, 'scenarios', 'workloads');
const LAUNCHER = path.join(ROOT, 'bin', 'brokerbench.js');
const SAME = path.join(ROOT, 'test', 'fixtures', 'results', 'same');
const base = { REDIS_URL: redisUrl(), CHANNEL_NAME: 'workload-test', QUEUE: 'REDIS' };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-workload-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * Runs `bin/brokerbench.js <args>` as `npx brokerbench` does, from `cwd`, leading a process group of its
 * own: `process.kill(-pid)` reaches it and the program under it at once, as Ctrl-C in a terminal does.
 */
function launch(args: readonly string[], cwd: string, env: Record<string, string> = {}): { pid: number; done: Promise<CliRun>; stderr: () => string } {
  const started = performance.now();
  const child = spawn(process.execPath, [LAUNCHER, ...args], { cwd, env: { ...process.env, ...env }, detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<CliRun>((resolve, reject) => {
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, elapsedMs: performance.now() - started });
    });
  });
  return { pid: child.pid!, done, stderr: () => stderr };
}

describe('shipped workload files', () => {
  const files = readdirSync(WORKLOADS).filter((name) => /\.(ya?ml|json)$/.test(name));

  it('are the five from the seeds', () => {
    expect(files.sort()).toEqual(['backlog-500k.yaml', 'executor-1s-200-workers.yaml', 'fan-out-3-groups.yaml', 'slow-tasks-mix.yaml', 'webhook-ingest.yaml']);
  });

  it.each(files)('%s opens with a comment on what it models and which seed, and names a scenario', (name) => {
    const text = readFileSync(path.join(WORKLOADS, name), 'utf8');
    expect(text.split('\n')[0]).toMatch(/^# \S/);
    expect(text).toMatch(/^# Seed: /m);
    const workload = readWorkload(path.join(WORKLOADS, name));
    expect(workload.name).toBe(name.replace(/\.yaml$/, ''));
    expect(findScenario(workload.flags['scenario'] ?? '')).toBeDefined();
  });

  // The run is stopped where it would first write: past every check of the settings (validateConfig,
  // the scenario's own), before any broker is reached. So the long ones are checked without running.
  it.each(files.flatMap((name) => ['REDIS', 'SQS'].map((queue) => [name, queue] as const)))('%s passes every check on %s', async (name, queue) => {
    const blocker = path.join(dir, 'not-a-folder');
    await writeFile(blocker, '');
    const run = await runCli(['scenario', '--workload', path.join(WORKLOADS, name), '--results-dir', path.join(blocker, 'results')], { ...base, QUEUE: queue });
    expect(run.stderr).toMatch(/^brokerbench: cannot write results to .*not-a-folder\/results \(ENOTDIR\)/);
    expect(run.code).toBe(2);
  });
});

describe('brokerbench scenario --workload', () => {
  it('runs a small workload on Redis, flags winning over the file, and the result records the file', async () => {
    const file = path.join(dir, 'small.yaml');
    const content = '# a small one\nname: small-ingest\nscenario: throughput\nmessages: 400\nbatch: 10\nconsumers: 2\npayload-bytes: 64\n';
    await writeFile(file, content);
    const out = path.join(dir, 'small');
    const run = await runCli(['scenario', '--workload', file, '--consumers', '3', '--results-dir', out, '--quiet'], base);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/nothing lost: 400 of 400/);
    const names = (await readdir(out)).filter((name) => name.endsWith('.json'));
    expect(names).toHaveLength(1);
    const result = await readResult(path.join(out, names[0]!));
    expect(result.workload).toEqual({ name: 'small-ingest', file, content });
    expect(result.config).toMatchObject({ scenario: 'throughput', messages: 400, publishBatch: 10, payloadBytes: 64, consumers: 3 });
    expect(result.ledger.completed).toBe(400);
  });

  it('reads JSON too, and the message count given as an argument wins over the file', async () => {
    const file = path.join(dir, 'small.json');
    await writeFile(file, JSON.stringify({ scenario: 'throughput', messages: 5000, rates: [1, 2], 'task-dist': 'uniform' }));
    const out = path.join(dir, 'json');
    const run = await runCli(['scenario', '300', '--workload', file, '--results-dir', out, '--quiet'], base);
    expect(run.code, run.stderr).toBe(0);
    const names = (await readdir(out)).filter((name) => name.endsWith('.json'));
    const result = await readResult(path.join(out, names[0]!));
    expect(result.workload?.name).toBe('small');
    expect(result.config).toMatchObject({ messages: 300, ratesPerSec: [1, 2], task: { distribution: 'uniform' } });
  });

  const bad: [string, string | Buffer, RegExp][] = [
    ['an unknown key', 'scenario: throughput\nmesages: 10\n', /: unknown key "mesages"; a workload file takes: name, description, scenario, messages,/],
    ['a wrong type', 'scenario: throughput\nrate: fast\n', /: "rate" must be a number, got "fast"$/],
    ['a list with a word in it', 'rates: [100, lots]\n', /: "rates" must be a number or a list of numbers, got \[100,"lots"\]$/],
    ['a value not among the choices', 'task-dist: normal\n', /: "task-dist" must be one of fixed, uniform, exponential, got "normal"$/],
    ['a broker in the file', 'queue: sqs\n', /: "queue" is given on the command line \(--queue or QUEUE\), not in a workload file/],
    ['text that is not YAML', 'scenario: throughput\nrates: [1, 2\nbatch: 1\n', /: not YAML or JSON \(line 3\): /],
    ['a key twice', '{"messages": 10, "messages": 20}', /: not YAML or JSON \(line 1\): Map keys must be unique/],
    ['a list instead of settings', '- scenario: throughput\n', /: must be a mapping of settings .*, got a list$/],
    ['an empty file', '', /: must be a mapping of settings .*, got an empty file$/],
    ['a file of one line, not echoed', 'PASSWORD=hunter2\n', /: must be a mapping of settings .*, got a single line of text$/],
    ['bytes that are not text', Buffer.from([0x73, 0x00, 0xff, 0xfe]), /: not text, so not YAML or JSON$/],
  ];

  it.each(bad)('refuses %s: one line naming the file, exit 2, nothing written', async (name, text, expected) => {
    const file = path.join(dir, `bad-${name.replace(/\W+/g, '-')}.yaml`);
    await writeFile(file, text);
    const out = path.join(dir, `out-${name.replace(/\W+/g, '-')}`);
    const run = await runCli(['scenario', '--workload', file, '--results-dir', out], base);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.startsWith(`brokerbench: --workload ${file}: `)).toBe(true);
    expect(lines[0]).toMatch(expected);
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
  });

  it('refuses a file that is not there, in one line', async () => {
    const run = await runCli(['scenario', '--workload', path.join(dir, 'nowhere.yaml')], base);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`brokerbench: --workload ${path.join(dir, 'nowhere.yaml')}: no such file\n`);
  });
});

describe('the brokerbench launcher (bin/brokerbench.js, what npx brokerbench runs)', () => {
  it('prints compare --format json as JSON alone, from any working folder', async () => {
    const run = await launch(['compare', '--format', 'json', SAME], dir).done;
    expect(run.code, run.stderr).toBe(0);
    const parsed = JSON.parse(run.stdout) as { schema: string };
    expect(parsed.schema).toBe('brokerbench/comparison');
  });

  it('is what npx brokerbench runs in the project, with no banner before the JSON', async () => {
    const child = spawn('npx', ['--no-install', 'brokerbench', 'compare', '--format', 'json', 'test/fixtures/results/same'], { cwd: ROOT });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(stdout.startsWith('{')).toBe(true);
    expect((JSON.parse(stdout) as { schema: string }).schema).toBe('brokerbench/comparison');
  });

  it('keeps the exit code: 2 for a bad argument, with the one line', async () => {
    const run = await launch(['compare', '--format', 'json', path.join(dir, 'nothing-here.json')], dir).done;
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^brokerbench compare: .*nothing-here\.json/);
  });

  // Sent to the launcher alone, a signal reaches the run only if it is passed on; sent to the group (a
  // terminal's Ctrl-C), the run gets it twice, directly and passed on, and must take it as one.
  it.each([
    { to: 'the launcher alone', signal: 'SIGTERM', group: false },
    { to: 'the process group (Ctrl-C in a terminal)', signal: 'SIGINT', group: true },
  ] as const)('passes $signal sent to $to on to the run, which writes its result and exits 130', async ({ signal, group }) => {
    const out = path.join(dir, `signalled-${signal}`);
    const cli = launch(['scenario', '5000', '--rate', '500', '--batch', '10', '--consumers', '2', '--results-dir', out], dir, { ...base, CHANNEL_NAME: `workload-${signal.toLowerCase()}` });
    await waitFor('the run phase', () => /^run: /m.test(cli.stderr()), 30_000);
    process.kill(group ? -cli.pid : cli.pid, signal);
    const run = await cli.done;
    expect(run.stderr).toContain(`${signal}: stopping`);
    expect(run.stderr).not.toContain('again: quitting at once');
    expect(run.code, run.stderr).toBe(130);
    const names = (await readdir(out)).filter((name) => name.endsWith('.json'));
    expect(names).toHaveLength(1);
    expect(JSON.parse(await readFile(path.join(out, names[0]!), 'utf8'))).toMatchObject({ status: 'interrupted' });
  });
});
