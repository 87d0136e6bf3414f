// `compare --baseline OLD NEW...`: the runs compared against a baseline, workload by workload and
// broker by broker (only those on both sides), each figure with its change (`+12.3%`) and marked
// better or worse only when the change is more than the runs' noise:
//
// - measured figures (rates, latency percentiles, requests, cost and harness CPU per message): with
//   several runs on both sides, when the ranges of the runs' own values [min, max] do not overlap;
//   otherwise (a side of one run has no spread), when the change is more than NOISE_MARGIN (5%);
// - counts (lost, duplicates, redelivered, errors ...) are exact: any change is marked, judged per
//   message, as the sides may hold different numbers of runs;
// - context (messages, the harness's own load) is shown and never marked.
//
// A broker or a workload on one side only is listed as "only in baseline" or "new".
//
// LIMITATION: the 5% margin is a stated rule, not a statistical test: a noisy host can move a single
// run further, and two runs a side give a narrow idea of the spread. Run each side several times.

import path from 'node:path';
import type { CompareOptions, CompareOutput } from './compare.ts';
import { csvText, type CsvField } from './csv.ts';
import { figuresFor, type ChangeRule, type Figure } from './figures.ts';
import { groupRuns, type Column, type Group } from './group.ts';
import { writeHgrmFiles } from './hgrm.ts';
import { loadRuns } from './load.ts';
import { fitTable, terminalWidth, wrapLines } from './table.ts';

/** A change of a measured figure within this share of the baseline is noise, when a side has one run. */
export const NOISE_MARGIN = 0.05;

export const BASELINE_SCHEMA = 'brokerbench/baseline-comparison';

/** One side's figure: the column's value and each run's own, for the spread. */
export interface SideValues {
  /** The column's figure (a rate: the median of its runs; a latency: of the merged histograms). */
  readonly value: number | undefined;
  /** The same figure of each run alone; fewer than two: no spread known. */
  readonly perRun: readonly number[];
  /** Messages the side's runs meant to publish, all together: counts are judged per message. */
  readonly messages: number;
}

/** How a figure moved against the baseline, and whether that is more than noise. */
export interface Judgement {
  /** New minus baseline, in the figure's unit; undefined when either side has none. */
  readonly difference: number | undefined;
  /** The difference as a share of the baseline; undefined when the baseline is 0 or missing. */
  readonly relative: number | undefined;
  /** Which rule judged it: `ranges` of several runs, the noise `margin`, `exact` counts, or `none` (context). */
  readonly rule: 'ranges' | 'margin' | 'exact' | 'none';
  readonly marked: boolean;
  /** For a marked change: better or worse where the figure has a direction, else changed. */
  readonly verdict?: 'better' | 'worse' | 'changed';
}

/** Judges one figure's change from `baseline` to `current` by the rules in this file's head. */
export function judgeChange(rule: ChangeRule, better: 'higher' | 'lower' | undefined, baseline: SideValues, current: SideValues): Judgement {
  const b = baseline.value;
  const n = current.value;
  if (b === undefined || n === undefined) return { difference: undefined, relative: undefined, rule: rule === 'exact' ? 'exact' : rule === 'none' ? 'none' : 'margin', marked: false };
  const difference = n - b;
  const relative = b === 0 ? undefined : difference / Math.abs(b);
  if (rule === 'none') return { difference, relative, rule: 'none', marked: false };
  let used: Judgement['rule'];
  let marked: boolean;
  let up: boolean;
  if (rule === 'exact') {
    // Per message: the same count over twice the messages is no change. Cross-multiplied, so exact.
    used = 'exact';
    marked = n * baseline.messages !== b * current.messages;
    up = n * baseline.messages > b * current.messages;
  } else if (baseline.perRun.length > 1 && current.perRun.length > 1) {
    used = 'ranges';
    marked = Math.max(...baseline.perRun) < Math.min(...current.perRun) || Math.max(...current.perRun) < Math.min(...baseline.perRun);
    up = n > b;
  } else {
    used = 'margin';
    marked = relative === undefined ? n !== 0 : Math.abs(relative) > NOISE_MARGIN;
    up = n > b;
  }
  if (!marked) return { difference, relative, rule: used, marked };
  const verdict = better === undefined ? 'changed' : (better === 'higher') === up ? 'better' : 'worse';
  return { difference, relative, rule: used, marked, verdict };
}

/** A broker of a workload: on both sides with its figures judged, or on one side only. */
export interface PairedColumn {
  readonly label: string;
  readonly baseline?: Column;
  readonly current?: Column;
  /** Every figure either side has, judged; empty for a column on one side only. */
  readonly changes: readonly { readonly figure: Figure; readonly baseline?: number; readonly current?: number; readonly judgement: Judgement }[];
}

