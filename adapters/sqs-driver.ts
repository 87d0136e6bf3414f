// The sqs driver: one handle's operations on a shared SqsConnection. Publishes go out as
// SendMessageBatch of up to 10 entries and 1 MiB (the endpoint's limit), several at once (a FIFO
// handle's in order), or, to a queue with consumer groups, as SNS PublishBatch to its topic;
// receives are long polls; acks delete and nacks change the visibility timeout, in batches.
// A group's handle (openGroup) reads, acks and counts its group's own queue (sqs-topics.ts).
//
// LIMITATION: a long poll ends on close() by aborting its request: a message SQS handed to that poll
// stays invisible until its visibility timeout runs out, then comes back.

import { randomUUID } from 'node:crypto';
import { PublishBatchCommand, type PublishBatchRequestEntry } from '@aws-sdk/client-sns';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ListQueuesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
} from '@aws-sdk/client-sqs';
import { BrokerError, type OutgoingMessage, type QueueDepth, type QueueSpec, type ReceivedMessage, type ReceiveOptions } from '../src/broker.ts';
import type { Driver, ServerInfo } from './kit/index.ts';
import { chunkEntries, sendBatches } from './sqs-batches.ts';
import { ADAPTER, MAX_BATCH_ENTRIES, type SqsConnection, type Topic } from './sqs-connection.ts';
import { SNS_MAX_PAYLOAD_BYTES } from './sqs-limits.ts';
import { prepareQueue, purgeQueue, queueDepth, recreateIfMissing, teardownQueue } from './sqs-queues.ts';
import { checkGroupName, groupQueue, prepareGroup, purgeGroups, teardownGroup, teardownTopic } from './sqs-topics.ts';

/** Longest long poll SQS takes, in seconds. */
const MAX_WAIT_S = 20;

/** What a FIFO entry carries, in SendMessageBatch and PublishBatch alike. */
interface FifoFields {
  MessageGroupId?: string | undefined;
  MessageDeduplicationId?: string | undefined;
}

export class SqsDriver implements Driver {
  readonly #connection: SqsConnection;
  /** The consumer group this handle reads as (openGroup); undefined for the queue's own handle. */
  readonly #group: string | undefined;
  /** Aborts this handle's long poll when it closes. */
  readonly #closing = new AbortController();
  /** FIFO message group ids this handle publishes to, round-robin. */
  readonly #groupIds: readonly string[];
  #nextGroup = 0;
  readonly #dedupPrefix = randomUUID();
  #dedupSeq = 0;
  #closed = false;

  constructor(connection: SqsConnection, group?: string) {
    this.#connection = connection;
    this.#group = group;
    const { config } = connection;
    const handle = connection.acquire();
    const groupId = config.groupId ?? `handle-${handle}`;
    this.#groupIds = config.groups === 1 ? [groupId] : Array.from({ length: config.groups }, (_, i) => `${groupId}-${i}`);
  }

