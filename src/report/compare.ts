// `compare`: result files side by side, per workload the answer first (answer.ts: one row per broker
// with its guarantees, rate, p99, losses and cost, then its verdicts and any saturation warning), then
// the detailed table, one column per broker and mode, the best of each row marked by the same rule.
// Output as a terminal table, Markdown or JSON; every printer returns a string. Files that cannot be
// used are reported one line each; the rest are still compared.
//
// LIMITATION: "best" is per figure and blind to trade-offs (a faster broker may lose messages), though
// only brokers of one delivery guarantee are ranked together; a column merging several runs shows
// totals over all of them for counts (lost, duplicates ...).

import { formatCount, formatLatency, formatRate } from '../format.ts';
import { answerFor, BEST_RULE, bestMarks, guaranteesOf, runSpread, type Answer, type AnswerEntry, type AnswerField, type Ranked } from './answer.ts';
import { groupRuns, mergesSteps, type Column, type Group, type Spread } from './group.ts';
import { writeHgrmFiles } from './hgrm.ts';
import type { LatencyKind } from './load.ts';
import { COMPARISON_SCHEMA, loadRuns } from './load.ts';
import { costJson, costOfGroup, renderCostMarkdown, renderCostTable, type CostOptions } from './cost.ts';
import { renderCsv } from './csv.ts';
import { PERCENTILES } from './figures.ts';
import { describeRequestCost, pricingNote, SQS_PRICING } from './pricing.ts';
import { fitTable, terminalWidth, wrap, wrapLines } from './table.ts';

export type CompareFormat = 'table' | 'md' | 'json' | 'csv';

export { COMPARISON_SCHEMA };
/** 2: each group has its `answer` (answer.ts), and `best` follows its rule; every field of 1 is kept. */
export const COMPARISON_SCHEMA_VERSION = 2;

interface Row {
  /** Stable name, used in JSON's `best`. */
  readonly id: string;
  readonly label: string;
  /** The number ranked for "best"; undefined when the column has none (n/a). */
  readonly value?: (column: Column) => number | undefined;
  /** The cell text; defaults to `format(value)` or `n/a`. */
  readonly text?: (column: Column) => string;
  readonly format?: (value: number) => string;
  readonly better?: 'higher' | 'lower';
  /** A count: best only when strictly lower than every other (no margin, no spread). */
  readonly exact?: boolean;
  /** The [min, max] of the figure over the column's runs, where each run has its own. */
  readonly spread?: (column: Column) => Ranked['spread'];
  /** Rows shown only when they say something for this group. */
  readonly when?: (group: Group) => boolean;
}

/** One rendered row: cell texts and which cells hold the best value. */
export interface RenderedRow {
  readonly id: string;
  readonly label: string;
  readonly cells: readonly string[];
  readonly best: readonly boolean[];
}

const severalRuns = (group: Group): boolean => group.columns.some((c) => c.runs.length > 1);

function rateRows(id: 'publish' | 'receive' | 'completion', pick: (c: Column) => Spread): Row[] {
  return [
    {
      id: `${id}Rate`,
      label: `${id} rate`,
      value: (c) => pick(c).median,
      spread: (c) => (c.runs.length > 1 ? pick(c) : undefined),
      format: formatRate,
      better: 'higher',
    },
    {
      id: `${id}RateSpread`,
      label: '  min … max of runs',
      text: (c) => (c.runs.length > 1 ? `${formatCount(Math.round(pick(c).min))} … ${formatRate(pick(c).max)}` : '(1 run)'),
      when: severalRuns,
    },
  ];
}