export interface PairedGroup {
  readonly id: string;
  readonly title: string;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly columns: readonly PairedColumn[];
}

export interface BaselineComparison {
  /** Workloads on both sides, with at least one broker in common among them all. */
  readonly groups: readonly PairedGroup[];
  readonly onlyInBaseline: readonly Group[];
  readonly onlyNew: readonly Group[];
  readonly figures: readonly Figure[];
}

/** True when something is on both sides: a workload run on the same broker. */
export const matchesAnything = (comparison: BaselineComparison): boolean =>
  comparison.groups.some((g) => g.columns.some((c) => c.baseline !== undefined && c.current !== undefined));

/** Pairs the baseline's workloads and brokers with the compared ones' and judges every figure. */
export function pairWithBaseline(baseline: readonly Group[], current: readonly Group[]): BaselineComparison {
  const figures = figuresFor([...baseline, ...current]);
  const byId = new Map(baseline.map((g) => [g.id, g]));
  const groups = current.flatMap((group): PairedGroup[] => {
    const old = byId.get(group.id);
    if (!old) return [];
    return [{ id: group.id, title: group.title, settings: group.settings, columns: pairColumns(old.columns, group.columns, figures) }];
  });
  const paired = new Set(groups.map((g) => g.id));
  return {
    groups,
    onlyInBaseline: baseline.filter((g) => !paired.has(g.id)),
    onlyNew: current.filter((g) => !paired.has(g.id)),
    figures,
  };
}

/**
 * A broker is its adapter and mode, so a run on a new server version is compared with the old one;
 * where a side has that adapter and mode on several versions or machines, the column labels pair them.
 */
function pairColumns(baseline: readonly Column[], current: readonly Column[], figures: readonly Figure[]): PairedColumn[] {
  const broker = (c: Column): string => `${c.adapter} ${c.mode}`;
  const keyOf = (c: Column): string =>
    baseline.filter((o) => broker(o) === broker(c)).length === 1 && current.filter((o) => broker(o) === broker(c)).length === 1 ? broker(c) : c.label;
  const old = new Map(baseline.map((c) => [keyOf(c), c]));
  const pairs = current.map((c): PairedColumn => {
    const before = old.get(keyOf(c));
    old.delete(keyOf(c));
    return before ? { label: c.label, baseline: before, current: c, changes: judgeColumn(before, c, figures) } : { label: c.label, current: c, changes: [] };
  });
  return [...pairs, ...[...old.values()].map((c): PairedColumn => ({ label: c.label, baseline: c, changes: [] }))];
}

function judgeColumn(baseline: Column, current: Column, figures: readonly Figure[]): PairedColumn['changes'] {
  const sides = [baseline, current].map((column) => ({ column, singles: column.runs.length > 1 ? column.runs.map((run) => groupRuns([run])[0]!.columns[0]!) : [] }));
  const valuesOf = (figure: Figure, side: (typeof sides)[number]): SideValues => ({
    value: figure.value(side.column),
    perRun: side.singles.map((single) => figure.value(single)).filter((v): v is number => v !== undefined),
    messages: side.column.messages,
  });
  return figures.flatMap((figure) => {
    const [b, n] = sides.map((side) => valuesOf(figure, side)) as [SideValues, SideValues];
    if (b.value === undefined && n.value === undefined) return [];
    return [{ figure, baseline: b.value, current: n.value, judgement: judgeChange(figure.rule, figure.better, b, n) }];
  });
}

/** `+12.3%`, `-2` for a count, `from 0`, `n/a`; with the verdict when marked. */
export function changeText(figure: Figure, judgement: Judgement): string {
  const { difference, relative } = judgement;
  let text: string;
  if (difference === undefined) text = 'n/a';
  else if (figure.rule === 'exact') text = `${difference > 0 ? '+' : ''}${figure.format(difference)}`;
  else if (relative !== undefined) text = `${relative > 0 ? '+' : ''}${(relative * 100).toFixed(1)}%`;
  else text = difference === 0 ? '0.0%' : 'from 0';
  return judgement.verdict ? `${text} ${judgement.verdict}` : text;
}

const runsText = (c: Column): string => `${c.runs.length} run${c.runs.length === 1 ? '' : 's'}, ${c.serverVersion} [${c.endpointKind}]`;

