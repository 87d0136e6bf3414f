// compare on real result files (test/fixtures/results, written by the harness: see make-results.sh):
// grouping, merging histograms rather than averaging percentiles, the spread of rates, request cost,
// the best-in-row marks and the three output formats.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config.ts';
import { decodeHistogram, mergeHistograms, summarize } from '../../src/metrics/histogram.ts';
import { renderJson, renderMarkdown, renderRows, renderTable } from '../../src/report/compare.ts';
import { groupRuns, spread, type Column, type Group } from '../../src/report/group.ts';
import { percentileCurve } from '../../src/report/html.ts';
import { loadRuns, type LoadedRun } from '../../src/report/load.ts';
import { SQS_PRICING } from '../../src/report/pricing.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/results', import.meta.url));

let runs: readonly LoadedRun[];
let problems: readonly string[];
let groups: Group[];
let same: Group;

const column = (group: Group, label: string): Column => {
  const found = group.columns.find((c) => c.label === label);
  if (!found) throw new Error(`no column ${label} in ${group.columns.map((c) => c.label).join(', ')}`);
  return found;
};

beforeAll(async () => {
  ({ runs, problems } = await loadRuns([FIXTURES]));
  groups = groupRuns(runs);
  same = groups.find((g) => g.messagesPerRun === 1000)!;
});

describe('loading', () => {
  it('reads every completed run in the folder and its subfolders, and names the one that timed out', () => {
    expect(runs).toHaveLength(8);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^.*timeout\/.*-redis-list-reliable-throughput-200\.json: run did not complete: timeout \(--timeout 1000 ms ran out/);
  });

  it('counts a file named twice once, silently', async () => {
    const file = runs[0]!.file;
    const again = await loadRuns([file, path.dirname(file)]);
    expect(again.runs.filter((r) => r.file === file)).toHaveLength(1);
    expect(again.problems).toEqual([]);
  });
});

describe('grouping', () => {
  it('puts one workload in one table with a column per broker and mode, another workload in its own', () => {
    expect(groups.map((g) => g.messagesPerRun)).toEqual([500, 1000]);
    expect(same.title).toBe('throughput: 1,000 messages of 200 B, publish batch 10 × 4 in flight, 4 consumers (receive batch 10), 1 queue');
    expect(same.columns.map((c) => c.label)).toEqual(['redis-list reliable', 'redis-list simple', 'redis-stream group', 'sqs fifo', 'sqs standard']);
    expect(same.columns.map((c) => c.runs.length)).toEqual([2, 1, 1, 1, 2]);
  });

  it('ignores run identity (channel, seed, results folder, timeout) but not the workload', () => {
    const base = runs.find((r) => r.result.config.messages === 500)!;
    const variant = (config: object): LoadedRun => ({ ...base, result: { ...base.result, config: { ...base.result.config, ...config } } });
    const identity = groupRuns([base, variant({ channel: 'other', seed: 7, resultsDir: '/elsewhere', timeoutMs: 5000 })]);
    expect(identity).toHaveLength(1);
    expect(identity[0]!.columns[0]!.runs).toHaveLength(2);
    for (const change of [{ publishBatch: 7 }, { payloadBytes: 1024 }, { consumers: 9 }, { task: { ...base.result.config.task, durationMs: 5 } }]) {
      const split = groupRuns([base, variant(change)]);
      expect(split, JSON.stringify(change)).toHaveLength(2);
    }
    // The second table's title says what differs.
    const titles = groupRuns([base, variant({ consumers: 9 })]).map((g) => g.title);
    expect(titles.some((t) => t.includes('9 consumers'))).toBe(true);
  });

  it('groups a file written before a setting existed with runs at that setting\'s default', () => {
    const base = runs.find((r) => r.result.config.messages === 500)!;
    const config: Record<string, unknown> = { ...base.result.config };
    // Both at their defaults in the fixture; a file without them ran with the defaults.
    expect([config.queues, config.receiveWaitMs]).toEqual([DEFAULTS.queues, DEFAULTS.receiveWaitMs]);
    delete config.queues;
    delete config.receiveWaitMs;
    const older = { ...base, result: { ...base.result, config: config as unknown as typeof base.result.config } };
    expect(groupRuns([base, older])).toHaveLength(1);
    const changed = { ...base, result: { ...base.result, config: { ...base.result.config, queues: 2, consumers: 4 } } };
    expect(groupRuns([base, changed])).toHaveLength(2);
  });
});

