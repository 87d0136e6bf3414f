// Hand-written loops that do the least a program can do to move N messages through a broker: the
// baselines the harness's own rate is divided by. They share the harness's batch size, publish
// concurrency and consumer count, but skip what the harness adds: message encoding, the ledger,
// histograms, acks and delivery guarantees.

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export interface LoopShape {
  readonly messages: number;
  readonly payloadBytes: number;
  readonly batch: number;
  readonly publishers: number;
  readonly consumers: number;
  /** Give up after this long, ms: every load loop is bounded in time. */
  readonly timeoutMs: number;
}

/** RPUSH batches from `publishers` loops, `LPOP key count` from `consumers` connections. Returns msg/s. */
export async function rawRedisListLoop(url: string, shape: LoopShape): Promise<number> {
  const key = `bb-bench-${randomBytes(4).toString('hex')}:raw-list`;
  const producer = new Redis(url, { lazyConnect: true });
  await producer.connect();
  const consumers = await Promise.all(
    Array.from({ length: shape.consumers }, async () => {
      const connection = producer.duplicate({ lazyConnect: true });
      await connection.connect();
      return connection;
    }),
  );
  const body = 'x'.repeat(shape.payloadBytes);
  const bodies = Array.from({ length: shape.batch }, () => body);
  let next = 0;
  let popped = 0;
  const started = performance.now();
  const deadline = started + shape.timeoutMs;
  const publish = async (): Promise<void> => {
    while (next < shape.messages && performance.now() < deadline) {
      const count = Math.min(shape.batch, shape.messages - next);
      next += count;
      await producer.rpush(key, ...(count === shape.batch ? bodies : bodies.slice(0, count)));
    }
  };
  const consume = async (connection: Redis): Promise<void> => {
    while (popped < shape.messages && performance.now() < deadline) {
      const items = await connection.lpop(key, shape.batch);
      if (items && items.length > 0) popped += items.length;
      else await connection.blpop(key, 0.05).then((item) => { if (item) popped += 1; });
    }
  };
  try {
    await Promise.all([...Array.from({ length: shape.publishers }, publish), ...consumers.map(consume)]);
    if (popped < shape.messages) throw new Error(`raw redis-list loop moved ${popped} of ${shape.messages} before its time ran out`);
    return shape.messages / ((performance.now() - started) / 1000);
  } finally {
    await producer.del(key);
    await Promise.all([producer, ...consumers].map((connection) => connection.quit()));
  }
}
