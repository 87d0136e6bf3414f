// The merge of a run's workers into one result file (src/report/parts.ts reads their parts and
// journals): ledgers combined index by index, histograms added, requests and CPU summed, rates over
// the merged window on the reference clock, and the verdicts and tables that say how the workers and
// their clocks did.
//
// LIMITATION: a dead worker's publish latencies and harness figures but CPU are not in its journal,
// so the merged publish histogram and harness cost lack them.

import type { Histogram } from 'hdr-histogram-js';
import { UsageError } from '../errors.ts';
import { formatCount, formatLatency } from '../format.ts';
import { mergeHistograms } from '../metrics/histogram.ts';
import { Ledger, mergeLedgers, publishedCount, type LedgerCounts } from '../metrics/ledger.ts';
import { requestTotals, type RequestTotals } from '../metrics/requests.ts';
import { layEndToEnd, type TimelineSeries } from '../metrics/timeline.ts';
import type { HarnessUsage, RunCounters, RunStatus, ScenarioTable } from '../outcome.ts';
import { shardRange } from '../runner/shard.ts';
import { ledgerVerdicts } from '../../scenarios/verdicts.ts';
import { latencyRecord, RESULT_SCHEMA, RESULT_SCHEMA_VERSION, type CrossHostLatencyRecord, type LatencyRecord, type ResultFile, type WorkerSummary } from './result-file.ts';
import type { WorkerBooks } from './parts.ts';

/** The workload fields every part must share (consumers and publishers are each worker's own). */
const SHARED_CONFIG = ['adapter', 'mode', 'scenario', 'messages', 'payloadBytes', 'publishBatch', 'ratePerSec', 'lingerMs', 'receiveBatch', 'queues', 'channel', 'visibilityTimeoutMs', 'maxReceives', 'warmupMessages'] as const;

