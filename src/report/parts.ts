// The parts of a run spread over workers (src/runner/worker.ts): each worker's part file, written
// atomically when it ends, and the merge of a parts folder into one result file that compare and
// report read as any run. The merge is exact: ledgers combine index by index (src/metrics/ledger.ts
// mergeLedgers), histograms are added (never percentiles averaged), requests and CPU summed, and rates
// taken over the merged window (first publish to last completion, on the reference clock). A worker
// that wrote no part but left a journal was killed: its journal is read as its books up to its death.
// A part missing, of another run or of another workload is refused, naming the file.
//
// LIMITATION: a dead worker's publish latencies and harness figures but CPU are not in its journal,
// so the merged publish histogram and harness cost lack them (src/report/parts-merge.ts).

import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Histogram } from 'hdr-histogram-js';
import type { QueueDepth } from '../broker.ts';
import type { RunConfig } from '../config.ts';
import { UsageError } from '../errors.ts';
import { formatCount, formatLatency, formatRate } from '../format.ts';
import { createLatencyHistogram, decodeHistogram } from '../metrics/histogram.ts';
import { Ledger, mergeLedgers, type LedgerCounts, type LedgerPart, type LedgerState } from '../metrics/ledger.ts';
import type { TimelineSeries } from '../metrics/timeline.ts';
import type { RunCounters, RunStatus } from '../outcome.ts';
import { scrubSecrets } from '../secrets.ts';
import type { WorkloadRecord } from '../workload.ts';
import { journalFileName, parsePartName, partFileName } from '../runner/shard.ts';
import type { ClockReading } from '../runner/worker-clock.ts';
import { journalWriterAlive, type WorkerRecord, type WorkerTimes } from '../runner/worker.ts';
import { readWorkerJournal, type WorkerHeader } from '../runner/worker-journal.ts';
import { buildResult, latencyRecord, makeFolder, type LatencyRecord, type ResultFile } from './result-file.ts';
import { resultShapeProblem } from './result-schema.ts';
import { combine } from './parts-merge.ts';

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
export interface WorkerBooks {
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
