// compare --baseline: the marking rules on chosen numbers, then pairing and the four outputs on the
// fixture result files (test/fixtures/results, written by the harness).

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  changeText,
  judgeChange,
  matchesAnything,
  NOISE_MARGIN,
  pairWithBaseline,
  renderBaselineCsv,
  renderBaselineJson,
  renderBaselineMarkdown,
  renderBaselineTable,
  type BaselineComparison,
  type SideValues,
} from '../../src/report/baseline.ts';
import { figuresFor } from '../../src/report/figures.ts';
import { groupRuns, type Group } from '../../src/report/group.ts';
import { loadRuns, type LoadedRun } from '../../src/report/load.ts';
import { csvRecords } from '../helpers/csv.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/results', import.meta.url));

const side = (value: number | undefined, perRun: number[] = [], messages = 1000): SideValues => ({ value, perRun, messages });

describe('marking rules', () => {
  it('single runs: a change within the 5% margin is noise, one beyond it is marked better or worse by the figure\'s direction', () => {
    expect(NOISE_MARGIN).toBe(0.05);
    expect(judgeChange('measured', 'higher', side(1000), side(1049))).toMatchObject({ rule: 'margin', marked: false, relative: 0.049 });
    expect(judgeChange('measured', 'higher', side(1000), side(951))).toMatchObject({ rule: 'margin', marked: false });
    expect(judgeChange('measured', 'higher', side(1000), side(1051))).toMatchObject({ rule: 'margin', marked: true, verdict: 'better' });
    expect(judgeChange('measured', 'higher', side(1000), side(900))).toMatchObject({ marked: true, verdict: 'worse' });
    // Latency: lower is better.
    expect(judgeChange('measured', 'lower', side(10), side(12))).toMatchObject({ marked: true, verdict: 'worse', difference: 2 });
    expect(judgeChange('measured', 'lower', side(10), side(8))).toMatchObject({ marked: true, verdict: 'better' });
  });

  it('several runs on both sides: marked only when the runs\' [min, max] ranges do not overlap, whatever the size of the change', () => {
    // Medians 20% apart, but the runs overlap: noise.
    expect(judgeChange('measured', 'higher', side(1000, [800, 1000, 1300]), side(1200, [1250, 1200, 1100]))).toMatchObject({ rule: 'ranges', marked: false });
    // 2% apart, but every new run beats every old one: a real change.
    expect(judgeChange('measured', 'higher', side(1000, [998, 1000, 1001]), side(1020, [1015, 1020, 1025]))).toMatchObject({ rule: 'ranges', marked: true, verdict: 'better' });
    expect(judgeChange('measured', 'lower', side(5, [4, 5]), side(9, [8, 10]))).toMatchObject({ rule: 'ranges', marked: true, verdict: 'worse' });
    // Ranges that touch overlap.
    expect(judgeChange('measured', 'higher', side(1, [1, 2]), side(3, [2, 3]))).toMatchObject({ rule: 'ranges', marked: false });
  });

  it('several runs on one side only: the margin, as a single run has no spread', () => {
    expect(judgeChange('measured', 'higher', side(1000, [990, 1010]), side(1030))).toMatchObject({ rule: 'margin', marked: false });
    expect(judgeChange('measured', 'higher', side(1000), side(1100, [1090, 1110]))).toMatchObject({ rule: 'margin', marked: true });
  });

  it('counts are exact: any change per message is marked, the same rate over more messages is not', () => {
    expect(judgeChange('exact', 'lower', side(0), side(1))).toMatchObject({ rule: 'exact', marked: true, verdict: 'worse', difference: 1 });
    expect(judgeChange('exact', 'lower', side(3), side(0))).toMatchObject({ marked: true, verdict: 'better' });
    expect(judgeChange('exact', 'lower', side(0), side(0))).toMatchObject({ marked: false, difference: 0 });
    // 2 in 1,000 then 4 in 2,000 (two runs): the same per message.
    expect(judgeChange('exact', 'lower', side(2, [], 1000), side(4, [], 2000))).toMatchObject({ marked: false });
    expect(judgeChange('exact', 'lower', side(2, [], 1000), side(3, [], 2000))).toMatchObject({ marked: true, verdict: 'better' });
    // Retries follow the workload's failure rate: a change, neither better nor worse.
    expect(judgeChange('exact', undefined, side(10), side(12))).toMatchObject({ marked: true, verdict: 'changed' });
  });

  it('never marks context, nor a figure one side lacks; a rise from 0 is marked', () => {
    expect(judgeChange('none', undefined, side(1000), side(5000))).toMatchObject({ rule: 'none', marked: false, relative: 4 });
    expect(judgeChange('measured', 'lower', side(undefined), side(5))).toMatchObject({ marked: false, difference: undefined });
    const fromZero = judgeChange('measured', 'lower', side(0), side(5));
    expect(fromZero).toMatchObject({ marked: true, verdict: 'worse', relative: undefined });
    const cost = figuresFor([]).find((f) => f.id === 'usdPerMillionMessages')!;
    expect(changeText(cost, fromZero)).toBe('from 0 worse');
  });

  it('says a change as a signed percentage, a count as a signed difference, and the verdict when marked', () => {
    const figures = figuresFor([]);
    const rate = figures.find((f) => f.id === 'completionRate')!;
    const lost = figures.find((f) => f.id === 'lost')!;
    expect(changeText(rate, judgeChange(rate.rule, rate.better, side(1000), side(1123)))).toBe('+12.3% better');
    expect(changeText(rate, judgeChange(rate.rule, rate.better, side(1000), side(980)))).toBe('-2.0%');
    expect(changeText(lost, judgeChange(lost.rule, lost.better, side(0), side(1500)))).toBe('+1,500 worse');
    expect(changeText(lost, judgeChange(lost.rule, lost.better, side(0), side(0)))).toBe('0');
  });
});

