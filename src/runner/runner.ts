// Runs one scenario through its phases: prepare (connect, describe, create queues), run and drain
// (the scenario), verify (the ledger, inside the outcome), teardown (always, even after a failure).
//
// LIMITATION: teardown is bounded (TEARDOWN_LIMIT_MS); when it runs out, or a queue cannot be removed,
// the queues stay on the broker under the run's namespace and the result's errors say so.

import { randomBytes } from 'node:crypto';
import { hasQueueStats, isRequestCounting, type Broker, type BrokerAdapter, type BrokerOptions } from '../broker.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import { describeEnvironment } from '../environment.ts';
import { formatCount } from '../format.ts';
import { UsageError } from '../errors.ts';
import { newRunToken } from '../pipeline/message.ts';
import { withinMs } from '../pipeline/waits.ts';
import { PIPELINE_LIMITS } from './pipeline.ts';
import { PROCESS_LIMITS } from './process-consumers.ts';
import { requestTotals, type RequestTotals } from '../metrics/requests.ts';
import type { PipelineOutcome, RunProgress, RunRecord } from '../outcome.ts';
import type { Scenario } from '../scenario.ts';

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
  /** Prefix for the run's keys and queue names; default `bb-<runId>`. Tests set it to reach the run's queues. */
  readonly namespace?: string;
}

/** Longest teardown may take (removing the queues, closing the connection), ms; then it is given up. */
const TEARDOWN_LIMIT_MS = 15_000;
/** Longest the queues' own figures may take to read after the run (QueueStats), ms. */
const STATS_LIMIT_MS = 5_000;

/** Queue names for a run: the channel itself, or `channel-0` … when the load is spread. */
export function queueNames(config: Pick<RunConfig, 'channel' | 'queues'>): string[] {
  if (config.queues === 1) return [config.channel];
  return Array.from({ length: config.queues }, (_, k) => `${config.channel}-${k}`);
}

export async function runScenario(options: RunScenarioOptions): Promise<RunRecord> {
  const { adapter, config, scenario, onEvent } = options;
  // The CLI refuses these first; callers that come here directly get the same one line.
  const capabilities = adapter.capabilities(config.mode);
  const missing = scenario.requires.filter((capability) => !capabilities[capability]);
  if (missing.length > 0) {
    throw new UsageError(`scenario ${scenario.name} needs ${missing.join(', ')}, which ${adapter.name} (${config.mode}) does not support`);
  }
  const runId = randomBytes(4).toString('hex');
  // Apart from the run id (which names queues and files): bodies carry this, and only bodies that do count.
  const runToken = newRunToken();
  const namespace = options.namespace ?? `bb-${runId}`;
  const queues = queueNames(config);
  const startedAt = new Date();
  onEvent?.({ type: 'phase', phase: 'prepare', detail: `connecting to ${adapter.name} (${config.mode})` });
  const broker = await adapter.open({ ...options.connection, namespace, mode: config.mode });
  let record: RunRecord | undefined;
  try {
    const info = await broker.describe();
    for (const name of queues) {
      await broker.prepare({ name, visibilityTimeoutMs: config.visibilityTimeoutMs, maxReceives: config.maxReceives });
    }
    onEvent?.({ type: 'phase', phase: 'run', detail: `${scenario.name}: ${formatCount(config.messages)} messages` });
    const outcome = await scenario.run({
      broker,
      config,
      queues,
      clock: options.clock ?? systemClock,
      runToken,
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (progress) => onEvent?.({ type: 'tick', progress }),
      connection: { adapter: adapter.name, options: { ...options.connection, namespace, mode: config.mode } },
    });
    const requests = outcome.requests ?? requestCounts(broker, outcome.consumerRequests);
    const stats = await queueStats(broker, queues);
    record = {
      runId,
      runToken,
      startedAt,
      finishedAt: new Date(),
      config,
      broker: { ...info, capabilities: broker.capabilities },
      environment: describeEnvironment(),
      outcome,
      ...(requests ? { requests } : {}),
      ...(stats ? { queueStats: stats } : {}),
      limits: {
        timeoutMs: config.timeoutMs,
        commandMs: options.connection.commandTimeoutMs,
        ...PIPELINE_LIMITS,
        ...PROCESS_LIMITS,
        teardownMs: TEARDOWN_LIMIT_MS,
      },
    };
  } finally {
    onEvent?.({ type: 'phase', phase: 'teardown', detail: `removing ${queues.length} queue(s)` });
    const problem = await teardown(broker, queues, namespace);
    // Counted again after teardown, so its DeleteQueue requests are among the housekeeping; a scenario
    // that counts its own (fixed-rate: the headline rate's) keeps them.
    if (record !== undefined && record.outcome.requests === undefined) {
      const requests = requestCounts(broker, record.outcome.consumerRequests);
      if (requests !== undefined) record = { ...record, requests };
    }
    // A run that measured something keeps it; the queues it could not remove are named among its errors.
    if (problem !== undefined && record !== undefined) {
      record = { ...record, outcome: { ...record.outcome, errors: [...record.outcome.errors, problem] } };
    }
  }
  return record; // set: the try block either returned a record or threw
}

/** Removes the run's queues and closes the broker within TEARDOWN_LIMIT_MS; returns what went wrong, if anything. */
/**
 * What the broker tells of its queues' own state after the run (QueueStats: PostgreSQL's dead rows),
 * added up over the run's queues; undefined where it tells nothing. Bounded like a command: a broker
 * that does not answer in time leaves the figures out, never the run's result.
 */
async function queueStats(broker: Broker, queues: readonly string[]): Promise<Record<string, number> | undefined> {
  if (!hasQueueStats(broker)) return undefined;
  const each = await withinMs(Promise.all(queues.map((queue) => broker.queueStats(queue))).catch(() => undefined), STATS_LIMIT_MS);
  if (each === undefined) return undefined;
  const total: Record<string, number> = {};
  for (const stats of each) for (const [name, value] of Object.entries(stats)) total[name] = (total[name] ?? 0) + value;
  return total;
}

async function teardown(broker: Broker, queues: readonly string[], namespace: string): Promise<string | undefined> {
  const failed: string[] = [];
  const work = (async () => {
    for (const name of queues) {
      try {
        await broker.teardown(name);
      } catch (error) {
        failed.push(`${name} (${error instanceof Error ? error.message : String(error)})`);
      }
    }
    await broker.close().catch(() => undefined);
  })();
  const finished = await withinMs(work.then(() => true), TEARDOWN_LIMIT_MS);
  if (!finished) {
    void broker.close().catch(() => undefined);
    return `teardown: gave up after ${TEARDOWN_LIMIT_MS / 1000} s; queues under ${namespace} may be left on the broker`;
  }
  return failed.length === 0 ? undefined : `teardown: could not remove ${failed.join('; ')}; they stay under ${namespace}`;
}

/**
 * Adapters that count API requests (SQS) are asked for them; the others have none to give. Requests
 * of consumer processes (`children`, from their journals) are added: every process's requests count.
 */
function requestCounts(broker: Broker, children: PipelineOutcome['consumerRequests']): RequestTotals | undefined {
  if (!isRequestCounting(broker)) return undefined;
  const byKind: Record<string, number> = { ...broker.requestCounts() };
  for (const [kind, n] of Object.entries(children?.byKind ?? {})) byKind[kind] = (byKind[kind] ?? 0) + n;
  return requestTotals(byKind, broker.billedRequests() + (children?.billed ?? 0));
}
