// Fan-out: every message must reach K independent consumer groups, the push-queue pattern of the
// IronMQ seed. A broker with consumer groups (Redis streams) is published to once and read by K
// groups; any other gets one queue per group (`<queue>-g<k>`) and every publish is written K times.
// Each group has its own consumers (in this process), its own ledger and its own latency histograms.
//
// The pipeline publishes through it (a PublishTarget: every batch to every group, depth summed over the
// groups) and consumes through it (a ConsumerSet whose groups run the one consumer loop, reporting one
// message as delivered when its first group got it and as completed when its last group finished
// it); a delivery a group gets twice counts as a duplicate there too. So the pipeline's ledger says
// whether every message reached every group, and the per-group ledgers say which group fell short.
//
// LIMITATION: all groups' consumers share this process and run whole batches (--concurrency is not
// applied to groups). With copies, a publish counts as failed if any group's copy failed (the groups
// that got theirs still deliver it, and their ledgers show it).

import type { Histogram } from 'hdr-histogram-js';
import { hasConsumerGroups, type Broker, type BrokerCapabilities, type OutgoingMessage, type QueueDepth, type QueueSpec } from '../broker.ts';
import type { Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import { createLatencyHistogram, RunRecorder } from '../metrics/histogram.ts';
import { Ledger, type LedgerCounts } from '../metrics/ledger.ts';
import { Executor, seededRandom } from '../pipeline/executor.ts';
import { FOREIGN, MessageDecoder } from '../pipeline/message.ts';
import { reportCompleted, reportDelivered, type ConsumerSet, type SubscriberSink } from '../pipeline/sink.ts';
import { LocalConsumers } from './local-consumers.ts';
import { sumDepths, type PublishTarget } from './publisher.ts';

export interface FanOutOptions {
  /** The run's handle (queues prepared on it); publishing goes through it, and copies' groups read from it. */
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
  /** The group's consumers, running whole batches. */
  readonly consumers: LocalConsumers;
}

export class FanOut implements ConsumerSet, PublishTarget {
  /** True when the broker itself fans out (one stream, K consumer groups). */
  readonly native: boolean;
  readonly #options: FanOutOptions;
  readonly #groups: Group[] = [];
  /** Per message: 1 once some group got it; how many groups completed it. */
  readonly #seen: Uint8Array;
  readonly #done: Uint8Array;
  /** Queues this made (copies), removed by teardown(). */
  readonly #madeQueues: string[] = [];
  /** The run's token, from prepare(): publish failures are booked by the index in the body. */
  #runToken = '';

  constructor(options: FanOutOptions) {
    if (!Number.isSafeInteger(options.groups) || options.groups < 1 || options.groups > 255) {
      throw new RangeError(`groups must be a whole number from 1 to 255, not ${options.groups}`);
    }
    this.#options = options;
    this.native = hasConsumerGroups(options.broker);
    this.#seen = new Uint8Array(options.config.messages);
    this.#done = new Uint8Array(options.config.messages);
  }

  /** The broker's: the groups are read from it. */
  get capabilities(): BrokerCapabilities {
    return this.#options.broker.capabilities;
  }

  /** Makes the groups (queues or consumer groups) and connects their consumers, before the clock starts. */
  async prepare(runToken: string): Promise<void> {
    this.#runToken = runToken;
    try {
      await this.#prepareGroups(runToken);
    } catch (error) {
      // Nothing half-open is left behind: handles made so far are closed, the copies' queues removed.
      await Promise.all(this.#groups.map((group) => group.consumers.stop(0)));
      await this.teardown();
      throw error;
    }
  }

  async #prepareGroups(runToken: string): Promise<void> {
    const { broker, config, queues, groups, clock } = this.#options;
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
      const consumers = new LocalConsumers({
        broker: root,
        queues: groupQueues,
        config,
        taskConcurrency: 0,
        executor: new Executor(config.task, seededRandom(config.seed + 7919 * k)),
        clock,
        stopGrace: 'round',
      });
      const group: Group = {
        name,
        queues: groupQueues,
        root,
        ledger: new Ledger(config.messages),
        endToEnd: createLatencyHistogram(),
        completion: createLatencyHistogram(),
        consumers,
      };
      this.#groups.push(group);
      for (const queue of groupQueues) await root.prepare(spec(queue));
      await consumers.prepare(runToken);
    }
  }

  start(sink: SubscriberSink): void {
    for (const group of this.#groups) group.consumers.start(this.#groupSink(group, sink));
  }

  inHand(): number {
    let count = 0;
    for (const group of this.#groups) count += group.consumers.inHand();
    return count;
  }

  async stop(graceMs?: number): Promise<void> {
    await Promise.all(this.#groups.map((group) => group.consumers.stop(graceMs)));
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
    const endToEnd = new RunRecorder(group.endToEnd);
    const completion = new RunRecorder(group.completion);
    // The pipeline hears of the first group's delivery, and of every duplicate within a group.
    const deliver = (index: number, sentUs: number, receivedUs: number): boolean => {
      const first = group.ledger.markDelivered(index);
      if (index >= warmup) endToEnd.add(receivedUs - sentUs);
      if (!first) return true;
      if (seen[index] !== 0) return false;
      seen[index] = 1;
      return true;
    };
    // ... and of a completion once the last group finished the message.
    const complete = (index: number, sentUs: number, ackedUs: number): boolean => {
      if (!group.ledger.markCompleted(index)) return false;
      if (index >= warmup) completion.add(ackedUs - sentUs);
      return ++done[index]! === groups;
    };
    return {
      delivered: (index, sentUs, receivedUs, receiveCount) => {
        const forward = deliver(index, sentUs, receivedUs);
        endToEnd.flush();
        if (forward) sink.delivered(index, sentUs, receivedUs, receiveCount);
      },
      deliveredBatch: (receivedUs, indices, sentTimes, receiveCounts) => {
        const forward: { indices: number[]; sentTimes: number[]; receiveCounts: number[] } = { indices: [], sentTimes: [], receiveCounts: [] };
        for (let k = 0; k < indices.length; k++) {
          const index = indices[k]!;
          if (index >= 0 && !deliver(index, sentTimes[k]!, receivedUs)) continue;
          forward.indices.push(index);
          forward.sentTimes.push(sentTimes[k]!);
          forward.receiveCounts.push(receiveCounts[k]!);
        }
        endToEnd.flush();
        if (forward.indices.length > 0) reportDelivered(sink, receivedUs, forward.indices, forward.sentTimes, forward.receiveCounts);
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
        const forward = complete(index, sentUs, ackedUs);
        completion.flush();
        if (forward) sink.completed(index, sentUs, ackedUs);
      },
      completedBatch: (ackedUs, indices, sentTimes) => {
        const forward: { indices: number[]; sentTimes: number[] } = { indices: [], sentTimes: [] };
        for (let k = 0; k < indices.length; k++) {
          const index = indices[k]!;
          if (index < 0 || !complete(index, sentTimes[k]!, ackedUs)) continue;
          forward.indices.push(index);
          forward.sentTimes.push(sentTimes[k]!);
        }
        completion.flush();
        if (forward.indices.length > 0) reportCompleted(sink, ackedUs, forward.indices, forward.sentTimes);
      },
      failed: (count, atUs, retryDelayMs) => sink.failed(count, atUs, retryDelayMs),
      receiveCall: (empty) => sink.receiveCall(empty),
      error: (operation, message) => sink.error(operation, `group ${group.name}: ${message}`),
    };
  }
}

function markFailed(ledger: Ledger, messages: readonly OutgoingMessage[], runToken: string): void {
  const decoder = new MessageDecoder(runToken);
  for (const message of messages) {
    const stamp = decoder.decode(message.body);
    if (stamp !== undefined && stamp !== FOREIGN) ledger.markPublishFailed(stamp.i);
  }
}

