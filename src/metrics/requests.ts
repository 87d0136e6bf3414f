// API requests split into the workload's (what moving the messages takes, and what a team would pay
// for in production) and the harness's own housekeeping (making, looking up, configuring and removing
// queues, purges, depth polls), so cost per message is priced on the first and the second shown apart.
//
// LIMITATION: the split goes by API action. A purge that SQS refuses (one per 60 s) drains by
// ReceiveMessage and DeleteMessageBatch, which then count as workload; runs purge only between steps.

/** API actions that move messages; every other action a broker counts is housekeeping. */
export const WORKLOAD_ACTIONS: ReadonlySet<string> = new Set([
  'SendMessage',
  'SendMessageBatch',
  'ReceiveMessage',
  'DeleteMessage',
  'DeleteMessageBatch',
  'ChangeMessageVisibility',
  'ChangeMessageVisibilityBatch',
]);

export interface RequestSplit {
  /** Requests by action that moved messages (sends, receives, deletes, visibility changes). */
  readonly workload: Readonly<Record<string, number>>;
  /** Requests by action the harness made for itself (queues, lookups, attributes, purges, depth polls). */
  readonly housekeeping: Readonly<Record<string, number>>;
  readonly workloadTotal: number;
  readonly housekeepingTotal: number;
}

/** Splits request counts by action (e.g. `requestCounts()`, or the difference of two) into workload and housekeeping. */
export function splitRequestCounts(byKind: Readonly<Record<string, number>>): RequestSplit {
  const workload: Record<string, number> = {};
  const housekeeping: Record<string, number> = {};
  let workloadTotal = 0;
  let housekeepingTotal = 0;
  for (const [action, count] of Object.entries(byKind)) {
    if (WORKLOAD_ACTIONS.has(action)) {
      workload[action] = count;
      workloadTotal += count;
    } else {
      housekeeping[action] = count;
      housekeepingTotal += count;
    }
  }
  return { workload, housekeeping, workloadTotal, housekeepingTotal };
}

/**
 * The workload's share of `billed` (requests as billed, each started 64 KiB of payload one request,
 * over all of `byKind`): a housekeeping request carries no message payload, so it is billed as one.
 */
export function billedWorkloadRequests(byKind: Readonly<Record<string, number>>, billed: number): number {
  return Math.max(0, billed - splitRequestCounts(byKind).housekeepingTotal);
}
