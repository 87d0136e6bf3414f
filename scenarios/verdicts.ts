// Verdict lines every scenario can use: what the ledger says about loss and duplicates.

import type { PipelineOutcome } from '../src/runner/pipeline.ts';

export function ledgerVerdicts(outcome: PipelineOutcome): string[] {
  const { ledger, counters } = outcome;
  const sent = ledger.expected - ledger.publishFailed;
  const lines: string[] = [];
  lines.push(
    ledger.lost === 0
      ? `nothing lost: ${ledger.completed} of ${sent} published messages completed`
      : `LOST ${ledger.lost} of ${sent} published messages (first missing: ${outcome.missing.slice(0, 5).join(', ')})`,
  );
  if (ledger.publishFailed > 0) lines.push(`${ledger.publishFailed} messages were never accepted by the broker`);
  lines.push(
    ledger.duplicateDeliveries === 0
      ? 'no duplicate deliveries'
      : `${ledger.duplicateDeliveries} duplicate deliveries (${counters.redeliveries} flagged as redeliveries by the broker)`,
  );
  if (counters.malformed > 0) lines.push(`${counters.malformed} bodies were not harness messages (acked and counted)`);
  if (outcome.status !== 'completed') lines.push(`run ${outcome.status}: ${outcome.reason ?? ''}`.trim());
  return lines;
}
