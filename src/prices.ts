// Every price the harness uses, each with the date it was checked and where it came from: the SQS and
// SNS request prices, the 64 KiB billing chunk, and the month the cost model counts. The sqs registry
// entry (adapters/sqs-registry.ts), the request counter (adapters/sqs-connection.ts), the pricing notes
// (src/report/pricing.ts) and the cost model (src/report/cost.ts) all read them here; there is no other copy.
//
// LIMITATION: us-east-1, first volume tier, free tier ignored. AWS's own pricing pages could not be
// reached when the figures were checked: they are taken from third-party guides that quote them, as
// each `source` says, and the billing chunk from AWS's SQS features page. Prices change: check the
// dates before quoting a bill.

/** Where and when the SQS and SNS request prices were taken; printed beside every cost. */
export const SQS_PRICING = {
  region: 'us-east-1',
  /** USD per million requests to a standard queue (first tier, up to 100 billion a month). */
  standardUsdPerMillion: 0.4,
  /** USD per million requests to a FIFO queue. */
  fifoUsdPerMillion: 0.5,
  /** Each started chunk of this many payload bytes in one request is billed as one request (SQS, and SNS publishes alike). */
  billedChunkBytes: 64 * 1024,
  /** When the SQS figures were checked. */
  checkedOn: '2026-11-26',
  source:
    'aws.amazon.com/sqs/pricing as summarised by third-party guides dated March and June 2026 ' +
    '(the AWS page itself was not reachable when checked)',
  /** Where the 64 KiB chunk is stated: "a single API call with a 256 KB payload is billed as four requests". */
  billedChunkSource: 'aws.amazon.com/sqs/features (payload size)',
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
  snsSource: 'aws.amazon.com/sns/pricing as known on 2026-12-06, the same in a third-party guide dated 2026-06-13 (the AWS page was not fetched)',
} as const;

/**
 * The month a monthly cost is counted over: 730 hours, the average month of a 365-day year (8,760 / 12),
 * the always-on month cost tools for AWS (infracost, for one) count.
 */
export const HOURS_PER_MONTH = 730;
export const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600;
