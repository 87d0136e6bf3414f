// Verdict lines every scenario can use: what the ledger says about loss and duplicates.
//
// LIMITATION: a run cut short cannot tell lost from not yet delivered; its line says what the broker
// still held instead of "LOST".

import { formatCount } from '../src/format.ts';
import { lostCount, publishedCount } from '../src/metrics/ledger.ts';
import type { PipelineOutcome } from '../src/outcome.ts';

export function ledgerVerdicts(outcome: PipelineOutcome): string[] {
  const { ledger, counters } = outcome;
  const notSent = ledger.notSent ?? 0;
  const sent = publishedCount(ledger);
  const lines: string[] = [];
  const firstMissing = outcome.missing.slice(0, 5).join(', ');
  // Dead-lettered messages are not lost (the broker holds them): the one definition, as every report has it.
  const dead = outcome.finalDepth.dead;
  const lost = lostCount(ledger, dead);
  const deadNote = dead > 0 ? `; ${formatCount(dead)} dead-lettered, not lost` : '';
  if (lost === 0) {
    // Completions beyond the accepted ones are messages whose publish was refused part-way yet stored.
    const refusedYetDone = ledger.completed - sent;
    lines.push(
      `nothing lost: ${formatCount(sent - ledger.lost)} of ${formatCount(sent)} published messages completed` +
        (ledger.lost > 0 ? `, the other ${formatCount(ledger.lost)} dead-lettered` : '') +
        (refusedYetDone > 0 ? `, and ${formatCount(refusedYetDone)} more whose publish was reported failed but were stored` : ''),
    );
  } else if (outcome.status === 'completed') {
    lines.push(`LOST ${formatCount(lost)} of ${formatCount(sent)} published messages (first missing: ${firstMissing}${deadNote})`);
  } else {
    // A run cut short cannot tell lost from not yet delivered: say what the broker still held.
    const depth = outcome.finalDepth;
    const queued = depth.ready + depth.inFlight + depth.delayed;
    lines.push(
      `${formatCount(lost)} of ${formatCount(sent)} published messages not completed when the run stopped ` +
        `(${formatCount(queued)} still queued at the end; first missing: ${firstMissing}${deadNote})`,
    );
  }
  if (notSent > 0) lines.push(`${formatCount(notSent)} messages were never sent: the run stopped first`);
  if (ledger.publishFailed > 0) lines.push(`${formatCount(ledger.publishFailed)} messages were never accepted by the broker`);
  lines.push(
    ledger.duplicateDeliveries === 0
      ? 'no duplicate deliveries'
      : `${formatCount(ledger.duplicateDeliveries)} duplicate deliveries (${formatCount(counters.redeliveries)} flagged as redeliveries by the broker)`,
  );
  if (counters.malformed > 0) lines.push(`${formatCount(counters.malformed)} bodies were not harness messages (acked and counted)`);
  const foreign = ledger.foreign ?? 0;
  if (foreign > 0) lines.push(`${formatCount(foreign)} message${foreign === 1 ? '' : 's'} did not carry this run's token (foreign: acked, never booked as deliveries)`);
  if (outcome.status !== 'completed') lines.push(`run ${outcome.status}: ${outcome.reason ?? ''}`.trim());
  return lines;
}
