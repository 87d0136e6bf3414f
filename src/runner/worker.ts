// One worker's share of a run spread over many processes or hosts (`brokerbench worker`): it reads its
// clock against the run's reference, makes the queues (worker 0) or waits for them (the others),
// sleeps until the common start, publishes its slice of the indices at its slice of the rate while
// its consumers take whatever the broker gives them, and hands back its books for its part file. A
// journal beside the part keeps, with writeSync, what a SIGKILL must not take (src/runner/worker-journal.ts).
// The engine that places workers (Kubernetes, docker compose, a shell loop) is not ours: workers
// never talk to each other, only through the broker and the parts folder.
//
// LIMITATION: the throughput pipeline only (with or without --rate). A worker ends once the broker
// has been empty and quiet for a receive wait and a visibility timeout, since its books alone never
// see the whole run. Only the last worker to finish (every other part written) removes the queues: a
// run with a dead worker leaves them for `brokerbench worker --teardown`.

import { closeSync, existsSync, openSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Histogram } from 'hdr-histogram-js';
import { isRequestCounting, type Broker, type BrokerAdapter, type BrokerOptions } from '../broker.ts';
import type { RunConfig } from '../config.ts';
import { describeEnvironment } from '../environment.ts';
import { UsageError } from '../errors.ts';
import { formatCount } from '../format.ts';
import { createLatencyHistogram, recordLatency } from '../metrics/histogram.ts';
import type { LedgerState } from '../metrics/ledger.ts';
import { requestTotals } from '../metrics/requests.ts';
import type { RunRecord } from '../outcome.ts';
import { withinMs } from '../pipeline/waits.ts';
import { PIPELINE_LIMITS, runPipeline } from './pipeline.ts';
import { PROCESS_LIMITS } from './process-consumers.ts';
import { queueNames, type RunnerEvent } from './runner.ts';
import { journalFileName, namespaceOf, partFileName, QUEUES_READY_FILE, runTokenOf, shardRange } from './shard.ts';
import { measureClock, ReferenceClock, type ClockReading } from './worker-clock.ts';
import { WorkerJournal, type WorkerIdentity } from './worker-journal.ts';

/** How long workers other than 0 wait for worker 0 to make the queues, after the start time if one is given, ms. */
const QUEUES_WAIT_MS = 60_000;
/** How often a worker writes to its journal while alive (the merge takes a journal silent for longer as a dead worker's), ms. */
export const HEARTBEAT_MS = 1_000;
/** Longest removing the queues may take, ms. */
const TEARDOWN_LIMIT_MS = 15_000;

export interface WorkerOptions {
  readonly adapter: BrokerAdapter;
  /** Connection options; the namespace comes from the run id. */
  readonly connection: Omit<BrokerOptions, 'namespace'>;
  /** The run's whole workload: messages and --rate are the whole run's, consumers and publishers this worker's. */
  readonly config: RunConfig;
  readonly runId: string;
  readonly shard: number;
  readonly shards: number;
  /** When every worker starts publishing, Unix ms; absent: at once. */
  readonly startAtMs?: number;
  /** The run's parts folder (DIR/<run-id>), made already. */
  readonly partsDir: string;
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: RunnerEvent) => void;
  /** Writes the part once the run is over (before the journal goes and any teardown); returns its path. */
  readonly writePart: (record: WorkerRecord) => Promise<string>;
}

/** What a worker adds to a run's record: who it was, its clock, and what the merge needs of its books. */
export interface WorkerFacts extends WorkerTimes {
  /** End-to-end latency of deliveries of messages it published itself (exact) and of the other workers' (within the clocks' bound), past the warm-up. */
  readonly sameHost: Histogram;
  readonly crossHost: Histogram;
}

/** A worker's identity, its clock, its times on the reference clock and its whole ledger: what its record and its part both carry. */
export interface WorkerTimes extends WorkerIdentity {
  readonly clock: ClockReading;
  /** On the reference clock, µs since the run epoch: publishing began, last publish accepted, last delivery, last completion (0: none), end. */
  readonly startUs: number;
  readonly publishEndUs: number;
  readonly lastDeliveryUs: number;
  readonly lastCompletionUs: number;
  readonly endUs: number;
  readonly ledger: LedgerState;
}

export interface WorkerRecord extends RunRecord {
  readonly worker: WorkerFacts;
}

/** What a worker did: its record, where its part went, and whether it removed the queues (it finished last). */
export interface WorkerOutcome {
  readonly record: WorkerRecord;
  readonly partFile: string;
  readonly tornDown: boolean;
  /** Why the queues could not be removed, when it tried. */
  readonly teardownProblem?: string;
}

