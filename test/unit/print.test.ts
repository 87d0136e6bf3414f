import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { printSummary } from '../../src/report/print.ts';
import { readResult } from '../../src/report/result-file.ts';

const SAME = fileURLToPath(new URL('../fixtures/results/same', import.meta.url));

describe('printSummary', () => {
  it('says how many latencies were clamped into range, and says nothing when none were', async () => {
    const file = path.join(SAME, readdirSync(SAME).find((name) => name.endsWith('.json'))!);
    const result = await readResult(file);
    expect(printSummary(result, undefined, { width: 160 })).not.toContain('outside 1 µs to 1 h');
    const clamped = { ...result, latency: { ...result.latency, endToEnd: { ...result.latency.endToEnd, clamped: 3 } } };
    expect(printSummary(clamped, undefined, { width: 160 })).toContain('! 3 end-to-end latencies were outside 1 µs to 1 h and recorded at the bound');
  });

  it('reads a file from before foreign messages were counted as 0 foreign, and shows the count when there is one', async () => {
    const file = path.join(SAME, readdirSync(SAME).find((name) => name.endsWith('.json'))!);
    const result = await readResult(file);
    expect(result.ledger.foreign).toBeUndefined();
    expect(printSummary(result, undefined, { width: 160 })).toMatch(/foreign \(not this run's\)\s*│\s*0\s*│/);
    expect(printSummary({ ...result, ledger: { ...result.ledger, foreign: 4 } }, undefined, { width: 160 })).toMatch(/foreign \(not this run's\)\s*│\s*4\s*│/);
  });

  it('shows dead-lettered messages apart from lost, for a run that dead-letters', async () => {
    const file = path.join(SAME, readdirSync(SAME).find((name) => name.endsWith('.json'))!);
    const result = await readResult(file);
    const dlq = { ...result, config: { ...result.config, maxReceives: 3 }, ledger: { ...result.ledger, lost: 20 }, finalDepth: { ...result.finalDepth, dead: 20 } };
    expect(printSummary(dlq, undefined, { width: 160 })).toMatch(/│ lost\s*│ 0\s*│/);
    expect(printSummary(dlq, undefined, { width: 160 })).toMatch(/│ dead-lettered\s*│ 20\s*│/);
  });
});

describe('printSummary on a narrow terminal', () => {
  const files = readdirSync(SAME).filter((name) => name.endsWith('.json')).map((name) => path.join(SAME, name));
  const widest = (text: string): number => Math.max(...text.split('\n').map((line) => [...line].length));

  it('fits every line in 80 columns, stacking what is too wide, and keeps every figure', async () => {
    for (const file of files) {
      const result = await readResult(file);
      const wide = printSummary(result, 'results/r.json', { width: 160 });
      const narrow = printSummary(result, 'results/r.json', { width: 80 });
      expect(widest(wide), file).toBeGreaterThan(80); // the grid would not have fitted
      expect(widest(narrow), file).toBeLessThanOrEqual(80);
      // The same words and figures, only laid out otherwise.
      const words = (text: string): string[] => text.split(/[\s│┌┐└┘├┤┬┴┼─]+/).filter(Boolean).sort();
      expect(words(narrow), file).toEqual(words(wide));
    }
  });

  it('keeps the grid at 160 columns', async () => {
    const result = await readResult(files[0]!);
    const wide = printSummary(result, undefined, { width: 160 });
    expect(wide).toMatch(/│ latency +│ p50 +│ p90 +│ p99 +│ p99\.9 +│ max +│ mean +│ count +│/);
    expect(wide).toMatch(/│ harness cost +│ [\d.]+ cores, peak RSS/);
  });

  it('stacks a table whose turned form is still too wide into label-value blocks within the width', async () => {
    const result = await readResult(files[0]!);
    const head = ['rate', ...Array.from({ length: 9 }, (_, k) => `figure ${k + 1}`)];
    const rows = Array.from({ length: 12 }, (_, r) => [`${(r + 1) * 1000}/s`, ...Array.from({ length: 9 }, (_, k) => `${k + r}.00 ms`)]);
    const withTable = { ...result, scenarioData: { ...result.scenarioData, tables: [{ title: 'per rate', head, rows }] } };
    const narrow = printSummary(withTable as typeof result, undefined, { width: 60 });
    expect(widest(narrow)).toBeLessThanOrEqual(60);
    expect(narrow).toMatch(/^12000\/s$/m);
    expect(narrow).toMatch(/^ {2}figure 1 +11\.00 ms/m);
  });
});

describe('the width printers fit to', () => {
  it('is the terminal\'s; for a pipe, COLUMNS; else no limit (lines stay whole for scripts)', async () => {
    const { terminalWidth } = await import('../../src/report/table.ts');
    expect(terminalWidth({ columns: 132 }, { COLUMNS: '200' })).toBe(132);
    expect(terminalWidth({}, { COLUMNS: '200' })).toBe(200);
    expect(terminalWidth({}, { COLUMNS: 'wide' })).toBe(Number.POSITIVE_INFINITY);
    expect(terminalWidth({}, {})).toBe(Number.POSITIVE_INFINITY);
  });
});
