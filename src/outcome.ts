// What a run produces, as every layer sees it: a pipeline's outcome, a scenario's, and the record a
// result file is built from. Types only, on the ground floor: the runner, the scenarios and the report
// all import them from here, never from each other.

import type { Histogram } from 'hdr-histogram-js';
import type { BrokerCapabilities, BrokerInfo, QueueDepth } from './broker.ts';
import type { RunConfig } from './config.ts';
import type { EnvironmentInfo } from './environment.ts';
import type { LedgerCounts } from './metrics/ledger.ts';
import type { RequestTotals } from './metrics/requests.ts';
import type { TimelinePoint, TimelineSeries } from './metrics/timeline.ts';

/** How the run ended. */
export type RunStatus = 'completed' | 'timeout' | 'failed' | 'interrupted';

/** A live snapshot, emitted on every tick for progress displays. */
export interface RunProgress {
  readonly phase: 'run' | 'drain';
  readonly elapsedMs: number;
  readonly expected: number;
  readonly published: number;
  readonly completed: number;
  readonly publishFailed: number;
  /** Messages completed per second over the last tick. */
  readonly completeRatePerSec: number;
  /** ready + inFlight + delayed at the last sample; undefined before the first. */
  readonly depth: number | undefined;
  /**
   * In a scenario of several pipelines (fixed-rate's rates, scale-out's steps), the one this tick is
   * from: `index` from 0 of `count`, and a label (`rate 3,000/s`). `expected` and `completed` are the step's own.
   */
  readonly step?: { readonly index: number; readonly count: number; readonly label: string };
}

/** Counters the run keeps besides the ledger's. */
export interface RunCounters {
  readonly publishCalls: number;
  readonly publishErrors: number;
  readonly receiveCalls: number;
  readonly emptyReceives: number;
  readonly receiveErrors: number;
  readonly ackErrors: number;
  /** Deliveries with a receive count above 1 (the broker itself said it was a redelivery). */
  readonly redeliveries: number;
  /** Tasks that failed and were nacked for a retry. */
  readonly taskFailures: number;
  /** Bodies that were not messages at all (or named an index out of range); acked and counted. Well-formed bodies of another run are the ledger's `foreign`. */
  readonly malformed: number;
}

export interface PipelineHistograms {
  /** Send (or intended send) to the broker acknowledging the write, µs. */
  readonly publish: Histogram;
  /** Send to received by a consumer, µs. */
  readonly endToEnd: Histogram;
  /** Task execution time, µs (empty when there is no task). */
  readonly execution: Histogram;
  /** Send to acked after the task, µs. */
  readonly completion: Histogram;
  /**
   * Under --rate: how long each message waited for its batch to leave, from when it was due (or, if
   * the publishers were behind, when one took it up) to when the batch's last message was due, µs; at
   * most --linger-ms. Absent without --rate (a batch is sent as soon as it is made).
   */
  readonly batchWait?: Histogram;
}

export interface PipelineOutcome {
  readonly status: RunStatus;
  /** Why the run did not complete, one line; undefined when it did. */
  readonly reason: string | undefined;
  /** Monotonic µs when publishing started and when the last message was published / the run ended. */
  readonly startUs: number;
  readonly publishEndUs: number;
  readonly endUs: number;
  /** Monotonic µs of the last delivery (0: none); absent where a scenario merges several runs' outcomes. */
  readonly lastDeliveryUs?: number;
  readonly ledger: LedgerCounts;
  /** First few indices published but never completed. */
  readonly missing: number[];
  readonly counters: RunCounters;
  readonly histograms: PipelineHistograms;
  /** Per second: what scenarios read their backlog and windows from. */
  readonly timeline: TimelinePoint[];
  /**
   * The same counts in 100 ms buckets (wider for long runs), what the result file keeps; where a
   * scenario builds an outcome of its own without them, its per-second timeline is written instead.
   */
  readonly timelineBuckets?: TimelineSeries;
  /** Depth when the run ended. */
  readonly finalDepth: QueueDepth;
  /** First error of each kind, for the report; never contains secrets (adapters redact). */
  readonly errors: readonly string[];
  /** The harness's own cost: CPU time and event-loop delay while it ran. */
  readonly harness: HarnessUsage;
  /** API requests of consumers outside this process (consumer processes on SQS), by kind, and billed. */
  readonly consumerRequests?: { readonly byKind: Readonly<Record<string, number>>; readonly billed: number };
}