function latencyRows(kind: LatencyKind, name: string): Row[] {
  return PERCENTILES.map(([field, label]) => ({
    id: `${kind}.${field}`,
    label: `${name} ${label}`,
    value: (c: Column) => (c.latencyUs[kind].count > 0 ? c.latencyUs[kind][field] : undefined),
    // Per run, from the runs the column's histograms merge (not those of several steps).
    spread: (c: Column) => runSpread(c.runs, (r) => (!mergesSteps(r) && r.result.latency[kind].count > 0 ? r.result.latency[kind][field] : undefined)),
    format: formatLatency,
    better: 'lower' as const,
    // Execution latency exists only when the runs had a task.
    ...(kind === 'execution' ? { when: (g: Group) => g.columns.some((c) => c.latencyUs.execution.count > 0) } : {}),
  }));
}

const count = (pick: (c: Column) => number): Pick<Row, 'value' | 'format' | 'better' | 'exact'> => ({
  value: pick,
  format: formatCount,
  better: 'lower',
  exact: true,
});

const ROWS: readonly Row[] = [
  { id: 'runs', label: 'runs merged', text: (c) => String(c.runs.length) },
  { id: 'messages', label: 'messages (all runs)', text: (c) => formatCount(c.messages) },
  { id: 'broker', label: 'broker version [endpoint]', text: (c) => `${c.serverVersion} [${c.endpointKind}]` },
  // Best is ranked within one guarantee: the row says which each column is in.
  { id: 'delivery', label: 'delivery guarantee', text: (c) => guaranteesOf(c).delivery },
  ...rateRows('publish', (c) => c.publishPerSec),
  ...rateRows('receive', (c) => c.receivePerSec),
  ...rateRows('completion', (c) => c.completePerSec),
  ...latencyRows('endToEnd', 'end-to-end'),
  ...latencyRows('publish', 'publish'),
  ...latencyRows('execution', 'execution'),
  { id: 'lost', label: 'lost', ...count((c) => c.lost) },
  { id: 'duplicateDeliveries', label: 'duplicate deliveries', ...count((c) => c.duplicateDeliveries) },
  { id: 'foreign', label: "foreign (not the run's)", ...count((c) => c.foreign) },
  { id: 'redeliveries', label: 'redelivered', ...count((c) => c.redeliveries) },
  { id: 'retried', label: 'retried (task failed)', ...count((c) => c.retried) },
  { id: 'deadLettered', label: 'dead-lettered', ...count((c) => c.deadLettered) },
  { id: 'errors', label: 'publish/receive/ack errors', ...count((c) => c.errors) },
  {
    id: 'requestsPerMessage',
    label: 'workload requests per message',
    value: (c) => c.requests?.perMessage,
    format: (v) => v.toFixed(3),
    better: 'lower',
  },
  {
    id: 'billedPerMessage',
    label: 'billed requests per message',
    value: (c) => c.requests?.billedPerMessage,
    format: (v) => v.toFixed(3),
    better: 'lower',
  },
  {
    id: 'housekeepingRequests',
    label: 'housekeeping requests',
    value: (c) => c.requests?.housekeeping,
    format: (v) => formatCount(v),
  },
  {
    id: 'usdPerMillionMessages',
    label: 'request cost per 1M messages',
    value: (c) => c.requests?.usdPerMillionMessages,
    text: (c) =>
      c.requests?.usdPerMillionMessages === undefined
        ? 'n/a'
        : describeRequestCost(c.requests.usdPerMillionMessages, c.requests.byService ?? []),
    better: 'lower',
  },
  { id: 'harnessCpuCores', label: 'harness CPU (cores, median)', text: (c) => c.harnessCpuCores.toFixed(2) },
  {
    id: 'harnessCpuUsPerMessage',
    label: 'harness CPU per message',
    value: (c) => c.harnessCpuUsPerMessage,
    format: formatLatency,
    better: 'lower',
  },
  { id: 'eventLoopDelayP99Ms', label: 'harness event-loop p99 (worst)', text: (c) => `${c.eventLoopDelayP99Ms.toFixed(1)} ms` },
];

