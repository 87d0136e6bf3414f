// `--hgrm DIR`: HdrHistogram percentile-distribution text, values in ms, read back as the standard
// plotter reads it (four numeric columns; `#[...]` footer), from real result files.

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { groupRuns, type Group } from '../../src/report/group.ts';
import { hgrmText, writeHgrmFiles } from '../../src/report/hgrm.ts';
import { loadRuns } from '../../src/report/load.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/results/same', import.meta.url));

interface Parsed {
  readonly rows: { value: number; percentile: number; totalCount: number; inverse: number }[];
  readonly mean: number;
  readonly max: number;
  readonly totalCount: number;
  readonly buckets: number;
  readonly subBuckets: number;
}

/** The format as HdrHistogram writes it: a header, rows of 4 numbers, a `#[…]` footer of 3 lines. */
function parseHgrm(text: string): Parsed {
  const lines = text.split('\n');
  expect(lines[0]!.trim().split(/\s+/)).toEqual(['Value', 'Percentile', 'TotalCount', '1/(1-Percentile)']);
  const rows: Parsed['rows'] = [];
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (line.trim() === '' || line.startsWith('#')) continue;
    // The last row (percentile 1) has no 1/(1-p): infinite.
    expect(fields.length === 4 || (fields.length === 3 && Number(fields[1]) === 1), line).toBe(true);
    rows.push({ value: Number(fields[0]), percentile: Number(fields[1]), totalCount: Number(fields[2]), inverse: Number(fields[3] ?? Infinity) });
  }
  const footer = text.match(
    /#\[Mean {4}= +([\d.]+), StdDeviation {3}= +([\d.]+)\]\n#\[Max {5}= +([\d.]+), Total count {4}= +(\d+)\]\n#\[Buckets = +(\d+), SubBuckets {5}= +(\d+)\]\n$/,
  );
  expect(footer, text.slice(-300)).not.toBeNull();
  return {
    rows,
    mean: Number(footer![1]),
    max: Number(footer![3]),
    totalCount: Number(footer![4]),
    buckets: Number(footer![5]),
    subBuckets: Number(footer![6]),
  };
}

let dir: string;
let groups: Group[];
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-hgrm-'));
  groups = groupRuns((await loadRuns([FIXTURES])).runs);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('hgrm export', () => {
  it('writes the HdrHistogram percentile distribution in ms, agreeing with the result file', () => {
    const run = groups[0]!.columns[0]!.runs[0]!;
    const summary = run.result.latency.endToEnd;
    const parsed = parseHgrm(hgrmText(run.histograms.endToEnd));
    expect(parsed.totalCount).toBe(summary.count);
    expect(parsed.max).toBeCloseTo(summary.max / 1000, 3);
    expect(parsed.mean).toBeCloseTo(summary.mean / 1000, 2);
    expect(parsed.subBuckets).toBe(2048);
    const rows = parsed.rows;
    expect(rows[0]!.percentile).toBe(0);
    expect(rows.at(-1)!.percentile).toBe(1);
    expect(rows.at(-1)!.totalCount).toBe(summary.count);
    for (let k = 1; k < rows.length; k++) {
      expect(rows[k]!.value).toBeGreaterThanOrEqual(rows[k - 1]!.value);
      expect(rows[k]!.percentile).toBeGreaterThanOrEqual(rows[k - 1]!.percentile);
      expect(rows[k]!.totalCount).toBeGreaterThanOrEqual(rows[k - 1]!.totalCount);
    }
    // p50 is one of the iterator's ticks (0, 0.1 … 0.5, 0.55 …): the row holds the file's p50 (µs there, ms here).
    expect(rows.find((r) => r.percentile === 0.5)!.value).toBeCloseTo(summary.p50 / 1000, 3);
    // p99 falls between ticks (… 0.984375, 0.9921875 …): the file's p99 lies between those rows' values.
    expect(rows.filter((r) => r.percentile <= 0.99).at(-1)!.value).toBeLessThanOrEqual(summary.p99 / 1000);
    expect(rows.find((r) => r.percentile >= 0.99)!.value).toBeGreaterThanOrEqual(summary.p99 / 1000);
  });

  it('writes one file per run and non-empty histogram, plus merged ones for columns of several runs', async () => {
    const out = path.join(dir, 'all');
    const written = await writeHgrmFiles(out, groups);
    const names = (await readdir(out)).sort();
    expect(names).toEqual(written.map((f) => path.basename(f)).sort());
    // 7 runs × (end-to-end, publish, completion; no task so no execution) + 2 merged columns × 3.
    expect(names).toHaveLength(7 * 3 + 2 * 3);
    expect(names.filter((n) => n.includes('execution'))).toEqual([]);
    expect(names.every((n) => n.endsWith('.ms.hgrm'))).toBe(true);
    const merged = names.filter((n) => n.startsWith('merged-'));
    expect(merged).toHaveLength(6);
    expect(merged.some((n) => /^merged-throughput-1000-[0-9a-f]{8}-sqs-standard-2runs\.end-to-end\.ms\.hgrm$/.test(n))).toBe(true);
    const standard = groups[0]!.columns.find((c) => c.label === 'sqs standard')!;
    const text = await readFile(path.join(out, merged.find((n) => n.includes('sqs-standard') && n.includes('end-to-end'))!), 'utf8');
    const parsed = parseHgrm(text);
    expect(parsed.totalCount).toBe(standard.runs.reduce((n, r) => n + r.result.latency.endToEnd.count, 0));
    expect(parsed.max).toBeCloseTo(Math.max(...standard.runs.map((r) => r.result.latency.endToEnd.max)) / 1000, 3);
    expect(names.some((n) => n.startsWith('.'))).toBe(false); // no temporary file left behind
  });

  it('keeps every file inside the folder, whatever a crafted result file names its scenario', async () => {
    // Two runs of one column, so a merged file is named from the files' own config.scenario.
    const crafted = path.join(dir, 'crafted');
    await mkdir(crafted);
    const source = (await readdir(FIXTURES)).filter((name) => name.includes('sqs-standard')).slice(0, 2);
    expect(source).toHaveLength(2);
    for (const name of source) {
      const result = JSON.parse(await readFile(path.join(FIXTURES, name), 'utf8')) as { config: { scenario: string } };
      result.config.scenario = '../../escaped\u001b]0;x\u0007';
      await writeFile(path.join(crafted, name), JSON.stringify(result));
    }
    const out = path.join(dir, 'crafted-out', 'hgrm');
    const written = await writeHgrmFiles(out, groupRuns((await loadRuns([crafted])).runs));
    expect(written.some((file) => path.basename(file).startsWith('merged-'))).toBe(true);
    for (const file of written) expect(path.dirname(file)).toBe(out);
    for (const name of await readdir(out)) expect(name).toMatch(/^[A-Za-z0-9._-]+$/);
    expect((await readdir(path.join(dir, 'crafted-out'))).sort()).toEqual(['hgrm']);
    expect(await readdir(dir)).not.toContain('escaped');
  });

  it('refuses a folder it cannot create with one line naming it', async () => {
    const file = path.join(dir, 'a-file');
    await writeFile(file, 'x');
    const error = await writeHgrmFiles(path.join(file, 'sub'), groups).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(/^cannot write \.hgrm files to .*a-file\/sub \(ENOTDIR\); choose another folder with --hgrm$/);
  });
});
