// The cost model on real result files (test/fixtures/results: Redis and SQS on one workload, Redis alone
// on another; test/fixtures/cost: a fan-out run on SQS through SNS): the month at a sustained rate for a
// broker billed per request and for self-hosted instances, the break-even rate, what is said instead of
// a figure that cannot be had, the flags' values, and the four renderings.

import path from 'node:path';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { requestSplitOf } from '../../src/metrics/requests.ts';
import { HOURS_PER_MONTH, SECONDS_PER_MONTH, SQS_PRICING } from '../../src/prices.ts';
import { compareFiles } from '../../src/report/compare.ts';
import {
  breakEvenRate,
  costHtml,
  costOfGroup,
  costOptionsFrom,
  renderCostMarkdown,
  renderCostTable,
  type ColumnCost,
  type GroupCost,
} from '../../src/report/cost.ts';
import { groupRuns, type Column, type Group } from '../../src/report/group.ts';
import { loadRuns } from '../../src/report/load.ts';
import { printSummary } from '../../src/report/print.ts';
import { readResult } from '../../src/report/result-file.ts';

const RESULTS = fileURLToPath(new URL('../fixtures/results', import.meta.url));
const FAN_OUT = fileURLToPath(new URL('../fixtures/cost/fan-out', import.meta.url));

let same: Group;
let redisOnly: Group;
let fanOut: Group;

const column = (group: Group, label: string): Column => group.columns.find((c) => c.label === label)!;
const costOf = (cost: GroupCost, label: string): ColumnCost => cost.columns.find((c) => c.label === label)!;

beforeAll(async () => {
  const groups = groupRuns((await loadRuns([RESULTS])).runs);
  same = groups.find((g) => g.messagesPerRun === 1000)!;
  redisOnly = groups.find((g) => g.messagesPerRun === 500)!;
  [fanOut] = groupRuns((await loadRuns([FAN_OUT])).runs) as [Group];
});

describe('the month', () => {
  it('is 730 hours', () => {
    expect(HOURS_PER_MONTH).toBe(730);
    expect(SECONDS_PER_MONTH).toBe(2_628_000);
  });
});

describe('a broker billed per request', () => {
  it('costs messages a month × billed requests per message measured × the price', () => {
    const standard = column(same, 'sqs standard');
    // These files predate the recorded split: the workload's billed requests come from byKind.
    const billedPerMessage = standard.runs.reduce((n, r) => n + requestSplitOf(r.result.requests!).billedWorkload, 0) / standard.completed;
    expect(billedPerMessage).toBeGreaterThan(0);
    const cost = costOf(costOfGroup(same, { ratePerSec: 200 }), 'sqs standard');
    expect(cost.kind).toBe('requests');
    if (cost.kind !== 'requests') return;
    const requestsPerMonth = 200 * 2_628_000 * billedPerMessage;
    expect(cost.services).toHaveLength(1);
    expect(cost.services[0]).toMatchObject({ service: 'SQS', tier: 'standard', usdPerMillionRequests: SQS_PRICING.standardUsdPerMillion });
    expect(cost.services[0]!.requestsPerMonth).toBeCloseTo(requestsPerMonth, 6);
    expect(cost.usdPerMonth).toBeCloseTo((requestsPerMonth / 1e6) * 0.4, 9);
    // Twice the rate, twice the bill: no step, no free tier.
    const double = costOf(costOfGroup(same, { ratePerSec: 400 }), 'sqs standard');
    expect(double.kind === 'requests' && double.usdPerMonth).toBeCloseTo(2 * cost.usdPerMonth, 9);
    // FIFO at FIFO's price.
    const fifo = costOf(costOfGroup(same, { ratePerSec: 200 }), 'sqs fifo');
    expect(fifo.kind === 'requests' && fifo.services[0]!.usdPerMillionRequests).toBe(SQS_PRICING.fifoUsdPerMillion);
  });

  it('prices the SNS part of a fan-out run apart, at SNS\'s price', () => {
    const result = fanOut.columns[0]!.runs[0]!.result;
    const completed = result.ledger.completed;
    const cost = costOfGroup(fanOut, { ratePerSec: 200 }).columns[0]!;
    expect(cost.kind).toBe('requests');
    if (cost.kind !== 'requests') return;
    const messages = 200 * 2_628_000;
    const sns = cost.services.find((s) => s.service === 'SNS')!;
    const sqs = cost.services.find((s) => s.service === 'SQS')!;
    expect(sns.requestsPerMonth).toBeCloseTo((messages * result.requests!.byKind['PublishBatch']!) / completed, 6);
    expect(sns.usdPerMonth).toBeCloseTo((sns.requestsPerMonth / 1e6) * SQS_PRICING.snsStandardUsdPerMillion, 9);
    const receivesAndDeletes = result.requests!.byKind['ReceiveMessage']! + result.requests!.byKind['DeleteMessageBatch']!;
    expect(sqs.usdPerMonth).toBeCloseTo(((messages * receivesAndDeletes) / completed / 1e6) * 0.4, 9);
    expect(cost.usdPerMonth).toBeCloseTo(sns.usdPerMonth + sqs.usdPerMonth, 9);
    expect(renderCostTable([costOfGroup(fanOut, { ratePerSec: 200 })], { ratePerSec: 200 }, 400)).toMatch(/SNS standard [\d,]+ requests × \$0\.50\/M = \$[\d.]+/);
  });
});

