// The parts of a run spread over workers (src/runner/worker.ts): each worker's part file, written
// atomically when it ends, and the merge of a parts folder into one result file that compare and
// report read as any run. The merge is exact: ledgers combine index by index (src/metrics/ledger.ts
// mergeLedgers), histograms are added (never percentiles averaged), requests and CPU summed, and rates
// taken over the merged window (first publish to last completion, on the reference clock). A worker
// that wrote no part but left a journal was killed: its journal is read as its books up to its death.
// A part missing, of another run or of another workload is refused, naming the file.
//
// LIMITATION: a dead worker's publish latencies and harness figures but CPU are not in its journal,
// so the merged publish histogram and harness cost lack them. Timelines are aligned to the second.

import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Histogram } from 'hdr-histogram-js';
import type { QueueDepth } from '../broker.ts';
import type { RunConfig } from '../config.ts';
import { UsageError } from '../errors.ts';
import { formatCount, formatLatency, formatRate } from '../format.ts';
import { createLatencyHistogram, decodeHistogram, mergeHistograms } from '../metrics/histogram.ts';
import { Ledger, mergeLedgers, publishedCount, type LedgerCounts, type LedgerPart, type LedgerState } from '../metrics/ledger.ts';
import { requestTotals, type RequestTotals } from '../metrics/requests.ts';
import { layEndToEnd, type TimelineSeries } from '../metrics/timeline.ts';
import type { HarnessUsage, RunCounters, RunStatus, ScenarioTable } from '../outcome.ts';
import { scrubSecrets } from '../secrets.ts';
import type { WorkloadRecord } from '../workload.ts';
import { journalFileName, parsePartName, partFileName, shardRange } from '../runner/shard.ts';
import type { ClockReading } from '../runner/worker-clock.ts';
import { journalWriterAlive, type WorkerRecord, type WorkerTimes } from '../runner/worker.ts';
import { readWorkerJournal, type WorkerHeader } from '../runner/worker-journal.ts';
import { ledgerVerdicts } from '../../scenarios/verdicts.ts';
import { buildResult, latencyRecord, makeFolder, RESULT_SCHEMA, RESULT_SCHEMA_VERSION, type CrossHostLatencyRecord, type LatencyRecord, type ResultFile, type WorkerSummary } from './result-file.ts';
import { resultShapeProblem } from './result-schema.ts';

export const PART_SCHEMA = 'brokerbench/part';
export const PART_SCHEMA_VERSION = 1;

/** What a part adds to a worker's result: who it was, its clock, its times on the reference clock, and its whole ledger. */
export interface PartInfo extends WorkerTimes {
  readonly sameHost: LatencyRecord;
  readonly crossHost: LatencyRecord;
}

/** A worker's part file: its own result and what the merge needs besides. */
export interface PartFile {
  readonly schema: typeof PART_SCHEMA;
  readonly schemaVersion: typeof PART_SCHEMA_VERSION;
  readonly part: PartInfo;
  /**
   * The worker's run as a result file: its latencies, counters, timeline and harness figures are its
   * own; its ledger counts see its books alone (its consumers took other workers' messages, and other
   * workers took its), so their `lost` and rates say nothing of the run: the merge does.
   */
  readonly result: ResultFile;
}

export function buildPart(record: WorkerRecord, workload?: WorkloadRecord): PartFile {
  const { worker } = record;
  return {
    schema: PART_SCHEMA,
    schemaVersion: PART_SCHEMA_VERSION,
    part: {
      runId: worker.runId,
      shard: worker.shard,
      shards: worker.shards,
      first: worker.first,
      end: worker.end,
      ratePerSec: worker.ratePerSec,
      host: worker.host,
      pid: worker.pid,
      ...(worker.startAt === undefined ? {} : { startAt: worker.startAt }),
      clock: worker.clock,
      startUs: worker.startUs,
      publishEndUs: worker.publishEndUs,
      lastDeliveryUs: worker.lastDeliveryUs,
      lastCompletionUs: worker.lastCompletionUs,
      endUs: worker.endUs,
      ledger: worker.ledger,
      sameHost: latencyRecord(worker.sameHost),
      crossHost: latencyRecord(worker.crossHost),
    },
    result: buildResult(record, workload),
  };
}

