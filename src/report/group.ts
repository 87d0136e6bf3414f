// Groups compared runs by workload and merges the runs of one broker (and mode) into one column:
// histograms are added together (percentiles are never averaged), rates keep their spread.
//
// The grouping key is the run configuration minus what names the broker (adapter, mode) and what
// identifies a run rather than its workload (channel, results folder, seed, timeout). A column is
// one adapter and mode on one server version, endpoint kind and kind of machine.
//
// Multi-step runs never mix steps in a column: fixed-rate runs whose top-level figures stand for
// different rates (`headlineRatePerSec`) are different workloads, and a run whose histograms merge
// several steps (scale-out: `records.steps`, one per consumer count) gives the column no latency.
//
// LIMITATION: runs of one column are merged whatever their number; a column of 5 runs beside one of
// 1 shows totals (lost, duplicates ...) over more messages, stated in its `messages` row. A scale-out
// run's latency is compared only step by step, in its own result file.

import { createHash } from 'node:crypto';
import type { Histogram } from 'hdr-histogram-js';
import { DEFAULTS, type RunConfig } from '../config.ts';
import { mergeHistograms, summarize, type LatencySummary } from '../metrics/histogram.ts';
import { formatCount, formatRate } from '../format.ts';
import { LATENCY_KINDS, type LatencyKind, type LoadedRun } from './load.ts';
import { lostOf, type ResultFile } from './result-file.ts';
import { priceOfAction, usdPerMillionRequests } from './pricing.ts';
import { billedWorkloadByService, requestSplitOf } from '../metrics/requests.ts';
import type { ServicePrice } from '../broker.ts';

/** Config fields that do not describe the workload, so runs differing only in them still compare. */
const NOT_WORKLOAD: readonly (keyof RunConfig)[] = ['adapter', 'mode', 'channel', 'resultsDir', 'seed', 'timeoutMs'];