export function combine(runId: string, workers: readonly WorkerBooks[], shards: number): ResultFile {
  const model = workers.find((w) => w.config !== undefined);
  if (!model) throw new UsageError(`every worker of run ${runId} died before it began: there is nothing to merge`);
  const config = model.config!;
  for (const worker of workers) {
    if (worker.config === undefined) continue;
    const differs = SHARED_CONFIG.filter((name) => JSON.stringify(worker.config![name]) !== JSON.stringify(config[name]));
    if (JSON.stringify(worker.config.task) !== JSON.stringify(config.task)) differs.push('task' as never);
    if (differs.length > 0) throw new UsageError(`${worker.file}: its workload differs from ${model.file}'s (${differs.join(', ')}); the parts are not of one run`);
  }
  const ledgerParts = workers.map((w) => {
    if (w.ledger.first >= 0) return w.ledger;
    // Died before its header: it sent nothing of its range.
    const { first, end } = shardRange(config.messages, shards, w.shard);
    return { ledger: { ...new Ledger(config.messages).state(), notSent: [[first, end]] as [number, number][] }, first, end, inDoubt: [] };
  });
  let merged: ReturnType<typeof mergeLedgers>;
  try {
    merged = mergeLedgers(ledgerParts);
  } catch (error) {
    throw new UsageError(`the parts of run ${runId} do not fit together: ${(error as Error).message}`);
  }
  const started = workers.filter((w) => w.startUs !== undefined);
  const startUs = Math.min(...started.map((w) => w.startUs!));
  const at = (pick: (w: WorkerBooks) => number): number => Math.max(0, ...workers.map(pick));
  const publishEndUs = at((w) => w.publishEndUs);
  const lastDeliveryUs = at((w) => w.lastDeliveryUs);
  const lastCompletionUs = at((w) => w.lastCompletionUs);
  const endUs = at((w) => w.endUs);
  const counts = merged.counts;
  const seconds = (untilUs: number): number => (started.length > 0 && untilUs > startUs ? (untilUs - startUs) / 1e6 : 0);
  const perSec = (count: number, sec: number): number => (sec > 0 ? count / sec : 0);
  const publishSec = seconds(publishEndUs);
  const receiveSec = seconds(lastDeliveryUs);
  const totalSec = seconds(lastCompletionUs > 0 ? lastCompletionUs : endUs);

  const histogram = (kind: keyof WorkerBooks['histograms']): Histogram => mergeHistograms(workers.map((w) => w.histograms[kind]));
  const sameHost = histogram('sameHost');
  const crossHost = histogram('crossHost');
  const uncertainties = workers.map((w) => w.clock?.uncertaintyUs ?? null);
  const errorBoundUs = uncertainties.includes(null)
    ? null
    : (uncertainties as number[]).sort((a, b) => b - a).slice(0, 2).reduce((sum, u) => sum + u, 0);
  const crossHostRecord: CrossHostLatencyRecord = { ...latencyRecord(crossHost), errorBoundUs };

  const counters = sumCounters(workers);
  const status = mergedStatus(workers);
  const summaries: WorkerSummary[] = workers.map((w) => ({
    shard: w.shard,
    host: w.host,
    pid: w.pid,
    status: w.status,
    file: w.file,
    first: w.ledger.first >= 0 ? w.ledger.first : shardRange(config.messages, shards, w.shard).first,
    end: w.ledger.first >= 0 ? w.ledger.end : shardRange(config.messages, shards, w.shard).end,
    consumers: w.config?.consumers ?? 0,
    publishers: w.config?.publishConcurrency ?? 0,
    startOffsetUs: w.startUs === undefined ? null : Math.round(w.startUs - startUs),
    clockReference: w.clock?.reference ?? 'unknown',
    clockOffsetUs: w.clock?.offsetUs ?? 0,
    clockUncertaintyUs: w.clock?.uncertaintyUs ?? null,
    published: w.published,
    deliveries: w.counts.deliveries,
  }));
  const finalDepth = [...workers].filter((w) => w.finalDepth !== undefined).sort((a, b) => b.endUs - a.endUs)[0]?.finalDepth ?? { ready: 0, inFlight: 0, delayed: 0, dead: 0 };
  const cpuUserMs = workers.reduce((sum, w) => sum + w.cpuMs.user, 0);
  const cpuSystemMs = workers.reduce((sum, w) => sum + w.cpuMs.system, 0);
  const wallMs = totalSec * 1000;
  const harness: HarnessUsage = {
    cpuUserMs,
    cpuSystemMs,
    cpuCores: wallMs > 0 ? (cpuUserMs + cpuSystemMs) / wallMs : 0,
    peakRssBytes: workers.reduce((sum, w) => sum + w.peakRssBytes, 0),
    eventLoopDelayP50Ms: Math.max(...workers.map((w) => w.eventLoopDelayP50Ms)),
    eventLoopDelayP99Ms: Math.max(...workers.map((w) => w.eventLoopDelayP99Ms)),
  };
  const spreadUs = started.length > 0 ? Math.max(...started.map((w) => w.startUs!)) - startUs : 0;
  const killed = workers.filter((w) => w.status === 'killed');
  const errors = [
    ...killed.map((w) => `worker ${w.shard} (${w.host}, pid ${w.pid}) wrote no part: killed; its books are its journal's up to its death`),
    ...workers.flatMap((w) => w.errors.map((error) => `worker ${w.shard}: ${error}`)),
  ];
  const reasonOf = workers.find((w) => w.status === status && w.reason !== undefined);
  const outcomeLike = {
    status,
    reason: reasonOf ? `worker ${reasonOf.shard}: ${reasonOf.reason}` : undefined,
    ledger: counts,
    missing: merged.missing,
    counters,
    finalDepth,
  };
  const model0 = workers.find((w) => w.result !== undefined)?.result;
  const header0 = workers.find((w) => w.header !== undefined)?.header;
  const broker = model0?.broker ?? header0!.broker;
  const verdicts = [
    ...ledgerVerdicts(outcomeLike as Parameters<typeof ledgerVerdicts>[0]),
    ...workerVerdicts(workers, counts, spreadUs, sameHost, crossHostRecord),
    ...atMostOnceVerdict(broker.capabilities.delivery, workers, counts, merged.deliveredNotCompleted),
  ];
  const requests = sumRequests(workers);
  const environment = model0?.environment ?? header0!.environment;
  const startedAt = workers.map((w) => w.startedAt).filter((t): t is string => t !== undefined).sort()[0]!;
  const finishedAt = workers.map((w) => w.finishedAt).filter((t): t is string => t !== undefined).sort().at(-1) ?? startedAt;
  const decode = (kind: 'publish' | 'endToEnd' | 'execution' | 'completion'): LatencyRecord => latencyRecord(histogram(kind));
  return {
    schema: RESULT_SCHEMA,
    schemaVersion: RESULT_SCHEMA_VERSION,
    runId,
    runToken: model0?.runToken ?? header0!.runToken,
    status,
    ...(outcomeLike.reason === undefined ? {} : { reason: outcomeLike.reason }),
    startedAt,
    finishedAt,
    scenario: config.scenario,
    ...(model0?.workload ? { workload: model0.workload } : {}),
    config: {
      ...config,
      consumers: workers.reduce((sum, w) => sum + (w.config?.consumers ?? 0), 0),
      publishConcurrency: workers.reduce((sum, w) => sum + (w.config?.publishConcurrency ?? 0), 0),
    },
    broker,
    environment,
    ledger: counts,
    lost: Math.max(0, counts.lost - (config.maxReceives > 0 ? finalDepth.dead : 0)),
    missing: merged.missing,
    counters,
    throughput: {
      publishSec,
      totalSec,
      receiveSec,
      publishPerSec: perSec(publishedCount(counts), publishSec),
      receivePerSec: perSec(counts.deliveries, receiveSec),
      completePerSec: perSec(counts.completed, totalSec),
    },
    latency: {
      publish: decode('publish'),
      endToEnd: decode('endToEnd'),
      execution: decode('execution'),
      completion: decode('completion'),
      sameHost: latencyRecord(sameHost),
      crossHost: crossHostRecord,
    },
    workers: summaries,
    finalDepth,
    timeline: mergeTimelines(workers, startUs),
    ...(requests ? { requests } : {}),
    ...(model0?.limits ? { limits: model0.limits } : {}),
    harness,
    verdicts,
    errors,
    scenarioData: {
      tables: [workersTable(summaries), clockTable(latencyRecord(sameHost), crossHostRecord)],
      histograms: { 'end-to-end, same host': latencyRecord(sameHost), 'end-to-end, cross host': crossHostRecord },
      records: {},
      values: {
        workers: shards,
        killedWorkers: killed.length,
        startSpreadUs: Math.round(spreadUs),
        crossHostErrorBoundUs: errorBoundUs === null ? null : Math.round(errorBoundUs),
        inDoubt: counts.inDoubt ?? 0,
      },
    },
  };
}