/**
 * What a worker prints when it ends: its share, not the run (whose books only the merge has), with
 * its clock against the reference.
 */
export function printPart(part: PartFile, file: string): string {
  const { part: info, result } = part;
  const own = info.end - info.first;
  const published = own - result.ledger.publishFailed - (result.ledger.notSent ?? 0);
  const clock = info.clock;
  const offset = clock.uncertaintyUs === null
    ? `${clock.reference} (no reference to compare with${clock.problem ? `: ${clock.problem}` : ''})`
    : `${formatSigned(clock.offsetUs)} ± ${formatLatency(Math.max(1, Math.round(clock.uncertaintyUs)))} against ${clock.reference}`;
  const lines = [
    `worker ${info.shard} of ${info.shards} of run ${info.runId} on ${info.host}, ${result.broker.name} (${result.broker.mode}): ${result.status}${result.reason ? ` (${result.reason})` : ''}`,
    `published ${formatCount(published)} of its ${formatCount(own)} messages (indices ${formatCount(info.first)} to ${formatCount(info.end - 1)}) at ${formatRate(result.throughput.publishSec > 0 ? published / result.throughput.publishSec : 0)}`,
    `its ${result.config.consumers} consumers: ${formatCount(result.ledger.deliveries)} deliveries and ${formatCount(result.ledger.completed)} completions, of every worker's messages`,
    `end-to-end p50 ${formatLatency(result.latency.endToEnd.p50)}, p99 ${formatLatency(result.latency.endToEnd.p99)}; of its own messages (one clock) p50 ${formatLatency(info.sameHost.p50)}; of the others' (two clocks) p50 ${formatLatency(info.crossHost.p50)}`,
    `clock: ${offset}`,
    ...result.errors.map((error) => `! first ${error}`),
    `part: ${file}`,
  ];
  return lines.join('\n');
}

/** A signed µs figure, e.g. `-85 µs`, `+1.20 ms`. */
function formatSigned(us: number): string {
  const rounded = Math.round(us);
  if (rounded === 0) return '0 µs';
  return `${rounded < 0 ? '-' : '+'}${formatLatency(Math.abs(rounded))}`;
}

/** Writes `part` into `dir` as `part-I-of-N.json`, atomically and never over another; returns its path. */
export async function writePart(dir: string, part: PartFile): Promise<string> {
  const target = path.join(dir, partFileName(part.part.shard, part.part.shards));
  await writeNew(target, `${scrubSecrets(JSON.stringify(part))}\n`);
  return target;
}

/** Writes `text` to `target` through a temporary file linked into place: all or nothing, and never over an existing file. */
export async function writeNew(target: string, text: string): Promise<void> {
  await makeFolder(path.dirname(target));
  const temporary = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, text, { flag: 'wx' });
    try {
      await link(temporary, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`${target} exists; give another file`);
      throw error;
    }
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

/** True when `dir` holds parts or journals of a run spread over workers (its files are merged, not read one by one). */
export function isPartsFolder(dir: string): boolean {
  try {
    return readdirSync(dir).some((name) => parsePartName(name) !== undefined);
  } catch {
    return false;
  }
}

