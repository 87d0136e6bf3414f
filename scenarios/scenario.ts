// What a scenario is: a typed object saying what it measures and what it cannot, and how it runs.
//
// LIMITATION: types only; each scenario file states its own limitations (and `limitations` says them
// in one line for the report).

import type { Histogram } from 'hdr-histogram-js';
import type { Broker, BrokerCapabilities, BrokerOptions } from '../src/broker.ts';
import type { Clock } from '../src/clock.ts';
import type { RunConfig } from '../src/config.ts';
import type { TaskSpec } from '../src/pipeline/executor.ts';
import type { RequestTotals } from '../src/report/result-file.ts';
import type { PipelineOutcome, RunProgress } from '../src/runner/pipeline.ts';

export interface ScenarioContext {
  /** Connected handle; the queues are prepared and torn down by the runner. */
  readonly broker: Broker;
  readonly config: RunConfig;
  readonly queues: readonly string[];
  readonly clock: Clock;
  /** The run's identity, written into every body; pass it on to every pipeline the scenario runs. */
  readonly runToken?: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: RunProgress) => void;
  /**
   * How `broker` was opened: the adapter's name and its options, the run's namespace included, for
   * scenarios that open more handles elsewhere (consumer processes, consumer groups). The URL may
   * hold a password: never print it.
   */
  readonly connection?: ScenarioConnection;
}

export interface ScenarioConnection {
  readonly adapter: string;
  readonly options: BrokerOptions;
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

/** Defaults a scenario gives flags the user left out; anything not named keeps the global default. */
export type ScenarioDefaults = Partial<Omit<RunConfig, 'task'>> & { readonly task?: Partial<TaskSpec> };

export interface Scenario {
  readonly name: string;
  /** What the scenario measures, one sentence. */
  readonly measures: string;
  /** What its numbers do not show. */
  readonly limitations: string;
  /** Capabilities without which the scenario means nothing; the runner refuses such brokers up front. */
  readonly requires: readonly (keyof BrokerCapabilities)[];
  /** Flag defaults of its own (e.g. executor: 1,000 messages of 1 s tasks), used where a flag is not given. */
  readonly defaults?: ScenarioDefaults;
  /**
   * Derives and checks the scenario's own settings once the flags are read, before queues are made
   * (e.g. retry-dlq sets maxReceives from --retry-intervals). Throws UsageError with a one-line fix.
   */
  configure?(config: RunConfig, capabilities: BrokerCapabilities): RunConfig;
  run(context: ScenarioContext): Promise<ScenarioOutcome>;
}
