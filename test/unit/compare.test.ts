// compare on real result files (test/fixtures/results, written by the harness: see make-results.sh):
// grouping, merging histograms rather than averaging percentiles, the spread of rates, request cost,
// the best-in-row marks (within one delivery guarantee), the answer leading each group and the three
// output formats.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config.ts';
import { decodeHistogram, mergeHistograms, summarize } from '../../src/metrics/histogram.ts';
import { renderJson, renderMarkdown, renderRows, renderTable, type RenderedRow } from '../../src/report/compare.ts';
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
  const rows = (): RenderedRow[] => renderRows(same);
  const byId = (id: string): RenderedRow => rows().find((row) => row.id === id)!;
  const labels = (row: RenderedRow): string[] => same.columns.filter((_, k) => row.best[k]).map((c) => c.label);

  it('ranks only columns of one delivery guarantee: at-most-once redis-list simple wins no rate against at-least-once brokers', () => {
    // redis-list simple has the highest median completion rate of all ...
    const rates = same.columns.map((c) => c.completePerSec.median);
    expect(same.columns[rates.indexOf(Math.max(...rates))]!.label).toBe('redis-list simple');
    // ... but it is the only at-most-once column, so nothing to rank it against; among the at-least-once ones
    // redis-list reliable's two runs (min … max) lie above every other's.
    expect(byId('delivery').cells).toEqual(['at-least-once', 'at-most-once', 'at-least-once', 'at-least-once', 'at-least-once']);
    expect(labels(byId('completionRate'))).toEqual(['redis-list reliable']);
    expect(labels(byId('endToEnd.p99'))).toEqual(['redis-list reliable']);
  });

  it('marks no count when all are 0, and nothing on a descriptive row', () => {
    expect(byId('lost').best).toEqual(same.columns.map(() => false));
    expect(byId('duplicateDeliveries').best).toEqual(same.columns.map(() => false));
    expect(byId('broker').best).toEqual(same.columns.map(() => false));
  });

  it('marks the cheaper SQS mode: only SQS has a cost, and standard is more than 5% cheaper', () => {
    expect(labels(byId('usdPerMillionMessages'))).toEqual(['sqs standard']);
  });

  it('marks nothing where the best is inside the runner-up\'s spread', () => {
    // Two runs each: the same runs under another name, 6% faster, so their min … max overlap reliable's.
    const reliable = column(same, 'redis-list reliable').runs;
    const faster = reliable.map((run) => ({
      ...run,
      result: {
        ...run.result,
        runId: `${run.result.runId}-twin`,
        broker: { ...run.result.broker, name: 'redis-stream', mode: 'group' },
        throughput: { ...run.result.throughput, completePerSec: run.result.throughput.completePerSec * 1.06 },
      },
    }));
    const group = groupRuns([...reliable, ...faster])[0]!;
    expect(group.columns.map((c) => c.runs.length)).toEqual([2, 2]);
    const [slow, fast] = group.columns.map((c) => c.completePerSec);
    expect(fast!.median / slow!.median).toBeCloseTo(1.06, 6);
    expect(fast!.min).toBeLessThan(slow!.max);
    expect(renderRows(group).find((row) => row.id === 'completionRate')!.best).toEqual([false, false]);
    // One run each, 6% apart: no spread known, over the 5% margin, so marked.
    const single = groupRuns([reliable[0]!, faster[0]!])[0]!;
    expect(renderRows(single).find((row) => row.id === 'completionRate')!.best).toEqual([false, true]);
  });

  it('leaves out execution rows when no run had a task', () => {
    expect(rows().some((row) => row.id.startsWith('execution.'))).toBe(false);
  });
});

