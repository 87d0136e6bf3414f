// The run configuration: one typed object, every field with its unit, defaults in one place, and
// validation that names the flag and the fix. The CLI builds it; the runner and result files carry it.

import { getHeapStatistics } from 'node:v8';
import type { BrokerCapabilities } from './broker.ts';
import { UsageError } from './errors.ts';

export type DurationDistribution = 'fixed' | 'uniform' | 'exponential';
export type TaskWork = 'sleep' | 'cpu';

export interface TaskSpec {
  /** Mean task duration in ms; 0 = no task (the message is acked as soon as it is received). */
  readonly durationMs: number;
  /** `fixed`: always durationMs; `uniform`: 0 to 2×durationMs; `exponential`: mean durationMs. */
  readonly distribution: DurationDistribution;
  /** `sleep` waits without using the CPU; `cpu` keeps a core busy (and blocks its consumer's event loop). */
  readonly work: TaskWork;
  /** Probability in [0, 1] that a task fails and its message is nacked for a retry. */
  readonly failureRate: number;
}

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
  /**
   * Under a rate: longest the oldest message of a publish batch waits for the batch to fill before it is
   * sent anyway, in ms (a Kafka producer's linger.ms). Older result files lack it (they waited for full batches).
   */
  readonly lingerMs: number;
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
  /** The first this many messages are left out of the latency histograms; rates, the ledger and the timeline count them. */
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
  /** scale-out: consumer counts (or process or queue counts, by `scaleBy`) to run the same load with, in turn. */
  readonly scaleSteps: readonly number[];
  /** scale-out: `consumers` in this process, `processes` of one consumer each, or `queues`, each with the same number of consumers. */
  readonly scaleBy: 'consumers' | 'processes' | 'queues';
  /** fan-out: independent consumer groups every message must reach. */
  readonly fanOutGroups: number;
}

export const DEFAULTS = {
  messages: 10_000,
  payloadBytes: 200,
  publishBatch: 100,
  publishConcurrency: 4,
  ratePerSec: 0,
  // Kafka's producer default since 4.0 (KIP-1030): at 1,000 msg/s batches of about 6 messages, and no
  // message waits more than 5 ms for its batch; 0 would mean one publish call per message at any rate.
  lingerMs: 5,
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
  scaleBy: 'consumers' as 'consumers' | 'processes' | 'queues',
  fanOutGroups: 3,
} as const;

/** fan-out: most consumer groups; each gets its own consumers and, without native groups, its own queue. */
const MAX_FAN_OUT_GROUPS = 32;

/** Most messages one run may track: the ledger keeps 2 bits per message (250 MB here). */
export const MAX_MESSAGES = 1_000_000_000;
/** Longest any wait or duration may be, ms: Node's timers fire at once past 2^31 - 1 ms (24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Longest --timeout, --duration and --warmup-sec, seconds: a week. */
const MAX_RUN_SEC = 7 * 24 * 3600;
/** Longest a receive may block, ms (SQS allows 20 s; longer only delays the end of a run). */
const MAX_RECEIVE_WAIT_MS = 60_000;
/** Slowest and fastest fixed rates, msg/s: below, one message a day; above, no publisher keeps up. */
const MIN_RATE_PER_SEC = 1 / 86_400;
const MAX_RATE_PER_SEC = 100_000_000;
/** Most consumer processes at once: each is a Node process of tens of MB and half a second of CPU to start. */
const MAX_CONSUMER_PROCESSES = 32;
/** Most consumers (each with a connection of its own) one harness process opens. */
const MAX_CONSUMERS = 1_000;
/** Share of the JS heap the run's message bodies and connections may plan to take. */
const HEAP_SHARE = 0.5;
/** Rough fixed cost of each publisher (its promises and encoder) and each consumer (its connection and buffers), bytes. */
const PUBLISHER_OVERHEAD_BYTES = 4 * 1024;
const CONSUMER_OVERHEAD_BYTES = 256 * 1024;

/**
 * What the run's publish batches and receive batches may hold at once, bytes: each body is held as a
 * string and again as the bytes on the wire. An estimate made before anything starts, so a run that
 * cannot fit is refused with the reason instead of dying out of memory half-way.
 */
export function plannedMemoryBytes(config: RunConfig): number {
  const inFlight = config.publishBatch * config.publishConcurrency + config.receiveBatch * config.consumers * Math.max(1, config.fanOutGroups);
  return (
    2 * config.payloadBytes * inFlight +
    config.publishConcurrency * PUBLISHER_OVERHEAD_BYTES +
    config.consumers * Math.max(1, config.fanOutGroups) * CONSUMER_OVERHEAD_BYTES
  );
}

