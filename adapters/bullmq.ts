// The BullMQ adapter: BullMQ's queues on the same Redis as the list adapters, so its column shows what the
// framework costs over the list underneath. Publish is Queue.addBulk; receive is a Worker fetching by hand
// (getNextJob with a lock token, autorun off); ack moves the job to completed (and BullMQ deletes it), nack
// moves it to failed, which BullMQ turns into a retry after the nack's delay or, attempts spent, a dead letter.
//
// Visibility timeout = BullMQ's job lock (lockDuration, never renewed). A job whose lock ran out goes back to
// wait by BullMQ's own stalled-job check, which a Worker fetching by hand runs only once startStalledCheckTimer()
// is called: each handle's Worker calls it, every stalledInterval (half the visibility timeout), so a dead
// consumer's jobs come back between one and one and a half visibility timeouts after they were taken.
// QueueEvents runs no such check in BullMQ 5 and later.
//
// Settings read from `options.settings`:
//   endpointKind  string  what describe() reports as `endpointKind` (resolve() passes it); default 'local'.
//
// On a Redis Cluster (a URL naming any of its nodes) the handle's client is ioredis's Cluster, and each queue
// gets a prefix of its own holding a hash tag, `<ns>:{<queue>:<salt>}`, as BullMQ asks for cluster use: every
// key of the queue then lives in one slot, and the tags spread the run's queues over the masters (redis-slots.ts).
//
// LIMITATION: one Lua call per job to fetch it and one to settle it (BullMQ has no batch fetch or batch
// completion), plus an event-stream entry per state change: that is BullMQ's price, and what its column shows.
// A job received more than maxReceives times by lock expiry is failed by the next fetch that meets it (BullMQ
// leaves that to the worker), so until then it counts as ready, not dead.

import { randomBytes } from 'node:crypto';
import { Job, Queue, UnrecoverableError, Worker, type JobsOptions, type WorkerOptions } from 'bullmq';
import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
import {
  BrokerError,
  PartialSettleError,
  type BrokerCapabilities,
  type OutgoingMessage,
  type QueueDepth,
  type QueueSpec,
  type ReceivedMessage,
  type ReceiveOptions,
} from '../src/broker.ts';
import { redactUrl } from '../src/redact.ts';
import { defineAdapter, SettingsReader, withTimeout, type Driver, type EndpointKind, type ServerInfo } from './kit/index.ts';
import { describeRedisError, explainRedisConnectError } from './redis-connect-error.ts';
import { clusterSeed, isClusterNode, masterOf } from './redis-kit.ts';
import { redisServerFacts } from './redis-registry.ts';
import { ClusterPlacement, fitsHashTag } from './redis-slots.ts';

const ADAPTER = 'bullmq';

const CAPABILITIES: BrokerCapabilities = {
  delivery: 'at-least-once',
  delay: true,
  // BullMQ sets no limit; a due time is kept in a sorted-set score of ms x 4096, exact to 2^53: a year is far inside.
  maxDelayMs: 365 * 24 * 3600 * 1000,
  deadLetter: true,
  visibilityTimeout: true,
  nackDelay: true,
  // Several workers take jobs at once, stalled jobs go back to the head of the wait list and retried ones to its
  // tail, and delayed ones join when they fall due: no order holds across deliveries.
  ordering: 'none',
  // addBulk has no limit of its own; 1,000 keeps one call's Lua work and reply to a few milliseconds.
  maxBatchSize: 1_000,
  // Redis takes strings up to 512 MB, but a body travels JSON-escaped (up to 6 bytes per character) in one Lua
  // call and is parsed whole on every fetch: 64 MiB stays clear of both.
  maxPayloadBytes: 64 * 1024 * 1024,
  sharedAcrossProcesses: true,
};

/** Used when a queue was not `prepare`d on any handle of this open. */
const DEFAULT_SPEC: Omit<QueueSpec, 'name'> = { visibilityTimeoutMs: 30_000, maxReceives: 0 };
/** Attempts for a queue without dead letters: BullMQ needs a number, and none is reached. */
const UNLIMITED_ATTEMPTS = 2 ** 31 - 1;
/** The one job name: BullMQ stores a name per job, the harness has no use for one. */
const JOB_NAME = 'm';