/** `redis-list reliable: baseline 2 runs, 7.0.15 [local]; new 1 run, 7.2.4 [local]`. */
function headOf(pair: PairedColumn): string {
  if (!pair.current) return `${pair.label}: only in baseline (${runsText(pair.baseline!)})`;
  if (!pair.baseline) return `${pair.label}: new (${runsText(pair.current)})`;
  return `${pair.label}: baseline ${runsText(pair.baseline)}; new ${runsText(pair.current)}`;
}

const cell = (figure: Figure, value: number | undefined): string => (value === undefined ? 'n/a' : figure.format(value));

/** The rows a table shows: every judged figure but the details. */
const tableRows = (pair: PairedColumn): PairedColumn['changes'] => pair.changes.filter((c) => !c.figure.detail);

export const BASELINE_NOTE =
  `better / worse: a change beyond the noise. Rates, latencies, requests and CPU per message: with several runs on both sides, ` +
  `their min … max ranges do not overlap; otherwise the change is more than ${NOISE_MARGIN * 100}% of the baseline. ` +
  'Counts (lost, duplicates, redelivered, errors …) are exact: any change per message is marked; "changed" where more is neither better nor worse. ' +
  'A change without a word is within the noise; messages, housekeeping and the harness\'s own load are context, never marked.';

function onlyLines(comparison: BaselineComparison): string[] {
  return [
    ...comparison.onlyInBaseline.map((g) => `only in baseline: ${g.title} (${g.columns.map((c) => c.label).join(', ')})`),
    ...comparison.onlyNew.map((g) => `new: ${g.title} (${g.columns.map((c) => c.label).join(', ')})`),
  ];
}

