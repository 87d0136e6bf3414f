// What the sqs registry entry says about its broker beyond opening it: where the endpoint comes from
// (SQS_ENDPOINT, else the embedded fauxqs), which variables hold secrets, the request prices, and what
// the tests need (leftover queues).
//
// LIMITATION: request prices only, for us-east-1, at the first volume tier (src/report/pricing.ts says
// what is left out). The report prices every billed request at the queue's one SQS rate per mode, so a
// fan-out run's PublishBatch requests are priced at SQS's $0.40 (standard) rather than SNS's $0.50 per
// million: the SNS figures are declared here, not yet applied. Leftovers are listed with one ListQueues
// call, which returns at most 1,000 queues.

import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { BrokerAdapter, Endpoint, Environment } from '../src/broker.ts';
import { resolveSqs } from '../src/services/sqs-endpoint.ts';
import { isFifoMode } from './sqs-connection.ts';

/** Where and when the prices below were taken; printed beside every cost. */
export const SQS_PRICING = {
  region: 'us-east-1',
  /** USD per million requests to a standard queue (first tier, up to 100 billion a month). */
  standardUsdPerMillion: 0.4,
  /** USD per million requests to a FIFO queue. */
  fifoUsdPerMillion: 0.5,
  /** Each started chunk of this many payload bytes in one request is billed as one request. */
  billedChunkBytes: 64 * 1024,
  /** When the figures were checked. */
  checkedOn: '2026-11-26',
  source:
    'aws.amazon.com/sqs/pricing as summarised by third-party guides dated March and June 2026 ' +
    '(the AWS page itself was not reachable when checked)',
  /**
   * SNS, which fan-out on SQS publishes through (sqs-topics.ts): USD per million Publish or PublishBatch
   * requests to a standard topic, each started 64 KiB of a request's payload billed as one request,
   * as SQS does (billedRequests() counts them so). Taken on 2026-12-06 from aws.amazon.com/sns/pricing
   * as known then, and the same in a third-party guide dated 2026-06-13; the AWS page was not fetched.
   */
  snsStandardUsdPerMillion: 0.5,
  /** The same for a FIFO topic, which also bills $0.017 per GB of payload published (not counted here). Same source and date. */
  snsFifoUsdPerMillion: 0.3,
  /** Deliveries from a standard topic to SQS queues are not charged (SNS pricing, its delivery table). Same source and date. */
  snsToSqsDeliveryUsdPerMillion: 0,
  snsCheckedOn: '2026-12-06',
} as const;

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