/** What every handle of one open shares: its server, namespace and the queues' specs. */
interface Shared {
  readonly url: string;
  readonly namespace: string;
  readonly commandTimeoutMs: number;
  readonly endpointKind: EndpointKind;
  readonly specs: Map<string, Omit<QueueSpec, 'name'>>;
  /** On a Redis Cluster: the masters, and each queue's hash tag. */
  readonly placement: ClusterPlacement | undefined;
}

/** A nack, as the error BullMQ fails a job with; the backoff strategy reads its delay back. */
class NackError extends Error {
  constructor(readonly retryDelayMs: number) {
    super('nacked');
    // No stack: BullMQ would store it with the job on every nack.
    this.stack = '';
  }
}

/** A Worker driven by hand whose blocking wait for a job never outlasts the receive in progress. */
class ManualWorker extends Worker<string, unknown, string> {
  /** When the receive in progress must return, in ms since the epoch. */
  waitUntilMs = 0;

  protected override getBlockTimeout(blockUntil: number): number {
    const leftSeconds = (this.waitUntilMs - Date.now()) / 1000;
    return Math.min(super.getBlockTimeout(blockUntil), Math.max(leftSeconds, this.minimumBlockTimeout));
  }
}

/**
 * The handle's Redis client. BullMQ shares it for every Queue and Worker of the handle, and duplicates it for
 * each Worker's blocking connection: that copy waits without a command timeout and keeps a command across a
 * reconnect (`maxRetriesPerRequest: null`, as BullMQ requires of blocking connections).
 */
class HandleClient extends Redis {
  override duplicate(override?: Partial<RedisOptions>): Redis {
    return new Redis({
      ...this.options,
      ...override,
      commandTimeout: undefined,
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      retryStrategy: (times) => Math.min(100 * 2 ** (times - 1), 1_000),
    });
  }
}

/** The cluster twin of HandleClient: its duplicate, a Worker's blocking connection, is a Cluster with the same blocking options. */
class HandleCluster extends Cluster {
  override duplicate(startupNodes: ClusterNode[] = [], options: ClusterOptions = {}): Cluster {
    const nodes = startupNodes.length > 0 ? startupNodes : clusterSeeds.get(this) ?? [];
    return new Cluster(nodes, {
      ...this.options,
      ...options,
      enableOfflineQueue: true,
      clusterRetryStrategy: (times) => Math.min(100 * 2 ** (times - 1), 1_000),
      redisOptions: { ...this.options.redisOptions, ...options.redisOptions, commandTimeout: undefined, maxRetriesPerRequest: null },
    });
  }
}

/** Where each HandleCluster started (ioredis keeps its own list private). */
const clusterSeeds = new WeakMap<Cluster, ClusterNode[]>();

/** A handle's client: one Redis, or a cluster. */
type HandleConnection = HandleClient | HandleCluster;

export class BullmqDriver implements Driver {
  readonly #shared: Shared;
  readonly #redis: HandleConnection;
  readonly #queues = new Map<string, Queue>();
  readonly #workers = new Map<string, Promise<ManualWorker>>();
  /** Jobs received on this handle and not yet settled, by receipt. */
  readonly #inHand = new Map<string, Job<string>>();
  /** Lock tokens are `<handle>.<receive>`: one per receive, so a late settle never takes a later delivery's lock. */
  readonly #handleId = randomBytes(6).toString('hex');
  #receives = 0;
  #closed = false;

  /** On a cluster only: which master and slot each queue had (QueueStats). */
  declare readonly queueStats?: (queue: string) => Promise<Readonly<Record<string, number>>>;

  constructor(shared: Shared, redis: HandleConnection) {
    this.#shared = shared;
    this.#redis = redis;
    const placement = shared.placement;
    if (placement !== undefined && redis instanceof Cluster) {
      this.queueStats = async (queue) => {
        const slot = placement.slot(queue);
        return { [`slot of ${queue} on ${masterOf(redis, slot).key}`]: slot };
      };
    }
  }

