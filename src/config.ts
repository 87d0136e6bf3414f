// The run configuration: one typed object, every field with its unit, defaults in one place, and
// validation that names the flag and the fix. The CLI builds it; the runner and result files carry it.

import type { BrokerCapabilities } from './broker.ts';
import { UsageError } from './errors.ts';
import type { TaskSpec } from './pipeline/executor.ts';

export interface RunConfig {
  /** Canonical adapter name, e.g. `redis-list`. */
  readonly adapter: string;
  /** Delivery mode of the adapter, e.g. `reliable`. */
  readonly mode: string;
  /** Scenario name, e.g. `throughput`. */
  readonly scenario: string;
  /** Messages to publish. */
  readonly messages: number;
  /** Size of each message body in bytes (the seed's `{p, m, i}` padded). */
  readonly payloadBytes: number;
  /** Messages per publish call. */
  readonly publishBatch: number;
  /** Publish calls in flight at once. */
  readonly publishConcurrency: number;
  /** Target publish rate in messages per second; 0 = as fast as possible. */
  readonly ratePerSec: number;
  /** Concurrent consumers, each on its own connection. */
  readonly consumers: number;
  /** Most messages per receive call. */
  readonly receiveBatch: number;
  /** Longest a receive call blocks when the queue is empty, in ms. */
  readonly receiveWaitMs: number;
  /** How long a received message stays invisible before it is redelivered, in ms. */
  readonly visibilityTimeoutMs: number;
  /** Receives after which a message is dead-lettered (0 = never). */
  readonly maxReceives: number;
  /** Delay before a failed task's message is delivered again, in ms. */
  readonly retryDelayMs: number;
  /** The task each message triggers. */
  readonly task: TaskSpec;
  /** The first this many messages are left out of the histograms. */
  readonly warmupMessages: number;
  /** Longest the whole run (publish and drain) may take, in ms. */
  readonly timeoutMs: number;
  /** Queue name (the seed's CHANNEL_NAME); the run prefixes it with its own namespace. */
  readonly channel: string;
  /** Queues the load is spread over (`channel-0` … `channel-N-1`). */
  readonly queues: number;
  /** Seed for task durations and failures. */
  readonly seed: number;
  /** Folder result files are written to. */
  readonly resultsDir: string;
}

export const DEFAULTS = {
  messages: 10_000,
  payloadBytes: 200,
  publishBatch: 100,
  publishConcurrency: 4,
  ratePerSec: 0,
  consumers: 4,
  receiveBatch: 100,
  receiveWaitMs: 1000,
  visibilityTimeoutMs: 30_000,
  maxReceives: 0,
  retryDelayMs: 1000,
  warmupMessages: 0,
  timeoutMs: 600_000,
  channel: 'brokerbench',
  queues: 1,
  seed: 1,
  resultsDir: 'results',
} as const;

/** Checks a whole config against itself and the broker's declared capabilities; throws UsageError. */
export function validateConfig(config: RunConfig, capabilities: BrokerCapabilities): void {
  positiveInteger('messages', config.messages);
  positiveInteger('--payload-bytes', config.payloadBytes);
  positiveInteger('--batch', config.publishBatch);
  positiveInteger('--publishers', config.publishConcurrency);
  positiveInteger('--consumers', config.consumers);
  positiveInteger('--receive-batch', config.receiveBatch);
  positiveInteger('--queues', config.queues);
  nonNegative('--rate', config.ratePerSec);
  nonNegativeInteger('--receive-wait-ms', config.receiveWaitMs);
  positiveInteger('--visibility-timeout-ms', config.visibilityTimeoutMs);
  nonNegativeInteger('--max-receives', config.maxReceives);
  nonNegativeInteger('--retry-delay-ms', config.retryDelayMs);
  nonNegativeInteger('--warmup', config.warmupMessages);
  positiveInteger('--timeout', config.timeoutMs);
  nonNegative('--task-ms', config.task.durationMs);
  if (!(config.task.failureRate >= 0 && config.task.failureRate <= 1)) {
    throw new UsageError(`--fail-rate must be between 0 and 1, got ${config.task.failureRate}`);
  }
  const { adapter, mode } = config;
  const limit = capabilities.maxBatchSize;
  if (config.publishBatch > limit) {
    throw new UsageError(`--batch ${config.publishBatch} is over ${adapter}'s limit of ${limit} messages per call`);
  }
  if (config.receiveBatch > limit) {
    throw new UsageError(`--receive-batch ${config.receiveBatch} is over ${adapter}'s limit of ${limit} messages per call`);
  }
  if (config.payloadBytes > capabilities.maxPayloadBytes) {
    throw new UsageError(
      `--payload-bytes ${config.payloadBytes} is over ${adapter}'s maximum message size of ${capabilities.maxPayloadBytes} bytes`,
    );
  }
  if (config.maxReceives > 0 && !capabilities.deadLetter) {
    throw new UsageError(`--max-receives needs dead letters, which ${adapter} in ${mode} mode does not support`);
  }
  if (config.consumers < config.queues) {
    throw new UsageError(`--consumers ${config.consumers} is fewer than --queues ${config.queues}: every queue needs a consumer`);
  }
  if (config.warmupMessages >= config.messages) {
    throw new UsageError(`--warmup ${config.warmupMessages} leaves no measured message out of ${config.messages}`);
  }
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(config.channel)) {
    throw new UsageError(`CHANNEL_NAME "${config.channel}" must be 1 to 40 letters, digits, '-' or '_'`);
  }
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new UsageError(`${name} must be a positive integer, got ${String(value)}`);
  }
}

function nonNegativeInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new UsageError(`${name} must be a whole number of 0 or more, got ${String(value)}`);
  }
}

function nonNegative(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new UsageError(`${name} must be a number of 0 or more, got ${String(value)}`);
  }
}
