// What the report's charts draw, computed here and passed to the page as data: one colour per column
// label for the whole page, latency by percentile per group, the sustained rate per broker as bars,
// the curves of multi-step scenarios (scale-out: rate against consumers; fixed-rate: p99 against the
// offered rate) and each run's timeline at a resolution that reads.
//
// LIMITATION: latency curves stop where a histogram runs out of samples (past 1 - 1/count); a curve
// point stands for the median of the runs that tried that step; a timeline is at most TIMELINE_POINTS
// buckets, so a long run's sub-second detail is summed away.

import type { Histogram } from 'hdr-histogram-js';
import { coarsen } from '../metrics/timeline.ts';
import { spread, type Column, type Group } from './group.ts';
import type { LatencyKind, LoadedRun } from './load.ts';

/** Tableau 10, grey last: enough for the brokers and modes of one report; beyond them, hues a golden angle apart. */
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];

/** Steps per decade of 1/(1-p): 20 gives a smooth curve at ~100 points per series. */
const STEPS_PER_DECADE = 20;
const MAX_DECADES = 5; // 99.999%
/** Most points a timeline draws: 100 ms buckets for runs up to 20 s, wider ones beyond. */
export const TIMELINE_POINTS = 200;

export const KIND_TITLE: Readonly<Record<LatencyKind, string>> = {
  endToEnd: 'End-to-end latency (send to receipt by a consumer)',
  publish: 'Publish latency (call to broker acknowledgement)',
  execution: 'Execution latency (task)',
  completion: 'Completion latency (send to ack after the task)',
};
const CHARTED_KINDS: readonly LatencyKind[] = ['endToEnd', 'publish', 'execution'];

/** A line of one broker: its column label and colour, points [x, y]. */
export interface BrokerSeries {
  readonly label: string;
  readonly colour: string;
  readonly points: readonly (readonly [number, number])[];
  /** Per point, false where the step was not held (fixed-rate): drawn as a cross. */
  readonly held?: readonly boolean[];
}

export interface LineChart {
  readonly id: string;
  readonly title: string;
  readonly xTitle: string;
  readonly yTitle: string;
  /** `percentile`: x is 1/(1-p), labelled as percentiles; y is latency, its log axis switchable. */
  readonly kind: 'percentile' | 'curve';
  readonly xLog: boolean;
  readonly yLog: boolean;
  readonly series: readonly BrokerSeries[];
}

export interface BarChart {
  readonly id: string;
  readonly title: string;
  readonly labels: readonly string[];
  readonly colours: readonly string[];
  /** Median completion rate of each column's runs, msg/s. */
  readonly median: readonly number[];
  /** min … max of the runs, where a column has more than one; null otherwise. */
  readonly range: readonly (readonly [number, number] | null)[];
  readonly runs: readonly number[];
}

export interface TimelineChart {
  readonly id: string;
  readonly title: string;
  /** The run's column label, and its colour. */
  readonly label: string;
  readonly colour: string;
  readonly bucketMs: number;
  /** Start of each bucket, seconds since the first publish. */
  readonly seconds: readonly number[];
  /** Per second, over each bucket. */
  readonly published: readonly number[];
  readonly received: readonly number[];
  readonly completed: readonly number[];
  /** Null where a bucket had no depth sample; absent when none had one. */
  readonly depth?: readonly (number | null)[];
}

/** The page's data: every chart, and the colour of every column label. */
export interface ChartData {
  readonly colours: Readonly<Record<string, string>>;
  readonly lineCharts: LineChart[];
  readonly barCharts: BarChart[];
  readonly timelineCharts: TimelineChart[];
}

/** One colour per column label across the page, from the sorted labels of every group. */
export function assignColours(groups: readonly Group[]): Record<string, string> {
  const labels = [...new Set(groups.flatMap((g) => g.columns.map((c) => c.label)))].sort();
  return Object.fromEntries(labels.map((label, k) => [label, k < PALETTE.length ? PALETTE[k]! : `hsl(${Math.round((k * 137.508) % 360)}, 65%, 42%)`]));
}

