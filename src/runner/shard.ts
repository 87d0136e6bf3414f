// How a run is cut into workers' shares, and the names its parts go by: worker I of N owns an equal
// slice of the message indices (the first `messages % N` one more) and the same slice of --rate;
// every worker derives the run's namespace and body token from the run id alone, so workers started
// anywhere agree on both without talking to each other.
//
// LIMITATION: the run id is the only thing that ties workers together: two runs given the same id
// share queues, tokens and a parts folder (the worker refuses a shard whose part or journal exists).

import { createHash } from 'node:crypto';
import { RUN_TOKEN_LENGTH } from '../pipeline/message.ts';

/** A run id: 1 to 40 letters, digits, '-' or '_' (it names queues and files). */
export const RUN_ID_PATTERN = /^[A-Za-z0-9_-]{1,40}$/;
/** Most workers one run may have. */
export const MAX_SHARDS = 1024;

/** Worker `shard`'s indices of a run of `messages` over `shards`: [first, end). */
export function shardRange(messages: number, shards: number, shard: number): { first: number; end: number } {
  const size = Math.floor(messages / shards);
  const extra = messages % shards;
  const first = shard * size + Math.min(shard, extra);
  return { first, end: first + size + (shard < extra ? 1 : 0) };
}

/** The token every body of run `runId` carries, the same in every worker: 16 hex characters of its SHA-256. */
export function runTokenOf(runId: string): string {
  return createHash('sha256').update(`brokerbench run ${runId}`).digest('hex').slice(0, RUN_TOKEN_LENGTH);
}

/** The namespace every worker of run `runId` prefixes its queues with. */
export function namespaceOf(runId: string): string {
  return `bb-${runId}`;
}

/** `part-2-of-4.json`: what worker 2 of 4 writes when it ends. */
export function partFileName(shard: number, shards: number): string {
  return `part-${shard}-of-${shards}.json`;
}

/** `part-2-of-4.journal`: what worker 2 of 4 keeps while it runs, for the merge if it dies. */
export function journalFileName(shard: number, shards: number): string {
  return `part-${shard}-of-${shards}.journal`;
}

/** Written by worker 0 once the queues are prepared; the others wait for it. */
export const QUEUES_READY_FILE = 'queues-ready.json';

/** A part's or journal's file name read back: its shard and shard count, or undefined. */
export function parsePartName(name: string): { shard: number; shards: number; kind: 'part' | 'journal' } | undefined {
  const match = /^part-(\d{1,4})-of-(\d{1,4})\.(json|journal)$/.exec(name);
  if (!match) return undefined;
  return { shard: Number(match[1]), shards: Number(match[2]), kind: match[3] === 'json' ? 'part' : 'journal' };
}