/** ROWS, with rows for the scenario's own latency histograms (e.g. `lateness`) after the standard ones. */
function rowsFor(group: Group): Row[] {
  const names = [...new Set(group.columns.flatMap((c) => Object.keys(c.extraLatencyUs)))].sort();
  const extra = names.flatMap((name) =>
    PERCENTILES.map(([field, label]): Row => ({
      id: `${name}.${field}`,
      label: `${name} ${label}`,
      value: (c) => {
        const summary = c.extraLatencyUs[name];
        return summary && summary.count > 0 ? summary[field] : undefined;
      },
      spread: (c) =>
        runSpread(c.runs, (r) => {
          const summary = mergesSteps(r) ? undefined : r.result.scenarioData?.histograms[name];
          return summary && summary.count > 0 ? summary[field] : undefined;
        }),
      format: formatLatency,
      better: 'lower',
    })),
  );
  const at = ROWS.findIndex((row) => row.id === 'lost');
  return [...ROWS.slice(0, at), ...extra, ...ROWS.slice(at)];
}

/** The rows of one group's table as text, with the best cells flagged (answer.ts: bestMarks). */
export function renderRows(group: Group): RenderedRow[] {
  const guarantees = group.columns.map((c) => guaranteesOf(c).delivery);
  return rowsFor(group).filter((row) => !row.when || row.when(group)).map((row) => {
    const values = group.columns.map((c) => row.value?.(c));
    const ranked = group.columns.map((c, k): Ranked => ({ value: values[k], guarantee: guarantees[k]!, spread: row.spread?.(c) }));
    const best = row.better ? bestMarks(ranked, row.better, row.exact) : values.map(() => false);
    const cells = group.columns.map((c, k) => {
      if (row.text) return row.text(c);
      const v = values[k];
      return v === undefined ? 'n/a' : row.format!(v);
    });
    return { id: row.id, label: row.label, cells, best };
  });
}

export const NOTES = [
  BEST_RULE,
  'Latency: the histograms of every run in a column are merged (values added, never percentiles averaged).',
  'Multi-step runs: fixed-rate runs at different headline rates get tables of their own; a scale-out run of several steps adds no latency to its column (n/a): its histograms merge different consumer counts, so compare them per step in its result file.',
  'Rates: the median of the runs; "min … max" shows their spread when a column has several runs.',
];

