// What a run's API requests would cost on Amazon SQS, from the request counts the SQS adapter records.
// Cost per message is priced on the workload's billed requests; the harness's housekeeping (queues,
// depth polls) is counted apart and left out of it (src/metrics/requests.ts).
//
// LIMITATION: request prices only, for us-east-1, at the first volume tier; the monthly free tier
// (first 1 million requests), volume discounts, data transfer and KMS are left out. An embedded or
// LocalStack endpoint's requests are priced as if AWS had answered them. Redis has no per-request
// price, so its cost is "n/a", not zero. Prices change: PRICE_SOURCE says when they were checked.

import type { ResultFile } from './result-file.ts';

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
} as const;

/** One line for table footers and the HTML report. */
export function pricingNote(): string {
  const p = SQS_PRICING;
  return (
    `SQS cost: ${p.region} request prices, standard $${p.standardUsdPerMillion.toFixed(2)} and FIFO ` +
    `$${p.fifoUsdPerMillion.toFixed(2)} per million requests, each 64 KiB chunk of a payload billed as one ` +
    `request, free tier ignored; checked ${p.checkedOn} from ${p.source}; prices may change. Redis: no per-request price (n/a).`
  );
}

/** USD per million requests for this run's queue, or undefined when the broker is not priced per request. */
export function usdPerMillionRequests(result: Pick<ResultFile, 'config'>): number | undefined {
  if (result.config.adapter !== 'sqs') return undefined;
  return result.config.mode === 'fifo' ? SQS_PRICING.fifoUsdPerMillion : SQS_PRICING.standardUsdPerMillion;
}
