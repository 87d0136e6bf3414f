// Each request priced by the service that bills it: a fan-out run on SQS publishes through SNS, whose
// PublishBatch requests cost SNS's price, not SQS's. On a real fan-out result file
// (test/fixtures/cost/fan-out, written by the harness: see make-results.sh) and on request records
// with payloads over 64 KiB, whose extra billed chunks the record keeps only as a total.

import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { findAdapter } from '../../adapters/index.ts';
import { billedWorkloadByService, requestTotals } from '../../src/metrics/requests.ts';
import { renderRows } from '../../src/report/compare.ts';
import { groupRuns, type Group } from '../../src/report/group.ts';
import { loadRuns } from '../../src/report/load.ts';
import { describeRequestCost, SQS_PRICING } from '../../src/report/pricing.ts';

const FAN_OUT = fileURLToPath(new URL('../fixtures/cost/fan-out', import.meta.url));

let group: Group;

beforeAll(async () => {
  const { runs, problems } = await loadRuns([FAN_OUT]);
  expect(problems).toEqual([]);
  [group] = groupRuns(runs) as [Group];
});

describe('the sqs registry entry', () => {
  it('names SNS for topic actions and SQS for queue actions, each at its own price per mode', () => {
    const pricing = findAdapter('SQS')!.pricing!;
    expect(pricing.priceOf!('PublishBatch', 'standard')).toEqual({ service: 'SNS', tier: 'standard', usdPerMillionRequests: SQS_PRICING.snsStandardUsdPerMillion });
    expect(pricing.priceOf!('Publish', 'fifo')).toEqual({ service: 'SNS', tier: 'FIFO', usdPerMillionRequests: SQS_PRICING.snsFifoUsdPerMillion });
    expect(pricing.priceOf!('ReceiveMessage', 'standard')).toEqual({ service: 'SQS', tier: 'standard', usdPerMillionRequests: SQS_PRICING.standardUsdPerMillion });
    // High-throughput FIFO is a FIFO queue, priced as one.
    expect(pricing.priceOf!('DeleteMessageBatch', 'fifo-high-throughput')).toEqual({ service: 'SQS', tier: 'FIFO', usdPerMillionRequests: SQS_PRICING.fifoUsdPerMillion });
    expect(SQS_PRICING.snsStandardUsdPerMillion).not.toBe(SQS_PRICING.standardUsdPerMillion);
  });
});

describe('a fan-out run on SQS', () => {
  it('prices its PublishBatch requests at SNS standard and its receives and deletes at SQS standard', () => {
    const [column] = group.columns;
    const result = column!.runs[0]!.result;
    const byKind = result.requests!.byKind;
    const completed = result.ledger.completed;
    // The fixture is what a fan-out run on SQS looks like: published once through SNS, no SendMessageBatch.
    expect(byKind['PublishBatch']).toBeGreaterThan(0);
    expect(byKind['SendMessageBatch']).toBeUndefined();
    // No payload over 64 KiB: billed equals sent, so the split is exact.
    expect(result.requests!.billedWorkload).toBe(result.requests!.workload);

    const sqsRequests = byKind['ReceiveMessage']! + byKind['DeleteMessageBatch']!;
    const snsRequests = byKind['PublishBatch']!;
    expect(column!.requests!.byService).toEqual([
      {
        service: 'SQS',
        tier: 'standard',
        usdPerMillionRequests: 0.4,
        billed: sqsRequests,
        billedPerMessage: sqsRequests / completed,
        usdPerMillionMessages: (sqsRequests / completed) * 0.4,
      },
      {
        service: 'SNS',
        tier: 'standard',
        usdPerMillionRequests: 0.5,
        billed: snsRequests,
        billedPerMessage: snsRequests / completed,
        usdPerMillionMessages: (snsRequests / completed) * 0.5,
      },
    ]);
    const expected = ((sqsRequests * 0.4 + snsRequests * 0.5) / completed);
    expect(column!.requests!.usdPerMillionMessages).toBeCloseTo(expected, 12);
    // More than the old single rate gave: the publishes cost $0.50, not $0.40, per million.
    expect(column!.requests!.usdPerMillionMessages).toBeGreaterThan(((sqsRequests + snsRequests) / completed) * 0.4);

    const row = renderRows(group).find((r) => r.id === 'usdPerMillionMessages')!;
    expect(row.cells).toEqual([`$${expected.toFixed(2)} (SQS standard $0.40/M, SNS standard $0.50/M)`]);
  });
});

describe('billed requests by service', () => {
  const serviceOf = (action: string): string => (action.startsWith('Publish') ? 'SNS' : 'SQS');

  it('is the workload by action when nothing was billed twice, housekeeping left out', () => {
    const requests = requestTotals({ PublishBatch: 20, ReceiveMessage: 70, DeleteMessageBatch: 60, CreateQueue: 3, Subscribe: 2 }, 155);
    expect(billedWorkloadByService(requests, serviceOf)).toEqual([
      { service: 'SQS', requests: 130, billed: 130 },
      { service: 'SNS', requests: 20, billed: 20 },
    ]);
  });

  it('shares chunks billed beyond one per request between services by their requests that carry bodies, in whole chunks', () => {
    // 10 publishes and 30 receives carry bodies (30 deletes do not); 2 housekeeping requests; 8 extra chunks.
    const requests = requestTotals({ PublishBatch: 10, ReceiveMessage: 30, DeleteMessageBatch: 30, GetQueueUrl: 2 }, 72 + 8);
    expect(requests.billedWorkload).toBe(78);
    expect(billedWorkloadByService(requests, serviceOf)).toEqual([
      { service: 'SQS', requests: 60, billed: 66 },
      { service: 'SNS', requests: 10, billed: 12 },
    ]);
    // Shares that do not divide: 7 extra chunks at 1 : 3 are 1.75 and 5.25, so 2 and 5; none lost or made up.
    const uneven = billedWorkloadByService(requestTotals({ PublishBatch: 10, ReceiveMessage: 30, DeleteMessageBatch: 30 }, 77), serviceOf);
    expect(uneven).toEqual([
      { service: 'SQS', requests: 60, billed: 65 },
      { service: 'SNS', requests: 10, billed: 12 },
    ]);
  });
});

describe('the request cost row', () => {
  it('names the one price, both prices, or none for a file whose workload made no request', () => {
    const sqs = { service: 'SQS', tier: 'standard', usdPerMillionRequests: 0.4 };
    const sns = { service: 'SNS', tier: 'standard', usdPerMillionRequests: 0.5 };
    expect(describeRequestCost(0.12, [sqs])).toBe('$0.12 (standard $0.40/M)');
    expect(describeRequestCost(0.29, [sqs, sns])).toBe('$0.29 (SQS standard $0.40/M, SNS standard $0.50/M)');
    expect(describeRequestCost(0, [])).toBe('$0.00');
  });
});