/** No rule between body rows: a 30-row table stays readable on one screen. */
const COMPACT = { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' };

/** The answer table's columns: short heads, so the grid fits where it can; the broker's label is the long one. */
const ANSWER_COLUMNS: readonly { readonly head: string; readonly field?: AnswerField; readonly cell: (e: AnswerEntry) => string }[] = [
  { head: 'broker', cell: (e) => e.label },
  { head: 'delivery', cell: (e) => e.delivery },
  { head: 'order', cell: (e) => e.ordering },
  { head: 'DLQ', cell: (e) => (e.deadLetters ? 'yes' : 'no') },
  { head: 'delays', cell: (e) => (e.delays ? 'yes' : 'no') },
  { head: 'rate', field: 'rate', cell: (e) => formatRate(e.ratePerSec.median) },
  { head: 'p99', field: 'p99', cell: (e) => (e.p99Us === undefined ? 'n/a' : formatLatency(e.p99Us)) },
  { head: 'lost', field: 'lost', cell: (e) => formatCount(e.lost) },
  { head: 'dup', field: 'duplicates', cell: (e) => formatCount(e.duplicates) },
  { head: 'req/1M', field: 'requests', cell: (e) => (e.requestsPerMillion === undefined ? 'n/a' : formatCount(Math.round(e.requestsPerMillion))) },
  { head: '$/1M', field: 'cost', cell: (e) => (e.usdPerMillion === undefined ? 'n/a' : `$${e.usdPerMillion.toFixed(2)}`) },
];

/** The answer's cells, one row per broker, each with whether it is best. */
function answerCells(answer: Answer): { text: string; best: boolean }[][] {
  return answer.entries.map((entry) =>
    ANSWER_COLUMNS.map((column) => ({ text: column.cell(entry), best: column.field !== undefined && entry.best.includes(column.field) })),
  );
}

/**
 * What the reader must not miss below the answer table: a saturated harness (its figures are a
 * floor), then every verdict, `redis-list simple: LOST 20 of …`. A verdict every run of a column
 * gave is said once; one only some runs gave names the run's file.
 */
export function answerLines(answer: Answer): string[] {
  return answer.entries.flatMap((entry) => {
    const runs = [...new Set(entry.verdicts.map((v) => v.run))];
    const texts = [...new Set(entry.verdicts.map((v) => v.text))];
    const verdicts = texts.flatMap((text) => {
      const saidBy = runs.filter((run) => entry.verdicts.some((v) => v.run === run && v.text === text));
      return saidBy.length === runs.length ? [`${entry.label}: ${text}`] : saidBy.map((run) => `${entry.label} (${run}): ${text}`);
    });
    const warning =
      entry.saturation === undefined ? [] : [`${entry.label}: harness saturated (${entry.saturation}): these figures are a floor, the broker may be faster than shown`];
    return [...warning, ...verdicts];
  });
}

/** The comparison for a terminal `width` columns wide (default: this one's, else COLUMNS, else no limit): per group the answer, its lines, then the detailed table, each stacked when too wide. */
export function renderTable(groups: readonly Group[], width = terminalWidth(), afterAnswer?: (k: number) => string): string {
  const sections = groups.map((group, k) => {
    const answer = answerFor(group);
    const answerRows = answerCells(answer).map((row) => row.map((cell) => (cell.best ? `${cell.text} *` : cell.text)));
    const answerTable = fitTable(answerRows, width, { head: ANSWER_COLUMNS.map((c) => c.head), chars: COMPACT, stackBy: 'row' });
    const lines = answerLines(answer).flatMap((line) => wrap(line, width, '', '  '));
    const rows = renderRows(group).map((row) => [row.label, ...row.cells.map((cell, k) => (row.best[k] ? `${cell} *` : cell))]);
    const table = fitTable(rows, width, { head: ['', ...group.columns.map((c) => c.label)], chars: COMPACT, stackBy: 'column' });
    const extra = afterAnswer ? ['', afterAnswer(k)] : [];
    return [wrapLines(group.title, width), answerTable, ...lines, ...extra, '', table].join('\n');
  });
  return [...sections, wrapLines(['* best.', ...NOTES, pricingNote()].join('\n'), width)].join('\n\n');
}

export function renderMarkdown(groups: readonly Group[], afterAnswer?: (k: number) => string): string {
  const escape = (text: string): string => text.replace(/\|/g, '\\|').replace(/\*/g, '\\*');
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  const sections = groups.map((group, k) => {
    const answer = answerFor(group);
    const answerHead = ANSWER_COLUMNS.map((c) => escape(c.head));
    const answerBody = answerCells(answer).map((row) => line(row.map((cell) => (cell.best ? `**${escape(cell.text)}**` : escape(cell.text)))));
    const answerAlign = ANSWER_COLUMNS.map((c) => (c.field === undefined ? '---' : '---:'));
    const head = ['', ...group.columns.map((c) => escape(c.label))];
    const body = renderRows(group).map((row) =>
      line([escape(row.label.trim()), ...row.cells.map((cell, k) => (row.best[k] ? `**${escape(cell)}**` : escape(cell)))]),
    );
    return [
      `### ${escape(group.title)}`,
      '',
      line(answerHead),
      line(answerAlign),
      ...answerBody,
      '',
      ...answerLines(answer).map((text) => `- ${escape(text)}`),
      '',
      ...(afterAnswer ? [afterAnswer(k), ''] : []),
      line(head),
      line(head.map((_, k) => (k === 0 ? '---' : '---:'))),
      ...body,
    ].join('\n');
  });
  return [...sections, `**Bold**: best. ${[...NOTES, pricingNote()].map(escape).join(' ')}`].join('\n\n');
}

export function renderJson(groups: readonly Group[], extra: Readonly<Record<string, unknown>> = {}): string {
  return JSON.stringify(
    {
      schema: COMPARISON_SCHEMA,
      schemaVersion: COMPARISON_SCHEMA_VERSION,
      pricing: SQS_PRICING,
      groups: groups.map((group) => ({
        id: group.id,
        title: group.title,
        settings: group.settings,
        answer: answerFor(group),
        columns: group.columns.map((c) => ({
          label: c.label,
          adapter: c.adapter,
          mode: c.mode,
          serverVersion: c.serverVersion,
          endpointKind: c.endpointKind,
          runs: c.runs.map((r) => ({ file: r.file, runId: r.result.runId, startedAt: r.result.startedAt })),
          messages: c.messages,
          completed: c.completed,
          throughputPerSec: { publish: c.publishPerSec, receive: c.receivePerSec, completion: c.completePerSec },
          latencyUs: c.latencyUs,
          scenarioLatencyUs: c.extraLatencyUs,
          lost: c.lost,
          duplicateDeliveries: c.duplicateDeliveries,
          foreign: c.foreign,
          redeliveries: c.redeliveries,
          retried: c.retried,
          deadLettered: c.deadLettered,
          errors: c.errors,
          requests: c.requests ?? null,
          harness: { cpuCoresMedian: c.harnessCpuCores, cpuUsPerMessage: c.harnessCpuUsPerMessage, eventLoopDelayP99MsWorst: c.eventLoopDelayP99Ms },
        })),
        best: Object.fromEntries(
          renderRows(group)
            .filter((row) => row.best.includes(true))
            .map((row) => [row.id, group.columns.filter((_, k) => row.best[k]).map((c) => c.label)]),
        ),
      })),
      ...extra,
    },
    null,
    2,
  );
}

export interface CompareOptions {
  readonly format: CompareFormat;
  /** Also write every histogram as `.hgrm` percentile text into this folder. */
  readonly hgrmDir?: string;
  /** Columns the table format fits in; default the terminal's, else COLUMNS, else no limit. */
  readonly width?: number;
  /** Also what a month at a sustained rate costs on each broker (src/report/cost.ts), after the tables. */
  readonly cost?: CostOptions;
}

export interface CompareOutput {
  /** The comparison; empty when no file could be used. */
  readonly output: string;
  /** One line per file that could not be used. */
  readonly problems: readonly string[];
  /** Other one-line news for stderr (files written). */
  readonly notes: readonly string[];
}

export async function compareFiles(inputs: readonly string[], options: CompareOptions): Promise<CompareOutput> {
  const { runs, problems } = await loadRuns(inputs);
  if (runs.length === 0) return { output: '', problems, notes: [] };
  const groups = groupRuns(runs);
  const notes: string[] = [];
  if (options.hgrmDir !== undefined) {
    const written = await writeHgrmFiles(options.hgrmDir, groups);
    notes.push(`wrote ${written.length} .hgrm files (values in ms) to ${options.hgrmDir}`);
  }
  const render = { table: (g: readonly Group[]) => renderTable(g, options.width), md: renderMarkdown, json: renderJson, csv: renderCsv }[options.format];
  const { cost } = options;
  if (cost === undefined) return { output: render(groups), problems, notes };
  const costs = groups.map((group) => costOfGroup(group, cost));
  const output = {
    // Each workload's month right under its answer, before the detailed table.
    table: () => renderTable(groups, options.width, (k) => renderCostTable([costs[k]!], cost, options.width ?? terminalWidth())),
    md: () => renderMarkdown(groups, (k) => renderCostMarkdown([costs[k]!], cost)),
    json: () => renderJson(groups, { cost: costJson(costs, cost) }),
    // One row per broker per workload: the month's cost has no column there; JSON carries it.
    csv: () => renderCsv(groups),
  }[options.format]();
  return { output, problems, notes };
}