describe('merging several runs of one configuration', () => {
  it('adds the histograms together: counts add up and percentiles come from the merged values', () => {
    for (const col of same.columns) {
      const counts = col.runs.map((r) => r.result.latency.endToEnd.count);
      expect(col.latencyUs.endToEnd.count).toBe(counts.reduce((a, b) => a + b, 0));
      const merged = summarize(mergeHistograms(col.runs.map((r) => decodeHistogram(r.result.latency.endToEnd.histogram))));
      expect(col.latencyUs.endToEnd).toEqual(merged);
      expect(col.latencyUs.endToEnd.max).toBe(Math.max(...col.runs.map((r) => r.result.latency.endToEnd.max)));
      expect(col.latencyUs.endToEnd.min).toBe(Math.min(...col.runs.map((r) => r.result.latency.endToEnd.min)));
    }
  });

  it('keeps the spread of throughput: min, median and max of the runs', () => {
    const reliable = column(same, 'redis-list reliable');
    const rates = reliable.runs.map((r) => r.result.throughput.completePerSec).sort((a, b) => a - b);
    expect(reliable.completePerSec).toEqual({ min: rates[0], median: (rates[0]! + rates[1]!) / 2, max: rates[1] });
    expect(spread([5, 1, 3])).toEqual({ min: 1, median: 3, max: 5 });
    expect(spread([])).toEqual({ min: 0, median: 0, max: 0 });
  });

  it('totals the books over the runs', () => {
    const standard = column(same, 'sqs standard');
    expect(standard.messages).toBe(2000);
    expect(standard.completed).toBe(standard.runs.reduce((n, r) => n + r.result.ledger.completed, 0));
    expect(standard.lost).toBe(0);
  });
});

describe('request cost', () => {
  it('prices SQS workload requests as billed (64 KiB chunks), FIFO apart, and Redis not at all', () => {
    for (const label of ['sqs standard', 'sqs fifo']) {
      const col = column(same, label);
      // These files predate the split: it comes from byKind. The harness's own requests are not priced per message.
      const ownActions = ['ListQueues', 'CreateQueue', 'GetQueueUrl', 'GetQueueAttributes', 'SetQueueAttributes', 'DeleteQueue', 'PurgeQueue'];
      const own = col.runs.reduce((n, r) => n + ownActions.reduce((m, a) => m + (r.result.requests!.byKind[a] ?? 0), 0), 0);
      expect(own).toBeGreaterThan(0);
      expect(col.requests!.housekeeping).toBe(own);
      const total = col.runs.reduce((n, r) => n + r.result.requests!.total, 0);
      expect(col.requests!.perMessage).toBeCloseTo((total - own) / col.completed, 10);
      const billed = col.runs.reduce((n, r) => n + r.result.requests!.billed, 0) - own;
      const price = label === 'sqs fifo' ? SQS_PRICING.fifoUsdPerMillion : SQS_PRICING.standardUsdPerMillion;
      expect(col.requests!.billed).toBe(billed);
      expect(col.requests!.usdPerMillionRequests).toBe(price);
      expect(col.requests!.usdPerMillionMessages).toBeCloseTo((billed / col.completed) * price, 10);
    }
    expect(column(same, 'redis-list reliable').requests).toBeUndefined();
    const costRow = renderRows(same).find((row) => row.id === 'usdPerMillionMessages')!;
    expect(costRow.cells[0]).toBe('n/a');
    expect(costRow.cells[3]).toMatch(/^\$\d+\.\d\d \(FIFO \$0\.50\/M\)$/);
    expect(costRow.cells[4]).toMatch(/^\$\d+\.\d\d \(standard \$0\.40\/M\)$/);
  });
});

describe('best in row', () => {
  it('marks the highest rate and the lowest latency, and nothing when every value is equal', () => {
    const rows = renderRows(same);
    const byId = (id: string) => rows.find((row) => row.id === id)!;
    const rates = same.columns.map((c) => c.completePerSec.median);
    expect(byId('completionRate').best).toEqual(rates.map((r) => r === Math.max(...rates)));
    const p99s = same.columns.map((c) => c.latencyUs.endToEnd.p99);
    expect(byId('endToEnd.p99').best).toEqual(p99s.map((v) => v === Math.min(...p99s)));
    expect(byId('lost').best).toEqual(same.columns.map(() => false)); // all 0
    expect(byId('broker').best).toEqual(same.columns.map(() => false)); // descriptive
    // Only SQS has a cost; the cheaper of the two is marked.
    expect(byId('usdPerMillionMessages').best).toEqual([false, false, false, false, true]);
  });

  it('leaves out execution rows when no run had a task', () => {
    expect(renderRows(same).some((row) => row.id.startsWith('execution.'))).toBe(false);
  });
});