describe('against the fixture runs', () => {
  let runs: readonly LoadedRun[];
  let comparison: BaselineComparison;
  let baselineGroups: Group[];
  const sameRuns = (): LoadedRun[] => runs.filter((r) => r.file.includes(`${path.sep}same${path.sep}`));
  const first = (name: string): LoadedRun => sameRuns().find((r) => path.basename(r.file).includes(name))!;

  beforeAll(async () => {
    runs = (await loadRuns([FIXTURES])).runs;
    // Baseline: one run of redis-list reliable and one of sqs standard; compared: the whole same/ folder and other/.
    baselineGroups = groupRuns([first('redis-list-reliable'), first('sqs-standard')]);
    comparison = pairWithBaseline(baselineGroups, groupRuns(runs));
  });

  it('pairs the workload and the brokers on both sides, lists the rest as new', () => {
    expect(matchesAnything(comparison)).toBe(true);
    expect(comparison.groups).toHaveLength(1);
    const [group] = comparison.groups;
    const sides = group!.columns.map((c) => [c.label, c.baseline ? c.baseline.runs.length : 0, c.current ? c.current.runs.length : 0]);
    expect(sides).toEqual([
      ['redis-list reliable', 1, 2],
      ['redis-list simple', 0, 1],
      ['redis-stream group', 0, 1],
      ['sqs fifo', 0, 1],
      ['sqs standard', 1, 2],
    ]);
    expect(comparison.onlyNew.map((g) => g.messagesPerRun)).toEqual([500]);
    expect(comparison.onlyInBaseline).toEqual([]);
  });

  it('computes each change from the columns\' own figures', () => {
    const pair = comparison.groups[0]!.columns.find((c) => c.label === 'sqs standard')!;
    const rate = pair.changes.find((c) => c.figure.id === 'completionRate')!;
    expect(rate.baseline).toBe(pair.baseline!.completePerSec.median);
    expect(rate.current).toBe(pair.current!.completePerSec.median);
    expect(rate.judgement.relative).toBeCloseTo((rate.current! - rate.baseline!) / rate.baseline!, 12);
    // One baseline run: the margin rule.
    expect(rate.judgement.rule).toBe('margin');
    expect(rate.judgement.marked).toBe(Math.abs(rate.judgement.relative!) > NOISE_MARGIN);
    expect(pair.changes.find((c) => c.figure.id === 'lost')!.judgement).toMatchObject({ rule: 'exact', marked: false, difference: 0 });
  });

  it('uses the runs\' ranges when both sides have several, and pairs a broker across server versions', () => {
    const base = groupRuns(sameRuns())[0]!;
    const upgraded: Group = { ...base, columns: base.columns.map((c) => ({ ...c, serverVersion: `${c.serverVersion}-next` })) };
    const self = pairWithBaseline([base], [upgraded]);
    const reliable = self.groups[0]!.columns.find((c) => c.label === 'redis-list reliable')!;
    expect(reliable.baseline!.serverVersion).not.toBe(reliable.current!.serverVersion);
    const rate = reliable.changes.find((c) => c.figure.id === 'completionRate')!;
    // The same runs on both sides: their ranges overlap, no change.
    expect(rate.judgement).toMatchObject({ rule: 'ranges', marked: false, difference: 0 });
  });

  it('matches nothing when no workload and broker are on both sides', () => {
    const other = runs.filter((r) => r.result.config.messages === 500);
    expect(matchesAnything(pairWithBaseline(groupRuns(other), groupRuns(sameRuns())))).toBe(false);
    // Same workload, other brokers.
    const sqsOnly = groupRuns([first('sqs-fifo')]);
    expect(matchesAnything(pairWithBaseline(sqsOnly, groupRuns([first('redis-list-simple')])))).toBe(false);
  });

  it('prints a terminal table per broker on both sides, within 80 columns, with the verdicts and the rules', () => {
    const text = renderBaselineTable(comparison, 80);
    expect(Math.max(...text.split('\n').map((line) => [...line].length))).toBeLessThanOrEqual(80);
    expect(text).toMatch(/^redis-list reliable: baseline 1 run, 7\.0\.15 \[local\]; new 2 runs, 7\.0\.15 \[local\]$/m);
    expect(text).toMatch(/^redis-list simple: new \(1 run, 7\.0\.15 \[local\]\)$/m);
    expect(text).toMatch(/│ +│ baseline +│ new +│ change +│/);
    expect(text).toMatch(/^new: throughput: 500 messages/m);
    expect(text).toContain(`more than ${NOISE_MARGIN * 100}% of the baseline`);
    const marked = comparison.groups[0]!.columns.flatMap((c) => c.changes.filter((ch) => ch.judgement.marked && !ch.figure.detail));
    const words = text.match(/ (better|worse|changed) +│/g) ?? [];
    expect(words.length).toBe(marked.length);
  });

  it('prints Markdown with the marked changes in bold, every row with the header\'s cell count', () => {
    const md = renderBaselineMarkdown(comparison);
    const lines = md.split('\n').filter((line) => line.startsWith('|'));
    for (const line of lines) expect(line.replace(/\\\|/g, '').split('|').length, line).toBe(6);
    expect(md).toMatch(/^#### sqs standard: baseline 1 run/m);
    for (const line of lines) {
      if (/ (better|worse|changed) /.test(line)) expect(line, line).toMatch(/\*\*[^*]+ (better|worse|changed)\*\* \|$/);
    }
    expect(md).toMatch(/^- new: throughput: 500 messages/m);
  });

  it('prints JSON with both values, the change, the rule and the mark of every figure', () => {
    const json = JSON.parse(renderBaselineJson(comparison)) as {
      schema: string;
      noiseMargin: number;
      groups: { columns: { label: string; side: string; changes: { id: string; unit: string; baseline: number; new: number; rule: string; marked: boolean; verdict: string | null }[] }[] }[];
      new: { title: string }[];
    };
    expect(json.schema).toBe('brokerbench/baseline-comparison');
    expect(json.noiseMargin).toBe(0.05);
    const columns = json.groups[0]!.columns;
    expect(columns.map((c) => c.side)).toEqual(['both', 'new', 'new', 'new', 'both']);
    const p99 = columns[0]!.changes.find((c) => c.id === 'endToEnd.p99')!;
    expect(p99).toMatchObject({ unit: 'ms', rule: 'margin' });
    expect(p99.verdict === null).toBe(!p99.marked);
    expect(json.new[0]!.title).toMatch(/^throughput: 500 messages/);
  });

  it('prints CSV of one row per workload, broker and figure, reading back with the change and the mark', () => {
    const records = csvRecords(renderBaselineCsv(comparison));
    const rate = records.find((r) => r['broker'] === 'sqs standard' && r['figure'] === 'completion rate')!;
    const pair = comparison.groups[0]!.columns.find((c) => c.label === 'sqs standard')!;
    const judged = pair.changes.find((c) => c.figure.id === 'completionRate')!;
    expect(rate).toMatchObject({ side: 'both', unit: 'msg/s', rule: 'margin', marked: String(judged.judgement.marked) });
    expect(Number(rate['change (%)'])).toBeCloseTo(judged.judgement.relative! * 100, 6);
    expect(Number(rate['new']) - Number(rate['baseline'])).toBeCloseTo(Number(rate['change']), 6);
    const fresh = records.filter((r) => r['broker'] === 'redis-stream group');
    expect(fresh.length).toBeGreaterThan(10);
    for (const r of fresh) expect(r).toMatchObject({ side: 'new', baseline: '', change: '', marked: '' });
  });
});
