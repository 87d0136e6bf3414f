// The Broker contract: the one interface every adapter implements and the pipeline drives.
// Types only. Every member says what it guarantees and in which unit.

/** What a broker can and cannot do, declared as data so "not supported" is never mistaken for "broken". */
export interface BrokerCapabilities {
  /** How a delivered message behaves when its consumer dies before acking. */
  readonly delivery: 'at-most-once' | 'at-least-once';
  /** Messages can be published with a delay; `maxDelayMs` is the longest one accepted. */
  readonly delay: boolean;
  readonly maxDelayMs: number;
  /** Messages received too many times are moved to a dead-letter store instead of redelivered. */
  readonly deadLetter: boolean;
  /** A received, unacked message becomes visible again after the queue's visibility timeout. */
  readonly visibilityTimeout: boolean;
  /** `nack` with a retry delay is honoured (otherwise the message is requeued at once or dropped). */
  readonly nackDelay: boolean;
  /** Ordering promise: `fifo` for the whole queue, `per-group` within a message group, or none. */
  readonly ordering: 'fifo' | 'per-group' | 'none';
  /** Most messages one `publish` or `receive` call may carry. */
  readonly maxBatchSize: number;
  /** Largest message body accepted, in bytes (UTF-8). */
  readonly maxPayloadBytes: number;
  /** Longest `nack` retry delay honoured, in ms; absent = `maxDelayMs` (SQS: 12 h of visibility timeout). */
  readonly maxNackDelayMs?: number;
  /** Publish delays are taken in whole multiples of this, rounded up, in ms; absent = 1 ms. */
  readonly delayGranularity?: Granularity;
  /** `nack` retry delays are taken in whole multiples of this, rounded up, in ms; absent = 1 ms. */
  readonly nackDelayGranularity?: Granularity;
  /** Handles opened with the same options in other processes reach the same queues (false: this process only). */
  readonly sharedAcrossProcesses: boolean;
}

/** A unit a broker rounds delays up to, and the sentence saying so in a scenario's verdicts. */
export interface Granularity {
  readonly ms: number;
  /** E.g. `SQS takes DelaySeconds in whole seconds`. */
  readonly says: string;
}

/** Who the broker is, for result files and reports. Never contains a password or key. */
export interface BrokerInfo {
  /** Adapter name, e.g. `redis-list`. */
  readonly name: string;
  /** Delivery mode where an adapter has several, e.g. `reliable` or `simple`; otherwise `default`. */
  readonly mode: string;
  /** The server's own version string, e.g. `7.0.15`, or `unknown`. */
  readonly serverVersion: string;
  /** Where it was reached, with any password or token removed. */
  readonly endpoint: string;
  /** What kind of server answered: so an emulator's numbers are never mistaken for a cloud's. */
  readonly endpointKind: 'local' | 'embedded' | 'docker' | 'localstack' | 'aws' | 'other';
}

/** How a queue is set up by `prepare`. Units in names; `undefined` takes the adapter's default. */
export interface QueueSpec {
  /** Logical queue name; adapters prefix it so runs never collide. */
  readonly name: string;
  /** How long a received message stays invisible before it is redelivered, in ms. */
  readonly visibilityTimeoutMs: number;
  /** After this many receives a message goes to the dead-letter store (where supported); 0 = never. */
  readonly maxReceives: number;
}

/** A message to publish. */
export interface OutgoingMessage {
  /** The body, as sent on the wire. */
  readonly body: string;
  /** Deliver no earlier than this many ms from now (needs `capabilities.delay`). */
  readonly delayMs?: number;
}

/** A message handed to a consumer. */
export interface ReceivedMessage {
  /** The body exactly as published. */
  readonly body: string;
  /** 1 on first delivery, raised on every redelivery (1 where the broker cannot tell). */
  readonly receiveCount: number;
  /** Opaque adapter handle used by `ack` and `nack` (a receipt handle, stream id, in-flight member). */
  readonly receipt: string;
}

