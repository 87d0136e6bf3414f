// What the sqs registry entry says about its broker beyond opening it: where the endpoint comes from
// (SQS_ENDPOINT, else the embedded fauxqs), which variables hold secrets, the request prices, and what
// the tests need (leftover queues).
//
// LIMITATION: request prices only, for us-east-1, at the first volume tier (src/prices.ts holds them and
// says what is left out). Each action is priced by the service it belongs to: a fan-out run's SNS
// publishes at SNS's price, the rest at SQS's. Leftovers are listed with one ListQueues call, which
// returns at most 1,000 queues.

import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { BrokerAdapter, Endpoint, Environment, ServicePrice } from '../src/broker.ts';
import { SQS_PRICING } from '../src/prices.ts';
import { resolveSqs } from '../src/services/sqs-endpoint.ts';
import { isFifoMode } from './sqs-connection.ts';

/** Actions of SNS among the counted requests (fan-out publishes through a topic, sqs-topics.ts); every other is SQS's. */
const SNS_ACTIONS: ReadonlySet<string> = new Set([
  'Publish', 'PublishBatch', 'CreateTopic', 'DeleteTopic', 'Subscribe', 'Unsubscribe', 'GetTopicAttributes',
  'SetTopicAttributes', 'GetSubscriptionAttributes', 'SetSubscriptionAttributes', 'ListTopics', 'ListSubscriptionsByTopic',
]);

/** The service that bills `action` on a queue in `mode`, its tier and price (src/prices.ts). */
function priceOf(action: string, mode: string): ServicePrice {
  const fifo = isFifoMode(mode);
  const tier = fifo ? 'FIFO' : 'standard';
  if (SNS_ACTIONS.has(action)) {
    return { service: 'SNS', tier, usdPerMillionRequests: fifo ? SQS_PRICING.snsFifoUsdPerMillion : SQS_PRICING.snsStandardUsdPerMillion };
  }
  return { service: 'SQS', tier, usdPerMillionRequests: fifo ? SQS_PRICING.fifoUsdPerMillion : SQS_PRICING.standardUsdPerMillion };
}

/** The registry facts of the sqs entry. */
export const sqsServerFacts = {
  serverVariable: 'SQS_ENDPOINT',
  async resolve(env: Environment): Promise<Endpoint> {
    const sqs = await resolveSqs(definedOnly({ SQS_ENDPOINT: env['SQS_ENDPOINT'], AWS_REGION: env['AWS_REGION'] }));
    return {
      url: sqs.endpoint,
      settings: { region: sqs.region, endpointKind: sqs.kind, endpointVersion: sqs.version },
      stop: () => sqs.stop(),
    };
  },
  secretVariables: [
    { name: 'AWS_SECRET_ACCESS_KEY', part: 'value' },
    { name: 'AWS_SESSION_TOKEN', part: 'value' },
    { name: 'AWS_ACCESS_KEY_ID', part: 'value' },
  ],
  pricing: {
    usdPerMillionRequests: (mode: string) => (isFifoMode(mode) ? SQS_PRICING.fifoUsdPerMillion : SQS_PRICING.standardUsdPerMillion),
    priceOf,
  },
  testing: {
    leftovers: (endpoint, namespace) => queuesWithPrefix(endpoint, namespace),
    unreachableUrl: (port: number) => `http://127.0.0.1:${port}`,
    // The embedded fauxqs moves a few thousand messages a second; Redis many more.
    bulkMessages: 1_000,
    // Several message groups, so a FIFO queue's consumers can work at once.
    settings: (mode: string) => (isFifoMode(mode) ? { groups: 4 } : {}),
  },
} as const satisfies Partial<BrokerAdapter>;

/** Names of the queues at `endpoint` whose name starts with `prefix`, straight from ListQueues. */
export async function queuesWithPrefix(endpoint: Pick<Endpoint, 'url' | 'settings'>, prefix: string): Promise<string[]> {
  const region = endpoint.settings['region'];
  const client = new SQSClient({
    ...(typeof region === 'string' ? { region } : {}),
    ...(endpoint.url !== undefined ? { endpoint: endpoint.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } : {}),
  });
  try {
    const out = await client.send(new ListQueuesCommand({ QueueNamePrefix: prefix }));
    return (out.QueueUrls ?? []).map((url) => url.slice(url.lastIndexOf('/') + 1));
  } finally {
    client.destroy();
  }
}

function definedOnly<T extends Record<string, string | undefined>>(record: T): { [K in keyof T]?: string } {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as {
    [K in keyof T]?: string;
  };
}