/**
 * Latency at percentiles evenly spaced on a log scale of 1/(1-p), from p = 0 to 99.999 or as far as
 * the histogram's count reaches, ending at its max. Values in ms.
 */
export function percentileCurve(histogramUs: Histogram): [number, number][] {
  const count = histogramUs.totalCount;
  if (count === 0) return [];
  const decades = Math.min(MAX_DECADES, Math.log10(count));
  const points: [number, number][] = [];
  for (let step = 0; step / STEPS_PER_DECADE <= decades; step++) {
    const x = 10 ** (step / STEPS_PER_DECADE);
    points.push([x, histogramUs.getValueAtPercentile(100 * (1 - 1 / x)) / 1000]);
  }
  const lastX = 10 ** decades;
  if (points.at(-1)![0] < lastX) points.push([lastX, histogramUs.getValueAtPercentile(100) / 1000]);
  else points[points.length - 1] = [lastX, histogramUs.getValueAtPercentile(100) / 1000];
  return points;
}

/** A group's latency charts: end-to-end, publish, execution and the scenario's own, one line per column. */
export function percentileCharts(group: Group, idPrefix: string, colours: Readonly<Record<string, string>>): LineChart[] {
  const extraNames = [...new Set(group.columns.flatMap((c) => Object.keys(c.extraHistograms)))].sort();
  const charted: [string, string, (c: Column) => Histogram | undefined][] = [
    ...CHARTED_KINDS.map((kind): [string, string, (c: Column) => Histogram | undefined] => [kind, KIND_TITLE[kind], (c) => c.histograms[kind]]),
    ...extraNames.map((name, k): [string, string, (c: Column) => Histogram | undefined] => [`x${k}`, `Scenario latency: ${name}`, (c) => c.extraHistograms[name]]),
  ];
  return charted.flatMap(([key, title, pick]): LineChart[] => {
    const series = group.columns
      .filter((c) => (pick(c)?.totalCount ?? 0) > 0)
      .map((c) => ({ label: c.label, colour: colours[c.label]!, points: percentileCurve(pick(c)!) }));
    if (series.length === 0) return [];
    return [{ id: `${idPrefix}-${key}`, title: `${title} by percentile, merged over each column's runs`, xTitle: 'percentile', yTitle: 'latency (ms)', kind: 'percentile', xLog: true, yLog: true, series }];
  });
}

/** The group's sustained completion rate per column: the median of its runs, and their min … max. */
export function throughputBars(group: Group, id: string, colours: Readonly<Record<string, string>>): BarChart {
  return {
    id,
    title: 'Sustained completion rate per broker (median of the runs; whiskers: min … max of the runs)',
    labels: group.columns.map((c) => c.label),
    colours: group.columns.map((c) => colours[c.label]!),
    median: group.columns.map((c) => c.completePerSec.median),
    range: group.columns.map((c) => (c.runs.length > 1 ? ([c.completePerSec.min, c.completePerSec.max] as const) : null)),
    runs: group.columns.map((c) => c.runs.length),
  };
}

/** How a multi-step scenario's steps become a curve: which record list, and x, y and "held" of a record. */
interface StepCurve {
  readonly records: string;
  readonly title: (run: LoadedRun) => string;
  readonly xTitle: (run: LoadedRun) => string;
  readonly yTitle: string;
  readonly x: (record: Readonly<Record<string, unknown>>) => unknown;
  readonly y: (record: Readonly<Record<string, unknown>>) => unknown;
  readonly held?: (record: Readonly<Record<string, unknown>>) => boolean;
  readonly yLog: boolean;
}

