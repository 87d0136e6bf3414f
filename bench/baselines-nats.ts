// The hand-written NATS JetStream loop the harness's nats rate is divided by: the least a program does
// to move N messages through a work-queue stream with the client's own API. It shares the harness's
// batch size, publish concurrency, consumer count and message size, but skips what the harness adds:
// the send-time stamp and its decoding, the ledger, histograms, confirmed acks and dead letters.

import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import type { LoopShape } from './baselines.ts';

/**
 * js.publish of a batch, every PubAck awaited together, from `publishers` loops on one connection;
 * `consumers` connections each fetching up to `batch` from one durable pull consumer and acking every
 * message (fire and forget). Creates its own stream and deletes it. Returns msg/s, timed to the last ack.
 */
export async function rawNatsLoop(url: string, shape: LoopShape): Promise<number> {
  const stream = `bb-bench-${randomBytes(4).toString('hex')}_raw`;
  const producer = await connect({ servers: url });
  const connections = [producer];
  const jsm = await jetstreamManager(producer);
  try {
    await jsm.streams.add({ name: stream, subjects: [stream], retention: RetentionPolicy.Workqueue });
    await jsm.consumers.add(stream, { durable_name: 'work', ack_policy: AckPolicy.Explicit, max_ack_pending: -1 });
    const consumers = await Promise.all(
      Array.from({ length: shape.consumers }, async () => {
        const nc = await connect({ servers: url });
        connections.push(nc);
        return jetstream(nc).consumers.get(stream, 'work');
      }),
    );
    const js = jetstream(producer);
    const padding = 'x'.repeat(shape.payloadBytes);
    let next = 0;
    let acked = 0;
    const started = performance.now();
    let finished = started;
    const deadline = started + shape.timeoutMs;
    const publish = async (): Promise<void> => {
      while (next < shape.messages && performance.now() < deadline) {
        const first = next;
        const count = Math.min(shape.batch, shape.messages - first);
        next += count;
        const acks: Promise<unknown>[] = [];
        for (let k = 0; k < count; k++) {
          const index = String(first + k);
          acks.push(js.publish(stream, index + padding.slice(index.length)));
        }
        await Promise.all(acks);
      }
    };
    const consume = async (consumer: (typeof consumers)[number]): Promise<void> => {
      while (acked < shape.messages && performance.now() < deadline) {
        const messages = await consumer.fetch({ max_messages: shape.batch, expires: 1_000 });
        for await (const message of messages) {
          message.ack();
          if (++acked >= shape.messages) finished = performance.now();
        }
      }
    };
    await Promise.all([...Array.from({ length: shape.publishers }, publish), ...consumers.map(consume)]);
    if (acked < shape.messages) throw new Error(`raw nats loop moved ${acked} of ${shape.messages} before its time ran out`);
    return shape.messages / ((finished - started) / 1000);
  } finally {
    await jsm.streams.delete(stream).catch(() => undefined);
    await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
  }
}