describe('output formats', () => {
  it('prints a terminal table per group with the marks, the merging note and the dated price', () => {
    // Wide enough that neither the grid is stacked nor the notes wrapped.
    const text = renderTable(groups, 400);
    expect(text.indexOf('throughput: 500 messages')).toBeLessThan(text.indexOf('throughput: 1,000 messages'));
    expect(text).toMatch(/│ +│ redis-list reliable +│ redis-list simple +│ redis-stream group +│ sqs fifo +│ sqs standard +│/);
    expect(text).toMatch(/│ end-to-end p99\.9 +│/);
    expect(text).toMatch(/│ {3}min … max of runs +│ [\d,]+ … [\d,]+\/s +│ \(1 run\)/);
    expect(text).toMatch(/ \* +│/);
    expect(text).toContain('never percentiles averaged');
    expect(text).toMatch(/us-east-1 .* standard \$0\.40 and FIFO \$0\.50 per million requests, each 64 KiB chunk .* checked 20\d\d-\d\d-\d\d .* may change/);
  });

  it('prints Markdown tables whose rows all have the header\'s cell count, best values in bold', () => {
    const md = renderMarkdown([same]);
    const lines = md.split('\n').filter((line) => line.startsWith('|'));
    const cells = (line: string): number => line.replace(/\\\|/g, '').split('|').length;
    expect(lines.length).toBeGreaterThan(20);
    for (const line of lines) expect(cells(line), line).toBe(cells(lines[0]!));
    expect(lines[1]).toBe('| --- | ---: | ---: | ---: | ---: | ---: |');
    expect(md).toMatch(/^\| completion rate \|.*\*\*[\d,]+\/s\*\*/m);
    expect(md).toMatch(/^### throughput: 1,000 messages/m);
    expect(md).toContain('checked 20');
  });

  it('prints JSON with the numbers, units in names, the best columns per row and the prices', () => {
    const json = JSON.parse(renderJson(groups)) as {
      schema: string;
      pricing: typeof SQS_PRICING;
      groups: { title: string; columns: { label: string; runs: unknown[]; latencyUs: { endToEnd: { count: number } }; throughputPerSec: { completion: { median: number } }; requests: unknown }[]; best: Record<string, string[]> }[];
    };
    expect(json.schema).toBe('brokerbench/comparison');
    expect(json.pricing.fifoUsdPerMillion).toBe(0.5);
    const g = json.groups[1]!;
    expect(g.columns.map((c) => c.runs.length)).toEqual([2, 1, 1, 1, 2]);
    expect(g.columns[0]!.latencyUs.endToEnd.count).toBe(2000);
    expect(g.columns[0]!.requests).toBeNull();
    expect(g.best.usdPerMillionMessages).toEqual(['sqs standard']);
    const fastest = g.columns.reduce((a, b) => (b.throughputPerSec.completion.median > a.throughputPerSec.completion.median ? b : a));
    expect(g.best.completionRate).toEqual([fastest.label]);
  });
});

describe('latency by percentile for the chart', () => {
  it('runs from p0 to as far as the samples reach on a log scale of 1/(1-p), ending at the max', () => {
    const col = column(same, 'redis-list reliable');
    const points = percentileCurve(col.histograms.endToEnd);
    expect(points[0]![0]).toBe(1);
    expect(points[0]![1]).toBeCloseTo(col.latencyUs.endToEnd.min / 1000, 6);
    expect(points.at(-1)![0]).toBeCloseTo(2000, 6); // 2,000 samples: 1/(1-p) reaches 2,000 (p99.95)
    expect(points.at(-1)![1]).toBeCloseTo(col.latencyUs.endToEnd.max / 1000, 6);
    for (let k = 1; k < points.length; k++) {
      expect(points[k]![0]).toBeGreaterThan(points[k - 1]![0]);
      expect(points[k]![1]).toBeGreaterThanOrEqual(points[k - 1]![1]);
    }
  });
});

describe('the terminal table on a narrow terminal', () => {
  it('stacks one block per broker within 80 columns, every cell and best mark kept', () => {
    const narrow = renderTable(groups, 80);
    expect(Math.max(...narrow.split('\n').map((line) => [...line].length))).toBeLessThanOrEqual(80);
    for (const label of ['redis-list reliable', 'redis-list simple', 'redis-stream group', 'sqs fifo', 'sqs standard']) {
      expect(narrow).toMatch(new RegExp(`^${label}$`, 'm'));
    }
    expect(narrow).toMatch(/^ {2}completion rate +[\d,]+\/s \*$/m);
    const marks = (text: string): number => text.split(' *').length;
    expect(marks(narrow)).toBe(marks(renderTable(groups, 400)));
  });
});
