// What a run's API requests would cost on Amazon SQS (and SNS, which fan-out publishes through), from
// the request counts the SQS adapter records and the prices its registry entry declares (src/prices.ts).
// Cost per message is priced on the workload's billed requests, each at the price of the service its
// action belongs to; the harness's housekeeping (queues, depth polls) is counted apart and left out of
// it (src/metrics/requests.ts).
//
// LIMITATION: request prices only, for us-east-1, at the first volume tier; the monthly free tier
// (first 1 million requests), volume discounts, data transfer, KMS and a FIFO topic's charge per GB are
// left out. An embedded or LocalStack endpoint's requests are priced as if AWS had answered them. Redis
// has no per-request price, so its cost is "n/a", not zero. Prices change: src/prices.ts says when they
// were checked.

import { adapters } from '../../adapters/index.ts';
import type { ServicePrice } from '../broker.ts';
import { SQS_PRICING } from '../prices.ts';
import type { ResultFile } from './result-file.ts';

/** Where and when the SQS and SNS prices were taken (src/prices.ts). */
export { SQS_PRICING };

/** Two lines for table footers and the HTML report: SQS's prices, then SNS's (fan-out publishes). */
export function pricingNote(): string {
  const p = SQS_PRICING;
  return (
    `SQS cost: ${p.region} request prices, standard $${p.standardUsdPerMillion.toFixed(2)} and FIFO ` +
    `$${p.fifoUsdPerMillion.toFixed(2)} per million requests, each 64 KiB chunk of a payload billed as one ` +
    `request, free tier ignored; checked ${p.checkedOn} from ${p.source}; prices may change. Redis: no per-request price (n/a).\n` +
    `SNS cost (fan-out on SQS publishes through SNS): standard $${p.snsStandardUsdPerMillion.toFixed(2)} and FIFO ` +
    `$${p.snsFifoUsdPerMillion.toFixed(2)} per million publish requests, billed by the 64 KiB chunk as SQS is, deliveries to ` +
    `SQS queues free; checked ${p.snsCheckedOn} from ${p.snsSource}.`
  );
}

/** The registry entry of the adapter that wrote `result`, if it is priced per request. */
function pricingOf(result: Pick<ResultFile, 'config'>) {
  // The canonical name as result files record it, never an alias: a file saying `SQS` was not written by a run.
  return adapters.find((adapter) => adapter.name === result.config.adapter)?.pricing;
}

/** USD per million requests for this run's queue, or undefined when the broker is not priced per request. */
export function usdPerMillionRequests(result: Pick<ResultFile, 'config'>): number | undefined {
  return pricingOf(result)?.usdPerMillionRequests(result.config.mode);
}

/** Who bills `action` in this run and at what price; undefined when the broker is not priced per request. */
export function priceOfAction(result: Pick<ResultFile, 'config'>, action: string): ServicePrice | undefined {
  const pricing = pricingOf(result);
  if (!pricing) return undefined;
  const { adapter, mode } = result.config;
  return pricing.priceOf?.(action, mode) ?? { service: adapter, tier: mode, usdPerMillionRequests: pricing.usdPerMillionRequests(mode) };
}

/** Names of the adapters priced per request (`sqs`), for lines that say which broker a break-even needs. */
export function requestPricedAdapters(): string[] {
  return adapters.filter((adapter) => adapter.pricing !== undefined).map((adapter) => adapter.name);
}

/**
 * `$0.12 (standard $0.40/M)` for one service; `$0.18 (SQS standard $0.40/M, SNS standard $0.50/M)`
 * when several bill the workload (fan-out through SNS).
 */
export function describeRequestCost(usdPerMillionMessages: number, services: readonly ServicePrice[]): string {
  const [only] = services;
  const prices =
    services.length === 1
      ? `${only!.tier} $${only!.usdPerMillionRequests.toFixed(2)}/M`
      : services.map((s) => `${s.service} ${s.tier} $${s.usdPerMillionRequests.toFixed(2)}/M`).join(', ');
  // A file whose workload made no request at all has no price to name.
  return prices === '' ? `$${usdPerMillionMessages.toFixed(2)}` : `$${usdPerMillionMessages.toFixed(2)} (${prices})`;
}