export interface HarnessUsage {
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  /** CPU time over wall time; 1.0 = one core busy all the time. */
  readonly cpuCores: number;
  /** This process's peak RSS, plus each consumer process's own peak when there are some (their sum: an upper bound). */
  readonly peakRssBytes: number;
  /** The consumer processes' share, already included in the figures above. */
  readonly consumerProcesses?: ConsumerSetUsage;
  /** Event-loop delay percentiles, ms: a high p99 means the harness itself was the bottleneck. */
  readonly eventLoopDelayP50Ms: number;
  readonly eventLoopDelayP99Ms: number;
}

/** The cost of consumer processes, summed over all of them. */
export interface ConsumerSetUsage {
  readonly processes: number;
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  /** The sum of each process's own peak RSS: an upper bound, as the peaks need not coincide. */
  readonly peakRssBytes: number;
}

export interface ScenarioOutcome extends PipelineOutcome {
  /** One-line findings, e.g. "nothing lost: 500000 of 500000 completed". */
  readonly verdicts: readonly string[];
  /** What only this scenario measures (per-rate rows, a per-type table, a lateness histogram …). */
  readonly scenarioData?: ScenarioData;
  /**
   * The requests the result's top-level figures stand for, when they are not the whole run's (fixed-rate:
   * the headline rate's); undefined = all the broker counted.
   */
  readonly requests?: RequestTotals;
}

/** A table as printed: a title, column heads and formatted cells. */
export interface ScenarioTable {
  readonly title: string;
  readonly head: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/** A scalar a machine can read back; the unit is in the name (`highestRateHeldPerSec`). */
export type ScenarioValue = number | string | boolean | null;

/** Scenario-specific results, written to the result file's `scenarioData` (see src/report/result-file.ts). */
export interface ScenarioData {
  /** For people: printed after the summary tables, in this order. */
  readonly tables: readonly ScenarioTable[];
  /** Extra latency histograms in µs by name (e.g. `lateness`), stored like the standard ones. */
  readonly histograms: Readonly<Record<string, Histogram>>;
  /** For machines: lists of records by name (e.g. `rates`: one per rate), units in the field names. */
  readonly records: Readonly<Record<string, readonly Readonly<Record<string, ScenarioValue>>[]>>;
  /** For machines: single figures by name, units in the names. */
  readonly values: Readonly<Record<string, ScenarioValue>>;
}

export interface RunRecord {
  readonly runId: string;
  readonly runToken?: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly config: RunConfig;
  readonly broker: BrokerInfo & { readonly capabilities: BrokerCapabilities };
  readonly environment: EnvironmentInfo;
  readonly outcome: ScenarioOutcome;
  readonly requests?: RequestTotals;
  /** What the broker told of its queues' own state after the run, added up over them (QueueStats in src/broker.ts). */
  readonly queueStats?: Readonly<Record<string, number>>;
  readonly limits?: RunLimits;
}

/**
 * Every wait of a run has a bound, ms: connecting, publishing and draining share --timeout; what comes
 * after the run (finishing work in hand, closing connections, stopping consumer processes, removing the
 * queues) and a consumer process's start have bounds of their own, recorded here.
 */
export interface RunLimits {
  /** --timeout: connecting the consumers, publishing and draining, together. */
  readonly timeoutMs: number;
  /** Connecting, and any single broker command that does not block by design. */
  readonly commandMs: number;
  /** Work in hand after an interrupt, a timeout or a failure: how long it may finish. */
  readonly stopGraceMs: number;
  /** Closing the consumers' connections, and the last depth sample. */
  readonly closeMs: number;
  /** A consumer process's start (connect, prepare), and its stop beyond the receive wait. */
  readonly childStartMs: number;
  readonly childStopGraceMs: number;
  /** Removing the run's queues and closing the broker. */
  readonly teardownMs: number;
}
