// API requests split into the workload's (what moving the messages takes, and what a team would pay
// for in production) and the harness's own housekeeping (making, looking up, configuring and removing
// queues, topics and subscriptions, purges, depth polls), so cost per message is priced on the first
// and the second shown apart. SNS publishes (fan-out on SQS goes through a topic) are workload.
//
// The workload's billed requests are also split by the service that bills each action (SQS, and SNS
// for fan-out publishes), so each is priced at its own service's rate.
//
// LIMITATION: the split goes by API action. A purge that SQS refuses (one per 60 s) drains by
// ReceiveMessage and DeleteMessageBatch, which then count as workload; runs purge only between steps.
// Billed chunks beyond one per request (payloads over 64 KiB) are recorded as a total, not by action:
// between services they are shared out by requests that carry bodies (billedWorkloadByService).

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

/** Actions whose requests carry message bodies: only they are billed more than once, for payloads over 64 KiB. */
const BODY_ACTIONS: ReadonlySet<string> = new Set(['SendMessage', 'SendMessageBatch', 'Publish', 'PublishBatch', 'ReceiveMessage']);

/** The workload's requests of one service. */
export interface ServiceRequests {
  /** What `serviceOf` named it, e.g. `SNS`. */
  readonly service: string;
  /** Requests sent, every attempt counted. */
  readonly requests: number;
  /** The same as billed, each started 64 KiB of payload one request. */
  readonly billed: number;
}

/**
 * The workload's requests and billed requests by the service that bills each action (`serviceOf`),
 * the busiest first. Billed chunks beyond one per request are kept only as a total, so they are shared
 * out between the services in proportion to their requests that carry bodies (sends, publishes,
 * receives), whole chunks by largest remainder; when no request carried over 64 KiB there are none,
 * and the split is exact.
 */
export function billedWorkloadByService(requests: RequestTotals, serviceOf: (action: string) => string): ServiceRequests[] {
  const { workload, workloadTotal } = splitRequestCounts(requests.byKind);
  const totals = new Map<string, { requests: number; bodies: number }>();
  for (const [action, count] of Object.entries(workload)) {
    const service = serviceOf(action);
    const entry = totals.get(service) ?? { requests: 0, bodies: 0 };
    entry.requests += count;
    if (BODY_ACTIONS.has(action)) entry.bodies += count;
    totals.set(service, entry);
  }
  const entries = [...totals].sort(([a, x], [b, y]) => y.requests - x.requests || a.localeCompare(b));
  const extra = Math.max(0, requestSplitOf(requests).billedWorkload - workloadTotal);
  const bodies = entries.reduce((n, [, e]) => n + e.bodies, 0);
  const weight = (e: { requests: number; bodies: number }): number => (bodies > 0 ? e.bodies / bodies : e.requests / Math.max(1, workloadTotal));
  const shares = entries.map(([, e]) => extra * weight(e));
  const whole = shares.map(Math.floor);
  let left = extra - whole.reduce((n, v) => n + v, 0);
  for (const k of shares.map((_, k) => k).sort((a, b) => shares[b]! - whole[b]! - (shares[a]! - whole[a]!))) {
    if (left <= 0) break;
    whole[k] = whole[k]! + 1;
    left -= 1;
  }
  return entries.map(([service, e], k) => ({ service, requests: e.requests, billed: e.requests + whole[k]! }));
}
