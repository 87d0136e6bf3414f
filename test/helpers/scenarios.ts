// Running a scenario in a test as the CLI would: global defaults, the scenario's own, the test's
// changes; validated; then the scenario's configure(); on the real Redis, the embedded SQS, or the
// server any other registry entry resolves (as the CLI would resolve it).

import { afterAll, beforeAll, expect } from 'vitest';
import { adapters } from '../../adapters/index.ts';
import type { BrokerAdapter, BrokerOptions, Endpoint } from '../../src/broker.ts';
import { DEFAULTS, validateConfig, type RunConfig } from '../../src/config.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import { printSummary } from '../../src/report/print.ts';
import { buildResult, type ResultFile } from '../../src/report/result-file.ts';
import { runScenario } from '../../src/runner/runner.ts';
import type { SqsEndpoint } from '../../src/services/sqs-endpoint.ts';
import { findScenario, type Scenario } from '../../scenarios/index.ts';
import { redisUrl } from './redis.ts';

/** An adapter in its default mode by its name (`redis-list`), or in another as `name mode` (`redis-list simple`). */
export type Target = string;

/** Every registry entry and mode as a Target. */
export const ADAPTERS: Readonly<Record<Target, { adapter: BrokerAdapter; mode: string }>> = Object.fromEntries(
  adapters.flatMap((adapter) =>
    adapter.modes.map((mode) => [mode === adapter.defaultMode ? adapter.name : `${adapter.name} ${mode}`, { adapter, mode }] as const),
  ),
);

export function targetOf(target: Target): { adapter: BrokerAdapter; mode: string } {
  const found = ADAPTERS[target];
  if (found === undefined) throw new Error(`no adapter target ${target}: one of ${Object.keys(ADAPTERS).join(', ')}`);
  return found;
}

/** The variables the tests resolve themselves: the shared Redis (test/global-setup.ts) and each file's SQS endpoint. */
const OWN_SERVERS = new Set(['REDIS_URL', 'SQS_ENDPOINT']);

/** Runs scenarios for one test file; `sqsEndpoint` is that file's useSqsEndpoint(). */
export function scenarioRunner(sqsEndpoint: () => SqsEndpoint) {
  // Every other server is found as the registry entry says (a local server, or a throw-away one it starts).
  // One that cannot be found fails only the tests that use it, with the registry's own one-line reason.
  const servers = new Map<string, Endpoint | Error>();
  beforeAll(async () => {
    for (const adapter of adapters) {
      const variable = adapter.serverVariable;
      if (variable === undefined || OWN_SERVERS.has(variable) || servers.has(variable) || adapter.resolve === undefined) continue;
      servers.set(variable, await adapter.resolve(process.env).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))));
    }
  }, 120_000);
  afterAll(async () => {
    for (const endpoint of servers.values()) if (!(endpoint instanceof Error)) await endpoint.stop();
  });

  /** Where `target` connects: the test Redis (or `url`), this file's SQS endpoint, or its registry server, by the variable its adapter names. */
  function connection(target: Target, url?: string): Omit<BrokerOptions, 'namespace'> {
    const variable = targetOf(target).adapter.serverVariable;
    if (variable === undefined) return { commandTimeoutMs: 3_000 };
    if (variable === 'REDIS_URL') return { url: url ?? redisUrl(), commandTimeoutMs: 3_000 };
    if (variable !== 'SQS_ENDPOINT') {
      const server = servers.get(variable);
      if (server === undefined) throw new Error(`no test server for ${variable}`);
      if (server instanceof Error) throw server;
      return { url: url ?? server.url, commandTimeoutMs: 3_000, settings: server.settings };
    }
    const endpoint = sqsEndpoint();
    return {
      ...(endpoint.endpoint === undefined ? {} : { url: endpoint.endpoint }),
      commandTimeoutMs: 3_000,
      settings: { region: endpoint.region, endpointKind: endpoint.kind, endpointVersion: endpoint.version },
    };
  }

  /** The config the CLI would build, with short receive waits and a 60 s limit unless `change` says otherwise. */
  function configFor(scenario: Scenario, target: Target, change: Partial<RunConfig>): RunConfig {
    const { adapter, mode } = targetOf(target);
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
    const { adapter } = targetOf(target);
    const record = await runScenario({ adapter, connection: connection(target, url), config: configFor(scenario, target, change), scenario });
    const result = buildResult(record);
    expect(printSummary(result, undefined, { width: 400 })).toContain(result.scenarioData?.tables[0]?.title ?? '');
    return JSON.parse(JSON.stringify(result)) as ResultFile;
  }

  return { connection, configFor, run };
}

/** A scenario's own figures (`scenarioData.values`); the scenario must have written some. */
export function scenarioValues(result: ResultFile): Record<string, unknown> {
  expect(result.scenarioData).toBeDefined();
  return result.scenarioData!.values;
}

/** crash-recovery on an at-least-once broker: completed, nothing lost, every message the victim held delivered again. */
export function expectRecovered(result: ResultFile): void {
  const v = scenarioValues(result);
  expect(result.status).toBe('completed');
  expect(result.ledger.lost).toBe(0);
  expect(result.ledger.completed).toBe(result.ledger.expected);
  const held = v['heldMessages'] as number;
  expect(v['redeliveredMessages']).toBe(held);
  expect(v['neverRedeliveredMessages']).toBe(0);
  expect(result.ledger.duplicateDeliveries).toBeGreaterThanOrEqual(held);
}

/** fan-out to groups g0 and g1: each got all `messages` once; `native` says whether the broker fanned out itself. */
export function expectFannedOut(result: ResultFile, messages: number, native: boolean): void {
  expect(result.status).toBe('completed');
  expect(scenarioValues(result)['native']).toBe(native);
  const groups = result.scenarioData!.records['groups']!;
  expect(groups.map((group) => [group['group'], group['completed'], group['lost'], group['duplicateDeliveries']])).toEqual([
    ['g0', messages, 0, 0],
    ['g1', messages, 0, 0],
  ]);
  expect(result.ledger).toMatchObject({ expected: messages, completed: messages, lost: 0, duplicateDeliveries: 0 });
}
