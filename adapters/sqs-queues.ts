// SQS queue housekeeping: making a queue (standard, FIFO or high-throughput FIFO, with its dead-letter
// queue and redrive policy), making it again when it vanished, counting its messages, purging and removing it.
//
// LIMITATION: depth is SQS's Approximate* attributes, eventually consistent: a count read right after a
// send or a delete may lag it by a second or so.

import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  type QueueAttributeName,
} from '@aws-sdk/client-sqs';
import { BrokerError, type QueueDepth, type QueueSpec } from '../src/broker.ts';
import { sendBatches } from './sqs-batches.ts';
import { ADAPTER, isAwsError, isQueueMissing, MAX_BATCH_ENTRIES, MAX_NAME_CHARS, type SqsConnection } from './sqs-connection.ts';
import { HIGH_THROUGHPUT_FIFO_ATTRIBUTES } from './sqs-limits.ts';

/** Longest purge() drains by receive+delete when SQS refuses a second PurgeQueue within 60 s. */
const PURGE_DRAIN_MS = 30_000;

/** Creates the queue (and its dead-letter queue when maxReceives > 0), or sets their attributes if they exist. */
export async function prepareQueue(connection: SqsConnection, spec: QueueSpec): Promise<void> {
  const { name, dlqName } = connection.names(spec.name, 'prepare');
  const { fifo, mode } = connection.config;
  // Not clamped to SQS's 12 h: a queue silently made with another timeout than the run records would
  // mislead; SQS refuses it instead (InvalidAttributeValue), and the run ends with that one line.
  const visibilityS = Math.max(0, Math.ceil(spec.visibilityTimeoutMs / 1000));
  const attributes: Record<string, string> = { VisibilityTimeout: String(visibilityS) };
  if (fifo) attributes['FifoQueue'] = 'true';
  // The dead-letter queue stays a plain FIFO queue: it only takes redriven messages.
  if (mode === 'fifo-high-throughput') Object.assign(attributes, HIGH_THROUGHPUT_FIFO_ATTRIBUTES);
  let dlqUrl: string | undefined;
  if (spec.maxReceives > 0) {
    if (dlqName.length > MAX_NAME_CHARS) {
      throw new BrokerError(
        ADAPTER,
        'prepare',
        `dead-letter queue name ${dlqName} is ${dlqName.length} characters; SQS allows ${MAX_NAME_CHARS}: use a shorter namespace or queue name`,
      );
    }
    dlqUrl = await createQueue(connection, dlqName, fifo ? { FifoQueue: 'true' } : {});
    let dlqArn: string | undefined;
    try {
      const out = await connection.client.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }));
      dlqArn = out.Attributes?.['QueueArn'];
    } catch (error) {
      throw connection.wrap('prepare', dlqName, error);
    }
    if (dlqArn === undefined) throw new BrokerError(ADAPTER, 'prepare', `queue ${dlqName}: no QueueArn in GetQueueAttributes`);
    attributes['RedrivePolicy'] = JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: String(spec.maxReceives) });
  }
  const url = await createQueue(connection, name, attributes);
  connection.queues.set(spec.name, Promise.resolve({ name, url, dlqName, dlqUrl }));
  connection.specs.set(spec.name, { ...spec });
}

/** CreateQueue; if it exists with other attributes, set them instead (prepare is idempotent). */
async function createQueue(connection: SqsConnection, name: string, attributes: Record<string, string>): Promise<string> {
  try {
    const out = await connection.client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    if (out.QueueUrl === undefined) throw new BrokerError(ADAPTER, 'prepare', `queue ${name}: no QueueUrl in CreateQueue`);
    return out.QueueUrl;
  } catch (error) {
    if (!isAwsError(error, 'QueueNameExists')) throw connection.wrap('prepare', name, error);
  }
  try {
    const url = await connection.queueUrl(name);
    if (url === undefined) throw new BrokerError(ADAPTER, 'prepare', `queue ${name}: vanished while being prepared`);
    const { FifoQueue: _fifo, ...settable } = attributes;
    await connection.client.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: settable }));
    return url;
  } catch (error) {
    throw connection.wrap('prepare', name, error);
  }
}

/**
 * Makes a queue this connection prepared again when `error` says it no longer exists (an in-memory
 * emulator restarted); concurrent callers share one attempt. Never throws.
 */
