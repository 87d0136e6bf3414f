// The hand-written BullMQ loop the harness's bullmq rate is divided by: the least a program does to move N
// jobs through BullMQ with the calls the adapter makes (Queue.addBulk; a Worker fetching by hand with a lock
// token, the first fetch blocking and the rest of a batch not; moveToCompleted without fetching the next,
// completed jobs removed). The harness's own run adds the send-time stamp, the ledger and histograms.
//
// LIMITATION: like the adapter it fetches a batch as one call per job, all at once: once the queue runs dry
// some of them find nothing, which a loop that knew the count could skip. Bodies are distinct strings, as in
// bench/baselines.ts.

import { randomBytes } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { LoopShape } from './baselines.ts';

/** addBulk batches from `publishers` loops, `consumers` Workers fetching and completing by hand. Returns msg/s, timed to the last completion. */
export async function rawBullmqLoop(url: string, shape: LoopShape): Promise<number> {
  const prefix = `bb-bench-${randomBytes(4).toString('hex')}`;
  const name = 'raw-bullmq';
  // One connection for the Queue and the Workers' commands; BullMQ duplicates it for each blocking wait.
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection: redis, prefix });
  const workers = Array.from(
    { length: shape.consumers },
    () => new Worker<string>(name, null, { connection: redis, prefix, autorun: false, removeOnComplete: { count: 0 }, drainDelay: 0.1 }),
  );
  const padding = 'x'.repeat(shape.payloadBytes);
  let next = 0;
  let completed = 0;
  try {
    await Promise.all([queue.waitUntilReady(), ...workers.map((worker) => worker.waitUntilReady())]);
    const started = performance.now();
    let finished = started;
    const deadline = started + shape.timeoutMs;
    const publish = async (): Promise<void> => {
      while (next < shape.messages && performance.now() < deadline) {
        const first = next;
        const count = Math.min(shape.batch, shape.messages - first);
        next += count;
        const jobs = new Array<{ name: string; data: string }>(count);
        for (let k = 0; k < count; k++) {
          const index = String(first + k);
          jobs[k] = { name: 'm', data: index + padding.slice(index.length) };
        }
        await queue.addBulk(jobs);
      }
    };
    const consume = async (worker: Worker<string>, c: number): Promise<void> => {
      for (let receive = 0; completed < shape.messages && performance.now() < deadline; receive++) {
        const token = `${c}.${receive}`;
        const head = await worker.getNextJob(token, { block: true });
        if (head === undefined) continue;
        const rest = await Promise.all(Array.from({ length: shape.batch - 1 }, () => worker.getNextJob(token, { block: false })));
        const jobs = [head, ...rest.filter((job): job is Job<string> => job !== undefined)];
        await Promise.all(jobs.map((job) => job.moveToCompleted(undefined, token, false)));
        completed += jobs.length;
        if (completed >= shape.messages) finished = performance.now();
      }
    };
    await Promise.all([...Array.from({ length: shape.publishers }, publish), ...workers.map(consume)]);
    if (completed < shape.messages) throw new Error(`raw BullMQ loop moved ${completed} of ${shape.messages} before its time ran out`);
    return shape.messages / ((finished - started) / 1000);
  } finally {
    await Promise.all(workers.map((worker) => worker.close(true)));
    await queue.obliterate({ force: true });
    await queue.close();
    await redis.quit();
  }
}
