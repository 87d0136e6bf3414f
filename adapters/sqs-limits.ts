// The limits of the SQS and SNS APIs as AWS states them, each with the page it comes from and the day it
// was checked, and where an endpoint that is not AWS takes less. The registry declares AWS's figures per
// mode (known without connecting); a handle opened on an endpoint of another kind carries that
// endpoint's own (sqs.ts), so a refusal names the limit that actually applies.
//
// LIMITATION: an endpoint of kind `other` (ElasticMQ, a fauxqs in Docker, any compatible service) is
// taken at AWS's figures; where it takes less, its own refusal comes back in its own words.

import type { EndpointKind } from './kit/index.ts';

/** The day the AWS figures below were checked against the pages named beside them. */
export const LIMITS_CHECKED_ON = '2026-12-06';

/**
 * Largest SQS message, and largest sum of one SendMessageBatch: 1 MiB since August 2025 (256 KiB before).
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html (checked 2026-12-06)
 */
export const MAX_PAYLOAD_BYTES = 1_048_576;

/**
 * Messages in flight (received, not deleted) per queue: 120,000 for standard queues and, now, for FIFO
 * queues too (FIFO was 20,000). Past it ReceiveMessage fails with OverLimit.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html (checked 2026-12-06)
 */
export const MAX_IN_FLIGHT = 120_000;

/**
 * Entries in one batch request (SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch; also
 * SNS PublishBatch, below), and most messages one ReceiveMessage returns.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html (checked 2026-12-06)
 */
export const MAX_BATCH_ENTRIES = 10;

/**
 * Longest DelaySeconds (15 min) and longest visibility timeout (12 h), in seconds.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html (checked 2026-12-06)
 */
export const MAX_DELAY_S = 900;
export const MAX_VISIBILITY_S = 43_200;

/**
 * Longest queue name, `.fifo` included.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html (checked 2026-12-06)
 */
export const MAX_NAME_CHARS = 80;

/**
 * Largest SNS message, and largest sum of one PublishBatch of at most 10 entries: still 256 KiB (SNS was
 * not part of the 1 MiB change). A fan-out publish goes through SNS, so this is its limit.
 * https://docs.aws.amazon.com/general/latest/gr/sns.html and
 * https://docs.aws.amazon.com/sns/latest/api/API_PublishBatch.html (checked 2026-12-06)
 */
export const SNS_MAX_PAYLOAD_BYTES = 262_144;

/**
 * High-throughput FIFO: deduplication and the throughput quota per message group instead of per queue,
 * the two queue attributes set together, as AWS asks.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/high-throughput-fifo.html (checked 2026-12-06)
 */
export const HIGH_THROUGHPUT_FIFO_ATTRIBUTES: Readonly<Record<string, string>> = {
  DeduplicationScope: 'messageGroup',
  FifoThroughputLimit: 'perMessageGroupId',
};

/** The limits an endpoint applies, and the words a refusal names it by ("over SQS maximum of …"). */
export interface EndpointLimits {
  readonly owner: string;
  readonly maxPayloadBytes: number;
}

export const AWS_LIMITS: EndpointLimits = { owner: 'SQS', maxPayloadBytes: MAX_PAYLOAD_BYTES };

/**
 * LocalStack creates queues with MaximumMessageSize 262,144 and refuses larger messages: its SQS
 * provider's DEFAULT_MAXIMUM_MESSAGE_SIZE (localstack/services/sqs/constants.py, read 2026-12-06).
 */
export const LOCALSTACK_LIMITS: EndpointLimits = { owner: "LocalStack's SQS", maxPayloadBytes: 262_144 };

/**
 * What an endpoint of `kind` takes. The embedded fauxqs 1.9.2 takes AWS's 1 MiB: its
 * SQS_MAX_MESSAGE_SIZE_BYTES and default MaximumMessageSize are 1,048,576 (node_modules/fauxqs/dist/sqs/
 * sqsTypes.js, read 2026-12-06), and it checks a batch's sum against the same figure.
 */
export function endpointLimits(kind: EndpointKind): EndpointLimits {
  return kind === 'localstack' ? LOCALSTACK_LIMITS : AWS_LIMITS;
}
