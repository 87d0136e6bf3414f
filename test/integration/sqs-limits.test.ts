// The sqs adapter's limits as AWS states them today (adapters/sqs-limits.ts) and as each endpoint applies
// them: 1 MiB messages where the endpoint takes them, the endpoint's own lower figure named where it does
// not, and the high-throughput FIFO mode's queue attributes. Against the embedded fauxqs unless
// SQS_ENDPOINT says otherwise.

import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { isRequestCounting, type Broker } from '../../src/broker.ts';
import { sqsAdapter } from '../../adapters/sqs.ts';
import { readSqsConfig, SqsConnection } from '../../adapters/sqs-connection.ts';
import { openSqs, useSqsEndpoint, type SqsFixture } from '../helpers/sqs.ts';

const endpoint = useSqsEndpoint();
const fixtures: SqsFixture[] = [];
const MIB = 1_048_576;

async function open(...args: Parameters<typeof openSqs> extends [unknown, ...infer Rest] ? Rest : never): Promise<SqsFixture> {
  const fixture = await openSqs(endpoint(), ...args);
  fixtures.push(fixture);
  return fixture;
}

afterEach(async () => {
  await Promise.all(fixtures.splice(0).map((fixture) => fixture.cleanup()));
});

function sent(broker: Broker, action: string): number {
  if (!isRequestCounting(broker)) throw new Error('the sqs broker should count its requests');
  return broker.requestCounts()[action] ?? 0;
}

/** A body of exactly `bytes` UTF-8 bytes, a quarter of it two-byte characters (a limit counted in characters would show). */
function bodyOf(bytes: number): string {
  const twoByte = Math.floor(bytes / 8);
  const body = 'é'.repeat(twoByte).padEnd(bytes - twoByte, 'x');
  expect(Buffer.byteLength(body, 'utf8')).toBe(bytes);
  return body;
}

describe('sqs limits', () => {
  it("declares AWS's figures for every mode without connecting: 1 MiB messages, batches of 10", () => {
    expect(sqsAdapter.modes).toEqual(['standard', 'fifo', 'fifo-high-throughput']);
    for (const mode of sqsAdapter.modes) {
      expect(sqsAdapter.capabilities(mode), mode).toMatchObject({ maxPayloadBytes: MIB, maxBatchSize: 10 });
    }
    expect(sqsAdapter.capabilities('fifo-high-throughput')).toEqual(sqsAdapter.capabilities('fifo'));
  });

  it("a 1 MiB body round-trips where the endpoint takes it, or is refused naming the endpoint's own limit", async () => {
    const { broker, queue } = await open('standard');
    const limit = broker.capabilities.maxPayloadBytes;
    const body = bodyOf(MIB);
    if (limit >= MIB) {
      await broker.publish(queue, [{ body }]);
      const [received] = await broker.receive(queue, { maxMessages: 1, waitMs: 5_000 });
      expect(received?.body === body).toBe(true);
      await broker.ack(queue, [received!]);
      // One byte more is refused before anything is sent.
      const before = sent(broker, 'SendMessageBatch');
      await expect(broker.publish(queue, [{ body: `${body}x` }])).rejects.toThrow(
        /^sqs publish: queue bb-test-\w+-q: message of 1048577 bytes over SQS maximum of 1048576 bytes$/,
      );
      expect(sent(broker, 'SendMessageBatch')).toBe(before);
    } else {
      await expect(broker.publish(queue, [{ body }])).rejects.toThrow(
        new RegExp(`^sqs publish: queue bb-test-\\w+-q: message of ${MIB} bytes over .+ maximum of ${limit} bytes$`),
      );
    }
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });

  it("a handle on a LocalStack endpoint carries LocalStack's 256 KiB: refused with its name, batches split at it", async () => {
    // The kind is what the endpoint's resolver said; here it is given, to see the narrowing on any endpoint.
    const { broker, queue } = await open('standard', {}, { endpointKind: 'localstack' });
    expect(broker.capabilities.maxPayloadBytes).toBe(262_144);
    expect(sqsAdapter.capabilities('standard').maxPayloadBytes).toBe(MIB);
    await expect(broker.publish(queue, [{ body: bodyOf(MIB) }])).rejects.toThrow(
      /^sqs publish: queue bb-test-\w+-q: message of 1048576 bytes over LocalStack's SQS maximum of 262144 bytes$/,
    );
    expect(sent(broker, 'SendMessageBatch')).toBe(0);
    // Three 100 KiB bodies: two fit in LocalStack's 256 KiB batch, the third needs a second request.
    await broker.publish(queue, [0, 1, 2].map((i) => ({ body: `${i}`.padEnd(100 * 1024, 'x') })));
    expect(sent(broker, 'SendMessageBatch')).toBe(2);
  });

  it('fifo-high-throughput makes a FIFO queue with deduplication and throughput per message group, order kept per group', async () => {
    const { broker, queue, namespace } = await open('fifo-high-throughput', {}, { groupId: 'g', groups: 2 });
    expect(await broker.describe()).toMatchObject({ mode: 'fifo-high-throughput' });
    expect(broker.capabilities).toMatchObject({ ordering: 'per-group', delay: false });
    const { region, endpoint: url } = endpoint();
    const client = new SQSClient({ region, ...(url ? { endpoint: url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } : {}) });
    try {
      const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: `${namespace}-${queue}.fifo` }));
      const { Attributes } = await client.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] }));
      expect(Attributes).toMatchObject({ FifoQueue: 'true', DeduplicationScope: 'messageGroup', FifoThroughputLimit: 'perMessageGroupId' });
    } finally {
      client.destroy();
    }
    const messages = Array.from({ length: 20 }, (_, i) => ({ body: `h-${i}` }));
    await broker.publish(queue, messages);
    const got: string[] = [];
    const deadline = Date.now() + 10_000;
    while (got.length < messages.length && Date.now() < deadline) {
      const batch = await broker.receive(queue, { maxMessages: 10, waitMs: 1_000 });
      got.push(...batch.map((m) => m.body));
      await broker.ack(queue, batch);
    }
    for (const group of [0, 1]) {
      const expected = messages.filter((_, i) => i % 2 === group).map((m) => m.body);
      expect(got.filter((body) => expected.includes(body))).toEqual(expected);
    }
  });

  it('tells an OverLimit refusal with the in-flight limit AWS states, 120,000 for standard and FIFO queues', () => {
    const connection = new SqsConnection(readSqsConfig({ namespace: 'x', url: 'http://127.0.0.1:9', commandTimeoutMs: 1_000 }, 'fifo'));
    connection.acquire();
    try {
      const error = Object.assign(new Error('Too many messages in flight'), { name: 'OverLimit', $fault: 'client' });
      expect(connection.explain(error)).toBe(
        'OverLimit: Too many messages in flight; SQS allows 120,000 messages in flight per queue (standard and FIFO): fewer consumers or smaller receives',
      );
    } finally {
      connection.release();
    }
  });
});