/** How many messages are where, at one moment. A state the broker cannot tell is reported as 0. */
export interface QueueDepth {
  /** Waiting to be received. */
  readonly ready: number;
  /** Received and not yet acked. */
  readonly inFlight: number;
  /** Published with a delay that has not run out. */
  readonly delayed: number;
  /** In the dead-letter store. */
  readonly dead: number;
}

/** Options for one `receive` call. */
export interface ReceiveOptions {
  /** Most messages to return; at most `capabilities.maxBatchSize`. */
  readonly maxMessages: number;
  /** Longest time to block when nothing is ready, in ms. Returns early as soon as anything is. Never a busy spin. */
  readonly waitMs: number;
}

/**
 * One connection to a broker. Methods reject with a `BrokerError` naming the adapter and the operation.
 * A handle serves one blocking `receive` at a time: each concurrent consumer takes its own via `duplicate()`.
 */
export interface Broker {
  readonly capabilities: BrokerCapabilities;
  /** Name, mode, version and endpoint (without secrets). Contacts the server. */
  describe(): Promise<BrokerInfo>;
  /** Creates the queue and its side structures if missing. Idempotent. */
  prepare(spec: QueueSpec): Promise<void>;
  /** Writes a batch; resolves once the broker acknowledged every message of it. */
  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void>;
  /** Receives up to `maxMessages`, blocking up to `waitMs` when none is ready. May return []. */
  receive(queue: string, options: ReceiveOptions): Promise<ReceivedMessage[]>;
  /**
   * Marks messages done: they are never delivered again. When it settled some of them and failed for
   * the others (a batch request with failed entries, one of several chunks refused) it rejects with a
   * `PartialSettleError` listing the settled ones; any other rejection settled none that it knows of.
   */
  ack(queue: string, messages: readonly ReceivedMessage[]): Promise<void>;
  /**
   * Gives messages back to be delivered again after `retryDelayMs` (0 = at once), their receive count
   * kept. Rejects as `ack` does: a `PartialSettleError` when only some were given back.
   */
  nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void>;
  /** Counts messages by state. */
  depth(queue: string): Promise<QueueDepth>;
  /** Drops every message of the queue; the queue itself stays. */
  purge(queue: string): Promise<void>;
  /** Removes the queue and everything the adapter made for it. Idempotent. */
  teardown(queue: string): Promise<void>;
  /** A new handle on its own connection, sharing configuration and prepared queues. */
  duplicate(): Promise<Broker>;
  /** Closes the connection. Calling it twice is harmless. */
  close(): Promise<void>;
}

/** Optional extension: a broker that counts the API requests it sent (SQS does; requests are its price). */
export interface RequestCounting {
  /** Requests sent so far by API action (`SendMessageBatch`, …), each attempt counted, shared by all duplicates. */
  requestCounts(): Readonly<Record<string, number>>;
  /** Requests as AWS bills them: each started 64 KiB of message payload counts as one request. */
  billedRequests(): number;
}

/** True if `broker` counts its requests. */
export function isRequestCounting(broker: unknown): broker is RequestCounting {
  return typeof (broker as Partial<RequestCounting> | null)?.requestCounts === 'function';
}

/** The memory figures of a whole server, in bytes. */
export interface ServerMemory {
  /** What the server holds now (Redis `used_memory`: data, buffers and overhead, allocator slack excluded). */
  readonly usedBytes: number;
  /** The configured limit; 0 = none. */
  readonly maxBytes: number;
  /** What the server does at the limit (Redis `maxmemory-policy`, e.g. `noeviction`). */
  readonly policy: string;
  /**
   * What the two figures are called on this server, for reports: the queue's (`MemoryReporting.queueMemoryBytes`)
   * and the server's (`usedBytes`). Absent: Redis's, `MEMORY USAGE` and `used_memory`.
   */
  readonly terms?: { readonly queue: string; readonly server: string };
}

/** Optional extension: a broker that can say how much memory it holds (Redis can; SQS cannot). */
export interface MemoryReporting {
  /** The whole server's memory, other clients' data included. */
  serverMemory(): Promise<ServerMemory>;
  /** Bytes held by every key or structure the adapter made for `queue`, every element counted. */
  queueMemoryBytes(queue: string): Promise<number>;
}