  async describe(): Promise<ServerInfo> {
    const info = await this.#redis.info('server');
    const serverVersion = /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown';
    const masters = this.#shared.placement?.masters;
    const endpoint = redactUrl(this.#shared.url) + (masters === undefined ? '' : ` (cluster of ${masters} masters)`);
    return { serverVersion, endpoint, endpointKind: this.#shared.endpointKind };
  }

  async prepare({ name, ...spec }: QueueSpec): Promise<void> {
    if (name.includes(':')) throw new BrokerError(ADAPTER, 'prepare', `queue ${name}: BullMQ queue names cannot contain ':'`);
    if (this.#shared.placement !== undefined && !fitsHashTag(name)) {
      throw new BrokerError(ADAPTER, 'prepare', `queue ${name}: no '{' or '}' on a Redis Cluster (they mark a hash tag)`);
    }
    // BullMQ makes its keys on first write: only the spec to keep (a Worker opened later takes it).
    this.#shared.specs.set(name, { ...spec });
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    const opts = this.#jobOptions(queue);
    await this.#queue(queue).addBulk(
      messages.map(({ body, delayMs }) => ({ name: JOB_NAME, data: body, opts: delayMs ? { ...opts, delay: delayMs } : opts })),
    );
  }

  async receive(queue: string, { maxMessages, waitMs }: ReceiveOptions): Promise<ReceivedMessage[]> {
    const worker = await this.#worker(queue);
    const token = `${this.#handleId}.${(this.#receives++).toString(36)}`;
    const received: ReceivedMessage[] = [];
    worker.waitUntilMs = Date.now() + waitMs;
    // The first job blocking until the wait runs out (BullMQ's first call after jobs ran dry only notes it is
    // drained, hence the loop); the rest without blocking, all at once.
    while (received.length === 0 && !this.#closed) {
      const blocking = Date.now() < worker.waitUntilMs;
      await this.#deliver(await worker.getNextJob(token, { block: blocking }), token, received);
      if (!blocking) break;
    }
    if (received.length > 0 && maxMessages > 1) {
      const more = await Promise.all(Array.from({ length: maxMessages - 1 }, () => worker.getNextJob(token, { block: false })));
      for (const job of more) await this.#deliver(job, token, received);
    }
    return received;
  }

  async ack(queue: string, messages: readonly ReceivedMessage[]): Promise<void> {
    await this.#settle('ack', queue, messages, (job, token) => job.moveToCompleted(undefined, token, false));
  }

  async nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    await this.#settle('nack', queue, messages, (job, token) => job.moveToFailed(new NackError(retryDelayMs), token, false));
  }

  async depth(queue: string): Promise<QueueDepth> {
    const counts = await this.#queue(queue).getJobCounts('wait', 'prioritized', 'active', 'delayed', 'failed');
    const count = (state: string): number => counts[state] ?? 0;
    return { ready: count('wait') + count('prioritized'), inFlight: count('active'), delayed: count('delayed'), dead: count('failed') };
  }

  async purge(queue: string): Promise<void> {
    // Obliterate deletes every job and key of the queue; BullMQ makes them again on the next write.
    await this.#queue(queue).obliterate({ force: true });
  }

  async teardown(queue: string): Promise<void> {
    const worker = this.#workers.get(queue);
    this.#workers.delete(queue);
    await worker?.then((open) => open.close(true), () => undefined);
    await this.#queue(queue).obliterate({ force: true });
    await this.#queues.get(queue)?.close();
    this.#queues.delete(queue);
    this.#shared.specs.delete(queue);
  }

