// Micro-benchmarks of the per-message hot path: what the harness itself costs per message, to set
// against broker round trips. Run directly with `npx tsx bench/micro.ts`.
// LIMITATION: single-threaded, warm JIT, tiny working sets; these are upper bounds on the harness's
// own speed, not predictions of a run (no I/O, no GC pressure from real payloads, no contention).

import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Bench } from 'tinybench';
import { createLatencyHistogram, recordLatency } from '../src/metrics/histogram.ts';
import { Ledger } from '../src/metrics/ledger.ts';
import { Timeline } from '../src/metrics/timeline.ts';
import { FOREIGN, MessageDecoder, MessageEncoder, newRunToken } from '../src/pipeline/message.ts';
import type { SubscriberSink } from '../src/pipeline/sink.ts';
import { JournalReader, JournalWriter } from '../src/runner/journal.ts';

export interface MicroResult {
  name: string;
  opsPerSec: number;
  nsPerOp: number;
}

/** Operations per task call: one op is a few ns, far below the timer's resolution, so time a batch. */
const BATCH = 1000;
const PAYLOAD_BYTES = 200;
const LEDGER_SIZE = 1 << 22;

// Results land here so the JIT cannot drop the work as dead code.
let sink = 0;

export async function runMicroBench(timeMs = 200): Promise<MicroResult[]> {
  const bench = new Bench({ time: timeMs, warmupTime: Math.min(100, timeMs) });

  const runToken = newRunToken();
  const encoder = new MessageEncoder(PAYLOAD_BYTES, runToken);
  const decoder = new MessageDecoder(runToken);
  const t0 = 12_345_678_901.234;
  // Flat, as a body read off a socket is (the encoder's own result is a rope of its parts).
  const body = Buffer.from(encoder.encode(1_234_567, t0)).toString();
  const object = { i: 1_234_567, t: t0, p: '+5511999999999', m: 'x'.repeat(PAYLOAD_BYTES - 60) };
  let n = 0;

  // As in a run: a publish batch of 100 shares one send time.
  bench.add(`MessageEncoder.encode (${PAYLOAD_BYTES} B, 100 per send time)`, () => {
    for (let k = 0; k < BATCH; k++) sink += encoder.encode(n++, t0 + Math.floor(k / 100)).length;
  });
  bench.add('MessageDecoder.decode (run token checked)', () => {
    for (let k = 0; k < BATCH; k++) {
      const stamp = decoder.decode(body);
      sink += stamp === undefined || stamp === FOREIGN ? 0 : stamp.i;
    }
  });
  bench.add('JSON.stringify + parse (baseline)', () => {
    for (let k = 0; k < BATCH; k++) {
      object.i = k;
      sink += (JSON.parse(JSON.stringify(object)) as { i: number }).i;
    }
  });

  const histogram = createLatencyHistogram();
  // A spread of latencies from 10 µs to ~2 s so records touch many buckets, not one hot line.
  const latencies = Float64Array.from({ length: 4096 }, (_, k) => 10 * Math.exp((k % 1024) / 85));
  bench.add('recordLatency', () => {
    for (let k = 0; k < BATCH; k++) recordLatency(histogram, latencies[(n++) & 4095]!);
  });

  let ledger = new Ledger(LEDGER_SIZE);
  let next = 0;
  bench.add('Ledger markDelivered + markCompleted', () => {
    for (let k = 0; k < BATCH; k++) {
      // Fresh indices every time, as in a run; a new ledger once this one is full.
      if (next === LEDGER_SIZE) {
        ledger = new Ledger(LEDGER_SIZE);
        next = 0;
      }
      if (ledger.markDelivered(next)) ledger.markCompleted(next);
      next++;
    }
  });

  const timeline = new Timeline(0);
  let atUs = 0;
  bench.add('Timeline add', () => {
    for (let k = 0; k < BATCH; k++) {
      timeline.add('completed', 1, atUs);
      atUs = (atUs + 7) % 3_600_000_000; // an hour of seconds at most
    }
  });

  // A consumer process's journal (src/runner/journal.ts): per message, as a child writes it for
  // batches of 10 (deliveries, ack intent, outcome: three writeSync calls per batch), and as the
  // parent reads and books it. The file is a real one in the temp directory, as in a run.
  const dir = mkdtempSync(path.join(tmpdir(), 'brokerbench-micro-'));
  const file = path.join(dir, 'journal');
  writeFileSync(file, '');
  const writer = new JournalWriter(file, () => t0);
  const consumer = writer.sink(0);
  const indices = new Array<number>(10);
  let written = 0;
  bench.add('journal append (per message, batches of 10)', () => {
    for (let b = 0; b < BATCH; b += 10) {
      consumer.receiveCall(false);
      for (let k = 0; k < 10; k++) {
        indices[k] = n + k;
        consumer.delivered(n + k, t0 + k, t0 + 500, 1);
      }
      consumer.received?.();
      const id = consumer.settling!('ack', indices, 10);
      consumer.settled!(id, true, t0 + 900);
      n += 10;
    }
    // Keep the file small: appends go on at its (new) end.
    if (++written % 1000 === 0) truncateSync(file);
  });
  const readFile = path.join(dir, 'read');
  writeFileSync(readFile, '');
  const filler = new JournalWriter(readFile, () => t0);
  const filling = filler.sink(0);
  for (let b = 0; b < BATCH; b += 10) {
    filling.receiveCall(false);
    for (let k = 0; k < 10; k++) filling.delivered(b + k, t0 + k, t0 + 500, 1);
    filling.received?.();
    filling.settled!(filling.settling!('ack', [b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9], 10), true, t0 + 900);
  }
  filler.close();
  const booking: SubscriberSink = {
    delivered: (index) => void (sink += index),
    malformed: () => undefined,
    foreign: () => undefined,
    executed: () => undefined,
    completed: (index) => void (sink += index),
    failed: () => undefined,
    receiveCall: () => undefined,
    error: () => undefined,
  };
  bench.add('journal read + book (per message)', () => {
    const reader = new JournalReader(readFile, 1);
    reader.start(booking);
    reader.end();
  });

  await bench.run();
  writer.close();
  rmSync(dir, { recursive: true, force: true });
  if (sink === Number.MIN_VALUE) console.log(sink);

  return bench.tasks.map((task) => {
    const result = task.result;
    if (result.state !== 'completed') {
      const reason = result.state === 'errored' ? `: ${String(result.error)}` : '';
      throw new Error(`micro-bench: task "${task.name}" ended ${result.state}${reason}`);
    }
    const nsPerOp = (result.period * 1e6) / BATCH; // period is ms per task call
    return { name: task.name, opsPerSec: 1e9 / nsPerOp, nsPerOp };
  });
}

/** A fixed-width table of the results, for a terminal or a README. */
export function formatMicroBench(results: readonly MicroResult[]): string {
  const width = Math.max(...results.map((r) => r.name.length), 4);
  const lines = [`${'task'.padEnd(width)}  ${'ops/s'.padStart(14)}  ${'ns/op'.padStart(9)}`];
  for (const r of results) {
    const ops = Math.round(r.opsPerSec).toLocaleString('en-US');
    lines.push(`${r.name.padEnd(width)}  ${ops.padStart(14)}  ${r.nsPerOp.toFixed(1).padStart(9)}`);
  }
  return lines.join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(`node ${process.version}, ${BATCH} ops per sample`);
  console.log(formatMicroBench(await runMicroBench()));
}
