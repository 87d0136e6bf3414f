// How a redis-stream handle works its consumer group: a housekeeping round (promote due delays, claim
// entries idle past the visibility timeout, dead-letter those received too often: one script), the
// XREADGROUP that waits for new entries, and the group's depth by state. redis-stream.ts drives them.
//
// LIMITATION: depth counts what follows the group's cursor with XRANGE when Redis gives no lag (entries
// deleted mid-stream, or a server before 7.0): O(entries) for a long backlog.

import { Command } from 'ioredis';
import type { QueueDepth, ReceivedMessage } from '../src/broker.ts';
import { loadLua, runScript, type RedisClient } from './redis-kit.ts';

const HOUSEKEEP = loadLua('bbStreamHousekeep', 'stream-housekeep.lua');
export const NACK = loadLua('bbStreamNack', 'stream-nack.lua');
/** Defined on every connection of the adapter. */
export const STREAM_SCRIPTS = [HOUSEKEEP, NACK] as const;

/** Most delayed entries one housekeeping round moves into the stream, so a receive never stalls Redis. */
const PROMOTE_LIMIT = 1000;
/** Least extra time a blocking read gets before the client gives up on the connection. */
const BLOCK_SLACK_MS = 1000;
/** Entries per XRANGE page when counting a backlog by hand. */
const COUNT_PAGE = 10_000;

/** The keys of one queue. */
export interface StreamKeys {
  readonly stream: string;
  readonly delayed: string;
  readonly dead: string;
}

/** Who reads: the group, this handle's consumer name in it, and its connection. */
export interface GroupReader {
  readonly redis: RedisClient;
  readonly group: string;
  readonly consumer: string;
}

/** What a housekeeping round asks for and gives back. */
export interface Housekeeping {
  readonly visibilityTimeoutMs: number;
  readonly maxReceives: number;
  readonly maxLength: number;
  /** Where this handle's XAUTOCLAIM scan goes on from ('0-0' at first). */
  readonly cursor: string;
}

export interface HousekeepingResult {
  readonly cursor: string;
  /** Earliest due time left in the delayed set (epoch ms), or Infinity. */
  readonly nextDueAtMs: number;
  /** Entries claimed for this consumer: idle past the visibility timeout, delivered again. */
  readonly claimed: ReceivedMessage[];
}

export async function housekeep(reader: GroupReader, keys: StreamKeys, round: Housekeeping, count: number, nowMs: number): Promise<HousekeepingResult> {
  const reply = await runScript<[string, string, (string | number)[]]>(
    reader.redis,
    HOUSEKEEP,
    [keys.stream, keys.delayed, keys.dead],
    [reader.group, reader.consumer, round.visibilityTimeoutMs, count, round.cursor, nowMs, PROMOTE_LIMIT, round.maxReceives, round.maxLength],
  );
  const flat = reply[2];
  const claimed = new Array<ReceivedMessage>(flat.length / 3);
  for (let i = 0, j = 0; i < flat.length; i += 3, j++) {
    claimed[j] = { receipt: flat[i] as string, body: flat[i + 1] as string, receiveCount: flat[i + 2] as number };
  }
  return { cursor: reply[0], nextDueAtMs: reply[1] === '' ? Infinity : Number(reply[1]), claimed };
}

/**
 * XREADGROUP `>`: blocks up to `blockMs` when >= 1. Such a command carries its own timeout, the block
 * plus the usual limit, so the connection-wide commandTimeout does not cut the block short.
 */
export async function readGroup(reader: GroupReader, stream: string, count: number, blockMs: number, commandTimeoutMs: number): Promise<ReceivedMessage[]> {
  const { redis, group, consumer } = reader;
  let reply: unknown;
  if (blockMs >= 1) {
    const command = new Command('xreadgroup', ['GROUP', group, consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', stream, '>'], {
      replyEncoding: 'utf8',
    });
    // Redis ends a block on its cron tick (100 ms at the default hz 10), hence at least a second of slack.
    command.setTimeout(blockMs + Math.max(commandTimeoutMs, BLOCK_SLACK_MS));
    reply = await redis.sendCommand(command);
  } else {
    reply = await redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, '>');
  }
  if (!reply) return [];
  return toMessages((reply as [string, [string, string[] | null][]][])[0]![1]);
}

/** Entries as messages: field `b` the body, `n` the receives before a nack wrote it again (absent: none). */
function toMessages(entries: [string, string[] | null][]): ReceivedMessage[] {
  const out = new Array<ReceivedMessage>(entries.length);
  let n = 0;
  for (let i = 0; i < entries.length; i++) {
    const [id, fields] = entries[i]!;
    if (!fields) continue;
    if (fields.length === 2) {
      out[n++] = { body: fields[1]!, receiveCount: 1, receipt: id };
      continue;
    }
    let body = '';
    let prior = 0;
    for (let f = 0; f + 1 < fields.length; f += 2) {
      if (fields[f] === 'b') body = fields[f + 1]!;
      else if (fields[f] === 'n') prior = Number(fields[f + 1]);
    }
    out[n++] = { body, receiveCount: 1 + prior, receipt: id };
  }
  out.length = n;
  return out;
}

/** Ready (the group's lag), in flight (its pending list), delayed and dead. */
export async function groupDepth(redis: RedisClient, keys: StreamKeys, group: string): Promise<QueueDepth> {
  const { stream, delayed, dead } = keys;
  const results = await redis.pipeline().xinfo('GROUPS', stream).xpending(stream, group).zcard(delayed).xlen(dead).xlen(stream).exec();
  if (!results) throw new Error('pipeline was discarded');
  const [infoR, pendingR, delayedR, deadR, lenR] = results;
  const delayedCount = Number(delayedR?.[1] ?? 0);
  const deadCount = Number(deadR?.[1] ?? 0);
  if (infoR?.[0] && /no such key/i.test(infoR[0].message)) return { ready: 0, inFlight: 0, delayed: delayedCount, dead: deadCount };
  for (const [error] of results) if (error) throw error;
  const inFlight = Number((pendingR?.[1] as unknown[] | undefined)?.[0] ?? 0);
  let ready: number | undefined;
  let lastDeliveredId = '0-0';
  for (const g of infoR?.[1] as unknown[][]) {
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < g.length; i += 2) fields.set(String(g[i]), g[i + 1]);
    if (fields.get('name') !== group) continue;
    lastDeliveredId = String(fields.get('last-delivered-id') ?? '0-0');
    const lag = fields.get('lag');
    if (typeof lag === 'number') ready = lag;
  }
  // Lag is null when deletions fragment the stream (or absent before Redis 7): count what follows the group's cursor.
  if (ready === undefined) ready = Number(lenR?.[1] ?? 0) === 0 ? 0 : await countAfter(redis, stream, lastDeliveredId);
  return { ready, inFlight, delayed: delayedCount, dead: deadCount };
}

async function countAfter(redis: RedisClient, stream: string, lastId: string): Promise<number> {
  let total = 0;
  let from = lastId === '0-0' ? '-' : `(${lastId}`;
  for (;;) {
    const page = (await redis.call('XRANGE', stream, from, '+', 'COUNT', COUNT_PAGE)) as [string, unknown][];
    total += page.length;
    if (page.length < COUNT_PAGE) return total;
    from = `(${page[page.length - 1]![0]}`;
  }
}
