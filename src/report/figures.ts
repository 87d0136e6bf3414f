// The figures of a compared column as plain numbers with their units, for the outputs that need the
// numbers rather than the text: CSV (one column per figure) and the comparison against a baseline
// (a change per figure). They are the measures compare's tables show, in the same order.
//
// LIMITATION: latencies are given in ms (the histograms hold µs: three decimals keep them exact);
// a scale-out column of several steps has none (undefined), as in compare's tables.

import { formatCount, formatLatency, formatRate } from '../format.ts';
import type { Column, Group, Spread } from './group.ts';
import type { LatencyKind } from './load.ts';

/**
 * How a change against a baseline is judged: `measured` figures vary from run to run (a change counts
 * only outside their spread or a noise margin), `exact` counts do not (any change per message counts),
 * `none` are context (the spread of rates, the harness's own load), never judged.
 */
export type ChangeRule = 'measured' | 'exact' | 'none';

export interface Figure {
  /** Stable name, as compare's JSON names its rows: `completionRate`, `endToEnd.p99`. */
  readonly id: string;
  readonly label: string;
  /** The unit of `value`, for headers: `msg/s`, `ms`, `messages`. */
  readonly unit: string;
  readonly rule: ChangeRule;
  readonly better?: 'higher' | 'lower';
  /** The figure in `unit`; undefined when the column has none (n/a). */
  value(column: Column): number | undefined;
  /** The value as people read it, with separators and a unit. */
  format(value: number): string;
  /** A detail for CSV and JSON that tables leave out (the min and max of rates: marks account for them). */
  readonly detail?: boolean;
}

/** The percentiles every latency row shows: the summary's field and its label. */
export const PERCENTILES = [
  ['p50', 'p50'],
  ['p90', 'p90'],
  ['p99', 'p99'],
  ['p999', 'p99.9'],
  ['max', 'max'],
] as const;

/** A latency in ms from one in µs, without binary noise (µs are whole: three decimals are exact). */
const msOf = (us: number): number => Math.round(us) / 1000;
const latencyText = (ms: number): string => formatLatency(ms * 1000);

function rateFigures(id: 'publish' | 'receive' | 'completion', pick: (c: Column) => Spread): Figure[] {
  const base = { unit: 'msg/s', format: formatRate } as const;
  return [
    { ...base, id: `${id}Rate`, label: `${id} rate`, rule: 'measured', better: 'higher', value: (c) => pick(c).median },
    { ...base, id: `${id}RateMin`, label: `${id} rate min of runs`, rule: 'none', detail: true, value: (c) => pick(c).min },
    { ...base, id: `${id}RateMax`, label: `${id} rate max of runs`, rule: 'none', detail: true, value: (c) => pick(c).max },
  ];
}

function latencyFigures(id: string, name: string, summary: (c: Column) => Column['latencyUs'][LatencyKind] | undefined): Figure[] {
  return PERCENTILES.map(([field, label]) => ({
    id: `${id}.${field}`,
    label: `${name} ${label}`,
    unit: 'ms',
    rule: 'measured',
    better: 'lower',
    value: (c: Column) => {
      const s = summary(c);
      return s && s.count > 0 ? msOf(s[field]) : undefined;
    },
    format: latencyText,
  }));
}

const count = (id: string, label: string, pick: (c: Column) => number, better: 'lower' | 'neither' = 'lower'): Figure => ({
  id,
  label,
  unit: 'messages',
  rule: 'exact',
  ...(better === 'neither' ? {} : { better }),
  value: pick,
  format: formatCount,
});

const BEFORE_COUNTS: readonly Figure[] = [
  { id: 'messages', label: 'messages of all runs', unit: 'messages', rule: 'none', value: (c) => c.messages, format: formatCount },
  { id: 'completed', label: 'completed of all runs', unit: 'messages', rule: 'none', value: (c) => c.completed, format: formatCount },
  ...rateFigures('publish', (c) => c.publishPerSec),
  ...rateFigures('receive', (c) => c.receivePerSec),
  ...rateFigures('completion', (c) => c.completePerSec),
  ...latencyFigures('endToEnd', 'end-to-end', (c) => c.latencyUs.endToEnd),
  ...latencyFigures('publish', 'publish', (c) => c.latencyUs.publish),
  ...latencyFigures('execution', 'execution', (c) => c.latencyUs.execution),
];

const perMessage = (format: (v: number) => string) => ({ unit: 'requests/message', rule: 'measured', better: 'lower', format }) as const;

const FROM_COUNTS: readonly Figure[] = [
  count('lost', 'lost', (c) => c.lost),
  count('duplicateDeliveries', 'duplicate deliveries', (c) => c.duplicateDeliveries),
  count('foreign', "foreign, not the run's", (c) => c.foreign),
  count('redeliveries', 'redelivered', (c) => c.redeliveries),
  // Retries and dead letters follow the workload's failure rates: changed, not better or worse.
  count('retried', 'retried after a failed task', (c) => c.retried, 'neither'),
  count('deadLettered', 'dead-lettered', (c) => c.deadLettered, 'neither'),
  count('errors', 'publish/receive/ack errors', (c) => c.errors),
  { ...perMessage((v) => v.toFixed(3)), id: 'requestsPerMessage', label: 'workload requests per message', value: (c) => c.requests?.perMessage },
  { ...perMessage((v) => v.toFixed(3)), id: 'billedPerMessage', label: 'billed requests per message', value: (c) => c.requests?.billedPerMessage },
  { id: 'housekeepingRequests', label: 'housekeeping requests', unit: 'requests', rule: 'none', value: (c) => c.requests?.housekeeping, format: formatCount },
  {
    id: 'usdPerMillionMessages',
    label: 'request cost per 1M messages',
    unit: 'USD',
    rule: 'measured',
    better: 'lower',
    value: (c) => c.requests?.usdPerMillionMessages,
    format: (v) => `$${v.toFixed(2)}`,
  },
  { id: 'harnessCpuCores', label: 'harness CPU, median of runs', unit: 'cores', rule: 'none', value: (c) => c.harnessCpuCores, format: (v) => v.toFixed(2) },
  {
    id: 'harnessCpuUsPerMessage',
    label: 'harness CPU per message',
    unit: 'µs',
    rule: 'measured',
    better: 'lower',
    value: (c) => c.harnessCpuUsPerMessage,
    format: formatLatency,
  },
  { id: 'eventLoopDelayP99Ms', label: 'harness event-loop p99, worst run', unit: 'ms', rule: 'none', value: (c) => c.eventLoopDelayP99Ms, format: (v) => `${v.toFixed(1)} ms` },
];

/**
 * The figures of `groups`' columns: the standard ones, with the scenarios' own latency histograms
 * (e.g. `lateness`) that any of them has after the standard latencies, as compare's tables place them.
 */
export function figuresFor(groups: readonly Group[]): Figure[] {
  const names = [...new Set(groups.flatMap((g) => g.columns.flatMap((c) => Object.keys(c.extraLatencyUs))))].sort();
  const extra = names.flatMap((name) => latencyFigures(name, name, (c) => c.extraLatencyUs[name]));
  return [...BEFORE_COUNTS, ...extra, ...FROM_COUNTS];
}

/** `completion rate (msg/s)`: a figure's name with its unit, as CSV headers carry it. */
export const headerOf = (figure: Figure): string => `${figure.label} (${figure.unit})`;