export interface Spread {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

export interface RequestCost {
  /** Every request, workload and housekeeping. */
  readonly total: number;
  /** The workload's requests as billed: each started 64 KiB chunk of payload counts as one. */
  readonly billed: number;
  /** The workload's requests (sends, receives, deletes, visibility changes) per completed message. */
  readonly perMessage: number;
  /** The workload's billed requests per completed message: what the cost is priced on. */
  readonly billedPerMessage: number;
  /** The harness's own requests (queues, look-ups, depth polls), all runs together. */
  readonly housekeeping: number;
  /** Undefined where the broker has no per-request price (Redis). */
  readonly usdPerMillionRequests?: number;
  /** What a million messages moved this way would cost in requests, USD: the sum over `byService`. */
  readonly usdPerMillionMessages?: number;
  /** The priced workload by the service that bills it (fan-out on SQS: SQS, and SNS for the publishes), the busiest first. */
  readonly byService?: readonly ServiceCost[];
}

/** One service's share of a column's priced requests. */
export interface ServiceCost extends ServicePrice {
  /** The workload's requests this service billed, as billed, all runs together. */
  readonly billed: number;
  /** Those per completed message. */
  readonly billedPerMessage: number;
  /** What this service bills for a million messages moved this way, USD. */
  readonly usdPerMillionMessages: number;
}

export interface Column {
  /** Adapter and mode, with version or machine added only when two columns would share a name. */
  readonly label: string;
  readonly adapter: string;
  readonly mode: string;
  readonly serverVersion: string;
  readonly endpointKind: string;
  readonly runs: readonly LoadedRun[];
  /** Messages the runs meant to publish, all runs together. */
  readonly messages: number;
  readonly completed: number;
  /** Per-run rates in messages per second: min, median, max over the runs. */
  readonly publishPerSec: Spread;
  readonly receivePerSec: Spread;
  readonly completePerSec: Spread;
  /** Merged over every run, values in µs. */
  readonly histograms: Readonly<Record<LatencyKind, Histogram>>;
  readonly latencyUs: Readonly<Record<LatencyKind, LatencySummary>>;
  /** A scenario's own latency histograms (e.g. `lateness`), merged over the runs that have them, µs. */
  readonly extraHistograms: Readonly<Record<string, Histogram>>;
  readonly extraLatencyUs: Readonly<Record<string, LatencySummary>>;
  /** Published, not completed and not dead-lettered by design (result-file.ts lostOf), all runs together. */
  readonly lost: number;
  readonly duplicateDeliveries: number;
  /** Deliveries of bodies without their run's token (never booked as deliveries). */
  readonly foreign: number;
  /** Deliveries the broker marked as a redelivery (receive count above 1). */
  readonly redeliveries: number;
  /** Tasks that failed and were given back to be retried. */
  readonly retried: number;
  readonly deadLettered: number;
  /** Publish, receive and ack errors. */
  readonly errors: number;
  /** Undefined when the adapter does not count its requests. */
  readonly requests?: RequestCost;
  /** Median over runs of the harness's CPU time over wall time (1 = one core busy). */
  readonly harnessCpuCores: number;
  /** Harness CPU time (user + system) per completed message, µs. */
  readonly harnessCpuUsPerMessage: number;
  /** Worst event-loop delay p99 of any run, ms. */
  readonly eventLoopDelayP99Ms: number;
}

export interface Group {
  /** 8 hex digits of the grouping key, for file names. */
  readonly id: string;
  readonly scenario: string;
  readonly messagesPerRun: number;
  /** One line: the workload every run of the group shared. */
  readonly title: string;
  /** The grouping key itself. */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly columns: readonly Column[];
}

export function groupRuns(runs: readonly LoadedRun[]): Group[] {
  const byKey = new Map<string, LoadedRun[]>();
  for (const run of runs) {
    const key = stableJson(workloadOf(run.result));
    byKey.set(key, [...(byKey.get(key) ?? []), run]);
  }
  const groups = [...byKey].map(([key, members]): Group => {
    const settings = JSON.parse(key) as Record<string, unknown>;
    const config = members[0]!.result.config;
    return {
      id: createHash('sha1').update(key).digest('hex').slice(0, 8),
      scenario: config.scenario,
      messagesPerRun: config.messages,
      title: describeWorkload(config) + (settings['headlineRatePerSec'] === undefined ? '' : `, headline rate ${formatRate(settings['headlineRatePerSec'] as number)}`),
      settings,
      columns: buildColumns(members),
    };
  });
  return groups.sort((a, b) => a.scenario.localeCompare(b.scenario) || a.messagesPerRun - b.messagesPerRun || a.title.localeCompare(b.title));
}

/**
 * Older files lack settings added since; they ran with what is now the default, so fill it in. The rate
 * a fixed-rate run's top-level figures stand for is part of its workload: runs at different rates never
 * share a column.
 */
function workloadOf(result: LoadedRun['result']): Record<string, unknown> {
  const out: Record<string, unknown> = { ...DEFAULTS, ...result.config };
  for (const name of NOT_WORKLOAD) delete out[name];
  const headline = result.scenarioData?.values['headlineRatePerSec'];
  if (typeof headline === 'number') out['headlineRatePerSec'] = headline;
  return out;
}

/** A run whose top-level histograms merge several steps of different loads (scale-out's consumer counts). */
export function mergesSteps(run: LoadedRun): boolean {
  return (run.result.scenarioData?.records['steps']?.length ?? 0) > 1;
}

/** JSON with object keys sorted at every level, so equal settings give equal strings. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** `throughput: 2,000 messages of 200 B, publish batch 10 × 4 in flight, 4 consumers (receive batch 10), 1 queue` and any non-default setting. */
export function describeWorkload(c: RunConfig): string {
  const parts = [
    `${formatCount(c.messages)} messages of ${formatCount(c.payloadBytes)} B`,
    `publish batch ${c.publishBatch} × ${c.publishConcurrency} in flight`,
    `${c.consumers} consumers (receive batch ${c.receiveBatch})`,
    `${c.queues} queue${c.queues === 1 ? '' : 's'}`,
  ];
  if (c.ratePerSec > 0) parts.push(`rate ${formatRate(c.ratePerSec)}`);
  if (c.task.durationMs > 0) parts.push(`task ${c.task.durationMs} ms ${c.task.distribution} ${c.task.work}`);
  if (c.task.failureRate > 0) parts.push(`fail rate ${c.task.failureRate}`);
  const extras: [keyof RunConfig, string][] = [
    ['maxReceives', 'max receives'],
    ['visibilityTimeoutMs', 'visibility timeout ms'],
    ['retryDelayMs', 'retry delay ms'],
    ['receiveWaitMs', 'receive wait ms'],
    ['warmupMessages', 'warm-up messages'],
  ];
  for (const [name, label] of extras) {
    if (c[name] !== DEFAULTS[name as keyof typeof DEFAULTS]) parts.push(`${label} ${String(c[name])}`);
  }
  // Fields added to RunConfig after this printer was written still show, so two groups never look alike.
  const known = new Set<string>([...NOT_WORKLOAD, 'scenario', 'messages', 'payloadBytes', 'publishBatch', 'publishConcurrency', 'consumers', 'receiveBatch', 'queues', 'ratePerSec', 'task', ...extras.map(([n]) => n)]);
  const defaults: Record<string, unknown> = DEFAULTS;
  for (const [name, value] of Object.entries(c)) {
    if (known.has(name) || value === undefined || stableJson(value) === stableJson(defaults[name])) continue;
    parts.push(`${name} ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`);
  }
  return `${c.scenario}: ${parts.join(', ')}`;
}

function buildColumns(runs: readonly LoadedRun[]): Column[] {
  const byKey = new Map<string, LoadedRun[]>();
  for (const run of runs) {
    const { broker, environment } = run.result;
    const key = [broker.name, broker.mode, broker.serverVersion, broker.endpointKind, environment?.cpuModel, environment?.cpuCount].join('\u0000');
    byKey.set(key, [...(byKey.get(key) ?? []), run]);
  }
  const members = [...byKey.values()].sort((a, b) => {
    const x = a[0]!.result.broker;
    const y = b[0]!.result.broker;
    return x.name.localeCompare(y.name) || x.mode.localeCompare(y.mode) || x.serverVersion.localeCompare(y.serverVersion);
  });
  const labels = labelColumns(members.map((m) => m[0]!));
  return members.map((list, k) => mergeColumn(labels[k]!, list));
}

/** `redis-list reliable`, made unique with the server version, then endpoint kind, then machine. */
function labelColumns(firsts: readonly LoadedRun[]): string[] {
  const steps: ((run: LoadedRun) => string)[] = [
    (r) => `${r.result.broker.name} ${r.result.broker.mode}`,
    (r) => ` ${r.result.broker.serverVersion}`,
    (r) => ` [${r.result.broker.endpointKind}]`,
    (r) => ` on ${r.result.environment?.cpuCount ?? '?'}× ${r.result.environment?.cpuModel ?? 'unknown CPU'}`,
  ];
  const labels = firsts.map(steps[0]!);
  for (const step of steps.slice(1)) {
    const clash = labels.map((label) => labels.filter((other) => other === label).length > 1);
    if (!clash.includes(true)) break;
    firsts.forEach((run, k) => {
      if (clash[k]) labels[k] += step(run);
    });
  }
  return labels;
}

function mergeColumn(label: string, runs: readonly LoadedRun[]): Column {
  const results = runs.map((r) => r.result);
  const first = results[0]!;
  const sum = (pick: (r: (typeof results)[number]) => number): number => results.reduce((total, r) => total + pick(r), 0);
  // Histograms that already merge several steps would mix loads: such runs add no latency to the column.
  const measured = runs.filter((r) => !mergesSteps(r));
  const histograms = Object.fromEntries(
    LATENCY_KINDS.map((kind) => [kind, mergeHistograms(measured.map((r) => r.histograms[kind]))]),
  ) as Record<LatencyKind, Histogram>;
  const latencyUs = Object.fromEntries(LATENCY_KINDS.map((kind) => [kind, summarize(histograms[kind])])) as Record<LatencyKind, LatencySummary>;
  const extraNames = [...new Set(measured.flatMap((r) => Object.keys(r.extraHistograms)))].sort();
  const extraHistograms = Object.fromEntries(
    extraNames.map((name) => [name, mergeHistograms(measured.flatMap((r) => r.extraHistograms[name] ?? []))]),
  );
  const extraLatencyUs = Object.fromEntries(extraNames.map((name) => [name, summarize(extraHistograms[name]!)]));
  const completed = sum((r) => r.ledger.completed);
  const cpuMs = sum((r) => r.harness.cpuUserMs + r.harness.cpuSystemMs);
  return {
    label,
    adapter: first.broker.name,
    mode: first.broker.mode,
    serverVersion: first.broker.serverVersion,
    endpointKind: first.broker.endpointKind,
    runs,
    messages: sum((r) => r.config.messages),
    completed,
    publishPerSec: spread(results.map((r) => r.throughput.publishPerSec)),
    receivePerSec: spread(results.map((r) => r.throughput.receivePerSec)),
    completePerSec: spread(results.map((r) => r.throughput.completePerSec)),
    histograms,
    latencyUs,
    extraHistograms,
    extraLatencyUs,
    lost: sum(lostOf),
    duplicateDeliveries: sum((r) => r.ledger.duplicateDeliveries),
    foreign: sum((r) => r.ledger.foreign ?? 0),
    redeliveries: sum((r) => r.counters.redeliveries),
    retried: sum((r) => r.counters.taskFailures),
    deadLettered: sum((r) => r.finalDepth.dead),
    errors: sum((r) => r.counters.publishErrors + r.counters.receiveErrors + r.counters.ackErrors),
    ...requestCost(results, completed),
    harnessCpuCores: spread(results.map((r) => r.harness.cpuCores)).median,
    harnessCpuUsPerMessage: completed > 0 ? (cpuMs * 1000) / completed : 0,
    eventLoopDelayP99Ms: Math.max(...results.map((r) => r.harness.eventLoopDelayP99Ms)),
  };
}

/**
 * Request totals over the runs (results of one adapter and mode), each action priced by the service that
 * bills it; absent unless every run counted its requests.
 */
export function requestCost(results: readonly ResultFile[], completed: number): { requests?: RequestCost } {
  if (!results.every((r) => r.requests) || completed === 0) return {};
  const total = results.reduce((n, r) => n + r.requests!.total, 0);
  const splits = results.map((r) => requestSplitOf(r.requests!));
  const workload = splits.reduce((n, s) => n + s.workload, 0);
  const billed = splits.reduce((n, s) => n + s.billedWorkload, 0);
  const price = usdPerMillionRequests(results[0]!);
  const byService = price === undefined ? undefined : billedByService(results, completed);
  return {
    requests: {
      total,
      billed,
      perMessage: workload / completed,
      billedPerMessage: billed / completed,
      housekeeping: splits.reduce((n, s) => n + s.housekeeping, 0),
      ...(price === undefined || byService === undefined
        ? {}
        : { usdPerMillionRequests: price, usdPerMillionMessages: byService.reduce((n, s) => n + s.usdPerMillionMessages, 0), byService }),
    },
  };
}

/** The runs' billed workload by service and tier (src/metrics/requests.ts), priced. */
function billedByService(results: readonly ResultFile[], completed: number): ServiceCost[] {
  const prices = new Map<string, ServicePrice>();
  const billed = new Map<string, number>();
  for (const result of results) {
    const serviceOf = (action: string): string => {
      const price = priceOfAction(result, action)!;
      const key = `${price.service} ${price.tier} ${price.usdPerMillionRequests}`;
      prices.set(key, price);
      return key;
    };
    for (const share of billedWorkloadByService(result.requests!, serviceOf)) billed.set(share.service, (billed.get(share.service) ?? 0) + share.billed);
  }
  return [...billed]
    .sort(([, a], [, b]) => b - a)
    .map(([key, count]) => {
      const price = prices.get(key)!;
      const perMessage = count / completed;
      return { ...price, billed: count, billedPerMessage: perMessage, usdPerMillionMessages: perMessage * price.usdPerMillionRequests };
    });
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { min: 0, median: 0, max: 0 };
  const median = n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return { min: sorted[0]!, median, max: sorted[n - 1]! };
}
