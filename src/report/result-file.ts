// Result files: the versioned schema, how a run becomes one, and how one is written (atomically,
// never over an existing file) and read back (validated, with one-line errors).
//
// Schema `brokerbench/result` version 1. Times are ISO-8601 UTC; durations in seconds (`…Sec`);
// latencies in microseconds (`…Us`); every histogram is also stored as a compressed base64
// HdrHistogram so later runs can be merged exactly.

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Histogram } from 'hdr-histogram-js';
import type { BrokerCapabilities, BrokerInfo, QueueDepth } from '../broker.ts';
import type { RunConfig } from '../config.ts';
import type { EnvironmentInfo } from '../environment.ts';
import type { WorkloadRecord } from '../workload.ts';
import { resultShapeProblem } from './result-schema.ts';
import { UsageError } from '../errors.ts';
import { scrubSecrets } from '../secrets.ts';
import { clampedCount, encodeHistogram, summarize, type LatencySummary } from '../metrics/histogram.ts';
import { lostCount, publishedCount, type LedgerCounts } from '../metrics/ledger.ts';
import type { RequestTotals } from '../metrics/requests.ts';
import { coarsen, seriesOfSeconds, type TimelinePoint, type TimelineSeries } from '../metrics/timeline.ts';
import type { HarnessUsage, RunCounters, RunLimits, RunRecord, RunStatus, ScenarioData, ScenarioTable } from '../outcome.ts';

export const RESULT_SCHEMA = 'brokerbench/result';
export const RESULT_SCHEMA_VERSION = 1;
/** Most buckets a result's timeline keeps: 100 ms buckets up to 5 minutes, then wider (1 s up to 50 minutes …). */
export const MAX_TIMELINE_POINTS = 3000;

export interface LatencyRecord extends LatencySummary {
  /** Compressed base64 HdrHistogram of the same values, in µs. */
  readonly histogram: string;
  /**
   * Values outside [1 µs, 1 h] (negative from a clock error, or longer than an hour) recorded at the
   * nearest bound. Absent when there were none, and in files written before it existed.
   */
  readonly clamped?: number;
}

/** Cross-host end-to-end latency: the histogram of times from two workers' clocks, with how far those clocks may disagree. */
export interface CrossHostLatencyRecord extends LatencyRecord {
  /**
   * The clocks' error bound, µs: the two largest of the workers' uncertainties added up, so every
   * cross-host latency is right to within it. Null when a worker had no reference to compare with.
   */
  readonly errorBoundUs: number | null;
}

/** One worker of a run spread over several, as the merge found it. */
export interface WorkerSummary {
  readonly shard: number;
  readonly host: string;
  readonly pid: number;
  /** `killed`: it wrote no part; its books are its journal's up to its death. Else its own run's status. */
  readonly status: RunStatus | 'killed';
  /** The part or journal it was read from (the file's name in the parts folder). */
  readonly file: string;
  /** Its message indices, [first, end). */
  readonly first: number;
  readonly end: number;
  readonly consumers: number;
  readonly publishers: number;
  /** When it began publishing after the earliest worker did, µs on the reference clock; null if it never began. */
  readonly startOffsetUs: number | null;
  /** What it compared its clock with, its clock's offset from that reference (reference minus its own, µs) and the offset's uncertainty (µs; null: unknown). */
  readonly clockReference: string;
  readonly clockOffsetUs: number;
  readonly clockUncertaintyUs: number | null;
  /** Messages the broker accepted from it, and the deliveries its consumers booked. */
  readonly published: number;
  readonly deliveries: number;
}

