// Running a scenario in a test as the CLI would: global defaults, the scenario's own, the test's
// changes; validated; then the scenario's configure(); on the real Redis or the embedded SQS.

import { expect } from 'vitest';
import { redisListAdapter } from '../../adapters/redis-list.ts';
import { redisStreamAdapter } from '../../adapters/redis-stream.ts';
import { sqsAdapter } from '../../adapters/sqs.ts';
import type { BrokerAdapter, BrokerOptions } from '../../src/broker.ts';
import { DEFAULTS, validateConfig, type RunConfig } from '../../src/config.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import { printSummary } from '../../src/report/print.ts';
import { buildResult, type ResultFile } from '../../src/report/result-file.ts';
import { runScenario } from '../../src/runner/runner.ts';
import type { SqsEndpoint } from '../../src/services/sqs-endpoint.ts';
import { findScenario, type Scenario } from '../../scenarios/index.ts';
import { redisUrl } from './redis.ts';

export type Target = 'redis-list' | 'redis-list simple' | 'redis-stream' | 'sqs';

export const ADAPTERS: Record<Target, { adapter: BrokerAdapter; mode: string }> = {
  'redis-list': { adapter: redisListAdapter, mode: 'reliable' },
  'redis-list simple': { adapter: redisListAdapter, mode: 'simple' },
  'redis-stream': { adapter: redisStreamAdapter, mode: 'group' },
  sqs: { adapter: sqsAdapter, mode: 'standard' },
};

/** Runs scenarios for one test file; `sqsEndpoint` is that file's useSqsEndpoint(). */
export function scenarioRunner(sqsEndpoint: () => SqsEndpoint) {
  /** Where `target` connects: the test Redis (or `url`) or this file's SQS endpoint, by the server its adapter names. */
  function connection(target: Target, url = redisUrl()): Omit<BrokerOptions, 'namespace'> {
    const variable = ADAPTERS[target].adapter.serverVariable;
    if (variable !== 'SQS_ENDPOINT') return { url, commandTimeoutMs: 3_000 };
    const endpoint = sqsEndpoint();
    return {
      ...(endpoint.endpoint === undefined ? {} : { url: endpoint.endpoint }),
      commandTimeoutMs: 3_000,
      settings: { region: endpoint.region, endpointKind: endpoint.kind, endpointVersion: endpoint.version },
    };
  }

  /** The config the CLI would build, with short receive waits and a 60 s limit unless `change` says otherwise. */
  function configFor(scenario: Scenario, target: Target, change: Partial<RunConfig>): RunConfig {
    const { adapter, mode } = ADAPTERS[target];
    const capabilities = adapter.capabilities(mode);
    const { task: taskDefaults, ...defaults } = scenario.defaults ?? {};
    const base: RunConfig = {
      ...DEFAULTS,
      ...defaults,
      publishBatch: Math.min(defaults.publishBatch ?? DEFAULTS.publishBatch, capabilities.maxBatchSize),
      receiveBatch: Math.min(defaults.receiveBatch ?? DEFAULTS.receiveBatch, capabilities.maxBatchSize),
      adapter: adapter.name,
      mode,
      scenario: scenario.name,
      receiveWaitMs: 200,
      timeoutMs: 60_000,
      ...change,
      task: { ...NO_TASK, ...taskDefaults, ...change.task },
    };
    validateConfig(base, capabilities);
    return scenario.configure ? scenario.configure(base, capabilities) : base;
  }

  /** Runs `name` on `target` and returns its result as a file would read back; its summary must print. */
  async function run(name: string, target: Target, change: Partial<RunConfig>, url?: string): Promise<ResultFile> {
    const scenario = findScenario(name)!;
    const { adapter } = ADAPTERS[target];
    const record = await runScenario({ adapter, connection: connection(target, url), config: configFor(scenario, target, change), scenario });
    const result = buildResult(record);
    expect(printSummary(result)).toContain(result.scenarioData?.tables[0]?.title ?? '');
    return JSON.parse(JSON.stringify(result)) as ResultFile;
  }

  return { connection, configFor, run };
}