/** True if `broker` reports its memory. */
export function isMemoryReporting(broker: unknown): broker is MemoryReporting {
  return typeof (broker as Partial<MemoryReporting> | null)?.queueMemoryBytes === 'function';
}

/**
 * Optional extension: what a broker can tell of a queue's own state once a run is over, that the run
 * itself does not see (PostgreSQL: the dead row versions its deletes and updates left behind).
 */
export interface QueueStats {
  /** Figures for `queue` by name, the unit in the name (`deadTuples`, `autovacuums`); read before teardown. */
  queueStats(queue: string): Promise<Readonly<Record<string, number>>>;
}

/** True if `broker` reports a queue's own state after a run. */
export function hasQueueStats(broker: unknown): broker is QueueStats {
  return typeof (broker as Partial<QueueStats> | null)?.queueStats === 'function';
}

/**
 * Optional extension: one queue read by several independent consumer groups, each getting every
 * message once (Redis streams). Brokers without it fan out by publishing a copy to one queue per group.
 */
export interface ConsumerGroups {
  /**
   * A new handle on its own connection that reads as consumer group `group` (a short name, unique
   * within the run); `prepare` on it creates the group. Its acks never delete entries, which other
   * groups may not have read yet.
   */
  openGroup(group: string): Promise<Broker>;
}

/** True if `broker` can give each consumer group its own view of one queue. */
export function hasConsumerGroups(broker: unknown): broker is ConsumerGroups {
  return typeof (broker as Partial<ConsumerGroups> | null)?.openGroup === 'function';
}

/** Options shared by all adapters; each adapter reads its own extras from `settings`. */
export interface BrokerOptions {
  /** Prefix for every key or queue name this run creates, e.g. `bb-1a2b3c`. */
  readonly namespace: string;
  /** Delivery mode where the adapter has several; `undefined` takes its default. */
  readonly mode?: string;
  /** Connection string (`redis://…`, `http://…`); `undefined` takes the adapter's default endpoint. */
  readonly url?: string;
  /** Limit for connecting and for any single command that does not block by design, in ms. */
  readonly commandTimeoutMs: number;
  /** Adapter-specific extras (e.g. `maxLength` for streams); each adapter documents the keys it reads. */
  readonly settings?: Readonly<Record<string, string | number | boolean | undefined>>;
}

/** Where an adapter connects, and the throw-away server to stop afterwards, if one was started. */
export interface Endpoint {
  readonly url: string | undefined;
  /** Settings to open the adapter with (`endpointKind`, a region, …). */
  readonly settings: Readonly<Record<string, string | number | boolean | undefined>>;
  /** Stops what `resolve` started; a no-op for a server the user gave. Calling it twice is harmless. */
  stop(): Promise<void>;
}

/** The process environment, or the part of it a caller passes. */
export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * An environment variable holding a secret: the whole value, the password in a URL, or a URL's whole
 * user part where a user name alone is a credential (NATS takes `nats://token@host`).
 */
export interface SecretVariable {
  readonly name: string;
  readonly part: 'value' | 'url-password' | 'url-userinfo';
}

/** A throw-away server started with a memory limit (for `--maxmemory`). */
export interface CappedServer {
  /** What is started, for messages: `redis-server`. */
  readonly program: string;
  /** Starts one that refuses writes past `maxMemoryBytes` (never evicts). */
  start(maxMemoryBytes: number): Promise<Endpoint>;
}

/** A flag that sets one adapter setting, accepted only by adapters that declare it. */
export interface FlagSetting {
  /** The setting the flag's value goes to, e.g. `maxLength`. */
  readonly setting: string;
  /** What the flag does, for the error on another adapter: `trims a Redis stream`. */
  readonly purpose: string;
}

/** Price of a broker billed per request. */
export interface RequestPricing {
  /** USD per million billed requests for a queue in `mode`. */
  usdPerMillionRequests(mode: string): number;
  /**
   * The service (and its tier) that bills API `action` on a queue in `mode`, and its price: fan-out on
   * SQS publishes through SNS, billed as SNS. Absent: every action is the queue's own, at usdPerMillionRequests.
   */
  priceOf?(action: string, mode: string): ServicePrice;
}

