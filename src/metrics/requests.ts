// API requests split into the workload's (what moving the messages takes, and what a team would pay
// for in production) and the harness's own housekeeping (making, looking up, configuring and removing
// queues, topics and subscriptions, purges, depth polls), so cost per message is priced on the first
// and the second shown apart. SNS publishes (fan-out on SQS goes through a topic) are workload.
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
  'Publish',
  'PublishBatch',
]);

export interface RequestSplit {
  /** Requests by action that moved messages (sends, SNS publishes, receives, deletes, visibility changes). */
  readonly workload: Readonly<Record<string, number>>;
  /** Requests by action the harness made for itself (queues, topics, subscriptions, lookups, attributes, purges, depth polls). */
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

export interface RequestTotals {
  /** Requests sent by API action, every attempt counted. */
  readonly byKind: Readonly<Record<string, number>>;
  /** Every request: workload and housekeeping together. */
  readonly total: number;
  /** Requests as billed: each started 64 KiB of payload counts as one (housekeeping included). */
  readonly billed: number;
  /**
   * Requests that moved messages: sends, receives, deletes, visibility changes (src/metrics/requests.ts).
   * Absent in files written before it was recorded; readers derive it from `byKind` then.
   */
  readonly workload?: number;
  /** The harness's own requests: creating, looking up, configuring and deleting queues, purges, depth polls. */
  readonly housekeeping?: number;
  /** The workload's requests as billed: what cost per message is priced on. */
  readonly billedWorkload?: number;
}

/** Request totals from counts by API action and the billed count, with the workload and housekeeping apart. */
export function requestTotals(byKind: Readonly<Record<string, number>>, billed: number): RequestTotals {
  const { workloadTotal, housekeepingTotal } = splitRequestCounts(byKind);
  return {
    byKind,
    total: workloadTotal + housekeepingTotal,
    billed,
    workload: workloadTotal,
    housekeeping: housekeepingTotal,
    billedWorkload: billedWorkloadRequests(byKind, billed),
  };
}

/** Workload, housekeeping and billed workload of `requests`, as recorded or, in older files, derived from `byKind`. */
export function requestSplitOf(requests: RequestTotals): { workload: number; housekeeping: number; billedWorkload: number } {
  const split = splitRequestCounts(requests.byKind);
  return {
    workload: requests.workload ?? split.workloadTotal,
    housekeeping: requests.housekeeping ?? split.housekeepingTotal,
    billedWorkload: requests.billedWorkload ?? billedWorkloadRequests(requests.byKind, requests.billed),
  };
}
