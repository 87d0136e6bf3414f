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
    expect(printSummary(result)).not.toContain('outside 1 µs to 1 h');
    const clamped = { ...result, latency: { ...result.latency, endToEnd: { ...result.latency.endToEnd, clamped: 3 } } };
    expect(printSummary(clamped)).toContain('! 3 end-to-end latencies were outside 1 µs to 1 h and recorded at the bound');
  });

  it('reads a file from before foreign messages were counted as 0 foreign, and shows the count when there is one', async () => {
    const file = path.join(SAME, readdirSync(SAME).find((name) => name.endsWith('.json'))!);
    const result = await readResult(file);
    expect(result.ledger.foreign).toBeUndefined();
    expect(printSummary(result)).toMatch(/foreign \(not this run's\)\s*│\s*0\s*│/);
    expect(printSummary({ ...result, ledger: { ...result.ledger, foreign: 4 } })).toMatch(/foreign \(not this run's\)\s*│\s*4\s*│/);
  });

  it('shows dead-lettered messages apart from lost, for a run that dead-letters', async () => {
    const file = path.join(SAME, readdirSync(SAME).find((name) => name.endsWith('.json'))!);
    const result = await readResult(file);
    const dlq = { ...result, config: { ...result.config, maxReceives: 3 }, ledger: { ...result.ledger, lost: 20 }, finalDepth: { ...result.finalDepth, dead: 20 } };
    expect(printSummary(dlq)).toMatch(/│ lost\s*│ 0\s*│/);
    expect(printSummary(dlq)).toMatch(/│ dead-lettered\s*│ 20\s*│/);
  });
});
