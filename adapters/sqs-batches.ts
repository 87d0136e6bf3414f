// SQS batch requests (SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch) and SNS
// PublishBatch, of up to 10 entries: chunks sent at once or in order, entries that fail inside a batch retried with back-off, and
// the outcome told as how many failed and why, or which of an ack's or nack's messages were settled.
//
// LIMITATION: retried entries are those SQS says were not the sender's fault; a whole request that
// fails is retried by the SDK alone (maxAttempts), never here.

import type { BatchResultErrorEntry } from '@aws-sdk/client-sqs';
import type { BatchResultErrorEntry as SnsBatchResultErrorEntry } from '@aws-sdk/client-sns';
import { BrokerError, PartialSettleError, type ReceivedMessage } from '../src/broker.ts';
import { backoffMs, sleep } from './kit/index.ts';
import { ADAPTER, MAX_BATCH_ENTRIES, type SqsConnection } from './sqs-connection.ts';

/** Attempts for entries that fail inside a batch (the whole request has its own SDK retries). */
const BATCH_ATTEMPTS = 5;
const BATCH_BACKOFF_MS = 50;

/** One batched operation on one queue. */
export interface BatchCall<E> {
  readonly operation: string;
  /** The queue's SQS name (or the topic's SNS name), for messages. */
  readonly name: string;
  /** What `name` names; default `queue`. */
  readonly kind?: 'queue' | 'topic';
  /** What an entry is, for messages: `messages`, `deletes`, `visibility changes`. */
  readonly what: string;
  /** One chunk after another, none after one with failed entries: a FIFO publish, so no group's order breaks. */
  readonly inOrder?: boolean;
  /** The messages an ack or nack settles, chunked as chunkEntries does. */
  readonly settles?: readonly ReceivedMessage[];
  /** Sends one request; returns the entries that failed in it. */
  send(entries: E[]): Promise<(BatchResultErrorEntry | SnsBatchResultErrorEntry)[]>;
}

/**
 * Sends every chunk at once (or in order, with `inOrder`); entries that fail inside a batch are retried
 * (those not the sender's fault: up to BATCH_ATTEMPTS with back-off). Rejects once all chunks settled,
 * with how many entries failed; a whole request that fails rejects with its own error. With `settles`
 * (the messages of an ack or nack, chunked as chunkEntries does), a failure after which some entries
 * did succeed rejects with a PartialSettleError listing those messages.
 */
export async function sendBatches<E extends { Id: string | undefined }>(
  connection: SqsConnection,
  chunks: readonly E[][],
  call: BatchCall<E>,
): Promise<void> {
  const { operation, name, what, send, settles, kind = 'queue' } = call;
  // Per chunk, the Ids of the entries that succeeded, filled as the answers come (also when a later retry fails whole).
  const done = chunks.map(() => new Set<string>());
  const results = call.inOrder
    ? await settleInOrder(chunks, (chunk, i) => sendWithRetry(chunk, send, done[i]!), (failedEntries) => failedEntries.length > 0)
    : await Promise.allSettled(chunks.map((chunk, i) => sendWithRetry(chunk, send, done[i]!)));
  let failed = 0;
  let total = 0;
  let first: BatchResultErrorEntry | undefined;
  let rejected: BrokerError | undefined;
  for (let i = 0; i < results.length; i++) {
    const result = results[i]!;
    total += chunks[i]!.length;
    if (result.status === 'rejected') {
      rejected ??= connection.wrap(operation, name, result.reason, kind);
      continue;
    }
    failed += result.value.length;
    first ??= result.value[0];
  }
  if (rejected === undefined && first === undefined) return;
  let problem: string;
  if (rejected !== undefined) {
    if (settles === undefined) throw rejected;
    problem = rejected.message.slice(`${ADAPTER} ${operation}: `.length);
  } else {
    let unsent = 0;
    for (let i = results.length; i < chunks.length; i++) unsent += chunks[i]!.length;
    problem =
      `${kind} ${name}: ${failed} of ${total} ${what} failed (first: ${first!.Code ?? 'unknown'}: ${first!.Message ?? ''})` +
      (unsent > 0 ? `; the ${unsent} after them were not sent, to keep each group's order` : '');
  }
  const settled: ReceivedMessage[] = [];
  if (settles !== undefined) {
    for (let i = 0; i < chunks.length; i++) {
      for (const entry of chunks[i]!) if (done[i]!.has(entry.Id!)) settled.push(settles[i * MAX_BATCH_ENTRIES + Number(entry.Id)]!);
    }
  }
  if (settled.length === 0) throw rejected ?? new BrokerError(ADAPTER, operation, problem);
  throw new PartialSettleError(ADAPTER, operation, `${problem}; the other ${settled.length} succeeded`, settled, {
    cause: rejected?.cause,
  });
}

/**
 * Runs `run` over the chunks one after the other, stopping at the first rejection or at the first
 * result `stopAfter` picks (a FIFO chunk with failed entries: sending the next one would put later
 * messages of a group ahead of the ones that failed).
 */
async function settleInOrder<E, R>(
  chunks: readonly E[],
  run: (chunk: E, index: number) => Promise<R>,
  stopAfter: (result: R) => boolean,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = [];
  for (const [index, chunk] of chunks.entries()) {
    try {
      const value = await run(chunk, index);
      results.push({ status: 'fulfilled', value });
      if (stopAfter(value)) break;
    } catch (reason) {
      results.push({ status: 'rejected', reason });
      break;
    }
  }
  return results;
}

/**
 * One batch call, retrying the entries that failed through no fault of the sender; returns those that
 * still fail. Adds the Id of every entry that succeeded to `done` as each answer comes.
 */
async function sendWithRetry<E extends { Id: string | undefined }>(
  entries: E[],
  send: (entries: E[]) => Promise<BatchResultErrorEntry[]>,
  done: Set<string>,
): Promise<BatchResultErrorEntry[]> {
  const permanent: BatchResultErrorEntry[] = [];
  let pending = entries;
  for (let attempt = 1; ; attempt++) {
    const failed = await send(pending);
    const failedIds = new Set(failed.map((entry) => entry.Id));
    for (const entry of pending) if (!failedIds.has(entry.Id)) done.add(entry.Id!);
    if (failed.length === 0) return permanent;
    const retry: BatchResultErrorEntry[] = [];
    for (const entry of failed) (entry.SenderFault ? permanent : retry).push(entry);
    if (retry.length === 0) return permanent;
    if (attempt >= BATCH_ATTEMPTS) return [...permanent, ...retry];
    const ids = new Set(retry.map((entry) => entry.Id));
    pending = pending.filter((entry) => ids.has(entry.Id));
    await sleep(backoffMs(attempt, BATCH_BACKOFF_MS));
  }
}

export function chunkEntries<E>(messages: readonly ReceivedMessage[], entry: (message: ReceivedMessage, id: string) => E): E[][] {
  const chunks: E[][] = [];
  for (let start = 0; start < messages.length; start += MAX_BATCH_ENTRIES) {
    const chunk: E[] = [];
    const end = Math.min(start + MAX_BATCH_ENTRIES, messages.length);
    for (let i = start; i < end; i++) chunk.push(entry(messages[i]!, String(i - start)));
    chunks.push(chunk);
  }
  return chunks;
}