const STEP_CURVES: Readonly<Record<string, StepCurve>> = {
  'scale-out': {
    records: 'steps',
    title: (run) => `Completion rate against ${unitOf(run)} (scale-out: the same load per step)`,
    xTitle: unitOf,
    yTitle: 'completed per second',
    x: (r) => r['consumers'],
    y: (r) => r['completePerSec'],
    yLog: false,
  },
  'fixed-rate': {
    records: 'rates',
    title: () => 'End-to-end p99 against the offered rate (fixed-rate; a cross: that rate was not held)',
    xTitle: () => 'offered rate (messages per second)',
    yTitle: 'end-to-end p99 (ms)',
    x: (r) => r['ratePerSec'],
    y: (r) => (typeof r['endToEndP99Us'] === 'number' ? r['endToEndP99Us'] / 1000 : undefined),
    held: (r) => r['keptUp'] === true,
    yLog: true,
  },
};

function unitOf(run: LoadedRun): string {
  return run.result.scenarioData?.values['scaleBy'] === 'processes' ? 'consumer processes' : 'consumers';
}

/**
 * The curve of a multi-step scenario over `groups` (one workload, whatever rate each run held):
 * one line per column label, each point the median over the runs that tried that step. Undefined
 * for other scenarios, or when no run recorded its steps.
 */
export function stepCurve(groups: readonly Group[], id: string, colours: Readonly<Record<string, string>>): LineChart | undefined {
  const first = groups[0]?.columns[0]?.runs[0];
  const curve = first ? STEP_CURVES[first.result.config.scenario] : undefined;
  if (!first || !curve) return undefined;
  const byLabel = new Map<string, Map<number, { ys: number[]; held: boolean }>>();
  for (const column of groups.flatMap((g) => g.columns)) {
    const steps = byLabel.get(column.label) ?? new Map<number, { ys: number[]; held: boolean }>();
    for (const run of column.runs) {
      for (const record of run.result.scenarioData?.records[curve.records] ?? []) {
        const x = curve.x(record);
        const y = curve.y(record);
        if (typeof x !== 'number' || typeof y !== 'number' || !Number.isFinite(x) || !Number.isFinite(y) || x <= 0) continue;
        const step = steps.get(x) ?? { ys: [], held: true };
        step.ys.push(y);
        step.held &&= curve.held ? curve.held(record) : true;
        steps.set(x, step);
      }
    }
    if (steps.size > 0) byLabel.set(column.label, steps);
  }
  if (byLabel.size === 0) return undefined;
  const series = [...byLabel].map(([label, steps]): BrokerSeries => {
    const xs = [...steps.keys()].sort((a, b) => a - b);
    return {
      label,
      colour: colours[label]!,
      points: xs.map((x) => [x, spread(steps.get(x)!.ys).median] as const),
      ...(curve.held ? { held: xs.map((x) => steps.get(x)!.held) } : {}),
    };
  });
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const ys = series.flatMap((s) => s.points.map(([, y]) => y));
  return {
    id,
    title: curve.title(first),
    xTitle: curve.xTitle(first),
    yTitle: curve.yTitle,
    kind: 'curve',
    // A log axis where the steps span a decade or more (1, 2, 4 … 64 consumers; 1,000 to 20,000/s).
    xLog: Math.max(...xs) / Math.min(...xs) >= 10,
    yLog: curve.yLog && Math.min(...ys) > 0,
    series,
  };
}

/** A run's counts per second over time, in buckets as fine as TIMELINE_POINTS allows (100 ms for runs up to 20 s). */
export function timelineChart(run: LoadedRun, id: string, title: string, label: string, colour: string): TimelineChart {
  const { bucketMs, points } = coarsen(run.result.timeline, TIMELINE_POINTS);
  const perSec = (count: number): number => (count * 1000) / bucketMs;
  const hasDepth = points.some((p) => p.depth !== undefined);
  return {
    id,
    title,
    label,
    colour,
    bucketMs,
    seconds: points.map((p) => p.startMs / 1000),
    published: points.map((p) => perSec(p.published)),
    received: points.map((p) => perSec(p.received)),
    completed: points.map((p) => perSec(p.completed)),
    ...(hasDepth ? { depth: points.map((p) => p.depth ?? null) } : {}),
  };
}
