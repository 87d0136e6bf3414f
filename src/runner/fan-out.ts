// Fan-out: every message must reach K independent consumer groups, the push-queue pattern of the
// IronMQ seed. A broker with consumer groups (Redis streams) is published to once and read by K
// groups; any other gets one queue per group (`<queue>-g<k>`) and every publish is written K times.
// Each group has its own consumers (in this process), its own ledger and its own latency histograms.
//
// The pipeline sees a broker that publishes to every group and a ConsumerSet that reports one
// message as delivered when its first group got it and as completed when its last group finished
// it; a delivery a group gets twice counts as a duplicate there too. So the pipeline's ledger says
// whether every message reached every group, and the per-group ledgers say which group fell short.
//
// LIMITATION: all groups' consumers share this process. With copies, a publish counts as failed if
// any group's copy failed (the groups that got theirs still deliver it, and their ledgers show it).

import type { Histogram } from 'hdr-histogram-js';
import {
  hasConsumerGroups,
  type Broker,
  type BrokerInfo,
  type OutgoingMessage,
  type QueueDepth,
  type QueueSpec,
  type ReceivedMessage,
} from '../broker.ts';
import type { Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import { createLatencyHistogram, recordLatency } from '../metrics/histogram.ts';
import { Ledger, type LedgerCounts } from '../metrics/ledger.ts';
import { Executor, seededRandom } from '../pipeline/executor.ts';
import { FOREIGN, MessageDecoder } from '../pipeline/message.ts';
import type { ConsumerSet, SubscriberSink } from '../pipeline/sink.ts';
import { Subscriber } from '../pipeline/subscriber.ts';
import { stopSubscribers } from './local-consumers.ts';
import { sumDepths } from './publisher.ts';

export interface FanOutOptions {
  /** The run's handle (queues prepared on it); publishing goes through it. */
  readonly broker: Broker;
  readonly config: RunConfig;
  /** The run's queue names. */
  readonly queues: readonly string[];
  readonly clock: Clock;
  readonly groups: number;
}

/** One group's books after the run. */
export interface GroupResult {
  readonly name: string;
  readonly ledger: LedgerCounts;
  readonly endToEnd: Histogram;
  readonly completion: Histogram;
}

interface Group {
  readonly name: string;
  /** Queue names this group reads, parallel to the run's queues. */
  readonly queues: readonly string[];
  /** Handle for depth (and, natively, the group's own root handle); consumers duplicate it. */
  readonly root: Broker;
  readonly ledger: Ledger;
  readonly endToEnd: Histogram;
  readonly completion: Histogram;
  readonly handles: Broker[];
  subscribers: Subscriber[];
}

export class FanOut implements ConsumerSet {
  /** Publishes to every group; hand it to the pipeline as its broker. */
  readonly broker: Broker;
  /** True when the broker itself fans out (one stream, K consumer groups). */
  readonly native: boolean;
  readonly #options: FanOutOptions;
  readonly #groups: Group[] = [];
  /** Per message: 1 once some group got it; how many groups completed it. */
  readonly #seen: Uint8Array;
  readonly #done: Uint8Array;
  #runs: Promise<void>[] = [];
  /** Queues this made (copies), removed by teardown(). */
  readonly #madeQueues: string[] = [];
  /** The run's token, from prepare(): the groups' consumers book only bodies that carry it. */
  #runToken = '';

  constructor(options: FanOutOptions) {
    if (!Number.isSafeInteger(options.groups) || options.groups < 1 || options.groups > 255) {
      throw new RangeError(`groups must be a whole number from 1 to 255, not ${options.groups}`);
    }
    this.#options = options;
    this.native = hasConsumerGroups(options.broker);
    this.#seen = new Uint8Array(options.config.messages);
    this.#done = new Uint8Array(options.config.messages);
    this.broker = new FanOutBroker(options.broker, this);
  }

  /** Makes the groups (queues or consumer groups) and connects their consumers, before the clock starts. */
  async prepare(runToken: string): Promise<void> {
    this.#runToken = runToken;
    try {
      await this.#prepareGroups();
    } catch (error) {
      // Nothing half-open is left behind: handles made so far are closed, the copies' queues removed.
      await Promise.all(this.#groups.flatMap((group) => group.handles.map((handle) => handle.close().catch(() => undefined))));
      await this.teardown();
      throw error;
    }
  }

  async #prepareGroups(): Promise<void> {
    const { broker, config, queues, groups } = this.#options;
    const spec = (name: string): QueueSpec => ({ name, visibilityTimeoutMs: config.visibilityTimeoutMs, maxReceives: config.maxReceives });
    for (let k = 0; k < groups; k++) {
      const name = `g${k}`;
      let root: Broker;
      let groupQueues: string[];
      if (hasConsumerGroups(broker)) {
        root = await broker.openGroup(`fan${k}`);
        groupQueues = [...queues];
      } else {
        root = broker;
        groupQueues = queues.map((queue) => `${queue}-${name}`);
        this.#madeQueues.push(...groupQueues);
      }
      const group: Group = {
        name,
        queues: groupQueues,
        root,
        ledger: new Ledger(config.messages),
        endToEnd: createLatencyHistogram(),
        completion: createLatencyHistogram(),
        handles: [],
        subscribers: [],
      };
      this.#groups.push(group);
      for (const queue of groupQueues) await root.prepare(spec(queue));
      for (let c = 0; c < config.consumers; c++) group.handles.push(await root.duplicate());
    }
  }

  start(sink: SubscriberSink): void {
    const { config, clock } = this.#options;
    for (const [k, group] of this.#groups.entries()) {
      const executor = new Executor(config.task, seededRandom(config.seed + 7919 * k));
      const groupSink = this.#groupSink(group, sink);
      group.subscribers = group.handles.map(
        (handle, c) =>
          new Subscriber(
            handle,
            {
              queue: group.queues[c % group.queues.length]!,
              receiveBatch: config.receiveBatch,
              receiveWaitMs: config.receiveWaitMs,
              retryDelayMs: config.retryDelayMs,
              messages: config.messages,
              runToken: this.#runToken,
              executor,
              clock,
            },
            groupSink,
          ),
      );
      this.#runs.push(...group.subscribers.map((subscriber) => subscriber.run()));
    }
  }

  inHand(): number {
    let count = 0;
    for (const group of this.#groups) for (const subscriber of group.subscribers) count += subscriber.inHand;
    return count;
  }

  async stop(): Promise<void> {
    await stopSubscribers(
      this.#groups.flatMap((group) => group.subscribers),
      this.#runs,
      this.#groups.flatMap((group) => group.handles),
    );
  }

  /** Never sent: not lost for any group either. */
  notSent(from: number, to: number): void {
    for (const group of this.#groups) group.ledger.markNotSent(from, to);
  }

  /** Each group's books; valid once the run is over. */
  results(): GroupResult[] {
    return this.#groups.map((group) => ({
      name: group.name,
      ledger: group.ledger.counts(),
      endToEnd: group.endToEnd,
      completion: group.completion,
    }));
  }

  /** Sum of every group's depth: what is still owed to some group. */
  async depth(queue: string): Promise<QueueDepth> {
    const index = this.#options.queues.indexOf(queue);
    return sumDepths(await Promise.all(this.#groups.map((group) => group.root.depth(group.queues[index < 0 ? 0 : index]!))));
  }

  /** Writes a batch to every group: once natively, else one copy per group's queue. */
  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    const { broker, queues } = this.#options;
    if (this.native) {
      try {
        await broker.publish(queue, messages);
      } catch (error) {
        for (const group of this.#groups) markFailed(group.ledger, messages, this.#runToken);
        throw error;
      }
      return;
    }
    const index = queues.indexOf(queue);
    const results = await Promise.allSettled(this.#groups.map((group) => broker.publish(group.queues[index < 0 ? 0 : index]!, messages)));
    let firstError: unknown;
    results.forEach((result, k) => {
      if (result.status === 'fulfilled') return;
      markFailed(this.#groups[k]!.ledger, messages, this.#runToken);
      firstError ??= result.reason;
    });
    if (firstError !== undefined) throw firstError;
  }

  /** Removes the per-group queues made for copies and closes the groups' own handles. */
  async teardown(): Promise<void> {
    for (const queue of this.#madeQueues) await this.#options.broker.teardown(queue).catch(() => undefined);
    if (this.native) await Promise.all(this.#groups.map((group) => group.root.close().catch(() => undefined)));
  }

  /** Books a group's reports in its own ledger, and in the pipeline's as "reached one group" / "done by all". */
  #groupSink(group: Group, sink: SubscriberSink): SubscriberSink {
    const groups = this.#options.groups;
    const warmup = this.#options.config.warmupMessages;
    const seen = this.#seen;
    const done = this.#done;
    return {
      delivered: (index, sentUs, receivedUs, receiveCount) => {
        const first = group.ledger.markDelivered(index);
        if (index >= warmup) recordLatency(group.endToEnd, receivedUs - sentUs);
        // The pipeline hears of the first group's delivery, and of every duplicate within a group.
        if (!first) {
          sink.delivered(index, sentUs, receivedUs, receiveCount);
        } else if (seen[index] === 0) {
          seen[index] = 1;
          sink.delivered(index, sentUs, receivedUs, receiveCount);
        }
      },
      malformed: () => {
        group.ledger.markUnknown();
        sink.malformed();
      },
      foreign: () => {
        group.ledger.markForeign();
        sink.foreign();
      },
      executed: (index, executionUs) => sink.executed(index, executionUs),
      completed: (index, sentUs, ackedUs) => {
        if (!group.ledger.markCompleted(index)) return;
        if (index >= warmup) recordLatency(group.completion, ackedUs - sentUs);
        if (++done[index]! === groups) sink.completed(index, sentUs, ackedUs);
      },
      failed: (count, atUs) => sink.failed(count, atUs),
      receiveCall: (empty) => sink.receiveCall(empty),
      error: (operation, message) => sink.error(operation, `group ${group.name}: ${message}`),
    };
  }
}

/** What the pipeline publishes through: every batch goes to every group; depth is what some group still owes. */
class FanOutBroker implements Broker {
  readonly #inner: Broker;
  readonly #fanOut: FanOut;

  constructor(inner: Broker, fanOut: FanOut) {
    this.#inner = inner;
    this.#fanOut = fanOut;
  }

  get capabilities(): Broker['capabilities'] {
    return this.#inner.capabilities;
  }
  describe(): Promise<BrokerInfo> {
    return this.#inner.describe();
  }
  prepare(spec: QueueSpec): Promise<void> {
    return this.#inner.prepare(spec);
  }
  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    return this.#fanOut.publish(queue, messages);
  }
  receive(): Promise<ReceivedMessage[]> {
    return Promise.reject(new Error('fan-out: consumers read through their groups, not through the publishing handle'));
  }
  ack(): Promise<void> {
    return Promise.reject(new Error('fan-out: consumers ack through their groups'));
  }
  nack(): Promise<void> {
    return Promise.reject(new Error('fan-out: consumers nack through their groups'));
  }
  depth(queue: string): Promise<QueueDepth> {
    return this.#fanOut.depth(queue);
  }
  purge(queue: string): Promise<void> {
    return this.#inner.purge(queue);
  }
  teardown(queue: string): Promise<void> {
    return this.#inner.teardown(queue);
  }
  duplicate(): Promise<Broker> {
    return this.#inner.duplicate();
  }
  /** The inner handle belongs to the runner, which closes it. */
  async close(): Promise<void> {}
}

function markFailed(ledger: Ledger, messages: readonly OutgoingMessage[], runToken: string): void {
  const decoder = new MessageDecoder(runToken);
  for (const message of messages) {
    const stamp = decoder.decode(message.body);
    if (stamp !== undefined && stamp !== FOREIGN) ledger.markPublishFailed(stamp.i);
  }
}

