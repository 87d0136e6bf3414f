// Hand-written loops that do the least a program can do to move N messages through a broker (Redis
// list, Redis stream, SQS): the baselines the harness's own rate is divided by. They share the
// harness's batch size, publish concurrency, consumer count and message size (each body a distinct
// string, as a real publisher's are), but skip what the harness adds: the send-time stamp and its
// decoding, the ledger, histograms, acks and delivery guarantees.

import { randomBytes } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Redis } from 'ioredis';

export interface LoopShape {
  readonly messages: number;
  readonly payloadBytes: number;
  readonly batch: number;
  readonly publishers: number;
  readonly consumers: number;
  /** Give up after this long, ms: every load loop is bounded in time. */
  readonly timeoutMs: number;
}

/**
 * The bodies of messages first … first+count-1: each its own string (its index, padded to the
 * payload size), as any publisher's are. Repeating one constant string instead would let V8 reuse it
 * and make the baseline ~1.3x faster at measuring string reuse rather than a queue.
 */
function distinctBodies(first: number, count: number, padding: string): string[] {
  const bodies = new Array<string>(count);
  for (let k = 0; k < count; k++) {
    const index = String(first + k);
    bodies[k] = index + padding.slice(index.length);
  }
  return bodies;
}

/** RPUSH batches from `publishers` loops, `LPOP key count` from `consumers` connections. Returns msg/s. */
export async function rawRedisListLoop(url: string, shape: LoopShape): Promise<number> {
  const key = `bb-bench-${randomBytes(4).toString('hex')}:raw-list`;
  const producer = new Redis(url, { lazyConnect: true });
  await producer.connect();
  const consumers = await Promise.all(
    Array.from({ length: shape.consumers }, async () => {
      const connection = producer.duplicate({ lazyConnect: true });
      await connection.connect();
      return connection;
    }),
  );
  const padding = 'x'.repeat(shape.payloadBytes);
  let next = 0;
  let popped = 0;
  const started = performance.now();
  const deadline = started + shape.timeoutMs;
  const publish = async (): Promise<void> => {
    while (next < shape.messages && performance.now() < deadline) {
      const first = next;
      const count = Math.min(shape.batch, shape.messages - first);
      next += count;
      await producer.rpush(key, ...distinctBodies(first, count, padding));
    }
  };
  const consume = async (connection: Redis): Promise<void> => {
    while (popped < shape.messages && performance.now() < deadline) {
      const items = await connection.lpop(key, shape.batch);
      if (items && items.length > 0) popped += items.length;
      else await connection.blpop(key, 0.05).then((item) => { if (item) popped += 1; });
    }
  };
  try {
    await Promise.all([...Array.from({ length: shape.publishers }, publish), ...consumers.map(consume)]);
    if (popped < shape.messages) throw new Error(`raw redis-list loop moved ${popped} of ${shape.messages} before its time ran out`);
    return shape.messages / ((performance.now() - started) / 1000);
  } finally {
    await producer.del(key);
    await Promise.all([producer, ...consumers].map((connection) => connection.quit()));
  }
}

/**
 * SendMessageBatch (10 entries) from `publishers` loops, ReceiveMessage (10, long poll 1 s) +
 * DeleteMessageBatch from `consumers` loops, on one SQSClient with keep-alive sockets. Creates its own
 * queue and deletes it. `endpoint` undefined = AWS in `region`. Returns msg/s, timed to the last delete.
 */
