// What a redis-list mode is: the operations that differ between `simple` and `reliable`, behind one
// small interface, so each mode's file reads straight through (the kit has checked every call, the
// driver in redis-list.ts found the keys and the spec). Also the helpers both modes use.
//
// LIMITATION: a mode gets the handle's connections as they are; reconnecting and closing stay with the broker.

import { PartialSettleError, type OutgoingMessage, type QueueDepth, type QueueSpec, type ReceivedMessage } from '../src/broker.ts';
import { describeRedisError } from './redis-connect-error.ts';
import type { RedisClient } from './redis-kit.ts';

export const ADAPTER = 'redis-list';
/** Most messages per publish/receive call; also the most values sent in one RPUSH/ZADD/ZREM. */
export const MAX_BATCH = 10_000;
/** Values per multi-value command, so no single command holds the server for long. */
export const CHUNK = 1_000;

export interface QueueKeys {
  readonly ready: string;
  readonly inflight: string;
  readonly delayed: string;
  readonly dead: string;
  /** Reliable mode: the body of each message in flight, by receipt. */
  readonly bodies: string;
}

/** One handle's connections and what the modes need to know about the server and the handle. */
export interface ListContext {
  /** Every non-blocking command, with commandTimeoutMs; the reliable scripts are defined on it. */
  readonly redis: RedisClient;
  /** Blocking waits only (BLPOP/BLMOVE). */
  readonly blocking: RedisClient;
  /** Server older than 6.2: no LPOP count, no BLMOVE, integer blocking timeouts. */
  readonly legacy: boolean;
  /** Message ids are this handle's random prefix plus a counter: unique without a round trip. */
  nextId(): string;
  /** True once close() began: a wait that ends then returns nothing. */
  closing(): boolean;
}

/** The operations that differ by mode; the kit has checked the handle, the batch, its bodies and delays. */
export interface ListMode {
  publish(keys: QueueKeys, messages: readonly OutgoingMessage[]): Promise<void>;
  receive(keys: QueueKeys, spec: Omit<QueueSpec, 'name'>, maxMessages: number, waitMs: number): Promise<ReceivedMessage[]>;
  ack(keys: QueueKeys, messages: readonly ReceivedMessage[]): Promise<void>;
  nack(keys: QueueKeys, spec: Omit<QueueSpec, 'name'>, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void>;
  depth(keys: QueueKeys): Promise<QueueDepth>;
}

/** A blocking timeout in seconds that is never 0 (0 blocks forever) and rounds up, not down. */
export function blockSeconds(legacy: boolean, waitMs: number): string {
  if (legacy) return String(Math.max(1, Math.ceil(waitMs / 1000)));
  return (Math.max(2, Math.ceil(waitMs)) / 1000).toFixed(3);
}

/**
 * Throws the first error of the chunked calls that settle `messages` (CHUNK per call, in order): a
 * PartialSettleError listing the messages of the chunks that succeeded when any did, else that error.
 */
export function checkChunks(operation: string, messages: readonly ReceivedMessage[], results: [Error | null, unknown][] | null): void {
  if (results === null) throw new Error('pipeline aborted');
  const settled: ReceivedMessage[] = [];
  let first: Error | undefined;
  for (let i = 0; i < results.length; i++) {
    const [error] = results[i]!;
    if (error) first ??= error;
    else settled.push(...messages.slice(i * CHUNK, (i + 1) * CHUNK));
  }
  if (first === undefined) return;
  if (settled.length === 0) throw first;
  throw new PartialSettleError(
    ADAPTER,
    operation,
    `${messages.length - settled.length} of ${messages.length} failed (${describeRedisError(first)}); the other ${settled.length} succeeded`,
    settled,
    { cause: first },
  );
}

/**
 * Runs one call per CHUNK of `messages`, each once the one before it answered, and settles them with
 * `checkChunks`. Not all at once: a chunk the server refuses by dropping the connection (an argument
 * over proto-max-bulk-len) takes the replies of the chunks still in flight with it, and those chunks
 * would count as failed whether they ran or not.
 */
export async function settleInChunks(
  operation: string,
  messages: readonly ReceivedMessage[],
  call: (chunk: readonly ReceivedMessage[]) => Promise<unknown>,
): Promise<void> {
  if (messages.length <= CHUNK) {
    await call(messages);
    return;
  }
  const results: [Error | null, unknown][] = [];
  for (let i = 0; i < messages.length; i += CHUNK) {
    try {
      results.push([null, await call(messages.slice(i, i + CHUNK))]);
    } catch (error) {
      results.push([error instanceof Error ? error : new Error(String(error)), null]);
    }
  }
  checkChunks(operation, messages, results);
}
