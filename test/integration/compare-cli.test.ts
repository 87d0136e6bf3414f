// compare --baseline and --format csv on the command line, on result files written by real short runs
// on the memory broker (no server needed) and on the fixture files: what a user reads, parses and
// gets for bad input (one line, exit 2, nothing written).

import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readResult } from '../../src/report/result-file.ts';
import { runCli } from '../helpers/cli.ts';
import { csvRecords } from '../helpers/csv.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/results', import.meta.url));
const env = { QUEUE: 'MEMORY', CHANNEL_NAME: 'compare-cli-test', COLUMNS: '200' };

let dir: string;
let oldDir: string;
let newDir: string;

/** One short run of the memory broker into `folder`. */
async function run(folder: string): Promise<void> {
  const done = await runCli(['scenario', '2000', '--quiet', '--results-dir', folder], env);
  expect(done.stderr).toBe('');
  expect(done.code).toBe(0);
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  return n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
};

async function completionRates(folder: string): Promise<number[]> {
  const files = (await readdir(folder)).filter((name) => name.endsWith('.json'));
  return Promise.all(files.map(async (name) => (await readResult(path.join(folder, name))).throughput.completePerSec));
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-compare-cli-'));
  oldDir = path.join(dir, 'old');
  newDir = path.join(dir, 'new');
  await run(oldDir);
  await run(newDir);
  await run(newDir);
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('compare --baseline', () => {
  it('prints, per broker on both sides, each figure beside the baseline\'s and its change', async () => {
    const out = await runCli(['compare', '--baseline', oldDir, newDir], env);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^throughput: 2,000 messages of 200 B/m);
    expect(out.stdout).toMatch(/^memory default: baseline 1 run, .*; new 2 runs, /m);
    expect(out.stdout).toMatch(/│ +│ baseline +│ new +│ change +│/);
    // The change printed is the one the result files give: medians of the runs' completion rates.
    const before = median(await completionRates(oldDir));
    const after = median(await completionRates(newDir));
    const percent = ((after - before) / before) * 100;
    const row = /│ completion rate +│ ([\d,]+)\/s +│ ([\d,]+)\/s +│ ([+-]?\d+\.\d)% ?(better|worse)? +│/.exec(out.stdout);
    expect(row, out.stdout).not.toBeNull();
    expect(row![3]).toBe(`${percent > 0 ? '+' : ''}${percent.toFixed(1)}`);
    // One baseline run: marked exactly when beyond 5%.
    expect(row![4] !== undefined).toBe(Math.abs(percent) > 5);
    expect(out.stdout).toMatch(/│ lost +│ 0 +│ 0 +│ 0 +│/);
    expect(out.stdout.replace(/\s+/g, ' ')).toContain('otherwise the change is more than 5% of the baseline');
  });

  it('gives the same as JSON and as CSV that reads back, and writes each side\'s histograms apart', async () => {
    const hgrm = path.join(dir, 'hgrm');
    const json = await runCli(['compare', '--baseline', oldDir, newDir, '--format', 'json', '--hgrm', hgrm], env);
    expect(json.code).toBe(0);
    expect(json.stderr).toMatch(/^brokerbench compare: wrote \d+ \.hgrm files \(values in ms\) to .*hgrm\/baseline\nbrokerbench compare: wrote \d+ .*hgrm\/new\n$/);
    expect((await readdir(path.join(hgrm, 'baseline'))).length).toBeGreaterThan(0);
    expect((await readdir(path.join(hgrm, 'new'))).length).toBeGreaterThan(0);
    const parsed = JSON.parse(json.stdout) as { schema: string; groups: { columns: { label: string; side: string; changes: { id: string; relativeChange: number; rule: string; marked: boolean }[] }[] }[] };
    expect(parsed.schema).toBe('brokerbench/baseline-comparison');
    const column = parsed.groups[0]!.columns[0]!;
    expect(column).toMatchObject({ label: 'memory default', side: 'both' });
    const rate = column.changes.find((c) => c.id === 'completionRate')!;
    expect(rate.rule).toBe('margin');
    expect(rate.marked).toBe(Math.abs(rate.relativeChange) > 0.05);

    const csv = await runCli(['compare', '--baseline', oldDir, newDir, '--format', 'csv'], env);
    expect(csv.code).toBe(0);
    const records = csvRecords(csv.stdout);
    const csvRate = records.find((r) => r['figure'] === 'completion rate')!;
    expect(csvRate).toMatchObject({ broker: 'memory default', side: 'both', unit: 'msg/s', marked: String(rate.marked) });
    expect(Number(csvRate['change (%)'])).toBeCloseTo(rate.relativeChange * 100, 6);
    expect(records.find((r) => r['figure'] === 'lost')).toMatchObject({ baseline: '0', new: '0', change: '0', rule: 'exact', marked: 'false' });
  });

  it('refuses a baseline that shares no workload and broker with the runs: one line, exit 2, nothing printed or written', async () => {
    const hgrm = path.join(dir, 'hgrm-none');
    const out = await runCli(['compare', '--baseline', path.join(FIXTURES, 'other'), newDir, '--hgrm', hgrm], env);
    expect(out.code).toBe(2);
    expect(out.stdout).toBe('');
    expect(out.stderr).toMatch(/^brokerbench compare: --baseline \S+other has no run of the same workload and broker as the runs compared \(baseline: 1 workload on redis-list reliable; compared: 1 workload on memory default\); [^\n]+\n$/);
    expect(existsSync(hgrm)).toBe(false);
  });

  const bad: [string, string[], RegExp][] = [
    ['a baseline that does not exist', ['--baseline', 'no-such-baseline.json'], /^brokerbench compare: --baseline no-such-baseline\.json: [^\n]+\n$/],
    ['an empty --baseline', ['--baseline='], /^brokerbench: --baseline needs a result file or folder, e.g. --baseline results\/old\.json\n$/],
    ['an unknown format', ['--format', 'xml'], /^brokerbench: Invalid values: Argument: format, Given: "xml", Choices: [^\n]+\n$/],
  ];
  it.each(bad)('refuses %s: one line, exit 2, nothing on stdout', async (_name, args, message) => {
    const out = await runCli(['compare', ...args, newDir], env);
    expect(out.code).toBe(2);
    expect(out.stdout).toBe('');
    expect(out.stderr).toMatch(message);
  });
});

describe('compare --format csv', () => {
  it('gives one row per broker per workload that a CSV reader takes back, numbers raw, units in the headers', async () => {
    const out = await runCli(['compare', '--format', 'csv', newDir, path.join(FIXTURES, 'same')], env);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const records = csvRecords(out.stdout);
    // The memory runs' workload (2,000 messages) and the fixtures' (five brokers and modes).
    expect(records.map((r) => r['broker']).sort()).toEqual(['memory default', 'redis-list reliable', 'redis-list simple', 'redis-stream group', 'sqs fifo', 'sqs standard']);
    const memory = records.find((r) => r['broker'] === 'memory default')!;
    expect(memory).toMatchObject({ runs: '2', 'messages of all runs (messages)': '4000', 'lost (messages)': '0' });
    // Titles hold commas: quoted, and read back whole.
    expect(memory['workload']).toMatch(/^throughput: 2,000 messages of 200 B, publish batch \d+ × 4 in flight/);
    expect(Number(memory['completion rate (msg/s)'])).toBeCloseTo(median(await completionRates(newDir)), 6);
  });
});
