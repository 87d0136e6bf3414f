// Makes a Driver a Broker, the same way for every adapter: a closed handle refuses every call, the
// declared limits are checked before the driver is called, empty batches never reach it, every error
// leaves as a BrokerError naming adapter and operation, close() runs once, and duplicates and consumer
// groups come back wrapped alike. Per call, never per message: the hot path allocates nothing here.

import {
  BrokerError,
  type Broker,
  type BrokerCapabilities,
  type BrokerInfo,
  type ConsumerGroups,
  type MemoryReporting,
  type OutgoingMessage,
  type QueueDepth,
  type QueueSpec,
  type QueueStats,
  type ReceivedMessage,
  type ReceiveOptions,
  type RequestCounting,
} from '../../src/broker.ts';
import type { Driver } from './driver.ts';
import { firstLine, toBrokerError } from './errors.ts';
import type { Limits } from './limits.ts';

/** What every handle opened in one mode shares. */
export interface HandleFacts {
  readonly adapter: string;
  readonly mode: string;
  readonly capabilities: BrokerCapabilities;
  readonly limits: Limits;
}

export class KitBroker implements Broker {
  readonly capabilities: BrokerCapabilities;
  // Present only when the driver has them, so isMemoryReporting() and the like tell the truth.
  declare readonly serverMemory?: MemoryReporting['serverMemory'];
  declare readonly queueMemoryBytes?: MemoryReporting['queueMemoryBytes'];
  declare readonly queueStats?: QueueStats['queueStats'];
  declare readonly requestCounts?: RequestCounting['requestCounts'];
  declare readonly billedRequests?: RequestCounting['billedRequests'];
  declare readonly openGroup?: ConsumerGroups['openGroup'];
  readonly #facts: HandleFacts;
  readonly #driver: Driver;
  readonly #explain: (error: unknown) => string;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(facts: HandleFacts, driver: Driver) {
    this.capabilities = facts.capabilities;
    this.#facts = facts;
    this.#driver = driver;
    this.#explain = driver.explain ? (error) => driver.explain!(error) : firstLine;
    if (driver.serverMemory && driver.queueMemoryBytes) {
      this.serverMemory = () => this.#call('memory', () => driver.serverMemory!());
      this.queueMemoryBytes = (queue) => this.#call('memory', () => driver.queueMemoryBytes!(queue));
    }
    if (driver.queueStats) {
      this.queueStats = (queue) => this.#call('stats', () => driver.queueStats!(queue));
    }
    if (driver.requestCounts && driver.billedRequests) {
      // Counts stay readable after close: a run reads them once its handles are done.
      this.requestCounts = () => driver.requestCounts!();
      this.billedRequests = () => driver.billedRequests!();
    }
    if (driver.openGroup) {
      this.openGroup = (group) => this.#call('openGroup', async () => new KitBroker(facts, await driver.openGroup!(group)));
    }
  }

  describe(): Promise<BrokerInfo> {
    return this.#call('describe', async () => ({ name: this.#facts.adapter, mode: this.#facts.mode, ...(await this.#driver.describe()) }));
  }

  async prepare(spec: QueueSpec): Promise<void> {
    if (this.#closed) throw this.#closedError('prepare');
    const refusal = this.#facts.limits.prepare(spec);
    if (refusal !== undefined) throw new BrokerError(this.#facts.adapter, 'prepare', refusal);
    try {
      await this.#driver.prepare(spec);
    } catch (error) {
      throw this.#wrap('prepare', error);
    }
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.#closed) throw this.#closedError('publish');
    if (messages.length === 0) return;
    const refusal = this.#facts.limits.publish(messages);
    if (refusal !== undefined) throw this.#refuse('publish', queue, refusal);
    try {
      await this.#driver.publish(queue, messages);
    } catch (error) {
      throw this.#wrap('publish', error);
    }
  }

  async receive(queue: string, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    if (this.#closed) throw this.#closedError('receive');
    const refusal = this.#facts.limits.receive(options);
    if (refusal !== undefined) throw this.#refuse('receive', queue, refusal);
    try {
      return await this.#driver.receive(queue, options);
    } catch (error) {
      // close() during a wait ends the wait, not the consumer loop.
      if (this.#closed) return [];
      throw this.#wrap('receive', error);
    }
  }

  async ack(queue: string, messages: readonly ReceivedMessage[]): Promise<void> {
    if (this.#closed) throw this.#closedError('ack');
    if (messages.length === 0) return;
    try {
      await this.#driver.ack(queue, messages);
    } catch (error) {
      throw this.#wrap('ack', error);
    }
  }

  async nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    if (this.#closed) throw this.#closedError('nack');
    if (messages.length === 0) return;
    const refusal = this.#facts.limits.nack(retryDelayMs);
    if (refusal !== undefined) throw this.#refuse('nack', queue, refusal);
    try {
      await this.#driver.nack(queue, messages, retryDelayMs);
    } catch (error) {
      throw this.#wrap('nack', error);
    }
  }

  depth(queue: string): Promise<QueueDepth> {
    return this.#call('depth', () => this.#driver.depth(queue));
  }

  purge(queue: string): Promise<void> {
    return this.#call('purge', () => this.#driver.purge(queue));
  }

  teardown(queue: string): Promise<void> {
    return this.#call('teardown', () => this.#driver.teardown(queue));
  }

  duplicate(): Promise<Broker> {
    return this.#call('duplicate', async () => new KitBroker(this.#facts, await this.#driver.duplicate()));
  }

  close(): Promise<void> {
    this.#closed = true;
    return (this.#closing ??= this.#closeDriver());
  }

  async #closeDriver(): Promise<void> {
    try {
      await this.#driver.close();
    } catch (error) {
      throw this.#wrap('close', error);
    }
  }

  async #call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    if (this.#closed) throw this.#closedError(operation);
    try {
      return await run();
    } catch (error) {
      throw this.#wrap(operation, error);
    }
  }

  #wrap(operation: string, error: unknown): BrokerError {
    return toBrokerError(this.#facts.adapter, operation, error, this.#explain);
  }

  #refuse(operation: string, queue: string, refusal: string): BrokerError {
    return new BrokerError(this.#facts.adapter, operation, `queue ${this.#driver.queueName?.(queue) ?? queue}: ${refusal}`);
  }

  #closedError(operation: string): BrokerError {
    return new BrokerError(this.#facts.adapter, operation, 'handle is closed');
  }
}