/** The run's status: completed when every worker that ended did; else the worst a worker had. Killed workers do not stop the merge. */
function mergedStatus(workers: readonly WorkerBooks[]): RunStatus {
  for (const worst of ['failed', 'timeout', 'interrupted'] as const) if (workers.some((w) => w.status === worst)) return worst;
  return 'completed';
}

function sumCounters(workers: readonly WorkerBooks[]): RunCounters {
  const total: Record<string, number> = {};
  for (const w of workers) for (const [name, value] of Object.entries(w.counters ?? {})) total[name] = (total[name] ?? 0) + value;
  return total as unknown as RunCounters;
}

function sumRequests(workers: readonly WorkerBooks[]): RequestTotals | undefined {
  const counted = workers.filter((w) => w.requests !== undefined);
  if (counted.length === 0) return undefined;
  const byKind: Record<string, number> = {};
  let billed = 0;
  for (const w of counted) {
    billed += w.requests!.billed;
    for (const [kind, n] of Object.entries(w.requests!.byKind)) byKind[kind] = (byKind[kind] ?? 0) + n;
  }
  return requestTotals(byKind, billed);
}

/** Every worker's timeline on the earliest start's clock (each laid at its own start): counts added, the last depth sample of a bucket kept. */
function mergeTimelines(workers: readonly WorkerBooks[], startUs: number): TimelineSeries {
  return layEndToEnd(workers.flatMap((w) => (w.startUs === undefined ? [] : [{ offsetMs: (w.startUs - startUs) / 1000, series: w.timeline }])));
}

