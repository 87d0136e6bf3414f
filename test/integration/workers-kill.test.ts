// One of four workers SIGKILLed mid-run, on the real Redis: the merge reads its journal as its books up
// to its death, so the run's books stay exact (reliable mode: nothing lost), and --teardown removes
// the queues no worker could know were the last.

import { formatCount } from '../../src/format.ts';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { publishedCount } from '../../src/metrics/ledger.ts';
import type { ResultFile } from '../../src/report/result-file.ts';
import { runCli } from '../helpers/cli.ts';
import { keysWithPrefix, redisUrl } from '../helpers/redis.ts';
import { allDone, isoIn, partPath, readMerged, startWorkers, testRunId, waitForRecord } from '../helpers/workers.ts';

const root = mkdtempSync(path.join(tmpdir(), 'brokerbench-workers-kill-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const SHARDS = 4;
const QUICK = ['--visibility-timeout-ms', '1000', '--receive-wait-ms', '300'];
const REDIS = { REDIS_URL: redisUrl(), QUEUE: 'REDIS' };

function expectBalanced(result: ResultFile): void {
  const l = result.ledger;
  expect(l.completed + l.lost + (l.notSent ?? 0) + l.publishFailed + (l.inDoubt ?? 0)).toBe(l.expected);
  expect(l.deliveries).toBe(l.delivered + l.duplicateDeliveries);
}

async function merge(dir: string, out: string): Promise<{ code: number | null; stderr: string; result: ResultFile | undefined }> {
  const run = await runCli(['merge', dir, '--out', out], {}, 60_000);
  return { code: run.code, stderr: run.stderr, result: existsSync(out) ? readMerged(out) : undefined };
}

describe('one of four workers killed mid-run', () => {
  it('reliable redis-list: the killed worker\'s books come from its journal and the merged books balance with nothing lost', async () => {
    const runId = testRunId();
    const partsDir = path.join(root, 'killed');
    // Publishing at a fixed rate takes about 3 s, so the kill lands while every worker publishes and consumes.
    const workers = startWorkers({ runId, partsDir, shards: SHARDS, args: ['6000', '--rate', '2000', '--batch', '10', ...QUICK], startAt: isoIn(8_000), env: REDIS });
    const victim = workers[2]!;
    const journal = partPath(partsDir, runId, 2, SHARDS, 'journal');
    // Once it has published and booked a delivery, at a moment nobody arranged beyond that.
    expect(await waitForRecord(journal, 'D', 40_000)).toBe(true);
    expect(await waitForRecord(journal, 'P', 10_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300 + Math.floor(Math.random() * 400)));
    process.kill(victim.child.pid!, 'SIGKILL');
    const runs = await allDone(workers);
    expect(runs[2]!.signal).toBe('SIGKILL');
    expect([runs[0]!.code, runs[1]!.code, runs[3]!.code]).toEqual([0, 0, 0]);
    // No worker can know it is the last while one is dead: the queues stay for --teardown.
    expect(existsSync(partPath(partsDir, runId, 2, SHARDS))).toBe(false);

    const out = path.join(root, `${runId}.json`);
    const { code, result, stderr } = await merge(path.join(partsDir, runId), out);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(result!.status).toBe('completed');
    const l = result!.ledger;
    expectBalanced(result!);
    expect(l.lost).toBe(0);
    expect(l.completed).toBe(publishedCount(l));
    // What it never got to send is never sent; what it sent without an answer is in doubt unless seen.
    expect((l.notSent ?? 0) + (l.inDoubt ?? 0)).toBeGreaterThan(0);
    const dead = result!.workers![2]!;
    expect(dead).toMatchObject({ shard: 2, status: 'killed', file: 'part-2-of-4.journal' });
    expect(dead.published).toBeGreaterThan(0);
    expect(dead.deliveries).toBeGreaterThan(0);
    expect(result!.workers!.filter((w) => w.status === 'completed')).toHaveLength(3);
    expect(result!.errors[0]).toMatch(/^worker 2 \(.*pid \d+\) wrote no part: killed/);
    expect(result!.verdicts.some((v) => v.startsWith('worker 2 was killed: its books up to its death come from its journal'))).toBe(true);

    // --teardown refuses while a worker of the run is alive (here: one whose journal names this process) …
    const args = ['worker', '--teardown', '--shards', '4', '--shard', '0', '--run-id', runId, '--parts-dir', partsDir];
    const live = partPath(partsDir, runId, 0, SHARDS, 'journal');
    writeFileSync(live, `W ${JSON.stringify({ runId, host: hostname(), pid: process.pid })}\n`);
    const refused = await runCli(args, REDIS);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim()).toBe(`brokerbench: ${live}: worker 0 is still running; tear down once every worker has finished`);
    rmSync(live);
    // … and removes the queues once none is.
    const teardown = await runCli(args, REDIS);
    expect(teardown.stderr).toBe('');
    expect(teardown.code).toBe(0);
    expect(teardown.stdout).toContain(`removed the 1 queue(s) of run ${runId}`);
    expect(await keysWithPrefix(`bb-${runId}`)).toEqual([]);
  }, 90_000);

  it('simple redis-list (at-most-once): what the killed worker held or had in transit is lost, and the verdict says which', async () => {
    const runId = testRunId();
    const partsDir = path.join(root, 'simple');
    // 20 ms tasks, so its consumers hold messages most of the time and the kill likely catches some.
    const workers = startWorkers({
      runId,
      partsDir,
      shards: SHARDS,
      args: ['6000', '--mode', 'simple', '--rate', '2000', '--batch', '10', '--task-ms', '20', ...QUICK],
      startAt: isoIn(8_000),
      env: REDIS,
    });
    const journal = partPath(partsDir, runId, 3, SHARDS, 'journal');
    expect(await waitForRecord(journal, 'D', 40_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300 + Math.floor(Math.random() * 400)));
    process.kill(workers[3]!.child.pid!, 'SIGKILL');
    const runs = await allDone(workers);
    expect([runs[0]!.code, runs[1]!.code, runs[2]!.code]).toEqual([0, 0, 0]);

    const out = path.join(root, `${runId}.json`);
    const { code, result, stderr } = await merge(path.join(partsDir, runId), out);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const l = result!.ledger;
    expectBalanced(result!);
    // At-most-once never delivers twice; whatever was lost went with the dead worker.
    expect(l.duplicateDeliveries).toBe(0);
    const held = l.delivered - l.completed;
    if (l.lost > 0) {
      expect(result!.verdicts).toContain(
        `LOST ${formatCount(l.lost)}: at-most-once mode, ${formatCount(held)} the killed worker held (received, not completed) and ${formatCount(l.lost - held)} never delivered to anyone (popped by a receive in transit when it died)`,
      );
    } else {
      expect(held).toBe(0);
    }
    expect(result!.workers!.map((w) => w.status)).toEqual(['completed', 'completed', 'completed', 'killed']);
  }, 90_000);
});