describe('a self-hosted broker', () => {
  it('takes whole instances, each completing what one completed here, at the price given', () => {
    const reliable = column(same, 'redis-list reliable');
    const measured = reliable.completePerSec.median;
    const cost = costOf(costOfGroup(same, { ratePerSec: 200, instanceUsdMonth: 30 }), 'redis-list reliable');
    expect(cost).toMatchObject({ kind: 'instances', instances: 1, onePerSec: measured, usdPerMonth: 30 });
    expect(cost.kind === 'instances' && cost.machine).toMatch(/^\d+× .+, [\d.]+ GiB$/);
  });

  it('takes more instances for a rate above what one measured', () => {
    const reliable = column(same, 'redis-list reliable');
    const rate = reliable.completePerSec.median * 2.5;
    const cost = costOf(costOfGroup(same, { ratePerSec: rate, instanceUsdMonth: 30 }), 'redis-list reliable');
    expect(cost).toMatchObject({ kind: 'instances', instances: 3, usdPerMonth: 90 });
  });

  it('counts instances but gives no figure without an instance price, and says which flag gives one', () => {
    const cost = costOfGroup(same, { ratePerSec: 200 });
    const reliable = costOf(cost, 'redis-list reliable');
    expect(reliable).toMatchObject({ kind: 'instances', instances: 1 });
    expect(reliable.kind === 'instances' && reliable.usdPerMonth).toBeUndefined();
    expect(cost.breakEven).toEqual([]);
    expect(cost.notes.join(' ')).toContain('give --instance-usd-month USD');
    expect(renderCostTable([cost], { ratePerSec: 200 }, 400)).toMatch(/│ redis-list reliable +│ n\/a \(--instance-usd-month\) +│ 1 instance: one completed/);
  });
});

