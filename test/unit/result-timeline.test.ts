// A result file's timeline: 100 ms buckets with their width, bounded for long runs, and files written
// before the width was recorded (one point per second) still read, as the same kind of series.

import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryAdapter } from '../../adapters/memory.ts';
import { validateConfig } from '../../src/config.ts';
import { Timeline } from '../../src/metrics/timeline.ts';
import type { RunRecord } from '../../src/outcome.ts';
import { buildResult, MAX_TIMELINE_POINTS, readResult, writeResult } from '../../src/report/result-file.ts';
import { resultShapeProblem } from '../../src/report/result-schema.ts';
import { runScenario } from '../../src/runner/runner.ts';
import { findScenario } from '../../scenarios/index.ts';
import { runConfig } from '../helpers/faults.ts';
import { uniqueNamespace } from '../helpers/fixture.ts';

const SAME = fileURLToPath(new URL('../fixtures/results/same', import.meta.url));

let dir: string;
let record: RunRecord;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-timeline-'));
  // 600 messages at 1,000/s: a run of about 0.6 s, one point per second before.
  const config = runConfig({ adapter: 'memory', mode: 'default', messages: 600, ratePerSec: 1000, publishBatch: 10, receiveBatch: 10 });
  validateConfig(config, memoryAdapter.capabilities('default'));
  record = await runScenario({ adapter: memoryAdapter, connection: { commandTimeoutMs: 3_000 }, namespace: uniqueNamespace(), config, scenario: findScenario('throughput')! });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("a result file's timeline", () => {
  it('holds 100 ms buckets and their width, and reads back as written', async () => {
    const result = buildResult(record);
    expect(result.status).toBe('completed');
    expect(result.timeline.bucketMs).toBe(100);
    expect(result.timeline.points.length).toBeGreaterThan(3);
    expect(result.timeline.points.map((p) => p.startMs)).toEqual(result.timeline.points.map((_, k) => k * 100));
    expect(result.timeline.points.reduce((n, p) => n + p.completed, 0)).toBe(600);
    expect(result.timeline.points.reduce((n, p) => n + p.published, 0)).toBe(600);
    const file = await writeResult(dir, result);
    expect((await readResult(file)).timeline).toEqual(result.timeline);
  });

  it('keeps at most MAX_TIMELINE_POINTS buckets however long the run', () => {
    const long = new Timeline(0);
    for (let second = 0; second < 10 * 3600; second += 7) long.add('completed', 1, second * 1e6 + 50_000);
    const outcome = { ...record.outcome, timelineBuckets: long.series() };
    const { timeline } = buildResult({ ...record, outcome });
    expect(timeline.points.length).toBeLessThanOrEqual(MAX_TIMELINE_POINTS);
    expect(timeline.bucketMs).toBe(20_000);
    expect(timeline.points.reduce((n, p) => n + p.completed, 0)).toBe(Math.ceil((10 * 3600) / 7));
  });

  it('falls back to the per-second timeline where a scenario built its own outcome', () => {
    const { timelineBuckets: _fine, ...outcome } = record.outcome;
    const { timeline } = buildResult({ ...record, outcome });
    expect(timeline.bucketMs).toBe(1000);
    expect(timeline.points).toEqual(record.outcome.timeline.map(({ second, ...rest }) => ({ startMs: second * 1000, ...rest })));
  });

  it('reads a file written before the width was recorded as 1,000 ms buckets', async () => {
    const file = path.join(SAME, (await readdir(SAME))[0]!);
    const raw = JSON.parse(await readFile(file, 'utf8')) as { timeline: { second: number; completed: number }[] };
    expect(Array.isArray(raw.timeline)).toBe(true);
    const { timeline } = await readResult(file);
    expect(timeline.bucketMs).toBe(1000);
    expect(timeline.points.map((p) => [p.startMs, p.completed])).toEqual(raw.timeline.map((p) => [p.second * 1000, p.completed]));
  });

  it('names what is wrong inside either shape', async () => {
    const file = path.join(SAME, (await readdir(SAME))[0]!);
    const old = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown> & { timeline: unknown[] };
    old.timeline[0] = null;
    expect(resultShapeProblem(old)).toBe('timeline[0]: Invalid input: expected object, received null');
    const fresh = JSON.parse(JSON.stringify(buildResult(record))) as Record<string, unknown> & { timeline: { bucketMs: unknown; points: unknown[] } };
    fresh.timeline.points[1] = { startMs: 100, published: 'many' };
    expect(resultShapeProblem(fresh)).toBe('timeline.points[1].published: Invalid input: expected number, received string');
    fresh.timeline = { bucketMs: 0, points: [] };
    expect(resultShapeProblem(fresh)).toMatch(/^timeline\.bucketMs: Too small/);
    const bad = path.join(dir, 'bad-timeline.json');
    await writeFile(bad, JSON.stringify({ ...fresh, timeline: 'per second' }));
    await expect(readResult(bad)).rejects.toThrow(/^.*bad-timeline\.json: not a result brokerbench can read: timeline: Invalid input$/);
  });
});
