// redis-list `reliable` (at-least-once): a receive moves messages from the ready list to an in-flight
// ZSET scored by visibility deadline, in one script that also promotes due delays and requeues or
// dead-letters expired deliveries (adapters/lua/list-*.lua say which key holds what).
//
// Ready, delayed and dead entries are envelopes "id:receiveCount:body": id is unique per message and
// has no ':', receiveCount is how many times the message was delivered so far (0 when published). In
// flight, the ZSET holds only the receipt "id:receiveCount" and a hash holds the body by receipt, so an
// ack or nack sends a few bytes per message, not the body back; the count in the receipt keeps a late
// ack of a delivery that timed out and was delivered again from removing the new copy.
//
// LIMITATION: delays and deadlines use the client's clock (Date.now()); hosts whose clocks disagree
// move each other's deadlines by the difference.

import type { OutgoingMessage, QueueDepth, QueueSpec, ReceivedMessage } from '../src/broker.ts';
import { checkPipeline, loadLua, runScript, type ScriptArg } from './redis-kit.ts';
import { CHUNK, blockSeconds, settleInChunks, type ListContext, type ListMode, type QueueKeys } from './redis-list-mode.ts';

/** Longest publish delay accepted: 7 days. */
export const MAX_DELAY_MS = 7 * 24 * 3600 * 1000;
/** Most delayed and most expired in-flight entries one receive call moves, so a backlog never stalls it. */
const PROMOTE_LIMIT = 1_000;

const RECEIVE = loadLua('bbListReceive', 'list-receive.lua');
const ACK = loadLua('bbListAck', 'list-ack.lua');
const NACK = loadLua('bbListNack', 'list-nack.lua');
/** Defined on every command connection of the adapter. */
export const RELIABLE_SCRIPTS = [RECEIVE, ACK, NACK] as const;

/** Parses an envelope "id:receiveCount:body". Exported for tests and tools. */
export function parseEnvelope(envelope: string): { id: string; receiveCount: number; body: string } {
  const a = envelope.indexOf(':');
  const b = envelope.indexOf(':', a + 1);
  return { id: envelope.slice(0, a), receiveCount: Number(envelope.slice(a + 1, b)), body: envelope.slice(b + 1) };
}

export function reliableMode(context: ListContext): ListMode {
  const { redis, blocking, legacy } = context;

  function waitForReady(key: string, waitMs: number): Promise<unknown> {
    const seconds = blockSeconds(legacy, waitMs);
    return legacy ? blocking.brpoplpush(key, key, seconds) : blocking.blmove(key, key, 'LEFT', 'LEFT', seconds);
  }

  return {
    async publish(keys: QueueKeys, messages: readonly OutgoingMessage[]): Promise<void> {
      const count = messages.length;
      const ready = new Array<string>(count);
      let readyCount = 0;
      let delayed: ScriptArg[] | undefined;
      const now = Date.now();
      for (let i = 0; i < count; i++) {
        const message = messages[i]!;
        const envelope = `${context.nextId()}:0:${message.body}`;
        const delayMs = message.delayMs;
        if (delayMs !== undefined && delayMs > 0) {
          (delayed ??= []).push(now + delayMs, envelope);
        } else {
          ready[readyCount++] = envelope;
        }
      }
      ready.length = readyCount;
      if (delayed === undefined && readyCount <= CHUNK) {
        await redis.rpush(keys.ready, ...ready);
        return;
      }
      const pipeline = redis.pipeline();
      for (let i = 0; i < readyCount; i += CHUNK) pipeline.rpush(keys.ready, ...ready.slice(i, i + CHUNK));
      if (delayed !== undefined) {
        for (let i = 0; i < delayed.length; i += 2 * CHUNK) pipeline.zadd(keys.delayed, ...delayed.slice(i, i + 2 * CHUNK));
      }
      checkPipeline(await pipeline.exec());
    },

    async receive(keys: QueueKeys, spec: Omit<QueueSpec, 'name'>, maxMessages: number, waitMs: number): Promise<ReceivedMessage[]> {
      const deadline = Date.now() + Math.max(0, waitMs);
      const scriptKeys = [keys.ready, keys.inflight, keys.delayed, keys.dead, keys.bodies];
      for (;;) {
        const reply = await runScript<string[]>(redis, RECEIVE, scriptKeys, [
          Date.now(), maxMessages, spec.visibilityTimeoutMs, spec.maxReceives, PROMOTE_LIMIT, `${context.nextId()}r.`,
        ]);
        if (reply.length > 1) return toMessages(reply);
        const now = Date.now();
        let waitForMs = deadline - now;
        if (waitForMs <= 0) return [];
        const nextDue = reply[0] ? Number(reply[0]) : Number.NaN;
        if (nextDue - now < waitForMs) waitForMs = nextDue - now;
        // Wake when anything lands in ready (an atomic peek that leaves the list as it is), or when the
        // earliest delayed or in-flight entry falls due; then run the script again.
        if (waitForMs > 0) await waitForReady(keys.ready, waitForMs);
        if (context.closing()) return [];
      }
    },

    async ack(keys: QueueKeys, messages: readonly ReceivedMessage[]): Promise<void> {
      const scriptKeys = [keys.inflight, keys.bodies];
      await settleInChunks('ack', messages, (chunk) => runScript<number>(redis, ACK, scriptKeys, receipts(chunk)));
    },

    async nack(keys: QueueKeys, spec: Omit<QueueSpec, 'name'>, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
      const due = retryDelayMs > 0 ? Date.now() + retryDelayMs : 0;
      const scriptKeys = [keys.ready, keys.inflight, keys.delayed, keys.dead, keys.bodies];
      await settleInChunks('nack', messages, (chunk) =>
        runScript<number>(redis, NACK, scriptKeys, [due, spec.maxReceives, ...receipts(chunk)]),
      );
    },

    async depth(keys: QueueKeys): Promise<QueueDepth> {
      const replies = checkPipeline(await redis.pipeline().llen(keys.ready).zcard(keys.inflight).zcard(keys.delayed).llen(keys.dead).exec());
      const [ready, inFlight, delayed, dead] = replies.map(Number) as [number, number, number, number];
      return { ready, inFlight, delayed, dead };
    },
  };
}

function receipts(messages: readonly ReceivedMessage[]): string[] {
  const out = new Array<string>(messages.length);
  for (let i = 0; i < messages.length; i++) out[i] = messages[i]!.receipt;
  return out;
}

/** The script's pairs of receipt "id:receiveCount" and body as messages. */
function toMessages(reply: string[]): ReceivedMessage[] {
  const messages = new Array<ReceivedMessage>((reply.length - 1) / 2);
  for (let i = 1, m = 0; i < reply.length; i += 2, m++) {
    const receipt = reply[i]!;
    let receiveCount = 0;
    for (let j = receipt.lastIndexOf(':') + 1; j < receipt.length; j++) receiveCount = receiveCount * 10 + receipt.charCodeAt(j) - 48;
    messages[m] = { body: reply[i + 1]!, receiveCount, receipt };
  }
  return messages;
}