/** No rule between body rows, as compare's tables. */
const COMPACT = { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' };

export function renderBaselineTable(comparison: BaselineComparison, width = terminalWidth()): string {
  const sections = comparison.groups.map((group) => {
    const parts = group.columns.map((pair) => {
      const head = wrapLines(headOf(pair), width);
      if (!pair.baseline || !pair.current) return head;
      const rows = tableRows(pair).map((c) => [c.figure.label, cell(c.figure, c.baseline), cell(c.figure, c.current), changeText(c.figure, c.judgement)]);
      return `${head}\n${fitTable(rows, width, { head: ['', 'baseline', 'new', 'change'], chars: COMPACT, stackBy: 'row' })}`;
    });
    return [wrapLines(group.title, width), ...parts].join('\n');
  });
  const only = onlyLines(comparison);
  return [...sections, ...(only.length > 0 ? [wrapLines(only.join('\n'), width)] : []), wrapLines(BASELINE_NOTE, width)].join('\n\n');
}

export function renderBaselineMarkdown(comparison: BaselineComparison): string {
  const escape = (text: string): string => text.replace(/\|/g, '\\|').replace(/\*/g, '\\*');
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  const sections = comparison.groups.map((group) => {
    const parts = group.columns.map((pair) => {
      const head = `#### ${escape(headOf(pair))}`;
      if (!pair.baseline || !pair.current) return head;
      const body = tableRows(pair).map((c) => {
        const change = escape(changeText(c.figure, c.judgement));
        return line([escape(c.figure.label), escape(cell(c.figure, c.baseline)), escape(cell(c.figure, c.current)), c.judgement.marked ? `**${change}**` : change]);
      });
      return [head, '', line(['', 'baseline', 'new', 'change']), line(['---', '---:', '---:', '---:']), ...body].join('\n');
    });
    return [`### ${escape(group.title)}`, ...parts].join('\n\n');
  });
  const only = onlyLines(comparison).map((text) => `- ${escape(text)}`);
  return [...sections, ...(only.length > 0 ? [only.join('\n')] : []), `**Bold**: ${escape(BASELINE_NOTE)}`].join('\n\n');
}

export function renderBaselineJson(comparison: BaselineComparison): string {
  const side = (c: Column | undefined): unknown =>
    c === undefined ? null : { serverVersion: c.serverVersion, endpointKind: c.endpointKind, messages: c.messages, runs: c.runs.map((r) => ({ file: r.file, runId: r.result.runId, startedAt: r.result.startedAt })) };
  const workload = (g: Group): unknown => ({ id: g.id, title: g.title, columns: g.columns.map((c) => c.label) });
  return JSON.stringify(
    {
      schema: BASELINE_SCHEMA,
      schemaVersion: 1,
      noiseMargin: NOISE_MARGIN,
      rules: BASELINE_NOTE,
      groups: comparison.groups.map((group) => ({
        id: group.id,
        title: group.title,
        settings: group.settings,
        columns: group.columns.map((pair) => ({
          label: pair.label,
          side: pair.baseline && pair.current ? 'both' : pair.baseline ? 'only in baseline' : 'new',
          baseline: side(pair.baseline),
          new: side(pair.current),
          changes: pair.changes.map(({ figure, baseline, current, judgement }) => ({
            id: figure.id,
            label: figure.label,
            unit: figure.unit,
            baseline: baseline ?? null,
            new: current ?? null,
            difference: judgement.difference ?? null,
            relativeChange: judgement.relative ?? null,
            rule: judgement.rule,
            marked: judgement.marked,
            verdict: judgement.verdict ?? null,
          })),
        })),
      })),
      onlyInBaseline: comparison.onlyInBaseline.map(workload),
      new: comparison.onlyNew.map(workload),
    },
    null,
    2,
  );
}

/**
 * One row per workload, broker and figure (a spreadsheet filters on `marked`): both sides' values,
 * the change and how it was judged; a broker on one side only has its own values alone.
 */
export function renderBaselineCsv(comparison: BaselineComparison): string {
  const head = ['workload', 'workload id', 'broker', 'side', 'figure', 'unit', 'baseline', 'new', 'change', 'change (%)', 'rule', 'marked', 'verdict'];
  const alone = (group: { id: string; title: string }, column: Column, sideName: 'only in baseline' | 'new'): CsvField[][] =>
    comparison.figures.flatMap((figure) => {
      const value = figure.value(column);
      if (value === undefined) return [];
      const [baseline, current] = sideName === 'new' ? [undefined, value] : [value, undefined];
      // Nothing to judge: the change, rule, mark and verdict stay empty.
      return [[group.title, group.id, column.label, sideName, figure.label, figure.unit, baseline, current, undefined, undefined, undefined, undefined, undefined]];
    });
  const rows: CsvField[][] = comparison.groups.flatMap((group) =>
    group.columns.flatMap((pair) => {
      if (!pair.current) return alone(group, pair.baseline!, 'only in baseline');
      if (!pair.baseline) return alone(group, pair.current, 'new');
      return pair.changes.map(({ figure, baseline, current, judgement }) => [
        group.title,
        group.id,
        pair.label,
        'both',
        figure.label,
        figure.unit,
        baseline,
        current,
        judgement.difference,
        judgement.relative === undefined ? undefined : judgement.relative * 100,
        judgement.rule,
        judgement.marked,
        judgement.verdict,
      ]);
    }),
  );
  for (const group of comparison.onlyInBaseline) for (const column of group.columns) rows.push(...alone(group, column, 'only in baseline'));
  for (const group of comparison.onlyNew) for (const column of group.columns) rows.push(...alone(group, column, 'new'));
  return csvText([head, ...rows]);
}

/**
 * `compare --baseline`: loads both sides, pairs them and renders the changes. A baseline that shares
 * no workload and broker with the runs compared is one problem line and no output.
 */
export async function compareWithBaseline(baselineInputs: readonly string[], inputs: readonly string[], options: CompareOptions): Promise<CompareOutput> {
  const old = await loadRuns(baselineInputs);
  const current = await loadRuns(inputs);
  const problems = [...old.problems.map((p) => `--baseline ${p}`), ...current.problems];
  if (old.runs.length === 0 || current.runs.length === 0) return { output: '', problems, notes: [] };
  const oldGroups = groupRuns(old.runs);
  const newGroups = groupRuns(current.runs);
  const comparison = pairWithBaseline(oldGroups, newGroups);
  if (!matchesAnything(comparison)) {
    const count = (groups: readonly Group[]): string => {
      const brokers = new Set(groups.flatMap((g) => g.columns.map((c) => `${c.adapter} ${c.mode}`)));
      return `${groups.length} workload${groups.length === 1 ? '' : 's'} on ${[...brokers].join(', ')}`;
    };
    problems.push(
      `--baseline ${baselineInputs.join(' ')} has no run of the same workload and broker as the runs compared (baseline: ${count(oldGroups)}; compared: ${count(newGroups)}); ` +
        'give a baseline run with the same flags (all but --channel, --seed and --timeout) on the same broker',
    );
    return { output: '', problems, notes: [] };
  }
  const notes: string[] = [];
  if (options.hgrmDir !== undefined) {
    for (const [name, groups] of [['baseline', oldGroups], ['new', newGroups]] as const) {
      const dir = path.join(options.hgrmDir, name);
      const written = await writeHgrmFiles(dir, groups);
      notes.push(`wrote ${written.length} .hgrm files (values in ms) to ${dir}`);
    }
  }
  const render = {
    table: (c: BaselineComparison) => renderBaselineTable(c, options.width),
    md: renderBaselineMarkdown,
    json: renderBaselineJson,
    csv: renderBaselineCsv,
  }[options.format];
  return { output: render(comparison), problems, notes };
}