export async function recreateIfMissing(connection: SqsConnection, queue: string, error: unknown): Promise<void> {
  const cause = error instanceof BrokerError ? error.cause : error;
  const spec = connection.specs.get(queue);
  if (spec === undefined || !isQueueMissing(cause)) return;
  let running = connection.recreating.get(queue);
  if (running === undefined) {
    running = prepareQueue(connection, spec)
      .catch(() => undefined)
      .finally(() => connection.recreating.delete(queue));
    connection.recreating.set(queue, running);
  }
  await running;
}

export async function queueDepth(connection: SqsConnection, queue: string): Promise<QueueDepth> {
  const { name, url, dlqName, dlqUrl } = await connection.urls(queue, 'depth');
  const [main, dead] = await Promise.all([
    attributes(connection, name, url, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed']),
    dlqUrl === undefined ? undefined : attributes(connection, dlqName, dlqUrl, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible']),
  ]);
  const count = (of: Record<string, string> | undefined, key: string): number => Number(of?.[key] ?? 0) || 0;
  return {
    ready: count(main, 'ApproximateNumberOfMessages'),
    inFlight: count(main, 'ApproximateNumberOfMessagesNotVisible'),
    delayed: count(main, 'ApproximateNumberOfMessagesDelayed'),
    dead: count(dead, 'ApproximateNumberOfMessages') + count(dead, 'ApproximateNumberOfMessagesNotVisible'),
  };
}

async function attributes(connection: SqsConnection, name: string, url: string, keys: QueueAttributeName[]): Promise<Record<string, string>> {
  try {
    const out = await connection.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: keys }));
    return out.Attributes ?? {};
  } catch (error) {
    throw connection.wrap('depth', name, error);
  }
}

/** Purges the queue and its dead-letter queue. */
export async function purgeQueue(connection: SqsConnection, queue: string): Promise<void> {
  const { name, url, dlqName, dlqUrl } = await connection.urls(queue, 'purge');
  await Promise.all([purgeOne(connection, name, url), dlqUrl === undefined ? undefined : purgeOne(connection, dlqName, dlqUrl)]);
}

async function purgeOne(connection: SqsConnection, name: string, url: string): Promise<void> {
  const { client } = connection;
  try {
    await client.send(new PurgeQueueCommand({ QueueUrl: url }));
    return;
  } catch (error) {
    if (!isAwsError(error, 'PurgeQueueInProgress')) throw connection.wrap('purge', name, error);
  }
  // SQS allows one PurgeQueue per queue per 60 s: drain what is visible instead, for a bounded time.
  const deadline = Date.now() + PURGE_DRAIN_MS;
  while (Date.now() < deadline) {
    let receipts: string[];
    try {
      const out = await client.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: MAX_BATCH_ENTRIES, WaitTimeSeconds: 0 }));
      receipts = (out.Messages ?? []).flatMap((m) => (m.ReceiptHandle === undefined ? [] : [m.ReceiptHandle]));
    } catch (error) {
      throw connection.wrap('purge', name, error);
    }
    if (receipts.length === 0) return;
    const chunks = [receipts.map((receipt, i) => ({ Id: String(i), ReceiptHandle: receipt }))];
    await sendBatches(connection, chunks, {
      operation: 'purge',
      name,
      what: 'deletes',
      send: async (entries) => (await client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: entries }))).Failed ?? [],
    });
  }
  throw new BrokerError(
    ADAPTER,
    'purge',
    `queue ${name}: a PurgeQueue is already in progress (SQS allows one per 60 s) and messages remain after draining for ${PURGE_DRAIN_MS / 1000} s; try again in a minute`,
  );
}

/** Deletes the queue and its dead-letter queue; one already gone is no error. */
export async function teardownQueue(connection: SqsConnection, queue: string): Promise<void> {
  const { name, dlqName } = connection.names(queue, 'teardown');
  const cached = await connection.queues.get(queue)?.catch(() => undefined);
  connection.queues.delete(queue);
  const remove = async (queueName: string, known: string | undefined): Promise<void> => {
    try {
      const url = known ?? (await connection.queueUrl(queueName));
      if (url !== undefined) await connection.client.send(new DeleteQueueCommand({ QueueUrl: url }));
    } catch (error) {
      if (!isQueueMissing(error)) throw connection.wrap('teardown', queueName, error);
    }
  };
  const removeDlq = dlqName.length <= MAX_NAME_CHARS ? remove(dlqName, cached?.dlqUrl) : undefined;
  await Promise.all([remove(name, cached?.url), removeDlq]);
}
