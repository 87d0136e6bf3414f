// redis-list `simple`: the seeds' queue as it is. RPUSH to publish, LPOP to receive (BLPOP to wait);
// the pop is the ack, so a consumer that dies with messages in hand loses them (at-most-once).
//
// LIMITATION: no delay, no visibility timeout, no dead letters; a nack pushes the bodies back at once.

import type { OutgoingMessage, QueueDepth, ReceivedMessage } from '../src/broker.ts';
import { checkPipeline } from './redis-kit.ts';
import { CHUNK, blockSeconds, settleInChunks, type ListContext, type ListMode, type QueueKeys } from './redis-list-mode.ts';

export function simpleMode(context: ListContext): ListMode {
  const { redis, blocking, legacy } = context;

  async function pop(key: string, count: number): Promise<string[]> {
    if (!legacy) return (await redis.lpop(key, count)) ?? [];
    // Before 6.2 LPOP takes no count: read and trim in one transaction instead.
    const replies = checkPipeline(await redis.multi().lrange(key, 0, count - 1).ltrim(key, count, -1).exec());
    return replies[0] as string[];
  }

  return {
    async publish(keys: QueueKeys, messages: readonly OutgoingMessage[]): Promise<void> {
      // No delays here: the kit refuses them, as capabilities.delay is false.
      const bodies = new Array<string>(messages.length);
      for (let i = 0; i < messages.length; i++) bodies[i] = messages[i]!.body;
      if (bodies.length <= CHUNK) {
        await redis.rpush(keys.ready, ...bodies);
        return;
      }
      const pipeline = redis.pipeline();
      for (let i = 0; i < bodies.length; i += CHUNK) pipeline.rpush(keys.ready, ...bodies.slice(i, i + CHUNK));
      checkPipeline(await pipeline.exec());
    },

    async receive(keys: QueueKeys, _spec, maxMessages: number, waitMs: number): Promise<ReceivedMessage[]> {
      let bodies = await pop(keys.ready, maxMessages);
      if (bodies.length === 0) {
        if (!(waitMs > 0)) return [];
        const popped = await blocking.blpop(keys.ready, blockSeconds(legacy, waitMs));
        if (popped === null) return [];
        bodies = maxMessages > 1 ? await pop(keys.ready, maxMessages - 1) : [];
        bodies.unshift(popped[1]);
      }
      const messages = new Array<ReceivedMessage>(bodies.length);
      for (let i = 0; i < bodies.length; i++) messages[i] = { body: bodies[i]!, receiveCount: 1, receipt: '' };
      return messages;
    },

    // LPOP already removed them.
    async ack(): Promise<void> {},

    // No delay support: the bodies go back at once (capabilities.nackDelay is false).
    async nack(keys: QueueKeys, _spec, messages: readonly ReceivedMessage[]): Promise<void> {
      await settleInChunks('nack', messages, (chunk) => redis.rpush(keys.ready, ...chunk.map((message) => message.body)));
    },

    async depth(keys: QueueKeys): Promise<QueueDepth> {
      return { ready: await redis.llen(keys.ready), inFlight: 0, delayed: 0, dead: 0 };
    },
  };
}
