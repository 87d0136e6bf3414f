// A run spread over four workers, each a `brokerbench worker` process placed through the environment
// an engine gives (JOB_COMPLETION_INDEX, BROKERBENCH_*), on the real Redis: merged, the books balance;
// with one worker killed mid-run, they still do; a part missing, of another run or of another
// workload is refused naming its file; bad input is one line and exit 2 with nothing written.

import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ResultFile } from '../../src/report/result-file.ts';
import { runCli } from '../helpers/cli.ts';
import { keysWithPrefix, redisUrl } from '../helpers/redis.ts';
import { allDone, isoIn, readMerged, startWorkers, testRunId } from '../helpers/workers.ts';

const root = mkdtempSync(path.join(tmpdir(), 'brokerbench-workers-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const SHARDS = 4;
/**
 * Short tails: a worker ends once the broker has been empty for a receive wait and a visibility timeout.
 * 3 s, so that a consumer stalled on a busy machine does not see its messages delivered again (no duplicate is asserted).
 */
const QUICK = ['--visibility-timeout-ms', '3000', '--receive-wait-ms', '300'];
const REDIS = { REDIS_URL: redisUrl(), QUEUE: 'REDIS' };

/** The books of a merged run balance: every index is completed, lost, never sent, refused or in doubt, and nothing else. */
function expectBalanced(result: ResultFile): void {
  const l = result.ledger;
  expect(l.completed + l.lost + (l.notSent ?? 0) + l.publishFailed + (l.inDoubt ?? 0)).toBe(l.expected);
  expect(l.deliveries).toBe(l.delivered + l.duplicateDeliveries);
  expect(l.completed).toBeLessThanOrEqual(l.delivered);
}

async function merge(dir: string, out: string): Promise<{ code: number | null; stderr: string; result: ResultFile | undefined }> {
  const run = await runCli(['merge', dir, '--out', out], {}, 60_000);
  return { code: run.code, stderr: run.stderr, result: existsSync(out) ? readMerged(out) : undefined };
}

describe('four workers on redis-list', () => {
  const runId = testRunId();
  const partsDir = path.join(root, 'parts');

  it('merge into one result: nothing lost, no duplicate, every message of every worker, queues removed by the last', async () => {
    const workers = startWorkers({ runId, partsDir, shards: SHARDS, args: ['4000', ...QUICK], startAt: isoIn(8_000), env: REDIS });
    const runs = await allDone(workers);
    for (const run of runs) expect(run.stderr + run.stdout).toMatch(/part: .*part-\d-of-4\.json/);
    expect(runs.map((run) => run.code)).toEqual([0, 0, 0, 0]);
    expect(runs.filter((run) => run.stdout.includes('every worker has finished: removed'))).not.toHaveLength(0);
    expect(readdirSync(path.join(partsDir, runId)).filter((name) => name.endsWith('.journal'))).toEqual([]);
    expect(await keysWithPrefix(`bb-${runId}`)).toEqual([]);

    const out = path.join(root, `${runId}.json`);
    const { code, result, stderr } = await merge(path.join(partsDir, runId), out);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(result!.status).toBe('completed');
    expect(result!.ledger).toMatchObject({ expected: 4000, completed: 4000, lost: 0, duplicateDeliveries: 0, notSent: 0, inDoubt: 0, foreign: 0 });
    expectBalanced(result!);
    expect(result!.config).toMatchObject({ messages: 4000, consumers: 16, publishConcurrency: 16 });
    // Each worker published its own quarter, and their consumers between them delivered all of it.
    expect(result!.workers!.map((w) => [w.shard, w.status, w.first, w.end, w.published])).toEqual([
      [0, 'completed', 0, 1000, 1000],
      [1, 'completed', 1000, 2000, 1000],
      [2, 'completed', 2000, 3000, 1000],
      [3, 'completed', 3000, 4000, 1000],
    ]);
    expect(result!.workers!.reduce((sum, w) => sum + w.deliveries, 0)).toBe(4000);
    // Same-host and cross-host latencies add up to end-to-end; the clock bound comes from the broker's clock.
    expect(result!.latency.sameHost!.count + result!.latency.crossHost!.count).toBe(result!.latency.endToEnd.count);
    expect(result!.latency.endToEnd.count).toBe(4000);
    for (const w of result!.workers!) {
      expect(w.clockReference).toBe('redis TIME');
      expect(w.clockUncertaintyUs).toBeGreaterThan(0);
      expect(w.startOffsetUs).toBeGreaterThanOrEqual(0);
    }
    expect(result!.latency.crossHost!.errorBoundUs).toBeGreaterThan(0);
    expect(result!.verdicts).toContain('nothing lost: 4,000 of 4,000 published messages completed');
    expect(result!.throughput.completePerSec).toBeGreaterThan(0);
    expect(readFileSync(out, 'utf8')).not.toContain('"schema": "brokerbench/part"');
  }, 90_000);

  it('compare reads the parts folder as one run, and a part given alone points at its folder', async () => {
    const dir = path.join(partsDir, runId);
    const compared = await runCli(['compare', '--format', 'json', dir], { COLUMNS: '200' });
    expect(compared.code).toBe(0);
    const columns = (JSON.parse(compared.stdout) as { groups: { columns: { runs: { file: string; runId: string }[]; lost: number; completed: number }[] }[] }).groups[0]!.columns;
    expect(columns).toHaveLength(1);
    expect(columns[0]!.runs).toEqual([expect.objectContaining({ file: dir, runId })]);
    expect(columns[0]!).toMatchObject({ lost: 0, completed: 4000 });
    const alone = await runCli(['compare', path.join(dir, 'part-1-of-4.json')]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain(`part-1-of-4.json: one worker's part of a run spread over workers; give its folder (${dir}) to merge them all`);
  }, 30_000);

  it('a missing part, a part of another run and a part of another workload are refused, naming the file', async () => {
    const source = path.join(partsDir, runId);
    const copy = (name: string): string => {
      const dir = path.join(root, name, runId);
      mkdirSync(dir, { recursive: true });
      for (const file of readdirSync(source)) copyFileSync(path.join(source, file), path.join(dir, file));
      return dir;
    };
    const missing = copy('missing');
    rmSync(path.join(missing, 'part-2-of-4.json'));
    let merged = await merge(missing, path.join(root, 'missing.json'));
    expect(merged.code).toBe(2);
    expect(merged.stderr.trim()).toBe(`brokerbench: ${path.join(missing, 'part-2-of-4.json')}: missing (worker 2 of 4 left neither its part nor a journal); every worker of the run must have run`);
    expect(merged.result).toBeUndefined();

    const other = copy('other');
    const file = path.join(other, 'part-1-of-4.json');
    writeFileSync(file, readFileSync(file, 'utf8').replaceAll(`"runId":"${runId}"`, '"runId":"someone-else"'));
    merged = await merge(other, path.join(root, 'other.json'));
    expect(merged.code).toBe(2);
    expect(merged.stderr.trim()).toBe(`brokerbench: ${file}: a part of run someone-else, not of run ${runId}`);

    const workload = copy('workload');
    const changed = path.join(workload, 'part-3-of-4.json');
    writeFileSync(changed, readFileSync(changed, 'utf8').replace('"payloadBytes":200', '"payloadBytes":300'));
    merged = await merge(workload, path.join(root, 'workload.json'));
    expect(merged.code).toBe(2);
    expect(merged.stderr.trim()).toBe("brokerbench: part-3-of-4.json: its workload differs from part-0-of-4.json's (payloadBytes); the parts are not of one run");

    const stray = copy('stray');
    copyFileSync(path.join(stray, 'part-0-of-4.json'), path.join(stray, 'part-0-of-3.json'));
    merged = await merge(stray, path.join(root, 'stray.json'));
    expect(merged.code).toBe(2);
    expect(merged.stderr).toContain(`${path.join(stray, 'part-0-of-3.json')}: a part of 3 workers`);
  }, 60_000);
});

describe('bad input: one line, exit 2, nothing written', () => {
  const partsDir = path.join(root, 'bad');
  const cases: [string, string[], Record<string, string | undefined>, string][] = [
    ['no shard count', ['worker', '100', '--shard', '0', '--run-id', 'x', '--parts-dir', partsDir], { BROKERBENCH_SHARDS: undefined }, 'worker needs --shards (or BROKERBENCH_SHARDS in its environment)'],
    ['a shard out of range', ['worker', '100', '--run-id', 'x', '--parts-dir', partsDir], { BROKERBENCH_SHARDS: '4', JOB_COMPLETION_INDEX: '4' }, '--shard 4 is not one of the 4 workers (0 to 3)'],
    ['a run id that cannot name queues', ['worker', '100', '--shards', '2', '--shard', '0', '--run-id', 'a b', '--parts-dir', partsDir], {}, '--run-id "a b" must be 1 to 40 letters, digits, \'-\' or \'_\''],
    ['a start without a zone', ['worker', '100', '--shards', '2', '--shard', '0', '--run-id', 'x', '--parts-dir', partsDir, '--start-at', '2026-12-06T10:00:00'], {}, '--start-at "2026-12-06T10:00:00" is not an ISO-8601 time with a zone, e.g. 2026-12-06T10:00:00Z'],
    ['a start an hour ahead', ['worker', '100', '--shards', '2', '--shard', '0', '--run-id', 'x', '--parts-dir', partsDir, '--start-at', isoIn(3_600_000)], {}, 'minutes ahead; give a time at most 10 minutes ahead'],
    ['a start long gone', ['worker', '100', '--shards', '2', '--shard', '0', '--run-id', 'x', '--parts-dir', partsDir, '--start-at', isoIn(-120_000)], {}, 's ago, so this worker would not start with the others'],
    ['the in-process broker', ['worker', '100', '--shards', '2', '--shard', '0', '--run-id', 'x', '--parts-dir', partsDir], { QUEUE: 'MEMORY' }, 'memory keeps its queues in one process, so workers cannot share them: use a broker with a server'],
    ['another scenario', ['worker', '100', '--shards', '2', '--shard', '0', '--run-id', 'x', '--parts-dir', partsDir, '--scenario', 'backlog'], REDIS, 'workers run the throughput scenario (with --rate for a fixed rate), not backlog'],
    ['a workload file of another scenario (the file is read, as scenario reads it)', ['worker', '--workload', 'scenarios/workloads/slow-tasks-mix.yaml', '--shards', '2', '--shard', '0', '--run-id', 'x', '--parts-dir', partsDir], REDIS, 'workers run the throughput scenario (with --rate for a fixed rate), not slow-tasks'],
    ['several brokers', ['worker', '100', '--shards', '2', '--shard', '0', '--run-id', 'x', '--parts-dir', partsDir], { QUEUE: 'REDIS,SQS' }, 'a worker runs one broker, not REDIS,SQS'],
  ];
  it.each(cases)('%s', async (_name, args, env, expected) => {
    const run = await runCli(args, { BROKERBENCH_SHARDS: undefined, JOB_COMPLETION_INDEX: undefined, BROKERBENCH_RUN_ID: undefined, BROKERBENCH_PARTS_DIR: undefined, BROKERBENCH_START_AT: undefined, ...env });
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain(expected);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(path.join(partsDir, 'x'))).toBe(false);
  }, 30_000);

  it('a worker whose broker would be a throw-away server of its own is refused', async () => {
    const run = await runCli(['worker', '100', '--shards', '2', '--shard', '0', '--run-id', 'y', '--parts-dir', partsDir], { QUEUE: 'SQS', SQS_ENDPOINT: undefined });
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toMatch(/^brokerbench: a worker needs the broker every worker reaches, and none was given, so sqs would be a throw-away server of this worker's own: set SQS_ENDPOINT$/);
  }, 30_000);

  it('--teardown of a run that left nothing is refused in one line, and makes no folder', async () => {
    const runDir = path.join(partsDir, 'never-ran');
    const run = await runCli(['worker', '--teardown', '--shards', '4', '--shard', '0', '--run-id', 'never-ran', '--parts-dir', partsDir], REDIS);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim()).toBe(
      `brokerbench: ${runDir}: no worker of run never-ran left anything there (no part, journal or queues-ready.json), so there is nothing to tear down; check --run-id and --parts-dir`,
    );
    expect(existsSync(runDir)).toBe(false);
  }, 30_000);

  it('merge of a folder that holds no parts says so', async () => {
    const empty = path.join(root, 'empty');
    mkdirSync(empty, { recursive: true });
    const run = await runCli(['merge', empty, '--out', path.join(root, 'nothing.json')]);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`brokerbench: ${empty}: no part-I-of-N.json or .journal files, so not the parts folder of a run spread over workers`);
  });
});
