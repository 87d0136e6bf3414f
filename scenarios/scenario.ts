// What a scenario is: a typed object saying what it measures and what it cannot, and how it runs.

import type { Broker, BrokerCapabilities } from '../src/broker.ts';
import type { Clock } from '../src/clock.ts';
import type { RunConfig } from '../src/config.ts';
import type { PipelineOutcome, RunProgress } from '../src/runner/pipeline.ts';

export interface ScenarioContext {
  /** Connected handle; the queues are prepared and torn down by the runner. */
  readonly broker: Broker;
  readonly config: RunConfig;
  readonly queues: readonly string[];
  readonly clock: Clock;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: RunProgress) => void;
}

export interface ScenarioOutcome extends PipelineOutcome {
  /** One-line findings, e.g. "nothing lost: 500000 of 500000 completed". */
  readonly verdicts: readonly string[];
}

export interface Scenario {
  readonly name: string;
  /** What the scenario measures, one sentence. */
  readonly measures: string;
  /** What its numbers do not show. */
  readonly limitations: string;
  /** Capabilities without which the scenario means nothing; the runner refuses such brokers up front. */
  readonly requires: readonly (keyof BrokerCapabilities)[];
  run(context: ScenarioContext): Promise<ScenarioOutcome>;
}
