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
});
