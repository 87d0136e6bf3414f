// Every error out of an adapter is a BrokerError naming the adapter and the operation, in one line.
// Those that already are (a PartialSettleError among them) pass through untouched.

import { BrokerError } from '../../src/broker.ts';

/** An error's message up to its first line break (clients append advice and stacks on later lines). */
export function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const end = text.indexOf('\n');
  return (end < 0 ? text : text.slice(0, end)).trim();
}

/** `error` as a BrokerError of `adapter` and `operation`, told by `explain` (default: its first line). */
export function toBrokerError(adapter: string, operation: string, error: unknown, explain: (error: unknown) => string = firstLine): BrokerError {
  if (error instanceof BrokerError) return error;
  return new BrokerError(adapter, operation, firstLine(explain(error)), { cause: error });
}
