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
  /** Tasks running at once across all consumers, a shared worker pool; 0 = each consumer runs its whole batch at once. */
  readonly taskConcurrency: number;
  /** fixed-rate: publish rates to try in turn, lowest first, msg/s; empty = --rate alone. */
  readonly ratesPerSec: readonly number[];
  /** fixed-rate: measured seconds of publishing at each rate (after the warm-up). */
  readonly durationSec: number;
  /** fixed-rate: seconds of publishing at each rate before measuring starts. */
  readonly warmupSec: number;
  /** retry-dlq: delay before retry 1, 2 … in ms; as many retries as entries, then the dead-letter queue. */
  readonly retryIntervalsMs: readonly number[];
  /** retry-dlq: fraction of messages whose task fails on every attempt (besides --fail-rate per attempt). */
  readonly poisonRate: number;
  /** delayed: each message is due this many ms after it is sent … */
  readonly delayMs: number;
  /** delayed: … plus its share of this window (spread evenly over the messages), in ms. */
  readonly delayWindowMs: number;
  /** slow-tasks: ms per unit of the seed's task durations (0 to 10 units, its seconds scaled down). */
  readonly taskUnitMs: number;
  /** crash-recovery: child processes the consumers are spread over (0 = consumers run in this process). */
  readonly consumerProcesses: number;
  /** crash-recovery: one consumer process is killed once this fraction of the messages is completed. */
  readonly killAtFraction: number;
  /** crash-recovery: `random` kills at a seeded moment with no warning; `staged` freezes the victim between broker calls first. */
  readonly killMode: 'random' | 'staged';
  /** Redis: run against a throw-away redis-server with this maxmemory in bytes and policy noeviction; 0 = none. */
  readonly maxMemoryBytes: number;
  /** scale-out: consumer counts (or process counts, by `scaleBy`) to run the same load with, in turn. */
  readonly scaleSteps: readonly number[];
  /** scale-out: `consumers` in this process, or `processes` of one consumer each. */
  readonly scaleBy: 'consumers' | 'processes';
  /** fan-out: independent consumer groups every message must reach. */
  readonly fanOutGroups: number;
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
  taskConcurrency: 0,
  ratesPerSec: [] as readonly number[],
  durationSec: 0,
  warmupSec: 0,
  retryIntervalsMs: [] as readonly number[],
  poisonRate: 0,
  delayMs: 0,
  delayWindowMs: 0,
  taskUnitMs: 10,
  consumerProcesses: 0,
  killAtFraction: 0.3,
  killMode: 'random' as 'random' | 'staged',
  maxMemoryBytes: 0,
  scaleSteps: [1, 2, 4, 8, 16] as readonly number[],
  scaleBy: 'consumers' as 'consumers' | 'processes',
  fanOutGroups: 3,
} as const;

/** fan-out: most consumer groups; each gets its own consumers and, without native groups, its own queue. */
const MAX_FAN_OUT_GROUPS = 32;

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
  // --timeout and --retry-intervals are given in seconds: errors show what the user typed, not ms.
  if (!Number.isSafeInteger(config.timeoutMs) || config.timeoutMs <= 0) {
    throw new UsageError(`--timeout must be a positive number of seconds, got ${config.timeoutMs / 1000}`);
  }
  nonNegative('--task-ms', config.task.durationMs);
  if (!(config.task.failureRate >= 0 && config.task.failureRate <= 1)) {
    throw new UsageError(`--fail-rate must be between 0 and 1, got ${config.task.failureRate}`);
  }
  nonNegativeInteger('--concurrency', config.taskConcurrency);
  for (const rate of config.ratesPerSec) {
    if (!(rate > 0 && Number.isFinite(rate))) throw new UsageError(`--rates must be positive numbers of msg/s, got ${String(rate)}`);
  }
  nonNegative('--duration', config.durationSec);
  nonNegative('--warmup-sec', config.warmupSec);
  for (const ms of config.retryIntervalsMs) {
    if (!(ms >= 0)) throw new UsageError(`--retry-intervals must be seconds of 0 or more, got ${ms / 1000}`);
  }
  if (!(config.poisonRate >= 0 && config.poisonRate <= 1)) {
    throw new UsageError(`--poison-rate must be between 0 and 1, got ${config.poisonRate}`);
  }
  nonNegativeInteger('--delay-ms', config.delayMs);
  nonNegativeInteger('--delay-window-ms', config.delayWindowMs);
  nonNegative('--task-unit-ms', config.taskUnitMs);
  nonNegativeInteger('--processes', config.consumerProcesses);
  if (config.consumerProcesses > config.consumers) {
    throw new UsageError(`--processes ${config.consumerProcesses} is more than --consumers ${config.consumers}: every process needs a consumer`);
  }
  if (!(config.killAtFraction > 0 && config.killAtFraction < 1)) {
    throw new UsageError(`--kill-at must be a fraction between 0 and 1, got ${config.killAtFraction}`);
  }
  nonNegativeInteger('--maxmemory', config.maxMemoryBytes);
  if (config.maxMemoryBytes > 0 && config.maxMemoryBytes < 1024 ** 2) {
    throw new UsageError(`--maxmemory ${config.maxMemoryBytes} is under 1 MiB, about what an empty Redis uses; give it at least 1mb`);
  }
  if (config.scaleSteps.length === 0) throw new UsageError('--steps needs at least one count, e.g. 1,2,4,8');
  for (const step of config.scaleSteps) positiveInteger('--steps', step);
  if (config.killMode !== 'random' && config.killMode !== 'staged') {
    throw new UsageError(`--kill-mode must be random or staged, got ${String(config.killMode)}`);
  }
  if (config.scaleBy !== 'consumers' && config.scaleBy !== 'processes') {
    throw new UsageError(`--scale-by must be consumers or processes, got ${String(config.scaleBy)}`);
  }
  positiveInteger('--groups', config.fanOutGroups);
  if (config.fanOutGroups > MAX_FAN_OUT_GROUPS) {
    throw new UsageError(`--groups ${config.fanOutGroups} is over the limit of ${MAX_FAN_OUT_GROUPS} consumer groups`);
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