/** Who bills a request, and at what price. */
export interface ServicePrice {
  /** As people name it: `SQS`, `SNS`. */
  readonly service: string;
  /** `standard`, `FIFO`. */
  readonly tier: string;
  readonly usdPerMillionRequests: number;
}

/** What the test suites need to know of an adapter, without naming it. */
export interface AdapterTesting {
  /** Names of what the adapter left on the server whose name starts with `namespace` (keys, queues). */
  leftovers(endpoint: Pick<Endpoint, 'url' | 'settings'>, namespace: string): Promise<string[]>;
  /** A URL of this broker's kind on loopback port `port`, which the caller knows to be closed; absent for a broker with no server. */
  unreachableUrl?(port: number): string;
  /** Messages a test may push through the test server in a few seconds; absent = 3,000 (the embedded SQS: 1,000). */
  readonly bulkMessages?: number;
  /** Extra settings the contract suite opens `mode` with (FIFO: several message groups). */
  settings?(mode: string): Readonly<Record<string, string | number | boolean | undefined>>;
}

/** A registry entry: how the CLI finds and opens an adapter, and every fact about its broker. */
export interface BrokerAdapter {
  /** Canonical name, e.g. `redis-list`. */
  readonly name: string;
  /** Names accepted in `QUEUE` (case-insensitive), e.g. `REDIS`, `REDIS_LIST`. */
  readonly aliases: readonly string[];
  /** Modes and the default one. */
  readonly modes: readonly string[];
  readonly defaultMode: string;
  /** Capabilities per mode, known without connecting (for validating flags up front). */
  capabilities(mode: string): BrokerCapabilities;
  /** Connects; rejects with a `BrokerError` whose message says what to do. */
  open(options: BrokerOptions): Promise<Broker>;
  /**
   * Where its server comes from: the environment variable `serverVariable` if set, else a local default,
   * else an embedded throw-away server. Absent: the broker needs no server (url undefined, no settings).
   */
  resolve?(env: Environment): Promise<Endpoint>;
  /** The environment variable naming its server (`REDIS_URL`), for messages and the tests. */
  readonly serverVariable?: string;
  /** Environment variables whose values are secrets, scrubbed from all output (src/redact.ts). */
  readonly secretVariables?: readonly SecretVariable[];
  /** A throw-away server with a memory cap, for `--maxmemory`; absent = not supported. */
  readonly cappedServer?: CappedServer;
  /** CLI flags (without `--`) that set one of its settings, e.g. `maxlen`. */
  readonly flagSettings?: Readonly<Record<string, FlagSetting>>;
  /** Per-request price; absent = not priced per request (cost "n/a", never zero). */
  readonly pricing?: RequestPricing;
  /** What the tests need. */
  readonly testing?: AdapterTesting;
}

/** An error from a broker operation: names the adapter and the operation, never a secret. */
export class BrokerError extends Error {
  constructor(
    readonly adapter: string,
    readonly operation: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${adapter} ${operation}: ${message}`, options);
    this.name = 'BrokerError';
  }
}

/**
 * An `ack` or `nack` that took effect for some of its messages and failed for the others. `settled`
 * holds exactly those of the message objects passed in that the broker settled (the same objects, in
 * their order); every other one is as before the call: received and unsettled, so an at-least-once
 * broker delivers it again. `settled` may hold every message when only a side step failed (a stream
 * entry acked but not deleted). Every adapter whose ack or nack can partly fail throws it.
 */
export class PartialSettleError extends BrokerError {
  constructor(
    adapter: string,
    operation: string,
    message: string,
    readonly settled: readonly ReceivedMessage[],
    options?: { cause?: unknown },
  ) {
    super(adapter, operation, message, options);
    this.name = 'PartialSettleError';
  }
}

/** The messages a rejected `ack` or `nack` settled all the same: `error.settled`, or none for any other error. */
export function settledDespite(error: unknown): readonly ReceivedMessage[] {
  return error instanceof PartialSettleError ? error.settled : [];
}