export async function runWorker(options: WorkerOptions): Promise<WorkerOutcome> {
  const { adapter, config, runId, shard, shards, partsDir, onEvent } = options;
  const partPath = path.join(partsDir, partFileName(shard, shards));
  const journalPath = path.join(partsDir, journalFileName(shard, shards));
  for (const taken of [partPath, journalPath]) {
    if (existsSync(taken)) throw new UsageError(`${taken} exists: worker ${shard} of run ${runId} has run already; give the run a new --run-id`);
  }
  const runToken = runTokenOf(runId);
  const namespace = namespaceOf(runId);
  const queues = queueNames(config);
  const { first, end } = shardRange(config.messages, shards, shard);
  const ratePerSec = (config.ratePerSec * (end - first)) / config.messages;
  const startedAt = new Date();
  onEvent?.({ type: 'phase', phase: 'prepare', detail: `worker ${shard} of ${shards}: connecting to ${adapter.name} (${config.mode})` });
  const broker = await adapter.open({ ...options.connection, namespace, mode: config.mode });
  let journal: WorkerJournal | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let partWritten = false;
  let began = false;
  try {
    const info = await broker.describe();
    const clock = await measureClock(options.connection.url);
    journal = new WorkerJournal(journalPath, () => clock.nowUs());
    const cpuAtStart = process.cpuUsage();
    const beat = (): void => {
      const cpu = process.cpuUsage(cpuAtStart);
      journal?.heartbeat({ userUs: cpu.user, systemUs: cpu.system, maxRssKiB: process.resourceUsage().maxRSS });
    };
    heartbeat = setInterval(beat, HEARTBEAT_MS);
    heartbeat.unref();
    const environment = describeEnvironment();
    const startAt = options.startAtMs === undefined ? undefined : new Date(options.startAtMs).toISOString();
    const host = hostname();
    journal.header({
      runId, shard, shards, first, end, ratePerSec, host, pid: process.pid,
      ...(startAt === undefined ? {} : { startAt }),
      runToken, config, broker: { ...info, capabilities: broker.capabilities }, environment, clock: clock.reading, startedAt: startedAt.toISOString(),
    });
    beat();
    await prepareQueues(broker, options, queues, clock);

    const sameHost = createLatencyHistogram();
    const crossHost = createLatencyHistogram();
    let lastCompletionUs = 0;
    let ledger: LedgerState | undefined;
    // Waiting for the start is no part of --timeout: it bounds connecting, publishing and draining.
    const waitMs = options.startAtMs === undefined ? 0 : Math.max(0, options.startAtMs - Date.now());
    const outcome = await runPipeline({
      broker,
      config: { ...config, timeoutMs: config.timeoutMs + waitMs },
      queues,
      clock,
      runToken,
      share: { first, end, ratePerSec },
      publishJournal: journal,
      consumerSink: (c, sink) => journal!.consumerSink(c, sink, (atUs) => (lastCompletionUs = Math.max(lastCompletionUs, atUs))),
      hooks: {
        onDelivered: (index, _receiveCount, sentUs, receivedUs) => {
          if (index >= config.warmupMessages) recordLatency(index >= first && index < end ? sameHost : crossHost, receivedUs - sentUs);
        },
      },
      beforePublish: async () => {
        if (options.startAtMs !== undefined) await sleepUntil(clock, ReferenceClock.fromWallMs(options.startAtMs), options.signal);
        onEvent?.({ type: 'phase', phase: 'run', detail: `worker ${shard} of ${shards}: messages ${formatCount(first)} to ${formatCount(end - 1)}` });
        journal!.started(clock.nowUs());
        began = true;
      },
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (progress) => onEvent?.({ type: 'tick', progress }),
      onBooks: (books) => (ledger = books.ledger.state()),
    });
    const requests = isRequestCounting(broker) ? requestTotals({ ...broker.requestCounts() }, broker.billedRequests()) : undefined;
    const record: WorkerRecord = {
      runId,
      runToken,
      startedAt,
      finishedAt: new Date(),
      config,
      broker: { ...info, capabilities: broker.capabilities },
      environment,
      outcome: { ...outcome, verdicts: [`worker ${shard} of ${shards} of run ${runId}: its share alone; the run's books are in the merge of its parts`] },
      ...(requests ? { requests } : {}),
      limits: {
        timeoutMs: config.timeoutMs,
        commandMs: options.connection.commandTimeoutMs,
        ...PIPELINE_LIMITS,
        ...PROCESS_LIMITS,
        teardownMs: TEARDOWN_LIMIT_MS,
      },
      worker: {
        runId, shard, shards, first, end, ratePerSec, host, pid: process.pid,
        ...(startAt === undefined ? {} : { startAt }),
        clock: clock.reading,
        startUs: outcome.startUs,
        publishEndUs: outcome.publishEndUs,
        lastDeliveryUs: outcome.lastDeliveryUs ?? 0,
        lastCompletionUs,
        endUs: outcome.endUs,
        ledger: ledger!,
        sameHost,
        crossHost,
      },
    };
    clearInterval(heartbeat);
    const partFile = await options.writePart(record);
    partWritten = true;
    journal.close();
    journal = undefined;
    rmSync(journalPath, { force: true });
    // The last worker to finish removes the queues: every other part is written, so no worker runs.
    const everyPart = Array.from({ length: shards }, (_, k) => path.join(partsDir, partFileName(k, shards)));
    if (!everyPart.every((file) => existsSync(file))) return { record, partFile, tornDown: false };
    onEvent?.({ type: 'phase', phase: 'teardown', detail: `removing ${queues.length} queue(s): every worker has finished` });
    const problem = await removeQueues(broker, queues);
    return { record, partFile, tornDown: problem === undefined, ...(problem === undefined ? {} : { teardownProblem: problem }) };
  } finally {
    clearInterval(heartbeat);
    // A worker that stops without its part keeps its journal, which the merge reads as a dead worker's
    // books; one that stopped before it began (a refusal, a broker gone) did nothing, and leaves nothing.
    if (journal !== undefined && !partWritten) {
      journal.close();
      if (!began) rmSync(journalPath, { force: true });
    }
    await withinMs(broker.close().catch(() => undefined), TEARDOWN_LIMIT_MS);
  }
}