export interface ResultFile {
  readonly schema: typeof RESULT_SCHEMA;
  readonly schemaVersion: typeof RESULT_SCHEMA_VERSION;
  readonly runId: string;
  /**
   * The token every body of the run carried (src/pipeline/message.ts); bodies without it were counted
   * as `ledger.foreign`. Absent in files written before it existed.
   */
  readonly runToken?: string;
  readonly status: RunStatus;
  /** Why the run did not complete; absent when it did. */
  readonly reason?: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly scenario: string;
  /** The --workload file the run's settings came from (flags may have overridden some); absent without one. */
  readonly workload?: WorkloadRecord;
  readonly config: RunConfig;
  readonly broker: BrokerInfo & { readonly capabilities: BrokerCapabilities };
  readonly environment: EnvironmentInfo;
  readonly ledger: LedgerCounts;
  /**
   * Messages lost: published, not completed, and not dead-lettered by design (`lostOf`). Written for
   * machines; readers here derive it with lostOf, so files written before it existed mean the same.
   */
  readonly lost?: number;
  /** First indices published but never completed (at most 20). */
  readonly missing: readonly number[];
  readonly counters: RunCounters;
  readonly throughput: {
    /** From the first publish to the last publish acknowledged. */
    readonly publishSec: number;
    /** From the first publish to the end of the drain (the last completion when everything completed). */
    readonly totalSec: number;
    /** From the first publish to the last delivery: `receivePerSec` is deliveries over it. Absent in older files (they divided by `totalSec`). */
    readonly receiveSec?: number;
    readonly publishPerSec: number;
    readonly receivePerSec: number;
    readonly completePerSec: number;
  };
  readonly latency: {
    readonly publish: LatencyRecord;
    readonly endToEnd: LatencyRecord;
    readonly execution: LatencyRecord;
    readonly completion: LatencyRecord;
    /** Under --rate: each message's wait for its publish batch to leave (at most --linger-ms); absent otherwise. */
    readonly batchWait?: LatencyRecord;
    /**
     * A run merged from several workers: end-to-end latency of messages consumed by the worker that
     * published them (one clock, exact) and by another (two clocks, within `errorBoundUs`). Absent otherwise.
     */
    readonly sameHost?: LatencyRecord;
    readonly crossHost?: CrossHostLatencyRecord;
  };
  /** A run merged from several workers (`brokerbench merge`): each worker, by shard. Absent otherwise. */
  readonly workers?: readonly WorkerSummary[];
  readonly finalDepth: QueueDepth;
  /**
   * Published, received, completed and failed per bucket of `bucketMs` (100 ms, widened on the 1-2-5
   * ladder to at most MAX_TIMELINE_POINTS buckets), and the queue depth last sampled in each. Files
   * written before the width was recorded hold an array of per-second points (`second` instead of
   * `startMs`): readResult turns it into a series of 1,000 ms buckets.
   */
  readonly timeline: TimelineSeries;
  /** API requests, where the adapter counts them (SQS). */
  readonly requests?: RequestTotals;
  /** What the broker told of its queues' own state after the run (PostgreSQL: `deadTuples`, `autovacuums`); absent where it tells nothing. */
  readonly queueStats?: Readonly<Record<string, number>>;
  /** The bounds every wait of the run had (absent in files written before it was recorded). */
  readonly limits?: RunLimits;
  readonly harness: HarnessUsage;
  readonly verdicts: readonly string[];
  readonly errors: readonly string[];
  /** What only this scenario measures; absent for scenarios without any (and in older files). */
  readonly scenarioData?: ScenarioDataRecord;
}

/** `ScenarioData` as stored: the same tables, records and values, histograms summarized and encoded. */
export interface ScenarioDataRecord {
  readonly tables: readonly ScenarioTable[];
  /** Extra latency histograms in µs by name, e.g. `lateness`. */
  readonly histograms: Readonly<Record<string, LatencyRecord>>;
  readonly records: ScenarioData['records'];
  readonly values: ScenarioData['values'];
}

/**
 * What a run lost, by the one definition (src/metrics/ledger.ts lostCount): dead letters count only
 * where the run sent messages there (--max-receives), from the dead-letter depth at its end.
 */
export function lostOf(result: { readonly config: Pick<RunConfig, 'maxReceives'>; readonly ledger: Pick<LedgerCounts, 'lost'>; readonly finalDepth: Pick<QueueDepth, 'dead'> }): number {
  return lostCount(result.ledger, result.config.maxReceives > 0 ? result.finalDepth.dead : 0);
}

/** A histogram as a result file stores it: summarized, encoded, with its clamp count. */
export function latencyRecord(h: Histogram): LatencyRecord {
  const clamped = clampedCount(h);
  return { ...summarize(h), histogram: encodeHistogram(h), ...(clamped > 0 ? { clamped } : {}) };
}

export function buildResult(record: RunRecord, workload?: WorkloadRecord): ResultFile {
  const { outcome } = record;
  const publishSec = (outcome.publishEndUs - outcome.startUs) / 1e6;
  const totalSec = (outcome.endUs - outcome.startUs) / 1e6;
  const receiveSec = outcome.lastDeliveryUs ? (outcome.lastDeliveryUs - outcome.startUs) / 1e6 : totalSec;
  const perSec = (count: number, seconds: number): number => (seconds > 0 ? count / seconds : 0);
  const latency = latencyRecord;
  return {
    schema: RESULT_SCHEMA,
    schemaVersion: RESULT_SCHEMA_VERSION,
    runId: record.runId,
    ...(record.runToken === undefined ? {} : { runToken: record.runToken }),
    status: outcome.status,
    ...(outcome.reason === undefined ? {} : { reason: outcome.reason }),
    startedAt: record.startedAt.toISOString(),
    finishedAt: record.finishedAt.toISOString(),
    scenario: record.config.scenario,
    ...(workload === undefined ? {} : { workload: { name: workload.name, file: workload.file, content: workload.content } }),
    config: record.config,
    broker: record.broker,
    environment: record.environment,
    ledger: outcome.ledger,
    lost: lostOf({ config: record.config, ledger: outcome.ledger, finalDepth: outcome.finalDepth }),
    missing: outcome.missing,
    counters: outcome.counters,
    throughput: {
      publishSec,
      totalSec,
      receiveSec,
      publishPerSec: perSec(publishedCount(outcome.ledger), publishSec),
      receivePerSec: perSec(outcome.ledger.deliveries, receiveSec),
      completePerSec: perSec(outcome.ledger.completed, totalSec),
    },
    latency: {
      publish: latency(outcome.histograms.publish),
      endToEnd: latency(outcome.histograms.endToEnd),
      execution: latency(outcome.histograms.execution),
      completion: latency(outcome.histograms.completion),
      ...(outcome.histograms.batchWait ? { batchWait: latency(outcome.histograms.batchWait) } : {}),
    },
    finalDepth: outcome.finalDepth,
    timeline: coarsen(outcome.timelineBuckets ?? seriesOfSeconds(outcome.timeline), MAX_TIMELINE_POINTS),
    ...(record.requests === undefined ? {} : { requests: record.requests }),
    ...(record.queueStats === undefined ? {} : { queueStats: record.queueStats }),
    ...(record.limits === undefined ? {} : { limits: record.limits }),
    harness: outcome.harness,
    verdicts: outcome.verdicts,
    errors: outcome.errors,
    ...(outcome.scenarioData === undefined ? {} : { scenarioData: scenarioDataRecord(outcome.scenarioData, latency) }),
  };
}

