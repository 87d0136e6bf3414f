// What an adapter writes: a Driver (how its broker does each operation) and the definition of its
// registry entry. Types only; adapters/kit/broker.ts turns a Driver into a Broker.

import type {
  BrokerAdapter,
  BrokerCapabilities,
  BrokerInfo,
  BrokerOptions,
  OutgoingMessage,
  QueueDepth,
  QueueSpec,
  ReceivedMessage,
  ReceiveOptions,
  ServerMemory,
} from '../../src/broker.ts';

/** What describe() learns from the server; the kit adds the adapter's name and mode. */
export type ServerInfo = Omit<BrokerInfo, 'name' | 'mode'>;

/**
 * One connection to a broker, doing the operations of the Broker contract (src/broker.ts) and nothing
 * else. The kit calls it only on an open handle, with arguments that keep to the declared capabilities:
 * publish, ack and nack get at least one message; a publish batch holds no body over maxPayloadBytes and
 * no delay the mode cannot honour; receive gets a whole maxMessages from 1 to maxBatchSize and a waitMs
 * of 0 or more; nack a retryDelayMs of 0 or more, within maxNackDelayMs where nackDelay is declared;
 * prepare a named spec with visibilityTimeoutMs over 0 and a whole maxReceives of 0 or more.
 * Any error it throws reaches the caller as a BrokerError naming the adapter and the operation.
 */
export interface Driver {
  describe(): Promise<ServerInfo>;
  prepare(spec: QueueSpec): Promise<void>;
  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void>;
  /** Blocks up to `waitMs` when nothing is ready, never spinning; close() must end that wait (the kit then returns []). */
  receive(queue: string, options: ReceiveOptions): Promise<ReceivedMessage[]>;
  /** Throws a PartialSettleError when it settled only some (see Broker.ack). */
  ack(queue: string, messages: readonly ReceivedMessage[]): Promise<void>;
  nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void>;
  depth(queue: string): Promise<QueueDepth>;
  purge(queue: string): Promise<void>;
  teardown(queue: string): Promise<void>;
  /** A driver on a connection of its own, sharing configuration and prepared queues. */
  duplicate(): Promise<Driver>;
  /** Called once, by the first close() of the handle. */
  close(): Promise<void>;

  /** The one line an error of this broker's client is told in, without secrets; default: its message's first line. */
  explain?(error: unknown): string;
  /** The broker's own name for `queue`, for refusals (`queue bb-1a2b-jobs: ...`); default: `queue` itself. */
  queueName?(queue: string): string;

  // Optional extensions (src/broker.ts): a driver that has them gets them on its handle, checked and wrapped alike.
  serverMemory?(): Promise<ServerMemory>;
  queueMemoryBytes?(queue: string): Promise<number>;
  queueStats?(queue: string): Promise<Readonly<Record<string, number>>>;
  requestCounts?(): Readonly<Record<string, number>>;
  billedRequests?(): number;
  openGroup?(group: string): Promise<Driver>;
}

/** How the kit applies and words the declared limits for one broker. */
export interface LimitFacts {
  /** The words before "maximum" in a refusal: `SQS` gives "over SQS maximum of 900 s". Default: `<name>'s`. */
  readonly owner?: string;
  /** Why a mode without delays refuses a delayed message, e.g. `per-message delay is not supported on FIFO queues`. */
  readonly noDelay?: string;
  /** Publish takes batches of any length and sends them maxBatchSize at a time: the kit refuses none for its length. */
  readonly splitsPublish?: boolean;
}

/** A registry entry as an adapter declares it; `defineAdapter` makes the BrokerAdapter (src/broker.ts). */
export interface AdapterDefinition extends Omit<BrokerAdapter, 'modes' | 'defaultMode' | 'capabilities' | 'open'> {
  /** Capabilities by mode; the modes are its keys (lower case), in this order. */
  readonly modes: Readonly<Record<string, BrokerCapabilities>>;
  readonly defaultMode: string;
  readonly limits?: LimitFacts;
  /**
   * Opens one connection in `mode` (a key of `modes`). Throws a BrokerError saying what to do when it
   * cannot (the kit has checked the mode, the namespace and commandTimeoutMs).
   */
  connect(options: BrokerOptions, mode: string): Promise<Driver>;
}
