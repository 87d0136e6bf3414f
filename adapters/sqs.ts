// SQS (standard, FIFO or high-throughput FIFO queues) through @aws-sdk/client-sqs, against AWS, LocalStack
// or the embedded fauxqs. Batches of 10 go out concurrently; every API request is counted so runs can
// report cost. Consumer groups (fan-out) are SQS queues subscribed to an SNS topic, as AWS does it.
// The registry entry is here; the API's limits in sqs-limits.ts, the shared clients in sqs-connection.ts,
// the operations in sqs-driver.ts, batch requests in sqs-batches.ts, queue set-up, depth, purge and
// teardown in sqs-queues.ts, and topics and groups in sqs-topics.ts.
//
// Modes: `standard`; `fifo` (FIFO queues, order per message group, no per-message delay);
// `fifo-high-throughput` (FIFO queues with DeduplicationScope=messageGroup and
// FifoThroughputLimit=perMessageGroupId). High throughput is a mode, not a setting, because it is a
// different queue that AWS lets run faster: result files and comparisons keep runs apart by mode, so a
// run on it is never taken for a plain FIFO run. It is priced as FIFO.
//
// Capabilities: `capabilities(mode)` gives AWS's limits (sqs-limits.ts), known without connecting; a
// handle opened on an endpoint that takes less (LocalStack: 256 KiB messages) carries that endpoint's
// own, and refuses with its name.
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
import type { BrokerAdapter, BrokerCapabilities, BrokerOptions } from '../src/broker.ts';
import { defineAdapter, withTimeout, type Driver } from './kit/index.ts';
import { ADAPTER, readSqsConfig, SqsConnection, sqsEndpointKind, type SqsMode } from './sqs-connection.ts';
import { SqsDriver } from './sqs-driver.ts';
import {
  AWS_LIMITS,
  endpointLimits,
  MAX_BATCH_ENTRIES,
  MAX_DELAY_S,
  MAX_PAYLOAD_BYTES,
  MAX_VISIBILITY_S,
  type EndpointLimits,
} from './sqs-limits.ts';
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

/** The registry entry as it opens handles on an endpoint with `limits`: AWS's, or that endpoint's own where they are lower. */
function entryFor(limits: EndpointLimits): BrokerAdapter {
  const narrowed = (capabilities: BrokerCapabilities): BrokerCapabilities => ({ ...capabilities, maxPayloadBytes: limits.maxPayloadBytes });
  return defineAdapter({
    name: ADAPTER,
    aliases: ['SQS'],
    modes: { standard: narrowed(STANDARD), fifo: narrowed(FIFO), 'fifo-high-throughput': narrowed(FIFO) },
    defaultMode: 'standard',
    // Publish sends any batch as requests of 10 (SendMessageBatch's limit); receive takes at most 10.
    limits: { owner: limits.owner, noDelay: 'per-message delay is not supported on FIFO queues', splitsPublish: true },
    connect: openSqs,
    ...sqsServerFacts,
  });
}

const onAws = entryFor(AWS_LIMITS);
/** One entry per set of endpoint limits, made once. */
const byLimits = new Map<EndpointLimits, BrokerAdapter>([[AWS_LIMITS, onAws]]);

export const sqsAdapter: BrokerAdapter = {
  ...onAws,
  async open(options: BrokerOptions) {
    const limits = endpointLimits(sqsEndpointKind(options));
    let entry = byLimits.get(limits);
    if (entry === undefined) byLimits.set(limits, (entry = entryFor(limits)));
    return entry.open(options);
  },
};

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
