// What a scenario is: a typed object saying what it measures and what it cannot, and how it runs. The
// contract lives on the ground floor, so the runner takes a scenario without importing scenarios/.
//
// LIMITATION: types only; each scenario file states its own limitations (and `limitations` says them
// in one line for the report). The scenarios themselves are in scenarios/.

import type { Broker, BrokerCapabilities, BrokerOptions } from './broker.ts';
import type { Clock } from './clock.ts';
import type { RunConfig, TaskSpec } from './config.ts';
import type { RunProgress, ScenarioOutcome } from './outcome.ts';

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