/** What the clocks, the start and the dead workers say about the merged figures. */
function workerVerdicts(workers: readonly WorkerBooks[], counts: LedgerCounts, spreadUs: number, sameHost: Histogram, crossHost: CrossHostLatencyRecord): string[] {
  const lines: string[] = [];
  const started = workers.filter((w) => w.startUs !== undefined).length;
  lines.push(`${workers.length} workers merged; they began publishing within ${formatLatency(Math.max(1, spreadUs))} of each other${started < workers.length ? ` (${workers.length - started} never began)` : ''}`);
  for (const w of workers.filter((x) => x.status === 'killed')) {
    const inDoubt = w.ledger.inDoubt.reduce((sum, [from, to]) => sum + to - from, 0);
    lines.push(
      `worker ${w.shard} was killed: its books up to its death come from its journal (${formatCount(w.published)} of its messages published, ` +
        `${formatCount(w.counts.notSent ?? 0)} never sent, ${formatCount(inDoubt)} sent with no answer; ${formatCount(w.counts.deliveries)} deliveries booked)`,
    );
  }
  if ((counts.inDoubt ?? 0) > 0) {
    lines.push(`${formatCount(counts.inDoubt!)} messages in doubt at a kill: handed to the broker with no answer and never seen by any consumer (not counted as published or lost)`);
  }
  if (crossHost.count > 0) {
    if (crossHost.errorBoundUs === null) {
      lines.push('cross-host latency rests on the hosts\' own clocks (the broker has none to compare with): its error is unknown; the same-host figure is exact');
    } else if (crossHost.errorBoundUs > crossHost.p50) {
      lines.push(`cross-host latency p50 ${formatLatency(crossHost.p50)} is within the clocks' error bound of ±${formatLatency(crossHost.errorBoundUs)}: it says little; read the same-host figure (p50 ${formatLatency(sameHost.getValueAtPercentile(50))}), exact on one clock`);
    }
    if ((crossHost.clamped ?? 0) > 0) {
      lines.push(`${formatCount(crossHost.clamped!)} cross-host latencies came out negative (recorded at 1 µs): the clocks disagree by more than the latency`);
    }
  }
  return lines;
}

/**
 * At-most-once, a dead worker takes with it what its consumers held, and what a receive in transit
 * had popped when it died: the lost messages, by where they were.
 */
function atMostOnceVerdict(delivery: string, workers: readonly WorkerBooks[], counts: LedgerCounts, deliveredNotCompleted: readonly number[]): string[] {
  if (delivery !== 'at-most-once' || counts.lost === 0 || !workers.some((w) => w.status === 'killed')) return [];
  let held = 0;
  let heldByOthers = 0;
  workers.forEach((w, k) => {
    if (w.status === 'killed') held += deliveredNotCompleted[k] ?? 0;
    else heldByOthers += deliveredNotCompleted[k] ?? 0;
  });
  const neverDelivered = counts.lost - held - heldByOthers;
  return [
    `LOST ${formatCount(counts.lost)}: at-most-once mode, ${formatCount(held)} the killed worker${workers.filter((w) => w.status === 'killed').length > 1 ? 's' : ''} held (received, not completed) ` +
      `and ${formatCount(neverDelivered)} never delivered to anyone (popped by a receive in transit when it died)` +
      (heldByOthers > 0 ? `, and ${formatCount(heldByOthers)} received and not completed by workers that ended` : ''),
  ];
}

function workersTable(workers: readonly WorkerSummary[]): ScenarioTable {
  const us = (value: number | null): string => (value === null ? 'unknown' : `${value < 0 ? '-' : ''}${formatLatency(Math.max(1, Math.abs(Math.round(value))))}`);
  return {
    title: 'workers (start and clock offsets on the reference clock)',
    head: ['worker', 'host', 'status', 'messages', 'published', 'deliveries', 'started after first', 'clock offset', '± uncertainty', 'reference'],
    rows: workers.map((w) => [
      String(w.shard),
      w.host,
      w.status,
      `${formatCount(w.first)}…${formatCount(Math.max(w.first, w.end - 1))}`,
      formatCount(w.published),
      formatCount(w.deliveries),
      w.startOffsetUs === null ? 'never' : w.startOffsetUs === 0 ? '0' : us(w.startOffsetUs),
      w.clockOffsetUs === 0 ? '0' : us(w.clockOffsetUs),
      us(w.clockUncertaintyUs),
      w.clockReference,
    ]),
  };
}

function clockTable(sameHost: LatencyRecord, crossHost: CrossHostLatencyRecord): ScenarioTable {
  const bound = crossHost.errorBoundUs === null ? 'unknown' : `± ${formatLatency(Math.max(1, Math.round(crossHost.errorBoundUs)))}`;
  const row = (name: string, l: LatencyRecord, error: string): string[] => [name, ...[l.p50, l.p90, l.p99, l.max].map(formatLatency), formatCount(l.count), error];
  return {
    title: 'end-to-end latency by clock: same host (published and consumed by one worker, one clock) and cross host (two clocks)',
    head: ['end-to-end', 'p50', 'p90', 'p99', 'max', 'count', 'error bound'],
    rows: [row('same host', sameHost, 'exact'), row('cross host', crossHost, bound)],
  };
}