export async function rawSqsLoop(endpoint: string | undefined, region: string, shape: LoopShape): Promise<number> {
  if (shape.batch > 10) throw new Error(`SQS takes at most 10 messages per batch, not ${shape.batch}`);
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const maxSockets = 2 * (shape.publishers + shape.consumers);
  const agents = { http: new HttpAgent({ keepAlive: true, maxSockets }), https: new HttpsAgent({ keepAlive: true, maxSockets }) };
  const client = new SQSClient({
    region,
    ...(endpoint !== undefined ? { endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } : {}),
    requestHandler: new NodeHttpHandler({ httpAgent: agents.http, httpsAgent: agents.https }),
  });
  const queueName = `bb-bench-${randomBytes(4).toString('hex')}-raw-sqs`;
  let queueUrl: string | undefined;
  try {
    queueUrl = (await client.send(new CreateQueueCommand({ QueueName: queueName }))).QueueUrl;
    if (queueUrl === undefined) throw new Error(`CreateQueue ${queueName} returned no QueueUrl`);
    const url = queueUrl;
    const padding = 'x'.repeat(shape.payloadBytes);
    let next = 0;
    let deleted = 0;
    const started = performance.now();
    let finished = started;
    const deadline = started + shape.timeoutMs;
    const publish = async (): Promise<void> => {
      while (next < shape.messages && performance.now() < deadline) {
        const first = next;
        const count = Math.min(shape.batch, shape.messages - first);
        next += count;
        const Entries = distinctBodies(first, count, padding).map((body, k) => ({ Id: String(k), MessageBody: body }));
        const { Failed } = await client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries }));
        if (Failed && Failed.length > 0) throw new Error(`SendMessageBatch: ${Failed.length} entries failed (${Failed[0]!.Code})`);
      }
    };
    const consume = async (): Promise<void> => {
      while (deleted < shape.messages && performance.now() < deadline) {
        const { Messages } = await client.send(
          new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: shape.batch, WaitTimeSeconds: 1 }),
        );
        if (!Messages || Messages.length === 0) continue;
        const Entries = Messages.map((message, k) => ({ Id: String(k), ReceiptHandle: message.ReceiptHandle! }));
        const { Failed } = await client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries }));
        if (Failed && Failed.length > 0) throw new Error(`DeleteMessageBatch: ${Failed.length} entries failed (${Failed[0]!.Code})`);
        deleted += Messages.length;
        // Like the harness: a full drain ends at the last delete, not when the last long poll returns.
        if (deleted >= shape.messages) finished = performance.now();
      }
    };
    await Promise.all([...Array.from({ length: shape.publishers }, publish), ...Array.from({ length: shape.consumers }, consume)]);
    if (deleted < shape.messages) throw new Error(`raw SQS loop moved ${deleted} of ${shape.messages} before its time ran out`);
    return shape.messages / ((finished - started) / 1000);
  } finally {
    if (queueUrl !== undefined) await client.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
    client.destroy();
    agents.http.destroy();
    agents.https.destroy();
  }
}

/**
 * XADD pipelined per batch (field `b`) from `publishers` loops; `consumers` connections in one group
 * doing XREADGROUP COUNT batch BLOCK 100, then XACK + XDEL pipelined. Deletes its keys. Returns msg/s,
 * timed to the last ack.
 */
export async function rawRedisStreamLoop(url: string, shape: LoopShape): Promise<number> {
  const key = `bb-bench-${randomBytes(4).toString('hex')}:raw-stream`;
  const group = 'g';
  const producer = new Redis(url, { lazyConnect: true });
  await producer.connect();
  const consumers: Redis[] = [];
  try {
    await producer.xgroup('CREATE', key, group, '0', 'MKSTREAM');
    for (let c = 0; c < shape.consumers; c++) {
      const connection = producer.duplicate({ lazyConnect: true });
      consumers.push(connection);
      await connection.connect();
    }
    const padding = 'x'.repeat(shape.payloadBytes);
    let next = 0;
    let acked = 0;
    const started = performance.now();
    let finished = started;
    const deadline = started + shape.timeoutMs;
    const publish = async (): Promise<void> => {
      while (next < shape.messages && performance.now() < deadline) {
        const first = next;
        const count = Math.min(shape.batch, shape.messages - first);
        next += count;
        const pipeline = producer.pipeline();
        for (const body of distinctBodies(first, count, padding)) pipeline.xadd(key, '*', 'b', body);
        await pipeline.exec();
      }
    };
    const consume = async (connection: Redis, name: string): Promise<void> => {
      while (acked < shape.messages && performance.now() < deadline) {
        const reply = (await connection.call(
          'XREADGROUP', 'GROUP', group, name, 'COUNT', shape.batch, 'BLOCK', 100, 'STREAMS', key, '>',
        )) as [string, [string, string[]][]][] | null;
        const entries = reply?.[0]?.[1];
        if (!entries || entries.length === 0) continue;
        const ids = entries.map(([id]) => id);
        await connection.pipeline().xack(key, group, ...ids).xdel(key, ...ids).exec();
        acked += ids.length;
        if (acked >= shape.messages) finished = performance.now();
      }
    };
    await Promise.all([
      ...Array.from({ length: shape.publishers }, publish),
      ...consumers.map((connection, c) => consume(connection, `c${c}`)),
    ]);
    if (acked < shape.messages) throw new Error(`raw redis-stream loop moved ${acked} of ${shape.messages} before its time ran out`);
    return shape.messages / ((finished - started) / 1000);
  } finally {
    await producer.del(key);
    await Promise.all([producer, ...consumers].map((connection) => connection.quit().catch(() => undefined)));
  }
}
