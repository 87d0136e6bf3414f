// Fan-out on SQS through SNS, as AWS does it: the run queue gets a topic, each consumer group a queue
// subscribed to it with raw delivery, and a publish is one PublishBatch per 10 messages, not one
// SendMessageBatch per group. Against the embedded fauxqs (which serves SNS too) unless SQS_ENDPOINT is set.

import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ListTopicsCommand, SNSClient } from '@aws-sdk/client-sns';
import { afterEach, describe, expect, it } from 'vitest';
import { hasConsumerGroups, isRequestCounting, type Broker, type ReceivedMessage } from '../../src/broker.ts';
import { sqsAdapter } from '../../adapters/sqs.ts';
import { buildResult } from '../../src/report/result-file.ts';
import { runScenario } from '../../src/runner/runner.ts';
import { findScenario } from '../../scenarios/index.ts';
import { scenarioRunner } from '../helpers/scenarios.ts';
import { openSqs, queuesWithPrefix, uniqueNamespace, useSqsEndpoint, type SqsFixture } from '../helpers/sqs.ts';

const endpoint = useSqsEndpoint();
const { connection, configFor } = scenarioRunner(endpoint);
const fixtures: SqsFixture[] = [];

async function open(...args: Parameters<typeof openSqs> extends [unknown, ...infer Rest] ? Rest : never): Promise<SqsFixture> {
  const fixture = await openSqs(endpoint(), ...args);
  fixtures.push(fixture);
  return fixture;
}

afterEach(async () => {
  await Promise.all(fixtures.splice(0).map((fixture) => fixture.cleanup()));
});

function counts(broker: Broker): Readonly<Record<string, number>> {
  if (!isRequestCounting(broker)) throw new Error('the sqs broker should count its requests');
  return broker.requestCounts();
}

/** Opens `count` consumer groups on `broker` (closed with the fixture) and prepares `queue` on each. */
async function groups(fixture: SqsFixture, count: number): Promise<Broker[]> {
  const { broker, queue, spec, others } = fixture;
  if (!hasConsumerGroups(broker)) throw new Error('the sqs broker should have consumer groups');
  const opened: Broker[] = [];
  for (let k = 0; k < count; k++) {
    const group = await broker.openGroup(`fan${k}`);
    others.push(group);
    await group.prepare(spec);
    opened.push(group);
  }
  expect(queue).toBe('q');
  return opened;
}

/** Receives and acks on `broker` until `count` arrived or 10 s passed. */
async function drain(broker: Broker, queue: string, count: number): Promise<ReceivedMessage[]> {
  const received: ReceivedMessage[] = [];
  const deadline = Date.now() + 10_000;
  while (received.length < count && Date.now() < deadline) {
    const batch = await broker.receive(queue, { maxMessages: 10, waitMs: 500 });
    received.push(...batch);
    await broker.ack(queue, batch);
  }
  return received;
}

/** Names of the SNS topics at the endpoint whose name starts with `prefix`. */
async function topicsWithPrefix(prefix: string): Promise<string[]> {
  const { region, endpoint: url } = endpoint();
  const client = new SNSClient({ region, ...(url ? { endpoint: url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } : {}) });
  try {
    const names: string[] = [];
    let token: string | undefined;
    do {
      const out = await client.send(new ListTopicsCommand(token === undefined ? {} : { NextToken: token }));
      for (const topic of out.Topics ?? []) names.push(topic.TopicArn!.slice(topic.TopicArn!.lastIndexOf(':') + 1));
      token = out.NextToken;
    } while (token !== undefined);
    return names.filter((name) => name.startsWith(prefix));
  } finally {
    client.destroy();
  }
}

