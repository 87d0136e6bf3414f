import { describe, expect, it } from 'vitest';
import type { LedgerCounts } from '../../src/metrics/ledger.ts';
import { ledgerVerdicts } from '../../scenarios/verdicts.ts';
import type { PipelineOutcome } from '../../src/outcome.ts';

/** Just what ledgerVerdicts reads: a run of 100 messages, `completed` of them done, `dead` dead-lettered. */
function outcome(completed: number, dead: number, status: PipelineOutcome['status'] = 'completed'): PipelineOutcome {
  const ledger: LedgerCounts = {
    expected: 100,
    publishFailed: 0,
    delivered: 100,
    deliveries: 100,
    duplicateDeliveries: 0,
    completed,
    duplicateCompletions: 0,
    notSent: 0,
    lost: 100 - completed,
    unknown: 0,
    foreign: 0,
  };
  const missing = Array.from({ length: 100 - completed }, (_, k) => completed + k);
  return {
    status,
    reason: status === 'completed' ? undefined : 'stopped',
    ledger,
    missing,
    counters: { malformed: 0, redeliveries: 0 },
    finalDepth: { ready: 0, inFlight: 0, delayed: 0, dead },
  } as unknown as PipelineOutcome;
}

describe('ledgerVerdicts', () => {
  it('does not call dead-lettered messages lost', () => {
    expect(ledgerVerdicts(outcome(80, 20))[0]).toBe('nothing lost: 80 of 100 published messages completed, the other 20 dead-lettered');
  });

  it('calls lost only what is neither completed nor dead-lettered', () => {
    expect(ledgerVerdicts(outcome(75, 20))[0]).toBe('LOST 5 of 100 published messages (first missing: 75, 76, 77, 78, 79; 20 dead-lettered, not lost)');
    expect(ledgerVerdicts(outcome(75, 0))[0]).toBe('LOST 25 of 100 published messages (first missing: 75, 76, 77, 78, 79)');
  });

  it('says nothing lost, as before, when every message completed', () => {
    expect(ledgerVerdicts(outcome(100, 0))[0]).toBe('nothing lost: 100 of 100 published messages completed');
  });

  it('writes every count with thousands separators', () => {
    const big = (completed: number, dead: number, status: PipelineOutcome['status'] = 'completed'): PipelineOutcome => {
      const base = outcome(100, 0, status);
      const ledger = { ...base.ledger, expected: 500_000, delivered: 500_000, deliveries: 501_200, completed, lost: 500_000 - completed, notSent: 0, duplicateDeliveries: 1_200 };
      return {
        ...base,
        ledger,
        missing: [completed, completed + 1],
        counters: { ...base.counters, redeliveries: 1_100, malformed: 2_000 },
        finalDepth: { ready: 3_000, inFlight: 0, delayed: 0, dead },
      } as PipelineOutcome;
    };
    expect(ledgerVerdicts(big(500_000, 0))).toEqual([
      'nothing lost: 500,000 of 500,000 published messages completed',
      '1,200 duplicate deliveries (1,100 flagged as redeliveries by the broker)',
      '2,000 bodies were not harness messages (acked and counted)',
    ]);
    expect(ledgerVerdicts(big(480_000, 15_000))[0]).toBe('LOST 5,000 of 500,000 published messages (first missing: 480000, 480001; 15,000 dead-lettered, not lost)');
    expect(ledgerVerdicts(big(4_900, 0, 'timeout'))[0]).toBe(
      '495,100 of 500,000 published messages not completed when the run stopped (3,000 still queued at the end; first missing: 4900, 4901)',
    );
  });
});
