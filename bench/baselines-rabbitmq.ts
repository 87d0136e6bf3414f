// The hand-written RabbitMQ loop the harness's rabbitmq rate is divided by: the least a program does to
// move N messages through one quorum queue with the guarantees the adapter keeps (persistent messages,
// publisher confirms awaited per batch, manual acks), with the harness's batch, publishers, consumers and
// message size. It skips what the harness adds: the send-time stamp, the ledger, histograms, depth.
//
// LIMITATION: acks go out as one basic.ack (multiple) per `batch` deliveries a consumer received, the
// cheapest a batch consumer can do; what each holds under a batch is acked when the last message arrives.

import { randomBytes } from 'node:crypto';
import { connect, type ConsumeMessage } from 'amqplib';
import type { LoopShape } from './baselines.ts';

/** Publishes from `publishers` loops on one confirm channel, consumes on `consumers` connections with prefetch = batch. Returns msg/s. */
export async function rawRabbitmqLoop(url: string, shape: LoopShape): Promise<number> {
  const queue = `bb-bench-${randomBytes(4).toString('hex')}-raw-rabbitmq`;
  const producer = await connect(url);
  const consumers = await Promise.all(Array.from({ length: shape.consumers }, () => connect(url)));
  try {
    const publishing = await producer.createConfirmChannel();
    await publishing.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    const padding = 'x'.repeat(shape.payloadBytes);
    let next = 0;
    let acked = 0;
    let finish: () => void = () => undefined;
    const allAcked = new Promise<void>((resolve) => (finish = resolve));
    const started = performance.now();
    const deadline = started + shape.timeoutMs;

    let received = 0;
    const flushes: (() => void)[] = [];
    for (const connection of consumers) {
      const channel = await connection.createChannel();
      await channel.prefetch(shape.batch);
      let pending = 0;
      let last: ConsumeMessage | undefined;
      const flush = (): void => {
        if (last === undefined) return;
        channel.ack(last, true);
        acked += pending;
        pending = 0;
        last = undefined;
        if (acked >= shape.messages) finish();
      };
      flushes.push(flush);
      await channel.consume(queue, (message: ConsumeMessage | null) => {
        if (message === null) return;
        pending++;
        received++;
        last = message;
        if (pending === shape.batch) flush();
        // The last message in: every consumer acks what it holds.
        if (received >= shape.messages) for (const each of flushes) each();
      });
    }

    const publish = async (): Promise<void> => {
      while (next < shape.messages && performance.now() < deadline) {
        const first = next;
        const count = Math.min(shape.batch, shape.messages - first);
        next += count;
        await new Promise<void>((resolve, reject) => {
          let left = count;
          const confirmed = (error: unknown): void => {
            if (error) reject(new Error('a publish was refused'));
            else if (--left === 0) resolve();
          };
          for (let k = 0; k < count; k++) {
            const index = String(first + k);
            publishing.publish('', queue, Buffer.from(index + padding.slice(index.length)), { persistent: true }, confirmed);
          }
        });
      }
    };
    const timer = setTimeout(finish, shape.timeoutMs);
    await Promise.all([...Array.from({ length: shape.publishers }, publish), allAcked]);
    clearTimeout(timer);
    if (acked < shape.messages) throw new Error(`raw rabbitmq loop moved ${acked} of ${shape.messages} before its time ran out`);
    const rate = shape.messages / ((performance.now() - started) / 1000);
    await publishing.deleteQueue(queue);
    return rate;
  } finally {
    await Promise.all([producer, ...consumers].map((connection) => connection.close().catch(() => undefined)));
  }
}
