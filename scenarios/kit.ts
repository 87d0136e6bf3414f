// Small helpers the part-1 scenarios share: seeded per-message draws, the backlog-over-time table
// built from a run's timeline, bucketed counts for histograms people read, and number formatting.
//
// LIMITATION: the backlog here is counted by the harness (published minus completed), exact for one
// process's run; the broker's own depth is shown beside it where it was sampled (once per tick).

import type { TimelinePoint } from '../src/metrics/timeline.ts';
import { formatCount } from '../src/format.ts';
import type { RunProgress, ScenarioTable } from '../src/outcome.ts';

/**
 * A number in [0, 1) that depends only on (seed, a, b): the same message draws the same value on every
 * delivery and in every run with that seed, whatever order consumers take messages in.
 */
export function drawUnit(seed: number, a: number, b = 0): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(a + 1, 0xc2b2ae35) ^ Math.imul(b + 7, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

/** One row per second (at most `maxRows`, evenly spaced, last second always in): what was where. */
export function backlogTable(timeline: readonly TimelinePoint[], maxRows = 12): ScenarioTable {
  let published = 0;
  let received = 0;
  let completed = 0;
  const all: string[][] = [];
  for (const point of timeline) {
    published += point.published;
    received += point.received;
    completed += point.completed;
    all.push([
      String(point.second + 1),
      formatCount(point.completed),
      formatCount(completed),
      // Waiting in the broker for a first delivery, by the harness's own counts.
      formatCount(Math.max(0, published - received)),
      formatCount(Math.max(0, published - completed)),
      point.depth === undefined ? '-' : formatCount(point.depth),
    ]);
  }
  const rows = all.length <= maxRows ? all : pick(all, maxRows);
  return {
    title: 'backlog over time (counts at the end of each second)',
    head: ['second', 'completed in it', 'completed so far', 'never delivered yet', 'published, not done', 'broker depth'],
    rows,
  };
}

/** Backlog (published minus completed) at the end of each second of a timeline. */
export function backlogSeries(timeline: readonly TimelinePoint[]): number[] {
  let backlog = 0;
  return timeline.map((point) => (backlog += point.published - point.completed));
}

function pick<T>(rows: readonly T[], count: number): T[] {
  const out: T[] = [];
  for (let k = 0; k < count; k++) out.push(rows[Math.round((k * (rows.length - 1)) / (count - 1))]!);
  return out;
}

/** Counts in fixed, human-sized latency buckets (µs edges), for a histogram people read as a table. */
export class BucketCounts {
  /** Upper edges in µs, exclusive; the last bucket is open-ended. */
  static readonly EDGES_US = [1_000, 10_000, 100_000, 1_000_000, 10_000_000];
  static readonly LABELS = ['< 1 ms', '1-10 ms', '10-100 ms', '100 ms-1 s', '1-10 s', '>= 10 s'];
  readonly counts = new Array<number>(BucketCounts.LABELS.length).fill(0);

  add(valueUs: number): void {
    let k = 0;
    while (k < BucketCounts.EDGES_US.length && valueUs >= BucketCounts.EDGES_US[k]!) k++;
    this.counts[k]!++;
  }

  get total(): number {
    return this.counts.reduce((sum, n) => sum + n, 0);
  }
}

/** A percentage with one decimal, e.g. `98.1%`. */
export function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-';
}

/** Seconds with two decimals, e.g. `5.12 s`. */
export function seconds(us: number): string {
  return `${(us / 1e6).toFixed(2)} s`;
}

/** A broker's delay granularity as a unit in words: 1000 ms is `second`, 60,000 `minute`, anything else `N ms`. */
export function unitName(ms: number): string {
  return ms === 1000 ? 'second' : ms === 60_000 ? 'minute' : `${ms} ms`;
}

/** Progress of one step's pipeline, labelled with the step, so a display counts each step against its own total. */
export function inStep(onProgress: (progress: RunProgress) => void, step: NonNullable<RunProgress['step']>): (progress: RunProgress) => void {
  return (progress) => onProgress({ ...progress, step });
}
