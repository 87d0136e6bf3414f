// compare --format csv on the fixture result files (test/fixtures/results, written by the harness):
// RFC 4180 quoting, read back by an independent parser; one row per broker per workload with the
// figures as raw numbers, their units in the headers.

import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { csvField, csvText, renderCsv } from '../../src/report/csv.ts';
import { groupRuns, type Group } from '../../src/report/group.ts';
import { loadRuns } from '../../src/report/load.ts';
import { csvRecords, parseCsv } from '../helpers/csv.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/results', import.meta.url));

let groups: Group[];
beforeAll(async () => {
  groups = groupRuns((await loadRuns([FIXTURES])).runs);
});

describe('csv fields', () => {
  it('quotes a field holding a comma, a quote or a line break, doubling its quotes, and leaves others bare', () => {
    expect(csvField('redis-list reliable')).toBe('redis-list reliable');
    expect(csvField('a, b')).toBe('"a, b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\rhere')).toBe('"cr\rhere"');
  });

  it('writes numbers raw (no separators, no float noise), n/a as empty, booleans as words', () => {
    expect(csvField(1234567)).toBe('1234567');
    expect(csvField(0.1 + 0.2)).toBe('0.3');
    expect(csvField(-4.5)).toBe('-4.5');
    expect(csvField(undefined)).toBe('');
    expect(csvField(Number.NaN)).toBe('');
    expect(csvField(true)).toBe('true');
  });

  it('keeps a spreadsheet from running text from a result file as a formula', () => {
    expect(csvField('=HYPERLINK("http://x")')).toBe('"\'=HYPERLINK(""http://x"")"');
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvField('-1+2')).toBe("'-1+2");
    expect(csvField(-1)).toBe('-1');
  });

  it('reads back field for field, whatever the text holds', () => {
    const rows = [
      ['label', 'value'],
      ['a, "quoted", label', '1'],
      ['line\nbreak', ''],
      ['plain', '2.5'],
    ];
    expect(parseCsv(csvText(rows))).toEqual(rows);
  });
});

describe('renderCsv', () => {
  it('gives one row per broker per workload, the figures as raw numbers under headers with units', () => {
    const records = csvRecords(renderCsv(groups));
    expect(records).toHaveLength(groups.reduce((n, g) => n + g.columns.length, 0));
    const same = groups.find((g) => g.messagesPerRun === 1000)!;
    const sqs = same.columns.find((c) => c.label === 'sqs standard')!;
    const row = records.find((r) => r['workload id'] === same.id && r['broker'] === 'sqs standard')!;
    expect(row).toMatchObject({ workload: same.title, scenario: 'throughput', adapter: 'sqs', mode: 'standard', runs: '2' });
    expect(row['messages of all runs (messages)']).toBe('2000');
    expect(Number(row['completion rate (msg/s)'])).toBeCloseTo(sqs.completePerSec.median, 6);
    expect(Number(row['completion rate min of runs (msg/s)'])).toBeCloseTo(sqs.completePerSec.min, 6);
    expect(Number(row['end-to-end p99 (ms)'])).toBe(sqs.latencyUs.endToEnd.p99 / 1000);
    expect(Number(row['request cost per 1M messages (USD)'])).toBeCloseTo(sqs.requests!.usdPerMillionMessages!, 9);
    // Redis has no per-request price and no run had a task: empty, not zero.
    const redis = records.find((r) => r['workload id'] === same.id && r['broker'] === 'redis-list reliable')!;
    expect(redis['request cost per 1M messages (USD)']).toBe('');
    expect(redis['execution p50 (ms)']).toBe('');
    expect(redis['lost (messages)']).toBe('0');
    // Raw numbers: no thousands separators in any figure.
    for (const record of records) for (const [name, value] of Object.entries(record)) if (/\((msg\/s|ms|messages)\)$/.test(name)) expect(value, name).toMatch(/^(-?\d+(\.\d+)?(e[+-]\d+)?)?$/);
  });

  it('quotes a workload or broker label holding commas and quotes, and it reads back whole', () => {
    const same = groups.find((g) => g.messagesPerRun === 1000)!;
    const odd = { ...same, columns: same.columns.map((c, k) => (k === 0 ? { ...c, label: 'redis "fast", really' } : c)) };
    const records = csvRecords(renderCsv([odd]));
    expect(records.map((r) => r['broker'])).toContain('redis "fast", really');
    expect(records[0]!['workload']).toBe(same.title);
    expect(same.title).toContain(',');
  });
});