/**
 * Worker 0 makes the queues and says so in the parts folder; the others wait for that (bounded), then
 * prepare them on their own handle, which finds them made (preparing is idempotent).
 */
async function prepareQueues(broker: Broker, options: WorkerOptions, queues: readonly string[], clock: ReferenceClock): Promise<void> {
  const { config, shard, partsDir, runId } = options;
  const ready = path.join(partsDir, QUEUES_READY_FILE);
  if (shard !== 0) {
    const deadlineMs = Math.max(Date.now(), options.startAtMs ?? 0) + QUEUES_WAIT_MS;
    while (!existsSync(ready)) {
      if (options.signal?.aborted) throw new UsageError(`worker ${shard}: interrupted while waiting for worker 0 to make the queues`);
      if (Date.now() > deadlineMs) {
        throw new UsageError(`worker ${shard}: worker 0 of run ${runId} has not made the queues after ${QUEUES_WAIT_MS / 1000} s (no ${ready}); start worker 0 with the same --run-id and --parts-dir`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  for (const name of queues) await broker.prepare({ name, visibilityTimeoutMs: config.visibilityTimeoutMs, maxReceives: config.maxReceives });
  if (shard === 0 && !existsSync(ready)) {
    const temporary = `${ready}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify({ runId, queues, preparedUs: Math.round(clock.nowUs()) })}\n`);
    renameSync(temporary, ready);
  }
}

/** Sleeps until `untilUs` on `clock` (reference µs), or until `signal` aborts. */
async function sleepUntil(clock: ReferenceClock, untilUs: number, signal: AbortSignal | undefined): Promise<void> {
  for (;;) {
    const aheadMs = (untilUs - clock.nowUs()) / 1000;
    if (aheadMs <= 0 || signal?.aborted) return;
    // Whole-ms timers fire up to a ms late: sleep to within 2 ms, then give way in turns.
    await new Promise((resolve) => setTimeout(resolve, aheadMs > 2 ? Math.min(aheadMs - 1, 1000) : 0));
  }
}

/** Removes the run's queues within TEARDOWN_LIMIT_MS; what went wrong, if anything. */
export async function removeQueues(broker: Broker, queues: readonly string[]): Promise<string | undefined> {
  const failed: string[] = [];
  const done = await withinMs(
    (async () => {
      for (const name of queues) {
        try {
          await broker.teardown(name);
        } catch (error) {
          failed.push(`${name} (${error instanceof Error ? error.message : String(error)})`);
        }
      }
      return true;
    })(),
    TEARDOWN_LIMIT_MS,
  );
  if (!done) return `teardown: gave up after ${TEARDOWN_LIMIT_MS / 1000} s`;
  return failed.length === 0 ? undefined : `teardown: could not remove ${failed.join('; ')}`;
}

/**
 * Whether the worker writing the journal at `file` may still run: its process is alive on this host,
 * or (on another host, where a pid means nothing) the journal was written within the last few
 * heartbeats. False for a journal that is not there.
 */
export function journalWriterAlive(file: string, nowMs = Date.now()): boolean {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(file).mtimeMs;
  } catch {
    return false;
  }
  const header = readHeaderLine(file);
  if (header !== undefined && header.host === hostname() && header.pid > 0) {
    try {
      process.kill(header.pid, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  return nowMs - mtimeMs < 5 * HEARTBEAT_MS;
}

/** Where the journal's header says its worker ran, if it has one. */
function readHeaderLine(file: string): { host: string; pid: number } | undefined {
  const buffer = Buffer.alloc(64 * 1024);
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const text = buffer.toString('utf8', 0, readSync(fd, buffer, 0, buffer.length, 0));
    if (!text.startsWith('W ') || !text.includes('\n')) return undefined;
    const header = JSON.parse(text.slice(2, text.indexOf('\n'))) as { host?: unknown; pid?: unknown };
    return typeof header.host === 'string' && typeof header.pid === 'number' ? { host: header.host, pid: header.pid } : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