function scenarioDataRecord(data: ScenarioData, latency: (h: Histogram) => LatencyRecord): ScenarioDataRecord {
  const histograms: Record<string, LatencyRecord> = {};
  for (const [name, h] of Object.entries(data.histograms)) histograms[name] = latency(h);
  return { tables: data.tables, histograms, records: data.records, values: data.values };
}

/** `2026-11-26T07-30-05Z-redis-list-reliable-throughput-500000`, OMB-style: when, what, how much. */
export function resultBaseName(result: Pick<ResultFile, 'startedAt' | 'config'>): string {
  const stamp = result.startedAt.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const { adapter, mode, scenario, messages } = result.config;
  return `${stamp}-${adapter}-${mode}-${scenario}-${messages}`;
}

/** Fails before a run starts if results cannot be written there: one line with the fix. */
export async function ensureWritable(dir: string): Promise<void> {
  try {
    await makeFolder(dir);
    await access(dir, constants.W_OK);
    const probe = path.join(dir, `.write-check-${process.pid}-${randomBytes(3).toString('hex')}.tmp`);
    await writeFile(probe, '');
    await unlink(probe);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError(`cannot write results to ${dir} (${code}); choose another folder with --results-dir`);
  }
}

/**
 * Writes the result to a temporary file, then links it to its final name, which fails rather than
 * overwrite: an existing result gets a `-2`, `-3` … suffix instead. Returns the path written.
 */
export async function writeResult(dir: string, result: ResultFile): Promise<string> {
  await makeFolder(dir);
  const base = resultBaseName(result);
  const temporary = path.join(dir, `.${base}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`);
  try {
    // No secret is ever put into a result; scrubbing the text is the last line of defence all the same.
    // Inside the try: a write that fails half-way (a full disk) leaves no temporary file behind either.
    await writeFile(temporary, `${scrubSecrets(JSON.stringify(result, null, 2))}\n`, { flag: 'wx' });
    for (let attempt = 1; attempt < 1000; attempt++) {
      const target = path.join(dir, `${base}${attempt === 1 ? '' : `-${attempt}`}.json`);
      try {
        await link(temporary, target);
        return target;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    throw new Error(`too many results named ${base} in ${dir}`);
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

/**
 * `mkdir -p`, one level at a time. Node 20's recursive mkdir never returns for some paths (one under
 * /proc spins forever), and a run must fail on a bad folder, not hang on it. Every writer uses this one.
 */
export async function makeFolder(dir: string): Promise<void> {
  const absolute = path.resolve(dir);
  const missing: string[] = [];
  for (let current = absolute; ; current = path.dirname(current)) {
    try {
      await access(current);
      break;
    } catch {
      if (path.dirname(current) === current) break;
      missing.unshift(current);
    }
  }
  for (const folder of missing) {
    try {
      await mkdir(folder);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/** Reads and checks a result file; throws UsageError naming the file and the problem. */
export async function readResult(file: string): Promise<ResultFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`${file}: ${code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? 'error'})`}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`${file}: not JSON, so not a brokerbench result`);
  }
  const candidate = parsed as Partial<ResultFile> | null;
  if (typeof candidate !== 'object' || candidate === null || candidate.schema !== RESULT_SCHEMA) {
    throw new UsageError(`${file}: not a brokerbench result (no "schema": "${RESULT_SCHEMA}")`);
  }
  if (candidate.schemaVersion !== RESULT_SCHEMA_VERSION) {
    throw new UsageError(
      `${file}: result schema version ${String(candidate.schemaVersion)} is not one this brokerbench reads (${RESULT_SCHEMA_VERSION})`,
    );
  }
  if (!candidate.config || !candidate.latency || !candidate.throughput || !candidate.ledger || !candidate.broker) {
    throw new UsageError(`${file}: result is missing required sections (config, broker, ledger, throughput, latency)`);
  }
  const problem = resultShapeProblem(candidate);
  if (problem !== undefined) throw new UsageError(`${file}: not a result brokerbench can read: ${problem}`);
  const timeline = candidate.timeline as TimelineSeries | readonly TimelinePoint[];
  return { ...candidate, timeline: Array.isArray(timeline) ? seriesOfSeconds(timeline) : timeline } as ResultFile;
}