describe('the answer leads every group', () => {
  it('prints per group the answer table, then the warnings and verdicts, then the detailed table', () => {
    const text = renderTable([same], 200);
    const answerHead = text.search(/│ broker +│ delivery +│ order +│ DLQ +│ delays +│ rate +│ p99 +│ lost +│ dup +│ req\/1M +│ \$\/1M +│/);
    const verdict = text.indexOf('redis-list simple: nothing lost: 1000 of 1000 published messages completed');
    const detailHead = text.search(/│ +│ redis-list reliable +│ redis-list simple +│/);
    expect(answerHead).toBeGreaterThan(text.indexOf('throughput: 1,000 messages'));
    expect(verdict).toBeGreaterThan(answerHead);
    expect(detailHead).toBeGreaterThan(verdict);
    expect(text).toMatch(/│ redis-list reliable +│ at-least-once +│ none +│ yes +│ yes +│ [\d,]+\/s \* +│ [\d.]+ ms \* +│ 0 +│ 0 +│ n\/a +│ n\/a +│/);
    expect(text).toMatch(/│ redis-list simple +│ at-most-once +│ fifo +│ no +│ no +│ [\d,]+\/s +│ [\d.]+ ms +│ 0 +│ 0 +│ n\/a +│ n\/a +│/);
    expect(text).toMatch(/│ sqs fifo +│ at-least-once +│ per-group +│ yes +│ no +│ 125\/s +│ [\d.]+ s +│ 0 +│ 0 +│ 3,195,000 +│ \$1\.60 +│/);
    expect(text).toMatch(/│ sqs standard +│ at-least-once +│ none +│ yes +│ yes +│ [\d,]+\/s +│ [\d.]+ ms +│ 0 +│ 0 +│ 304,000 \* +│ \$0\.12 \* +│/);
    // Every line of the grid fits in 200 columns.
    expect(Math.max(...text.split('\n').map((line) => [...line].length))).toBeLessThanOrEqual(200);
  });

  it('says where the harness was saturated, that the figures are a floor, and which run said a verdict only some runs said', () => {
    const text = renderTable([same], 200);
    // sqs standard's second run had an event-loop p99 of 72 ms (over 50 ms).
    expect(text).toContain('sqs standard: harness saturated (harness event-loop p99 72 ms): these figures are a floor, the broker may be faster than shown');
    expect(text).not.toMatch(/^sqs fifo: harness saturated/m);
    // Both runs of redis-list reliable said the same: once, without a file name.
    expect(text.split('\nredis-list reliable: no duplicate deliveries\n')).toHaveLength(2);
    const [first, second] = column(same, 'redis-list reliable').runs;
    const differing = { ...second!, result: { ...second!.result, verdicts: [...second!.result.verdicts, 'something only this run saw'] } };
    const group = groupRuns([first!, differing])[0]!;
    expect(renderTable([group], 200)).toContain(`redis-list reliable (${path.basename(second!.file)}): something only this run saw`);
  });

  it('fits 80 columns: the answer stacked one block per broker, its lines wrapped, every mark kept', () => {
    const narrow = renderTable([same], 80);
    expect(Math.max(...narrow.split('\n').map((line) => [...line].length))).toBeLessThanOrEqual(80);
    const answer = narrow.slice(0, narrow.indexOf('\n\n'));
    for (const label of ['redis-list reliable', 'redis-list simple', 'redis-stream group', 'sqs fifo', 'sqs standard']) {
      expect(answer).toMatch(new RegExp(`^${label}$`, 'm'));
    }
    expect(answer).toMatch(/^ {2}delivery +at-most-once +order +fifo/m);
    expect(answer).toMatch(/ \$\/1M +\$0\.12 \*$/m);
    expect(answer).toMatch(/^sqs standard: harness saturated \(harness event-loop p99 72 ms\): these figures\n {2}are a floor/m);
    const marks = (text: string): number => text.split(' *').length;
    expect(marks(narrow)).toBe(marks(renderTable([same], 200)));
  });

  it('labels every FIFO mode\'s cost FIFO, fifo-high-throughput too', () => {
    const fifo = column(same, 'sqs fifo').runs[0]!;
    const high = {
      ...fifo,
      result: { ...fifo.result, config: { ...fifo.result.config, mode: 'fifo-high-throughput' }, broker: { ...fifo.result.broker, mode: 'fifo-high-throughput' } },
    };
    const cost = renderRows(groupRuns([high])[0]!).find((row) => row.id === 'usdPerMillionMessages')!;
    expect(cost.cells[0]).toMatch(/^\$\d+\.\d\d \(FIFO \$0\.50\/M\)$/);
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

  it('prints the answer and the detailed table in Markdown, every row with its header\'s cell count, best values in bold', () => {
    const md = renderMarkdown([same]);
    // Two tables: the answer (11 cells a row), then the details (a label and 5 columns).
    const [answer, details] = md.split('\n\n').filter((block) => block.startsWith('|'));
    const cells = (line: string): number => line.replace(/\\\|/g, '').split('|').length;
    for (const table of [answer!, details!]) {
      const lines = table.split('\n');
      for (const line of lines) expect(cells(line), line).toBe(cells(lines[0]!));
    }
    expect(answer!.split('\n').slice(0, 2)).toEqual([
      '| broker | delivery | order | DLQ | delays | rate | p99 | lost | dup | req/1M | $/1M |',
      '| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ]);
    expect(answer).toMatch(/^\| redis-list reliable \| at-least-once \| none \| yes \| yes \| \*\*[\d,]+\/s\*\* \|/m);
    expect(details!.split('\n')).toHaveLength(renderRows(same).length + 2);
    expect(details!.split('\n')[1]).toBe('| --- | ---: | ---: | ---: | ---: | ---: |');
    expect(md).toMatch(/^\| completion rate \|.*\*\*[\d,]+\/s\*\*/m);
    expect(md).toMatch(/^- sqs standard: harness saturated \(harness event-loop p99 72 ms\)/m);
    expect(md).toMatch(/^- redis-list simple: nothing lost: 1000 of 1000 published messages completed$/m);
    expect(md.indexOf('| broker |')).toBeLessThan(md.indexOf('- redis-list simple: nothing lost'));
    expect(md.indexOf('- redis-list simple: nothing lost')).toBeLessThan(md.indexOf('| completion rate |'));
    expect(md).toMatch(/^### throughput: 1,000 messages/m);
    expect(md).toContain('Best: only among brokers with the same delivery guarantee');
    expect(md).toContain('checked 20');
  });

  it('prints JSON (schema version 2) with the answer per group, the numbers, units in names, the best columns per row and the prices', () => {
    const json = JSON.parse(renderJson(groups)) as {
      schema: string;
      schemaVersion: number;
      pricing: typeof SQS_PRICING;
      groups: {
        id: string;
        title: string;
        answer: { groupId: string; title: string; entries: { label: string; delivery: string; ratePerSec: { median: number }; p99Us?: number; usdPerMillion?: number; saturation?: string; verdicts: { run: string; text: string }[]; best: string[] }[] };
        columns: { label: string; runs: unknown[]; latencyUs: { endToEnd: { count: number } }; throughputPerSec: { completion: { median: number } }; requests: unknown }[];
        best: Record<string, string[]>;
      }[];
    };
    expect(json.schema).toBe('brokerbench/comparison');
    expect(json.schemaVersion).toBe(2);
    expect(json.pricing.fifoUsdPerMillion).toBe(0.5);
    const g = json.groups[1]!;
    expect(g.columns.map((c) => c.runs.length)).toEqual([2, 1, 1, 1, 2]);
    expect(g.columns[0]!.latencyUs.endToEnd.count).toBe(2000);
    expect(g.columns[0]!.requests).toBeNull();
    expect(g.best.usdPerMillionMessages).toEqual(['sqs standard']);
    // The fastest at-least-once column, not the at-most-once one.
    expect(g.best.completionRate).toEqual(['redis-list reliable']);
    expect(g.answer.groupId).toBe(g.id);
    expect(g.answer.title).toBe(g.title);
    expect(g.answer.entries.map((e) => [e.label, e.delivery, e.best])).toEqual([
      ['redis-list reliable', 'at-least-once', ['rate', 'p99']],
      ['redis-list simple', 'at-most-once', []],
      ['redis-stream group', 'at-least-once', []],
      ['sqs fifo', 'at-least-once', []],
      ['sqs standard', 'at-least-once', ['requests', 'cost']],
    ]);
    const standard = g.answer.entries[4]!;
    expect(standard.ratePerSec.median).toBe(g.columns[4]!.throughputPerSec.completion.median);
    expect(standard.usdPerMillion).toBeGreaterThan(0);
    expect(standard.saturation).toBe('harness event-loop p99 72 ms');
    expect(standard.verdicts).toHaveLength(4);
    expect(standard.verdicts[0]!.run).toMatch(/^2026-11-26T08-2\d-\d\dZ-sqs-standard-throughput-1000\.json$/);
    expect(g.answer.entries[0]!.usdPerMillion).toBeUndefined();
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