/** One worker's books as the merge takes them, from its part or from the journal it left. */
interface WorkerBooks {
  readonly shard: number;
  readonly file: string;
  readonly status: RunStatus | 'killed';
  readonly host: string;
  readonly pid: number;
  readonly config: RunConfig | undefined;
  readonly clock: ClockReading | undefined;
  readonly startAt: string | undefined;
  readonly startedAt: string | undefined;
  readonly finishedAt: string | undefined;
  readonly result: ResultFile | undefined;
  readonly header: WorkerHeader | undefined;
  readonly ledger: LedgerPart;
  readonly counts: LedgerCounts;
  readonly counters: RunCounters | undefined;
  readonly histograms: Readonly<Record<'publish' | 'endToEnd' | 'execution' | 'completion' | 'sameHost' | 'crossHost', Histogram>>;
  readonly timeline: TimelineSeries;
  readonly startUs: number | undefined;
  readonly publishEndUs: number;
  readonly lastDeliveryUs: number;
  readonly lastCompletionUs: number;
  readonly endUs: number;
  readonly finalDepth: QueueDepth | undefined;
  readonly published: number;
  readonly cpuMs: { user: number; system: number };
  readonly peakRssBytes: number;
  readonly eventLoopDelayP50Ms: number;
  readonly eventLoopDelayP99Ms: number;
  readonly requests: { byKind: Readonly<Record<string, number>>; billed: number } | undefined;
  readonly errors: readonly string[];
  readonly reason: string | undefined;
}

/**
 * Merges the parts folder `dir` (DIR/<run-id>: the run id is its name) into one result. Throws
 * UsageError, naming the file, for a part missing, of another run, of another workload or damaged,
 * and for a worker still running.
 */