/** Checks a whole config against itself and the broker's declared capabilities; throws UsageError. */
export function validateConfig(config: RunConfig, capabilities: BrokerCapabilities): void {
  positiveInteger('messages', config.messages);
  if (config.messages > MAX_MESSAGES) {
    throw new UsageError(
      `${config.messages} messages is over the ${MAX_MESSAGES.toLocaleString('en-US')} one run can track (the ledger keeps 2 bits per message); ` +
        (config.scenario === 'fixed-rate' ? 'fixed-rate plans rate × (--warmup-sec + --duration) per rate: lower them' : 'run fewer, or several runs'),
    );
  }
  positiveInteger('--payload-bytes', config.payloadBytes);
  positiveInteger('--batch', config.publishBatch);
  positiveInteger('--publishers', config.publishConcurrency);
  positiveInteger('--consumers', config.consumers);
  positiveInteger('--receive-batch', config.receiveBatch);
  positiveInteger('--queues', config.queues);
  nonNegative('--rate', config.ratePerSec);
  nonNegative('--linger-ms', config.lingerMs);
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
  if (config.scaleBy !== 'consumers' && config.scaleBy !== 'processes' && config.scaleBy !== 'queues') {
    throw new UsageError(`--scale-by must be consumers, processes or queues, got ${String(config.scaleBy)}`);
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
  // A failed task's message is nacked with this delay: one the broker cannot honour would turn every
  // retry into a refused nack instead of a refusal here.
  const longestNackMs = capabilities.maxNackDelayMs ?? capabilities.maxDelayMs;
  if (capabilities.nackDelay && config.retryDelayMs > longestNackMs) {
    throw new UsageError(`--retry-delay-ms ${config.retryDelayMs} is over ${adapter}'s longest retry delay of ${longestNackMs} ms`);
  }
  if (config.consumers < config.queues) {
    throw new UsageError(`--consumers ${config.consumers} is fewer than --queues ${config.queues}: every queue needs a consumer`);
  }
  if (config.warmupMessages >= config.messages) {
    throw new UsageError(`--warmup ${config.warmupMessages} leaves no measured message out of ${config.messages}`);
  }
  const usesProcesses = config.consumerProcesses > 0 || (config.scenario === 'scale-out' && config.scaleBy === 'processes');
  if (usesProcesses && !capabilities.sharedAcrossProcesses) {
    throw new UsageError(`${adapter} keeps its queues in this process, so consumer processes cannot reach them: use a broker with a server, or consumers in this process`);
  }
  checkLimits(config);
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(config.channel)) {
    throw new UsageError(`CHANNEL_NAME "${config.channel}" must be 1 to 40 letters, digits, '-' or '_'`);
  }
}

/** Values that pass their own type check but that no run can honour: timers that overflow, rates no timer can pace, memory it cannot hold. */
function checkLimits(config: RunConfig): void {
  const seconds = (name: string, value: number): void => {
    if (value > MAX_RUN_SEC) throw new UsageError(`${name} ${value} is over the limit of ${MAX_RUN_SEC} seconds (a week)`);
  };
  const milliseconds = (name: string, value: number): void => {
    if (value > MAX_TIMER_MS) throw new UsageError(`${name} ${value} is over the limit of ${MAX_TIMER_MS} ms (24.8 days, the longest timer Node keeps)`);
  };
  seconds('--timeout', config.timeoutMs / 1000);
  seconds('--duration', config.durationSec);
  seconds('--warmup-sec', config.warmupSec);
  if (config.receiveWaitMs > MAX_RECEIVE_WAIT_MS) {
    throw new UsageError(`--receive-wait-ms ${config.receiveWaitMs} is over the limit of ${MAX_RECEIVE_WAIT_MS} ms: a receive returns as soon as anything arrives, so a longer wait only delays the end`);
  }
  milliseconds('--visibility-timeout-ms', config.visibilityTimeoutMs);
  milliseconds('--retry-delay-ms', config.retryDelayMs);
  milliseconds('--linger-ms', config.lingerMs);
  milliseconds('--task-ms', config.task.durationMs);
  milliseconds('--delay-ms', config.delayMs + config.delayWindowMs);
  for (const ms of config.retryIntervalsMs) milliseconds('--retry-intervals', ms);
  for (const [name, rate] of [['--rate', config.ratePerSec], ...config.ratesPerSec.map((r) => ['--rates', r] as const)] as const) {
    if (rate > 0 && (rate < MIN_RATE_PER_SEC || rate > MAX_RATE_PER_SEC)) {
      throw new UsageError(`${name} ${rate} is outside one message a day to ${MAX_RATE_PER_SEC.toLocaleString('en-US')} msg/s`);
    }
  }
  if (config.consumers > MAX_CONSUMERS) {
    throw new UsageError(`--consumers ${config.consumers} is over the limit of ${MAX_CONSUMERS} connections one process opens; for more, use --concurrency (one pool of tasks) or several runs`);
  }
  const processes = Math.max(config.consumerProcesses, config.scaleBy === 'processes' && config.scenario === 'scale-out' ? Math.max(...config.scaleSteps) : 0);
  if (processes > MAX_CONSUMER_PROCESSES) {
    throw new UsageError(`${processes} consumer processes is over the limit of ${MAX_CONSUMER_PROCESSES} (each is a Node process of tens of MB): lower --processes or --steps`);
  }
  const heapBytes = getHeapStatistics().heap_size_limit;
  const planned = plannedMemoryBytes(config);
  if (planned > heapBytes * HEAP_SHARE) {
    const mib = (bytes: number): string => `${Math.round(bytes / 1024 ** 2).toLocaleString('en-US')} MiB`;
    throw new UsageError(
      `this run would hold about ${mib(planned)} at once (--payload-bytes ${config.payloadBytes} in ${config.publishConcurrency} publish batches of ${config.publishBatch} ` +
        `and ${config.consumers} consumers' receive batches of ${config.receiveBatch}), over half this process's heap of ${mib(heapBytes)}: ` +
        'lower --payload-bytes, --batch, --publishers, --consumers or --receive-batch',
    );
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