  requestCounts(): Readonly<Record<string, number>> {
    return { ...this.#connection.counts };
  }

  billedRequests(): number {
    return this.#connection.billed;
  }

  explain(error: unknown): string {
    return this.#connection.explain(error);
  }

  queueName(queue: string): string {
    return this.#connection.sqsNames(this.#own(queue)).name;
  }

  async describe(): Promise<ServerInfo> {
    const { config, client } = this.#connection;
    await client.send(new ListQueuesCommand({ QueueNamePrefix: config.namespace, MaxResults: 1 }));
    return { serverVersion: config.endpointVersion, endpoint: config.endpoint, endpointKind: config.endpointKind };
  }

  prepare(spec: QueueSpec): Promise<void> {
    return this.#group === undefined ? prepareQueue(this.#connection, spec) : prepareGroup(this.#connection, this.#group, spec);
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    const topic = this.#connection.topics.get(queue);
    if (topic !== undefined) return this.#publishToTopic(queue, await topic, messages);
    const { name, url } = await this.#connection.urls(queue, 'publish');
    const { fifo, maxPayloadBytes } = this.#connection.config;
    const chunks = this.#chunks(messages, maxPayloadBytes, (message) => {
      const entry: SendMessageBatchRequestEntry = { Id: '', MessageBody: message.body };
      // The kit let through only delays SQS takes (none on FIFO queues), counted here in whole seconds.
      const delayMs = message.delayMs ?? 0;
      if (delayMs > 0) entry.DelaySeconds = Math.ceil(delayMs / 1000);
      return entry;
    });
    const { client } = this.#connection;
    try {
      // A FIFO group keeps the order SQS received: its chunks go one after the other, and none after one that failed.
      await sendBatches(this.#connection, chunks, {
        operation: 'publish',
        name,
        what: 'messages',
        inOrder: fifo,
        send: async (entries) => (await client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }))).Failed ?? [],
      });
    } catch (error) {
      await this.#recreateIfMissing(queue, error);
      throw error;
    }
  }

  /**
   * One PublishBatch per chunk to the topic of a queue with consumer groups: SNS delivers each message to
   * every group's queue. SNS takes no per-message delay and messages of at most 256 KiB: a batch with
   * either is refused before anything is sent.
   */
  async #publishToTopic(queue: string, topic: Topic, messages: readonly OutgoingMessage[]): Promise<void> {
    const why = `the queue has consumer groups, fed through SNS topic ${topic.name}`;
    const { name } = this.#connection.sqsNames(queue);
    for (const { body, delayMs } of messages) {
      if ((delayMs ?? 0) > 0) {
        throw new BrokerError(ADAPTER, 'publish', `queue ${name}: SNS takes no per-message delay (${why})`);
      }
      const bytes = Buffer.byteLength(body, 'utf8');
      if (bytes > SNS_MAX_PAYLOAD_BYTES) {
        throw new BrokerError(ADAPTER, 'publish', `queue ${name}: message of ${bytes} bytes over SNS maximum of ${SNS_MAX_PAYLOAD_BYTES} bytes (${why})`);
      }
    }
    const chunks = this.#chunks(messages, SNS_MAX_PAYLOAD_BYTES, (message): PublishBatchRequestEntry => ({ Id: '', Message: message.body }));
    const { sns, config } = this.#connection;
    await sendBatches(this.#connection, chunks, {
      operation: 'publish',
      name: topic.name,
      kind: 'topic',
      what: 'messages',
      inOrder: config.fifo,
      send: async (entries) => (await sns.send(new PublishBatchCommand({ TopicArn: topic.arn, PublishBatchRequestEntries: entries }))).Failed ?? [],
    });
  }

  /**
   * Batch entries of at most 10 messages and `maxBytes` of bodies each, with their Ids and, on FIFO
   * queues, this handle's message groups (round-robin) and a deduplication id per message.
   */
  #chunks<E extends FifoFields & { Id: string | undefined }>(
    messages: readonly OutgoingMessage[],
    maxBytes: number,
    toEntry: (message: OutgoingMessage) => E,
  ): E[][] {
    const { fifo } = this.#connection.config;
    const chunks: E[][] = [];
    let chunk: E[] = [];
    let chunkBytes = 0;
    for (const message of messages) {
      const bytes = Buffer.byteLength(message.body, 'utf8');
      const entry = toEntry(message);
      if (fifo) {
        entry.MessageGroupId = this.#groupIds[this.#nextGroup++ % this.#groupIds.length];
        entry.MessageDeduplicationId = `${this.#dedupPrefix}-${this.#dedupSeq++}`;
      }
      if (chunk.length === MAX_BATCH_ENTRIES || chunkBytes + bytes > maxBytes) {
        chunks.push(chunk);
        chunk = [];
        chunkBytes = 0;
      }
      entry.Id = String(chunk.length);
      chunk.push(entry);
      chunkBytes += bytes;
    }
    chunks.push(chunk);
    return chunks;
  }

  async receive(logical: string, { maxMessages, waitMs }: ReceiveOptions): Promise<ReceivedMessage[]> {
    const queue = this.#own(logical);
    const { name, url } = await this.#connection.urls(queue, 'receive');
    const waitS = waitMs === 0 ? 0 : Math.min(MAX_WAIT_S, Math.ceil(waitMs / 1000));
    try {
      const out = await this.#connection.client.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: maxMessages,
          WaitTimeSeconds: waitS,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
        // A long poll legitimately lasts waitS; the request timeout is on top of it.
        { abortSignal: this.#closing.signal, requestTimeout: waitS * 1000 + this.#connection.config.commandTimeoutMs },
      );
      const received = out.Messages ?? [];
      const messages: ReceivedMessage[] = new Array(received.length);
      for (let i = 0; i < received.length; i++) {
        const m = received[i]!;
        const count = Number(m.Attributes?.ApproximateReceiveCount);
        messages[i] = { body: m.Body ?? '', receiveCount: count >= 1 ? count : 1, receipt: m.ReceiptHandle ?? '' };
      }
      return messages;
    } catch (error) {
      await this.#recreateIfMissing(queue, error);
      throw this.#connection.wrap('receive', name, error);
    }
  }

  async ack(queue: string, messages: readonly ReceivedMessage[]): Promise<void> {
    const { name, url } = await this.#connection.urls(this.#own(queue), 'ack');
    const { client } = this.#connection;
    const chunks = chunkEntries(messages, (m, id) => ({ Id: id, ReceiptHandle: m.receipt }));
    await sendBatches(this.#connection, chunks, {
      operation: 'ack',
      name,
      what: 'deletes',
      settles: messages,
      send: async (entries) => (await client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: entries }))).Failed ?? [],
    });
  }

  async nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    const { name, url } = await this.#connection.urls(this.#own(queue), 'nack');
    const { client } = this.#connection;
    // Within the 12 h SQS allows: the kit refused longer ones (maxNackDelayMs).
    const visibilityS = Math.ceil(retryDelayMs / 1000);
    const chunks = chunkEntries(messages, (m, id) => ({ Id: id, ReceiptHandle: m.receipt, VisibilityTimeout: visibilityS }));
    await sendBatches(this.#connection, chunks, {
      operation: 'nack',
      name,
      what: 'visibility changes',
      settles: messages,
      send: async (entries) => (await client.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: url, Entries: entries }))).Failed ?? [],
    });
  }

  depth(queue: string): Promise<QueueDepth> {
    return queueDepth(this.#connection, this.#own(queue));
  }

  /** A group's handle purges its group's queue; the queue's own handle the queue and every group's. */
  async purge(queue: string): Promise<void> {
    if (this.#group !== undefined) return purgeQueue(this.#connection, this.#own(queue));
    await Promise.all([purgeQueue(this.#connection, queue), purgeGroups(this.#connection, queue)]);
  }

  /** A group's handle removes its group (the topic with the last one); the queue's own handle everything. */
  async teardown(queue: string): Promise<void> {
    if (this.#group !== undefined) return teardownGroup(this.#connection, queue, this.#group);
    await teardownTopic(this.#connection, queue);
    await teardownQueue(this.#connection, queue);
  }

  async duplicate(): Promise<Driver> {
    return new SqsDriver(this.#connection, this.#group);
  }

  /** A handle reading as `group`: its own queue, subscribed to the topic of each queue it prepares (sqs-topics.ts). */
  async openGroup(group: string): Promise<Driver> {
    checkGroupName(group);
    return new SqsDriver(this.#connection, group);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.abort();
    this.#connection.release();
  }

  /** The logical queue this handle reads for `queue`: its group's queue on a group's handle. */
  #own(queue: string): string {
    return this.#group === undefined ? queue : groupQueue(queue, this.#group);
  }

  /** A queue this connection prepared is made again when it vanished (an emulator restarted); not after close. */
  async #recreateIfMissing(queue: string, error: unknown): Promise<void> {
    if (!this.#closed) await recreateIfMissing(this.#connection, queue, error);
  }
}
