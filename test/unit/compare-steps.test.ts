// compare never merges the histograms of different rates or steps into one column: fixed-rate runs
// at different headline rates are different workloads, and a scale-out run of several steps gives
// its column no latency. Built on a real result file from test/fixtures/results.

import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderRows, renderTable } from '../../src/report/compare.ts';
import { groupRuns } from '../../src/report/group.ts';
import { loadRuns, type LoadedRun } from '../../src/report/load.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/results/other', import.meta.url));

let base: LoadedRun;
beforeAll(async () => {
  base = (await loadRuns([FIXTURES])).runs[0]!;
});

/** `base` with scenario data of its own (values and records) and, if given, another run id. */
function withScenarioData(values: Record<string, number>, records: Record<string, Record<string, number>[]>, runId: string): LoadedRun {
  const scenarioData = { tables: [], histograms: {}, records, values };
  return { ...base, file: `${runId}.json`, result: { ...base.result, runId, scenarioData } };
}

describe('compare and multi-step runs', () => {
  it('puts fixed-rate runs whose top-level figures stand for different rates in different tables', () => {
    const slow = withScenarioData({ headlineRatePerSec: 1000 }, { rates: [{ ratePerSec: 1000 }, { ratePerSec: 5000 }] }, 'a');
    const fast = withScenarioData({ headlineRatePerSec: 5000 }, { rates: [{ ratePerSec: 1000 }, { ratePerSec: 5000 }] }, 'b');
    const groups = groupRuns([slow, fast]);
    expect(groups).toHaveLength(2);
    expect(groups.map((g) => g.columns[0]!.runs.length)).toEqual([1, 1]);
    expect(groups.map((g) => g.title.endsWith(', headline rate 1,000/s') || g.title.endsWith(', headline rate 5,000/s'))).toEqual([true, true]);
    // The same headline rate is the same workload.
    expect(groupRuns([slow, withScenarioData({ headlineRatePerSec: 1000 }, {}, 'c')])).toHaveLength(1);
  });

  it('gives a column no latency from a run whose histograms merge several steps', () => {
    const steps = withScenarioData({}, { steps: [{ consumers: 1 }, { consumers: 2 }] }, 'd');
    const [group] = groupRuns([steps]);
    const column = group!.columns[0]!;
    expect(column.latencyUs.endToEnd.count).toBe(0);
    expect(column.completed).toBe(base.result.ledger.completed);
    const p50 = renderRows(group!).find((row) => row.id === 'endToEnd.p50')!;
    expect(p50.cells).toEqual(['n/a']);
    expect(renderTable([group!], 160)).toContain('a scale-out run of several steps adds no latency to its column');
    // One step merges nothing: its latency stays.
    const [single] = groupRuns([withScenarioData({}, { steps: [{ consumers: 4 }] }, 'e')]);
    expect(single!.columns[0]!.latencyUs.endToEnd.count).toBe(base.result.latency.endToEnd.count);
  });
});
