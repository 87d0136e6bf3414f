// The sqs driver: one handle's operations on a shared SqsConnection. Publishes go out as
// SendMessageBatch of up to 10 entries and 1 MiB (the endpoint's limit), several at once (a FIFO handle's in order);
// receives are long polls; acks delete and nacks change the visibility timeout, in batches.
//
// LIMITATION: a long poll ends on close() by aborting its request: a message SQS handed to that poll
// stays invisible until its visibility timeout runs out, then comes back.

import { randomUUID } from 'node:crypto';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ListQueuesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
} from '@aws-sdk/client-sqs';
import type { OutgoingMessage, QueueDepth, QueueSpec, ReceivedMessage, ReceiveOptions } from '../src/broker.ts';
import type { Driver, ServerInfo } from './kit/index.ts';
import { chunkEntries, sendBatches } from './sqs-batches.ts';
import { MAX_BATCH_ENTRIES, type SqsConnection } from './sqs-connection.ts';
import { prepareQueue, purgeQueue, queueDepth, recreateIfMissing, teardownQueue } from './sqs-queues.ts';

/** Longest long poll SQS takes, in seconds. */
const MAX_WAIT_S = 20;

export class SqsDriver implements Driver {
  readonly #connection: SqsConnection;
  /** Aborts this handle's long poll when it closes. */
  readonly #closing = new AbortController();
  /** FIFO message group ids this handle publishes to, round-robin. */
  readonly #groupIds: readonly string[];
  #nextGroup = 0;
  readonly #dedupPrefix = randomUUID();
  #dedupSeq = 0;
  #closed = false;

  constructor(connection: SqsConnection) {
    this.#connection = connection;
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
    return this.#connection.sqsNames(queue).name;
  }

  async describe(): Promise<ServerInfo> {
    const { config, client } = this.#connection;
    await client.send(new ListQueuesCommand({ QueueNamePrefix: config.namespace, MaxResults: 1 }));
    return { serverVersion: config.endpointVersion, endpoint: config.endpoint, endpointKind: config.endpointKind };
  }

  prepare(spec: QueueSpec): Promise<void> {
    return prepareQueue(this.#connection, spec);
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    const { name, url } = await this.#connection.urls(queue, 'publish');
    const { fifo, maxPayloadBytes } = this.#connection.config;
    const chunks: SendMessageBatchRequestEntry[][] = [];
    let chunk: SendMessageBatchRequestEntry[] = [];
    let chunkBytes = 0;
    for (const message of messages) {
      const bytes = Buffer.byteLength(message.body, 'utf8');
      const entry: SendMessageBatchRequestEntry = { Id: '', MessageBody: message.body };
      // The kit let through only delays SQS takes (none on FIFO queues), counted here in whole seconds.
      const delayMs = message.delayMs ?? 0;
      if (delayMs > 0) entry.DelaySeconds = Math.ceil(delayMs / 1000);
      if (fifo) {
        entry.MessageGroupId = this.#groupIds[this.#nextGroup++ % this.#groupIds.length];
        entry.MessageDeduplicationId = `${this.#dedupPrefix}-${this.#dedupSeq++}`;
      }
      if (chunk.length === MAX_BATCH_ENTRIES || chunkBytes + bytes > maxPayloadBytes) {
        chunks.push(chunk);
        chunk = [];
        chunkBytes = 0;
      }
      entry.Id = String(chunk.length);
      chunk.push(entry);
      chunkBytes += bytes;
    }
    chunks.push(chunk);
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

  async receive(queue: string, { maxMessages, waitMs }: ReceiveOptions): Promise<ReceivedMessage[]> {
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
    const { name, url } = await this.#connection.urls(queue, 'ack');
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
    const { name, url } = await this.#connection.urls(queue, 'nack');
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
    return queueDepth(this.#connection, queue);
  }

  purge(queue: string): Promise<void> {
    return purgeQueue(this.#connection, queue);
  }

  teardown(queue: string): Promise<void> {
    return teardownQueue(this.#connection, queue);
  }

  async duplicate(): Promise<Driver> {
    return new SqsDriver(this.#connection);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.abort();
    this.#connection.release();
  }

  /** A queue this connection prepared is made again when it vanished (an emulator restarted); not after close. */
  async #recreateIfMissing(queue: string, error: unknown): Promise<void> {
    if (!this.#closed) await recreateIfMissing(this.#connection, queue, error);
  }
}