export async function mergeParts(dir: string): Promise<ResultFile> {
  const runId = path.basename(path.resolve(dir));
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    throw new UsageError(`${dir}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const found = names.flatMap((name) => {
    const parsed = parsePartName(name);
    return parsed ? [{ name, ...parsed }] : [];
  });
  if (found.length === 0) throw new UsageError(`${dir}: no part-I-of-N.json or .journal files, so not the parts folder of a run spread over workers`);
  const shards = Math.max(...found.map((entry) => entry.shards));
  const odd = found.find((entry) => entry.shards !== shards || entry.shard >= shards);
  if (odd) throw new UsageError(`${path.join(dir, odd.name)}: a part of ${odd.shards} workers, where ${path.join(dir, partFileName(0, shards))} … are of ${shards}`);
  const workers: WorkerBooks[] = [];
  for (let shard = 0; shard < shards; shard++) workers.push(await readWorker(dir, runId, shard, shards));
  return combine(runId, workers, shards);
}

async function readWorker(dir: string, runId: string, shard: number, shards: number): Promise<WorkerBooks> {
  const partPath = path.join(dir, partFileName(shard, shards));
  const journalPath = path.join(dir, journalFileName(shard, shards));
  let text: string | undefined;
  try {
    text = await readFile(partPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsageError(`${partPath}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (text !== undefined) return fromPart(partPath, text, runId, shard, shards);
  let journalStat;
  try {
    journalStat = statSync(journalPath);
  } catch {
    throw new UsageError(`${partPath}: missing (worker ${shard} of ${shards} left neither its part nor a journal); every worker of the run must have run`);
  }
  const books = readWorkerJournal(journalPath);
  const header = books.header;
  if (header !== undefined && header.runId !== runId) throw new UsageError(`${journalPath}: a journal of run ${header.runId}, not of run ${runId}`);
  if (journalWriterAlive(journalPath)) {
    const agoSec = ((Date.now() - journalStat.mtimeMs) / 1000).toFixed(1);
    throw new UsageError(`${journalPath}: worker ${shard} is still running (its journal was written ${agoSec} s ago); merge once every worker has finished`);
  }
  return fromJournal(journalPath, books, shard);
}

function fromPart(file: string, text: string, runId: string, shard: number, shards: number): WorkerBooks {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`${file}: not JSON, so not a part of a run`);
  }
  const candidate = parsed as Partial<PartFile> | null;
  if (typeof candidate !== 'object' || candidate === null || candidate.schema !== PART_SCHEMA || candidate.schemaVersion !== PART_SCHEMA_VERSION) {
    throw new UsageError(`${file}: not a part brokerbench reads (no "schema": "${PART_SCHEMA}" of version ${PART_SCHEMA_VERSION})`);
  }
  const part = candidate.part as Partial<PartInfo> | undefined;
  if (typeof part !== 'object' || part === null || typeof part.runId !== 'string') throw new UsageError(`${file}: the part has no "part" section`);
  if (part.runId !== runId) throw new UsageError(`${file}: a part of run ${part.runId}, not of run ${runId}`);
  if (part.shard !== shard || part.shards !== shards) throw new UsageError(`${file}: says it is worker ${String(part.shard)} of ${String(part.shards)}, not ${shard} of ${shards}`);
  const problem = resultShapeProblem(candidate.result) ?? partShapeProblem(part);
  if (problem !== undefined) throw new UsageError(`${file}: not a part brokerbench can read: ${problem}`);
  const info = part as PartInfo;
  const result = candidate.result as ResultFile;
  const decode = (name: string, encoded: string): Histogram => {
    try {
      return decodeHistogram(encoded);
    } catch {
      throw new UsageError(`${file}: its ${name} histogram does not decode (file damaged?)`);
    }
  };
  let counts: LedgerCounts;
  const ledger: LedgerPart = { ledger: info.ledger, first: info.first, end: info.end, inDoubt: [] };
  try {
    counts = mergeLedgers([ledger, ...complement(info.ledger.expected, info.first, info.end)]).counts;
  } catch (error) {
    throw new UsageError(`${file}: its ledger cannot be read (${(error as Error).message})`);
  }
  return {
    shard,
    file: path.basename(file),
    status: result.status,
    host: info.host,
    pid: info.pid,
    config: result.config,
    clock: info.clock,
    startAt: info.startAt,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    result,
    header: undefined,
    ledger,
    counts,
    counters: result.counters,
    histograms: {
      publish: decode('publish', result.latency.publish.histogram),
      endToEnd: decode('end-to-end', result.latency.endToEnd.histogram),
      execution: decode('execution', result.latency.execution.histogram),
      completion: decode('completion', result.latency.completion.histogram),
      sameHost: decode('same-host', info.sameHost.histogram),
      crossHost: decode('cross-host', info.crossHost.histogram),
    },
    timeline: result.timeline,
    startUs: info.startUs,
    publishEndUs: info.publishEndUs,
    lastDeliveryUs: info.lastDeliveryUs,
    lastCompletionUs: info.lastCompletionUs,
    endUs: info.endUs,
    finalDepth: result.finalDepth,
    // Its own indices only: the rest of its ledger's range was never its to send.
    published: info.end - info.first - result.ledger.publishFailed - (result.ledger.notSent ?? 0),
    cpuMs: { user: result.harness.cpuUserMs ?? 0, system: result.harness.cpuSystemMs ?? 0 },
    peakRssBytes: result.harness.peakRssBytes,
    eventLoopDelayP50Ms: result.harness.eventLoopDelayP50Ms,
    eventLoopDelayP99Ms: result.harness.eventLoopDelayP99Ms,
    requests: result.requests,
    errors: result.errors,
    reason: result.reason,
  };
}

/** Ledgers that own everything outside [first, end) and say nothing, so one part's counts can be read on their own. */
function complement(expected: number, first: number, end: number): LedgerPart[] {
  const empty = new Ledger(expected).state();
  const parts: LedgerPart[] = [];
  if (first > 0) parts.push({ ledger: { ...empty, notSent: [[0, first]] }, first: 0, end: first, inDoubt: [] });
  if (end < expected) parts.push({ ledger: { ...empty, notSent: [[end, expected]] }, first: end, end: expected, inDoubt: [] });
  return parts;
}