  async duplicate(): Promise<Driver> {
    const { url, commandTimeoutMs, placement } = this.#shared;
    return new BullmqDriver(this.#shared, await (placement === undefined ? connect(url, commandTimeoutMs) : connectCluster(url, commandTimeoutMs)));
  }

  async close(): Promise<void> {
    this.#closed = true;
    // Force: a Worker closed that way cuts its blocking connection, which ends a receive's wait at once.
    const workers = await Promise.allSettled(this.#workers.values());
    await Promise.allSettled(workers.map((worker) => (worker.status === 'fulfilled' ? worker.value.close(true) : undefined)));
    await Promise.allSettled([...this.#queues.values()].map((queue) => queue.close()));
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }

  explain(error: unknown): string {
    return describeRedisError(error);
  }

  /** Hands `job` out, or fails it as BullMQ's maxStartedAttempts would, when its lock ran out on its last receive. */
  async #deliver(job: Job<string> | undefined, token: string, into: ReceivedMessage[]): Promise<void> {
    if (job === undefined) return;
    const { maxReceives } = this.#spec(job.queueName);
    if (maxReceives > 0 && job.attemptsStarted > maxReceives) {
      await job.moveToFailed(new UnrecoverableError(`received ${maxReceives} times and not settled`), token, false);
      return;
    }
    const receipt = `${token}:${job.id}`;
    this.#inHand.set(receipt, job);
    into.push({ body: job.data, receiveCount: job.attemptsStarted, receipt });
  }

  /** Settles each message by `move`; those BullMQ refused (a lock that ran out) stay unsettled and are reported. */
  async #settle(
    operation: 'ack' | 'nack',
    queue: string,
    messages: readonly ReceivedMessage[],
    move: (job: Job<string>, token: string) => Promise<unknown>,
  ): Promise<void> {
    const outcomes = await Promise.allSettled(
      messages.map(async ({ receipt }) => {
        const at = receipt.lastIndexOf(':');
        const token = receipt.slice(0, at);
        const job = this.#inHand.get(receipt) ?? (await Job.fromId<string>(await this.#worker(queue), receipt.slice(at + 1)));
        this.#inHand.delete(receipt);
        if (job === undefined) throw new Error(`job ${receipt.slice(at + 1)} is gone (settled already, or purged)`);
        await move(job, token);
      }),
    );
    const failed = outcomes.findIndex((outcome) => outcome.status === 'rejected');
    if (failed < 0) return;
    const reason = describeRedisError((outcomes[failed] as PromiseRejectedResult).reason);
    const settled = messages.filter((_, i) => outcomes[i]!.status === 'fulfilled');
    if (settled.length === 0) throw new BrokerError(ADAPTER, operation, reason);
    throw new PartialSettleError(ADAPTER, operation, `${messages.length - settled.length} of ${messages.length} not settled: ${reason}`, settled);
  }

  #spec(queue: string): Omit<QueueSpec, 'name'> {
    return this.#shared.specs.get(queue) ?? DEFAULT_SPEC;
  }

  /** Attempts = maxReceives (BullMQ fails the job when they are spent); the backoff type makes a nack's delay the retry's. */
  #jobOptions(queue: string): JobsOptions {
    const { maxReceives } = this.#spec(queue);
    return { attempts: maxReceives > 0 ? maxReceives : UNLIMITED_ATTEMPTS, backoff: { type: 'nack' } };
  }

  /** BullMQ's prefix for queue `name`: the namespace, and on a cluster the queue's hash tag after it. */
  #prefix(name: string): string {
    const { namespace, placement } = this.#shared;
    return placement === undefined ? namespace : `${namespace}:{${placement.tag(name)}}`;
  }

  #queue(name: string): Queue {
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      // No meta write on construction: a Queue opened only to tear down would leave it behind.
      queue = new Queue(name, { connection: this.#redis, prefix: this.#prefix(name), skipMetasUpdate: true });
      queue.on('error', () => undefined);
      this.#queues.set(name, queue);
    }
    return queue;
  }

  /** This handle's Worker for `name`, made on first use with the queue's spec, its stalled-job check running. */
  #worker(name: string): Promise<ManualWorker> {
    let worker = this.#workers.get(name);
    if (worker === undefined) {
      worker = this.#openWorker(name);
      this.#workers.set(name, worker);
      worker.catch(() => this.#workers.delete(name));
    }
    return worker;
  }

  async #openWorker(name: string): Promise<ManualWorker> {
    const { visibilityTimeoutMs, maxReceives } = this.#spec(name);
    const lockDuration = Math.ceil(visibilityTimeoutMs);
    const options: WorkerOptions = {
      connection: this.#redis,
      prefix: this.#prefix(name),
      autorun: false,
      lockDuration,
      // The lock is the visibility timeout: never extended, checked twice per timeout.
      skipLockRenewal: true,
      stalledInterval: Math.max(1, Math.ceil(lockDuration / 2)),
      // Stalls count as receives, and maxStartedAttempts caps receives of every kind.
      maxStalledCount: UNLIMITED_ATTEMPTS,
      ...(maxReceives > 0 ? { maxStartedAttempts: maxReceives } : {}),
      // Completed jobs are deleted as the run goes; failed ones are kept (BullMQ's default): they are the dead letters.
      removeOnComplete: { count: 0 },
      settings: { backoffStrategy: (_attempts, _type, error) => (error instanceof NackError ? error.retryDelayMs : 0) },
    };
    const worker = new ManualWorker(name, null, options);
    worker.on('error', () => undefined);
    try {
      await withTimeout(this.#shared.commandTimeoutMs, `opening the BullMQ worker of ${name}`, () => worker.waitUntilReady());
    } catch (error) {
      await worker.close(true).catch(() => undefined);
      throw error;
    }
    await worker.startStalledCheckTimer();
    return worker;
  }
}

