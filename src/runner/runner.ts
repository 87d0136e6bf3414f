// Runs one scenario through its phases: prepare (connect, describe, create queues), run and drain
// (the scenario), verify (the ledger, inside the outcome), teardown (always, even after a failure).

import { randomBytes } from 'node:crypto';
import { isRequestCounting, type Broker, type BrokerAdapter, type BrokerOptions } from '../broker.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import { describeEnvironment } from '../environment.ts';
import type { RequestTotals, RunRecord } from '../report/result-file.ts';
import type { Scenario } from '../../scenarios/scenario.ts';
import type { RunProgress } from './pipeline.ts';

export type Phase = 'prepare' | 'run' | 'teardown';

/** What a runner tells its listeners: autocannon's start | tick | done, with phases. */
export type RunnerEvent =
  | { readonly type: 'phase'; readonly phase: Phase; readonly detail: string }
  | { readonly type: 'tick'; readonly progress: RunProgress };

export interface RunScenarioOptions {
  readonly adapter: BrokerAdapter;
  /** Connection options; `namespace` is chosen here, per run. */
  readonly connection: Omit<BrokerOptions, 'namespace'>;
  readonly config: RunConfig;
  readonly scenario: Scenario;
  readonly onEvent?: (event: RunnerEvent) => void;
  readonly signal?: AbortSignal;
  readonly clock?: Clock;
}

/** Queue names for a run: the channel itself, or `channel-0` … when the load is spread. */
export function queueNames(config: Pick<RunConfig, 'channel' | 'queues'>): string[] {
  if (config.queues === 1) return [config.channel];
  return Array.from({ length: config.queues }, (_, k) => `${config.channel}-${k}`);
}

export async function runScenario(options: RunScenarioOptions): Promise<RunRecord> {
  const { adapter, config, scenario, onEvent } = options;
  const runId = randomBytes(4).toString('hex');
  const namespace = `bb-${runId}`;
  const queues = queueNames(config);
  const startedAt = new Date();
  onEvent?.({ type: 'phase', phase: 'prepare', detail: `connecting to ${adapter.name} (${config.mode})` });
  const broker = await adapter.open({ ...options.connection, namespace, mode: config.mode });
  try {
    const info = await broker.describe();
    for (const name of queues) {
      await broker.prepare({ name, visibilityTimeoutMs: config.visibilityTimeoutMs, maxReceives: config.maxReceives });
    }
    onEvent?.({ type: 'phase', phase: 'run', detail: `${scenario.name}: ${config.messages} messages` });
    const outcome = await scenario.run({
      broker,
      config,
      queues,
      clock: options.clock ?? systemClock,
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (progress) => onEvent?.({ type: 'tick', progress }),
    });
    const requests = requestCounts(broker);
    return {
      runId,
      startedAt,
      finishedAt: new Date(),
      config,
      broker: { ...info, capabilities: broker.capabilities },
      environment: describeEnvironment(),
      outcome,
      ...(requests ? { requests } : {}),
    };
  } finally {
    onEvent?.({ type: 'phase', phase: 'teardown', detail: `removing ${queues.length} queue(s)` });
    for (const name of queues) await broker.teardown(name).catch(() => undefined);
    await broker.close().catch(() => undefined);
  }
}

/** Adapters that count API requests (SQS) are asked for them; the others have none to give. */
function requestCounts(broker: Broker): RequestTotals | undefined {
  if (!isRequestCounting(broker)) return undefined;
  const byKind = { ...broker.requestCounts() };
  const total = Object.values(byKind).reduce((sum, n) => sum + n, 0);
  return { byKind, total, billed: broker.billedRequests() };
}