describe('the break-even rate', () => {
  it('is where one instance costs what the requests do, for every self-hosted and request-priced pair', () => {
    const options = { ratePerSec: 200, instanceUsdMonth: 30 };
    const cost = costOfGroup(same, options);
    // 3 self-hosted columns × 2 request-priced ones.
    expect(cost.breakEven).toHaveLength(6);
    const pair = cost.breakEven.find((b) => b.selfHosted === 'redis-list reliable' && b.requestPriced === 'sqs standard')!;
    const atBreakEven = costOf(costOfGroup(same, { ...options, ratePerSec: pair.ratePerSec }), 'sqs standard');
    expect(atBreakEven.kind === 'requests' && atBreakEven.usdPerMonth).toBeCloseTo(30, 9);
    expect(pair.ratePerSec).toBeCloseTo(30 / (2_628_000 * (column(same, 'sqs standard').requests!.usdPerMillionMessages! / 1e6)), 9);
    expect(breakEvenRate(30, 0.12)).toBeCloseTo(30 / (2_628_000 * 0.12e-6), 9);
    // Above it, the instance is cheaper; below it, the requests.
    const above = costOfGroup(same, { ...options, ratePerSec: pair.ratePerSec * 1.1 });
    const below = costOfGroup(same, { ...options, ratePerSec: pair.ratePerSec * 0.9 });
    const usd = (g: GroupCost, label: string): number => (costOf(g, label) as { usdPerMonth: number }).usdPerMonth;
    expect(usd(above, 'redis-list reliable')).toBeLessThan(usd(above, 'sqs standard'));
    expect(usd(below, 'redis-list reliable')).toBeGreaterThan(usd(below, 'sqs standard'));
    expect(renderCostTable([cost], options, 400)).toContain(
      `- redis-list reliable vs sqs standard: break-even at ${pair.ratePerSec.toLocaleString('en-US', { maximumSignificantDigits: 3 })}/s; above it one $30.00 instance costs less`,
    );
  });

  it('says so when it lies above what one instance can take: there the instances never cost less', () => {
    // An instance price so high that the break-even lies far above what one Redis instance completed here.
    const options = { ratePerSec: 200, instanceUsdMonth: 1_000_000 };
    const cost = costOfGroup(same, options);
    const pair = cost.breakEven.find((b) => b.selfHosted === 'redis-stream group' && b.requestPriced === 'sqs standard')!;
    expect(pair.ratePerSec).toBeGreaterThan(pair.onePerSec);
    expect(renderCostTable([cost], options, 1000)).toMatch(/redis-stream group vs sqs standard: break-even at [\d,.]+\/s, more than the [\d,]+\/s one instance completed here, so at any rate its \$1,000,000\.00 instances cost at least sqs standard's requests/);
    // Which holds at every multiple of one instance's rate, and between them.
    for (const factor of [0.5, 1, 1.5, 2, 7, 40]) {
      const at = costOfGroup(same, { ...options, ratePerSec: pair.onePerSec * factor });
      const hosted = costOf(at, 'redis-stream group') as { usdPerMonth: number };
      const requests = costOf(at, 'sqs standard') as { usdPerMonth: number };
      expect(hosted.usdPerMonth).toBeGreaterThanOrEqual(requests.usdPerMonth);
    }
  });

  it('is not made up where no broker is billed per request: the group says so', () => {
    const cost = costOfGroup(redisOnly, { ratePerSec: 200, instanceUsdMonth: 30 });
    expect(cost.columns.every((c) => c.kind === 'instances')).toBe(true);
    expect(cost.breakEven).toEqual([]);
    expect(cost.notes.join(' ')).toMatch(/No broker billed per request \(sqs\) is in this group, so there is no break-even rate/);
    expect(renderCostTable([cost], { ratePerSec: 200, instanceUsdMonth: 30 }, 400)).not.toMatch(/requests ×|\$0\.40/);
  });

  it('is not made up where no broker is self-hosted either', () => {
    const cost = costOfGroup(fanOut, { ratePerSec: 200, instanceUsdMonth: 30 });
    expect(cost.breakEven).toEqual([]);
    expect(cost.notes.join(' ')).toContain('No self-hosted broker is in this group');
  });
});

describe('the flags', () => {
  it('take a positive rate and a positive price, written as people write numbers', () => {
    expect(costOptionsFrom(undefined, undefined)).toBeUndefined();
    expect(costOptionsFrom('200', undefined)).toEqual({ ratePerSec: 200 });
    expect(costOptionsFrom('1,000', '30.5')).toEqual({ ratePerSec: 1000, instanceUsdMonth: 30.5 });
    expect(costOptionsFrom('0.5', '60')).toEqual({ ratePerSec: 0.5, instanceUsdMonth: 60 });
  });

  it.each([
    ['0', undefined, /^--cost-rate must be a positive number of messages per second, got "0"$/],
    ['-5', undefined, /^--cost-rate must be a positive number of messages per second, got "-5"$/],
    ['many', undefined, /^--cost-rate must be a number, got "many"$/],
    ['NaN', undefined, /^--cost-rate must be a number, got "NaN"$/],
    ['200', '0', /^--instance-usd-month must be a positive number of US dollars, got "0"$/],
    ['200', '-30', /^--instance-usd-month must be a positive number of US dollars, got "-30"$/],
    ['200', '$30', /^--instance-usd-month must be a number, got "\$30"$/],
    [undefined, '30', /^--instance-usd-month prices the instances a sustained rate needs: give that rate too/],
  ])('refuses --cost-rate %s --instance-usd-month %s in one line', (rate, usd, message) => {
    expect(() => costOptionsFrom(rate, usd)).toThrow(UsageError);
    expect(() => costOptionsFrom(rate, usd)).toThrow(message);
  });
});

describe('renderings', () => {
  const options = { ratePerSec: 200, instanceUsdMonth: 30 };

  it('fits the terminal table in 80 columns, stacking it, with every figure still there', () => {
    const cost = costOfGroup(same, options);
    const wide = renderCostTable([cost], options, 1000);
    const narrow = renderCostTable([cost], options, 80);
    expect(Math.max(...narrow.split('\n').map((line) => [...line].length))).toBeLessThanOrEqual(80);
    expect(wide.split('\n')[0]).toBe('cost at a sustained 200/s: 525,600,000 messages a month (730 hours)');
    for (const figure of wide.match(/\$[\d,]+\.\d\d/g)!) expect(narrow).toContain(figure);
  });

  it('writes Markdown rows with the header\'s cell count', () => {
    const md = renderCostMarkdown([costOfGroup(same, options)], options);
    const rows = md.split('\n').filter((line) => line.startsWith('|'));
    const cells = (line: string): number => line.replace(/\\\|/g, '').split('|').length;
    expect(rows).toHaveLength(2 + same.columns.length);
    for (const row of rows) expect(cells(row), row).toBe(cells(rows[0]!));
    expect(md).toMatch(/^- redis-list reliable vs sqs standard: break-even at/m);
  });

  it('escapes every text in the HTML fragment', () => {
    const hostile: Group = { ...same, columns: same.columns.map((c, k) => (k === 0 ? { ...c, label: '<img src=x onerror=alert(1)>' } : c)) };
    const html = costHtml(hostile, options);
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt; vs sqs standard');
    expect(html).toMatch(/^<section class="cost"><h3>cost at a sustained 200\/s/);
  });

  it('appends the section to each format of compare, the JSON as a top-level cost field', async () => {
    const files = [path.join(RESULTS, 'same')];
    const table = await compareFiles(files, { format: 'table', width: 400, cost: options });
    expect(table.output).toMatch(/\n\ncost at a sustained 200\/s: 525,600,000 messages a month \(730 hours\)\n/);
    const md = await compareFiles(files, { format: 'md', cost: options });
    expect(md.output).toMatch(/\n\n### cost at a sustained 200\/s/);
    const json = JSON.parse((await compareFiles(files, { format: 'json', cost: options })).output) as {
      schema: string;
      cost: { ratePerSec: number; instanceUsdMonth: number; hoursPerMonth: number; messagesPerMonth: number; groups: GroupCost[] };
    };
    expect(json.schema).toBe('brokerbench/comparison');
    expect(json.cost).toMatchObject({ ratePerSec: 200, instanceUsdMonth: 30, hoursPerMonth: 730, messagesPerMonth: 525_600_000 });
    expect(json.cost.groups[0]!.columns.map((c) => c.label)).toEqual(same.columns.map((c) => c.label));
    // Without the flags, no cost section at all.
    expect((await compareFiles(files, { format: 'table', width: 400 })).output).not.toContain('cost at a sustained');
    expect(JSON.parse((await compareFiles(files, { format: 'json' })).output)).not.toHaveProperty('cost');
  });

  it('prints the cost lines under a single run\'s summary', async () => {
    const dir = path.join(RESULTS, 'same');
    const file = path.join(dir, readdirSync(dir).find((name) => name.includes('sqs-standard'))!);
    const result = await readResult(file);
    const text = printSummary(result, file, { width: 200, cost: options });
    const at = text.indexOf('cost at a sustained 200/s');
    expect(at).toBeGreaterThan(text.indexOf(`result: ${file}`));
    expect(text.slice(at)).toMatch(/│ sqs standard │ \$[\d.]+ +│ 0\.\d{3} billed requests per message: SQS standard [\d,]+ requests × \$0\.40\/M/);
    expect(text).toContain('No self-hosted broker is in this run');
    expect(printSummary({ ...result, status: 'timeout' }, file, { width: 200, cost: options })).toContain('cost: not worked out, the run did not complete (timeout)');
    expect(printSummary(result, file, { width: 200 })).not.toContain('cost at a sustained');
  });
});