/** Opens a handle's client, or fails in the one line the Redis adapters give. */
async function connect(url: string, commandTimeoutMs: number): Promise<HandleClient> {
  let everReady = false;
  const client = new HandleClient(url, {
    lazyConnect: true,
    connectTimeout: commandTimeoutMs,
    commandTimeout: commandTimeoutMs,
    // As the Redis adapters: a command on a dead connection fails at once and is counted, never resent.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => (everReady ? Math.min(100 * 2 ** (times - 1), 1_000) : null),
  });
  client.on('ready', () => (everReady = true));
  return connected(client, url, commandTimeoutMs);
}

/** Opens a handle's client on the cluster `url` names a node of (options as `connect`'s, for every node). */
async function connectCluster(url: string, commandTimeoutMs: number): Promise<HandleCluster> {
  let everReady = false;
  const seed = clusterSeed(url);
  const seeds = [seed.node];
  const client = new HandleCluster(seeds, {
    lazyConnect: true,
    enableOfflineQueue: false,
    // As on one Redis: a command whose connection closed fails at once; redirections are followed.
    retryDelayOnFailover: 0,
    slotsRefreshTimeout: commandTimeoutMs,
    clusterRetryStrategy: (times) => (everReady ? Math.min(100 * 2 ** (times - 1), 1_000) : null),
    redisOptions: { ...seed.options, connectTimeout: commandTimeoutMs, commandTimeout: commandTimeoutMs, maxRetriesPerRequest: 0 },
  });
  clusterSeeds.set(client, seeds);
  client.on('ready', () => (everReady = true));
  return connected(client, url, commandTimeoutMs);
}

/** `client` connected within the command timeout, or the one-line BrokerError. */
async function connected<C extends HandleConnection>(client: C, url: string, commandTimeoutMs: number): Promise<C> {
  let lastError: unknown;
  client.on('error', (error: unknown) => (lastError = error));
  try {
    await withTimeout(commandTimeoutMs + 250, 'connect', () => client.connect());
    return client;
  } catch (error) {
    client.disconnect();
    const cause = lastError ?? error;
    throw new BrokerError(ADAPTER, 'connect', explainRedisConnectError(url, cause, commandTimeoutMs), { cause });
  }
}

/** The first client of an open: a plain one, or, when `url` names a node of a cluster, a Cluster client and the cluster's masters. */
async function connectFirst(url: string, commandTimeoutMs: number): Promise<{ client: HandleConnection; placement: ClusterPlacement | undefined }> {
  const client = await connect(url, commandTimeoutMs);
  let cluster: boolean;
  try {
    cluster = await isClusterNode(client);
  } catch (error) {
    client.disconnect();
    throw new BrokerError(ADAPTER, 'connect', `INFO cluster failed: ${describeRedisError(error)}`, { cause: error });
  }
  if (!cluster) return { client, placement: undefined };
  client.disconnect();
  const clustered = await connectCluster(url, commandTimeoutMs);
  return { client: clustered, placement: new ClusterPlacement(clustered.slots) };
}

export const bullmqAdapter = defineAdapter({
  name: ADAPTER,
  aliases: ['BULLMQ'],
  modes: { default: CAPABILITIES },
  defaultMode: 'default',
  // The list adapters' server, but no memory-capped one for --maxmemory: at the limit Redis refuses the writes
  // inside BullMQ's fetch and completion scripts too (a lock, an event, the job's fields), so a full server
  // never drains and such a run could only time out.
  serverVariable: redisServerFacts.serverVariable,
  resolve: redisServerFacts.resolve,
  secretVariables: redisServerFacts.secretVariables,
  testing: redisServerFacts.testing,
  async connect(options) {
    if (!options.url) throw new BrokerError(ADAPTER, 'connect', 'no Redis URL given; set REDIS_URL (e.g. redis://127.0.0.1:6379)');
    const endpointKind = new SettingsReader(ADAPTER, options.settings).endpointKind('local');
    const { client, placement } = await connectFirst(options.url, options.commandTimeoutMs);
    if (placement !== undefined && !fitsHashTag(options.namespace)) {
      client.disconnect();
      throw new BrokerError(ADAPTER, 'connect', `namespace "${options.namespace}" must not contain '{' or '}' on a Redis Cluster (they mark a hash tag)`);
    }
    const shared: Shared = { url: options.url, namespace: options.namespace, commandTimeoutMs: options.commandTimeoutMs, endpointKind, specs: new Map(), placement };
    return new BullmqDriver(shared, client);
  },
});
