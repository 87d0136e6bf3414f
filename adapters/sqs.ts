// SQS (standard or FIFO queues) through @aws-sdk/client-sqs, against AWS, LocalStack or the embedded
// fauxqs. Batches of 10 go out concurrently; every API request is counted so runs can report cost.
// The registry entry is here; the shared client in sqs-connection.ts, the operations in sqs-driver.ts,
// batch requests in sqs-batches.ts and queue set-up, depth, purge and teardown in sqs-queues.ts.
//
// Settings read from `options.settings` (all optional):
//   region          AWS region; default `us-east-1` with an endpoint URL, else AWS_REGION via the SDK.
//   endpointKind    `embedded` | `localstack` | `aws` | `other`, from resolveSqs; default from the URL.
//   endpointVersion What answers, e.g. `fauxqs 1.9.2`; shown by describe(); default `aws` / `unknown`.
//   maxSockets      Keep-alive sockets per connection (all duplicates share them); default 64.
//   maxAttempts     SDK attempts per request, retries of throttling and network errors; default 3.
//   groupId         FIFO MessageGroupId; default one per handle (`handle-N`).
//   groups          FIFO: spread each handle's messages round-robin over this many groups
//                   (`${groupId}-0` …), so several consumers can work at once; default 1.
//
// A queue this connection prepared that vanishes mid-run (an in-memory emulator restarted) is made
// again on the first publish or receive that finds it missing; that call still fails and is counted.

import { ListQueuesCommand } from '@aws-sdk/client-sqs';
import type { BrokerCapabilities, BrokerOptions } from '../src/broker.ts';
import { defineAdapter, withTimeout, type Driver } from './kit/index.ts';
import {
  ADAPTER,
  MAX_BATCH_ENTRIES,
  MAX_DELAY_S,
  MAX_PAYLOAD_BYTES,
  MAX_VISIBILITY_S,
  readSqsConfig,
  SqsConnection,
  type SqsMode,
} from './sqs-connection.ts';
import { SqsDriver } from './sqs-driver.ts';
import { sqsServerFacts } from './sqs-registry.ts';

export { isRequestCounting, type RequestCounting } from '../src/broker.ts';

const STANDARD: BrokerCapabilities = {
  delivery: 'at-least-once',
  delay: true,
  maxDelayMs: MAX_DELAY_S * 1000,
  deadLetter: true,
  visibilityTimeout: true,
  nackDelay: true,
  ordering: 'none',
  maxBatchSize: MAX_BATCH_ENTRIES,
  maxPayloadBytes: MAX_PAYLOAD_BYTES,
  // A nack sets the visibility timeout (ChangeMessageVisibility), whose limit is 12 h, not DelaySeconds' 15 min.
  maxNackDelayMs: MAX_VISIBILITY_S * 1000,
  delayGranularity: { ms: 1000, says: 'SQS takes DelaySeconds in whole seconds' },
  nackDelayGranularity: { ms: 1000, says: 'SQS takes retry delays (ChangeMessageVisibility) in whole seconds' },
  sharedAcrossProcesses: true,
};

/** FIFO queues keep order within a message group and take no per-message delay (only a queue-level one). */
const FIFO: BrokerCapabilities = { ...STANDARD, ordering: 'per-group', delay: false, maxDelayMs: 0 };

export const sqsAdapter = defineAdapter({
  name: ADAPTER,
  aliases: ['SQS'],
  modes: { standard: STANDARD, fifo: FIFO },
  defaultMode: 'standard',
  // Publish sends any batch as requests of 10 (SendMessageBatch's limit); receive takes at most 10.
  limits: { owner: 'SQS', noDelay: 'per-message delay is not supported on FIFO queues', splitsPublish: true },
  connect: openSqs,
  ...sqsServerFacts,
});

async function openSqs(options: BrokerOptions, mode: string): Promise<Driver> {
  const connection = new SqsConnection(readSqsConfig(options, mode as SqsMode));
  const driver = new SqsDriver(connection);
  try {
    // Reach the endpoint now, so a wrong URL or missing credentials fail at open, within the timeout.
    await withTimeout(options.commandTimeoutMs, 'open', (abortSignal) =>
      connection.client.send(new ListQueuesCommand({ QueueNamePrefix: connection.config.namespace, MaxResults: 1 }), { abortSignal }),
    );
  } catch (error) {
    await driver.close();
    throw connection.wrap('open', undefined, error);
  }
  return driver;
}