/** The first thing wrong with a part's own section, or undefined. */
function partShapeProblem(part: Partial<PartInfo>): string | undefined {
  const numbers = ['first', 'end', 'ratePerSec', 'pid', 'startUs', 'publishEndUs', 'lastDeliveryUs', 'lastCompletionUs', 'endUs'] as const;
  for (const name of numbers) if (typeof part[name] !== 'number' || !Number.isFinite(part[name])) return `part.${name}: expected a number`;
  if (typeof part.host !== 'string') return 'part.host: expected text';
  const clock = part.clock as Partial<ClockReading> | undefined;
  if (typeof clock !== 'object' || clock === null || typeof clock.reference !== 'string' || typeof clock.offsetUs !== 'number' || !(clock.uncertaintyUs === null || typeof clock.uncertaintyUs === 'number')) {
    return 'part.clock: expected a reference, an offset and an uncertainty';
  }
  const ledger = part.ledger as Partial<LedgerState> | undefined;
  if (typeof ledger !== 'object' || ledger === null || typeof ledger.delivered !== 'string' || typeof ledger.completed !== 'string' || !Array.isArray(ledger.publishFailed) || !Array.isArray(ledger.notSent)) {
    return 'part.ledger: expected a ledger state';
  }
  for (const name of ['expected', 'deliveries', 'completions', 'unknown', 'foreign'] as const) if (typeof ledger[name] !== 'number') return `part.ledger.${name}: expected a number`;
  for (const name of ['sameHost', 'crossHost'] as const) if (typeof part[name]?.histogram !== 'string') return `part.${name}: expected an encoded histogram`;
  return undefined;
}

function fromJournal(file: string, books: ReturnType<typeof readWorkerJournal>, shard: number): WorkerBooks {
  const header = books.header;
  const zero = { publish: createLatencyHistogram(), endToEnd: createLatencyHistogram(), execution: createLatencyHistogram(), completion: createLatencyHistogram() };
  const histograms = books.books ? { ...books.books.histograms } : zero;
  const state = books.books?.ledger.state();
  const messages = header?.config.messages;
  return {
    shard,
    file: path.basename(file),
    status: 'killed',
    host: header?.host ?? 'unknown',
    pid: header?.pid ?? 0,
    config: header?.config,
    clock: header?.clock,
    startAt: header?.startAt,
    startedAt: header?.startedAt,
    finishedAt: undefined,
    result: undefined,
    header,
    // A worker that died before its header published nothing: the merge fills in its range once it knows the run's size.
    ledger: state && header ? { ledger: state, first: header.first, end: header.end, inDoubt: books.inDoubt } : { ledger: new Ledger(0).state(), first: -1, end: -1, inDoubt: [] },
    counts: books.books?.ledger.counts() ?? new Ledger(messages ?? 0).counts(),
    counters: books.books ? { ...books.books.counters } : undefined,
    histograms: { publish: histograms.publish, endToEnd: histograms.endToEnd, execution: histograms.execution, completion: histograms.completion, sameHost: books.sameHost, crossHost: books.crossHost },
    timeline: books.books?.timeline.series() ?? { bucketMs: 1000, points: [] },
    startUs: books.startUs,
    publishEndUs: books.lastPublishUs,
    lastDeliveryUs: books.lastDeliveryUs,
    lastCompletionUs: books.lastCompletionUs,
    endUs: Math.max(books.lastPublishUs, books.lastDeliveryUs, books.lastCompletionUs),
    finalDepth: undefined,
    published: books.published,
    cpuMs: { user: (books.usage?.userUs ?? 0) / 1000, system: (books.usage?.systemUs ?? 0) / 1000 },
    peakRssBytes: (books.usage?.maxRssKiB ?? 0) * 1024,
    eventLoopDelayP50Ms: 0,
    eventLoopDelayP99Ms: 0,
    requests: books.requests,
    errors: books.books ? [...books.books.errors.values()] : [],
    reason: undefined,
  };
}

/** The workload fields every part must share (consumers and publishers are each worker's own). */
const SHARED_CONFIG = ['adapter', 'mode', 'scenario', 'messages', 'payloadBytes', 'publishBatch', 'ratePerSec', 'lingerMs', 'receiveBatch', 'queues', 'channel', 'visibilityTimeoutMs', 'maxReceives', 'warmupMessages'] as const;

function combine(runId: string, workers: readonly WorkerBooks[], shards: number): ResultFile {
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
