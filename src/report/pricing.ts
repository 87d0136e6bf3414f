// What a run's API requests would cost on Amazon SQS, from the request counts the SQS adapter records
// and the price its registry entry declares.
// Cost per message is priced on the workload's billed requests; the harness's housekeeping (queues,
// depth polls) is counted apart and left out of it (src/metrics/requests.ts).
//
// LIMITATION: request prices only, for us-east-1, at the first volume tier; the monthly free tier
// (first 1 million requests), volume discounts, data transfer and KMS are left out. An embedded or
// LocalStack endpoint's requests are priced as if AWS had answered them. Redis has no per-request
// price, so its cost is "n/a", not zero. Prices change: src/prices.ts says when they were checked.

import { adapters } from '../../adapters/index.ts';
import { SQS_PRICING } from '../prices.ts';
import type { ResultFile } from './result-file.ts';

/** Where and when the SQS and SNS prices were taken (src/prices.ts). */
export { SQS_PRICING };

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
  // The canonical name as result files record it, never an alias: a file saying `SQS` was not written by a run.
  return adapters.find((adapter) => adapter.name === result.config.adapter)?.pricing?.usdPerMillionRequests(result.config.mode);
}