/** A loopback endpoint that passes SQS requests (the SDK's JSON protocol) on to `target` and answers any other with an HTML 404, as a server without SNS would. */
async function sqsOnly(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const server = createServer((incoming, outgoing) => {
    if (incoming.headers['x-amz-target'] === undefined) {
      incoming.resume();
      outgoing.writeHead(404, { 'content-type': 'text/html' }).end('<html><body>Not Found</body></html>');
      return;
    }
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (reply) => {
        outgoing.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(outgoing);
      },
    );
    incoming.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('sqs consumer groups through SNS', () => {
  it('one PublishBatch per 10 messages reaches every group once, bodies unchanged; teardown removes topic, subscriptions and queues', async () => {
    const fixture = await open('standard');
    const { broker, queue, namespace } = fixture;
    const [g0, g1] = await groups(fixture, 2);
    expect((await queuesWithPrefix(endpoint(), namespace)).sort()).toEqual([`${namespace}-q`, `${namespace}-q-fan0`, `${namespace}-q-fan1`]);
    expect(await topicsWithPrefix(namespace)).toEqual([`${namespace}-q`]);

    const sent = Array.from({ length: 25 }, (_, i) => ({ body: `m-${i} {"json": true} ünïcødé` }));
    await broker.publish(queue, sent);
    expect(counts(broker)).toMatchObject({ PublishBatch: 3, CreateTopic: 1, Subscribe: 2 });
    expect(counts(broker)['SendMessageBatch']).toBeUndefined();

    for (const group of [g0!, g1!]) {
      const received = await drain(group, queue, 25);
      expect(received.map((m) => m.body).sort()).toEqual(sent.map((m) => m.body).sort());
      expect(received.every((m) => m.receiveCount === 1)).toBe(true);
      expect(await group.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
    }
    // The run queue itself gets nothing: the groups' queues hold the messages.
    expect(await broker.depth(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });

    await broker.teardown(queue);
    expect(await queuesWithPrefix(endpoint(), namespace)).toEqual([]);
    expect(await topicsWithPrefix(namespace)).toEqual([]);
    expect(counts(broker)).toMatchObject({ Unsubscribe: 2, DeleteTopic: 1 });
    // With the topic gone, a publish goes to the queue again, which no longer exists.
    await expect(broker.publish(queue, [{ body: 'x' }])).rejects.toThrow(/QueueDoesNotExist/);
  });

  it("refuses a delay and a body over SNS's 256 KiB before sending anything, naming SNS", async () => {
    const fixture = await open('standard');
    const { broker, queue } = fixture;
    const [g0] = await groups(fixture, 1);
    await expect(broker.publish(queue, [{ body: 'ok' }, { body: 'later', delayMs: 1_000 }])).rejects.toThrow(
      /^sqs publish: queue bb-test-\w+-q: SNS takes no per-message delay \(the queue has consumer groups, fed through SNS topic bb-test-\w+-q\)$/,
    );
    await expect(broker.publish(queue, [{ body: 'x'.repeat(262_145) }])).rejects.toThrow(
      /^sqs publish: queue bb-test-\w+-q: message of 262145 bytes over SNS maximum of 262144 bytes \(the queue has consumer groups/,
    );
    expect(counts(broker)['PublishBatch']).toBeUndefined();
    // Two bodies of 200 KiB: one PublishBatch each, as SNS takes at most 256 KiB per batch; billed 4 units each.
    const billedBefore = isRequestCounting(broker) ? broker.billedRequests() : 0;
    await broker.publish(queue, [0, 1].map((i) => ({ body: `${i}`.padEnd(200 * 1024, 'x') })));
    expect(counts(broker)['PublishBatch']).toBe(2);
    expect(isRequestCounting(broker) && broker.billedRequests() - billedBefore).toBe(8);
    expect(await drain(g0!, queue, 2)).toHaveLength(2);
  });

  it('fifo: a FIFO topic feeds FIFO group queues, order kept within each message group in every group', async () => {
    const fixture = await open('fifo', {}, { groupId: 'g', groups: 2 });
    const { broker, queue, namespace } = fixture;
    const fan = await groups(fixture, 2);
    expect(await topicsWithPrefix(namespace)).toEqual([`${namespace}-q.fifo`]);
    const sent = Array.from({ length: 30 }, (_, i) => ({ body: `f-${i}` }));
    await broker.publish(queue, sent);
    for (const group of fan) {
      const got = (await drain(group, queue, sent.length)).map((m) => m.body);
      expect(got).toHaveLength(30);
      for (const messageGroup of [0, 1]) {
        const expected = sent.filter((_, i) => i % 2 === messageGroup).map((m) => m.body);
        expect(got.filter((body) => expected.includes(body))).toEqual(expected);
      }
    }
  });

  it('a group handle tears down only its own group; the topic goes with the last one', async () => {
    const fixture = await open('standard');
    const { queue, namespace } = fixture;
    const [g0, g1] = await groups(fixture, 2);
    await g0!.teardown(queue);
    expect((await queuesWithPrefix(endpoint(), namespace)).sort()).toEqual([`${namespace}-q`, `${namespace}-q-fan1`]);
    expect(await topicsWithPrefix(namespace)).toEqual([`${namespace}-q`]);
    await g1!.teardown(queue);
    expect(await queuesWithPrefix(endpoint(), namespace)).toEqual([`${namespace}-q`]);
    expect(await topicsWithPrefix(namespace)).toEqual([]);
  });

  it('an endpoint without SNS: the group is refused in one line saying SNS must answer there; publishes still reach the queue', async (ctx) => {
    const url = endpoint().endpoint;
    if (url === undefined) return ctx.skip('needs an endpoint URL to stand a proxy in front of');
    const proxy = await sqsOnly(url);
    const fixture = await openSqs({ ...endpoint(), endpoint: proxy.url, kind: 'other' }, 'standard').catch(async (error: unknown) => {
      await proxy.close();
      throw error;
    });
    // The queue is removed through the proxy, which closes after it.
    ctx.onTestFinished(async () => {
      await fixture.cleanup();
      await proxy.close();
    });
    const { broker, queue, spec, others } = fixture;
    if (!hasConsumerGroups(broker)) throw new Error('the sqs broker should have consumer groups');
    const group = await broker.openGroup('fan0');
    others.push(group);
    await expect(group.prepare(spec)).rejects.toThrow(
      new RegExp(
        `^sqs prepare: topic bb-test-\\w+-q: ${proxy.url}/ answered HTTP 404 \\(text/html\\), which is not an SNS reply; ` +
          'consumer groups on SQS publish through an SNS topic, so SNS must answer at the same endpoint',
      ),
    );
    await broker.publish(queue, [{ body: 'direct' }]);
    expect(counts(broker)['SendMessageBatch']).toBe(1);
    expect((await broker.depth(queue)).ready).toBe(1);
  });

  it('refuses a group name that cannot be part of a queue name', async () => {
    const { broker } = await open('standard');
    if (!hasConsumerGroups(broker)) throw new Error('the sqs broker should have consumer groups');
    await expect(broker.openGroup('no spaces')).rejects.toThrow(`sqs openGroup: group name "no spaces" must be 1 to 20 letters, digits, '-' or '_'`);
  });
});

describe('the fan-out scenario on sqs', () => {
  it('publishes once through SNS and every group gets every message once; the books balance and nothing is left', async () => {
    const scenario = findScenario('fan-out')!;
    const namespace = uniqueNamespace();
    const config = configFor(scenario, 'sqs', { messages: 1_000, fanOutGroups: 2, consumers: 2 });
    const record = await runScenario({ adapter: sqsAdapter, connection: connection('sqs'), config, scenario, namespace });
    const result = buildResult(record);
    expect(result.status).toBe('completed');
    expect(result.scenarioData!.values['native']).toBe(true);
    const groupRows = result.scenarioData!.records['groups']!;
    expect(groupRows.map((group) => [group['group'], group['completed'], group['lost'], group['duplicateDeliveries']])).toEqual([
      ['g0', 1_000, 0, 0],
      ['g1', 1_000, 0, 0],
    ]);
    expect(result.ledger).toMatchObject({ expected: 1_000, completed: 1_000, lost: 0, duplicateDeliveries: 0, publishFailed: 0 });
    expect(result.verdicts[0]).toMatch(/^every message reached all 2 groups \(one sqs queue read by 2 consumer groups\)/);

    const { byKind } = result.requests!;
    // Published once: one PublishBatch per 10 messages, and no SendMessageBatch copies per group.
    expect(byKind['PublishBatch']).toBe(1_000 / config.publishBatch);
    expect(byKind['SendMessageBatch']).toBeUndefined();
    // Each group received and deleted its own copy of every message.
    expect(byKind['DeleteMessageBatch']).toBeGreaterThanOrEqual((2 * 1_000) / 10);
    expect(byKind).toMatchObject({ CreateTopic: 1, Subscribe: 2, Unsubscribe: 2, DeleteTopic: 1 });
    expect(result.requests!.workload).toBe(byKind['PublishBatch']! + byKind['ReceiveMessage']! + byKind['DeleteMessageBatch']!);
    expect(result.requests!.housekeeping).toBe(result.requests!.total - result.requests!.workload!);

    expect(await queuesWithPrefix(endpoint(), namespace)).toEqual([]);
    expect(await topicsWithPrefix(namespace)).toEqual([]);
  });
});
