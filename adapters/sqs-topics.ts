// Consumer groups on SQS, as AWS does fan-out: one SNS topic per run queue (named as the queue's SQS
// name, `.fifo` for FIFO queues) and one SQS queue per group (`<queue>-<group>`), subscribed to the
// topic with raw message delivery so bodies arrive unchanged, each with a queue policy that lets the
// topic send to it (AWS delivers nothing without one). A publish to a queue with groups is one SNS
// PublishBatch per 10 messages (sqs-driver.ts), not one SendMessageBatch per group. Teardown removes the
// subscriptions, the groups' queues and the topic.
//
// LIMITATION: a handle learns of a queue's topic from the groups opened on its own connection (open()
// and its duplicates); a handle opened apart, in this process or another, publishes to the queue
// itself, which no group reads. SNS must answer at the same endpoint as SQS (AWS, LocalStack, fauxqs).

import {
  CreateTopicCommand,
  DeleteTopicCommand,
  SubscribeCommand,
  UnsubscribeCommand,
} from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { BrokerError, type QueueSpec } from '../src/broker.ts';
import { ADAPTER, isAwsError, type SqsConnection, type Topic } from './sqs-connection.ts';
import { prepareQueue, purgeQueue, teardownQueue } from './sqs-queues.ts';

/** Group names become part of SQS queue names: letters, digits, `-` and `_`, kept short. */
const GROUP_NAME = /^[A-Za-z0-9_-]{1,20}$/;

/** Refuses a group name that cannot be part of a queue name. */
export function checkGroupName(group: string): void {
  if (!GROUP_NAME.test(group)) {
    throw new BrokerError(ADAPTER, 'openGroup', `group name "${group}" must be 1 to 20 letters, digits, '-' or '_'`);
  }
}

/** The logical name of group `group`'s queue for `queue`. */
export function groupQueue(queue: string, group: string): string {
  return `${queue}-${group}`;
}

/**
 * Makes `group`'s queue for `spec.name` (with its dead-letter queue, as any queue), the queue's topic if
 * this connection has none yet, the policy letting the topic send to the queue, and the subscription.
 * Idempotent.
 */
export async function prepareGroup(connection: SqsConnection, group: string, spec: QueueSpec): Promise<void> {
  const topic = await topicOf(connection, spec.name);
  const queue = groupQueue(spec.name, group);
  await prepareQueue(connection, { ...spec, name: queue });
  const { name, url } = await connection.urls(queue, 'prepare');
  try {
    const out = await connection.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
    const queueArn = out.Attributes?.['QueueArn'];
    if (queueArn === undefined) throw new BrokerError(ADAPTER, 'prepare', `queue ${name}: no QueueArn in GetQueueAttributes`);
    await connection.client.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { Policy: topicMaySend(queueArn, topic.arn) } }));
    if (topic.groups.has(group)) return;
    const subscribed = await connection.sns.send(
      new SubscribeCommand({
        TopicArn: topic.arn,
        Protocol: 'sqs',
        Endpoint: queueArn,
        Attributes: { RawMessageDelivery: 'true' },
        ReturnSubscriptionArn: true,
      }),
    );
    if (subscribed.SubscriptionArn === undefined) throw new BrokerError(ADAPTER, 'prepare', `topic ${topic.name}: no SubscriptionArn in Subscribe`);
    topic.groups.set(group, { queue, subscriptionArn: subscribed.SubscriptionArn });
  } catch (error) {
    throw connection.wrap('prepare', name, error);
  }
}

/** The topic of `queue`, made (CreateTopic, idempotent) on first use; concurrent callers share one request. */
function topicOf(connection: SqsConnection, queue: string): Promise<Topic> {
  const known = connection.topics.get(queue);
  if (known !== undefined) return known;
  const { name } = connection.names(queue, 'prepare');
  const creating = (async (): Promise<Topic> => {
    const out = await connection.sns.send(
      new CreateTopicCommand({
        Name: name,
        // Deduplication ids are sent with every message, as to a FIFO queue (sqs-driver.ts).
        ...(connection.config.fifo ? { Attributes: { FifoTopic: 'true', ContentBasedDeduplication: 'false' } } : {}),
      }),
    );
    if (out.TopicArn === undefined) throw new BrokerError(ADAPTER, 'prepare', `topic ${name}: no TopicArn in CreateTopic`);
    return { name, arn: out.TopicArn, groups: new Map() };
  })();
  connection.topics.set(queue, creating);
  creating.catch(() => connection.topics.delete(queue));
  return creating.catch((error: unknown) => {
    throw connection.wrap('prepare', name, error, 'topic');
  });
}

/** The queue policy AWS needs before a topic's deliveries reach a queue: sqs:SendMessage from SNS, for this topic only. */
function topicMaySend(queueArn: string, topicArn: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'brokerbench-topic-sends',
        Effect: 'Allow',
        Principal: { Service: 'sns.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: queueArn,
        Condition: { ArnEquals: { 'aws:SourceArn': topicArn } },
      },
    ],
  });
}

/** Purges every group's queue of `queue` (none without a topic). */
export async function purgeGroups(connection: SqsConnection, queue: string): Promise<void> {
  const topic = await connection.topics.get(queue)?.catch(() => undefined);
  if (topic === undefined) return;
  await Promise.all([...topic.groups.values()].map((member) => purgeQueue(connection, member.queue)));
}

/** Removes `group`'s subscription and queue for `queue`; the topic too once no group is left. */
export async function teardownGroup(connection: SqsConnection, queue: string, group: string): Promise<void> {
  const topic = await connection.topics.get(queue)?.catch(() => undefined);
  const member = topic?.groups.get(group);
  if (topic !== undefined && member !== undefined) {
    await unsubscribe(connection, topic, member.subscriptionArn);
    topic.groups.delete(group);
  }
  await teardownQueue(connection, groupQueue(queue, group));
  if (topic !== undefined && topic.groups.size === 0) await deleteTopic(connection, queue, topic);
}

/** Removes every group of `queue` (subscriptions and queues) and its topic; nothing without a topic. */
export async function teardownTopic(connection: SqsConnection, queue: string): Promise<void> {
  const topic = await connection.topics.get(queue)?.catch(() => undefined);
  if (topic === undefined) return;
  await Promise.all(
    [...topic.groups.entries()].map(async ([group, member]) => {
      await unsubscribe(connection, topic, member.subscriptionArn);
      topic.groups.delete(group);
      await teardownQueue(connection, member.queue);
    }),
  );
  await deleteTopic(connection, queue, topic);
}

async function unsubscribe(connection: SqsConnection, topic: Topic, subscriptionArn: string): Promise<void> {
  try {
    await connection.sns.send(new UnsubscribeCommand({ SubscriptionArn: subscriptionArn }));
  } catch (error) {
    if (!isTopicMissing(error)) throw connection.wrap('teardown', topic.name, error, 'topic');
  }
}

/** Deletes the topic and forgets it, so later publishes go to the queue itself; one already gone is no error. */
async function deleteTopic(connection: SqsConnection, queue: string, topic: Topic): Promise<void> {
  try {
    await connection.sns.send(new DeleteTopicCommand({ TopicArn: topic.arn }));
  } catch (error) {
    if (!isTopicMissing(error)) throw connection.wrap('teardown', topic.name, error, 'topic');
  }
  connection.topics.delete(queue);
}

function isTopicMissing(error: unknown): boolean {
  return isAwsError(error, 'NotFound') || isAwsError(error, 'NotFoundException');
}
