// A worker's journal (src/runner/worker.ts): what must survive a SIGKILL of the whole worker, written
// with writeSync beside where its part will go. Its consumers' deliveries, ack intents and outcomes
// are the consumer journal's own records (src/runner/journal.ts, one JournalWriter sink per consumer,
// teed with the run's books); its publishers add a record before each publish call and one after it;
// a header says who the worker was. A worker that ends writes its part and removes the journal; the
// merge reads the journal of one that did not (readWorkerJournal) as its books up to its death.
//
// LIMITATION: as durable as the page cache, like the consumer journal. Its publish latencies, its
// harness figures but CPU, and the deliveries of a receive in transit at the kill are not in it; a
// batch refused and retried is not (publishers never retry a batch).

import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { Histogram } from 'hdr-histogram-js';
import type { BrokerCapabilities, BrokerInfo } from '../broker.ts';
import type { RunConfig } from '../config.ts';
import type { EnvironmentInfo } from '../environment.ts';
import { createLatencyHistogram, recordLatency } from '../metrics/histogram.ts';
import { reportCompleted, reportDelivered, type SubscriberSink } from '../pipeline/sink.ts';
import { RunBooks } from './books.ts';
import { JournalReader, JournalWriter } from './journal.ts';
import type { PublishJournal } from './publisher.ts';
import type { ClockReading } from './worker-clock.ts';

/** Which worker of which run: its share of the indices and of the rate, and where it ran. */
export interface WorkerIdentity {
  readonly runId: string;
  readonly shard: number;
  readonly shards: number;
  /** The indices this worker's publishers own, [first, end), and their rate (msg/s; 0 = as fast as possible). */
  readonly first: number;
  readonly end: number;
  readonly ratePerSec: number;
  readonly host: string;
  readonly pid: number;
  /** The --start-at asked for, ISO-8601; absent without one. */
  readonly startAt?: string;
}

/**
 * Extra records, one per line, beside the consumer journal's (which ignores them):
 *   W json                 the header (WorkerHeader), first
 *   G startUs              publishing began (the run's clock started)
 *   S first count          indices first … first+count-1 are about to be published
 *   P first count atUs     the broker accepted them
 *   F first count          the broker refused them
 * Every time is on the worker's reference clock (src/runner/worker-clock.ts), µs.
 */
export interface WorkerHeader extends WorkerIdentity {
  readonly runToken: string;
  readonly config: RunConfig;
  readonly broker: BrokerInfo & { readonly capabilities: BrokerCapabilities };
  readonly environment: EnvironmentInfo;
  readonly clock: ClockReading;
  /** When the worker started, ISO-8601 (wall clock). */
  readonly startedAt: string;
}

/** A worker's journal while it runs. */
export class WorkerJournal implements PublishJournal {
  readonly #fd: number;
  readonly #consumers: JournalWriter;

  /** Creates the journal at `path`; fails (EEXIST) if one is there already. */
  constructor(path: string, clock: () => number) {
    // Appending, as the consumers' writer does on its own descriptor: records of both land whole, one after another.
    this.#fd = openSync(path, 'ax');
    this.#consumers = new JournalWriter(path, clock);
  }

  header(header: WorkerHeader): void {
    writeSync(this.#fd, `W ${JSON.stringify(header)}\n`);
  }

  started(startUs: number): void {
    writeSync(this.#fd, `G ${Math.round(startUs)}\n`);
  }

  sending(first: number, count: number): void {
    writeSync(this.#fd, `S ${first} ${count}\n`);
  }

  sent(first: number, count: number, atUs: number): void {
    writeSync(this.#fd, `P ${first} ${count} ${Math.round(atUs)}\n`);
  }

  refused(first: number, count: number): void {
    writeSync(this.#fd, `F ${first} ${count}\n`);
  }

  /** Writes what is pending and this process's CPU so far: called every second, it also says the worker is alive. */
  heartbeat(usage: { userUs: number; systemUs: number; maxRssKiB: number }): void {
    this.#consumers.flush(usage);
  }

  /**
   * The sink consumer `c` reports to: every report goes to the run's `books`, and what a kill must not
   * take (deliveries, ack and nack intents and outcomes) to the journal first. `onCompleted` hears of
   * each completion's time.
   */
  consumerSink(c: number, books: SubscriberSink, onCompleted: (atUs: number) => void): SubscriberSink {
    const journal = this.#consumers.sink(c);
    return {
      delivered: (index, sentUs, receivedUs, receiveCount) => {
        journal.delivered(index, sentUs, receivedUs, receiveCount);
        books.delivered(index, sentUs, receivedUs, receiveCount);
      },
      deliveredBatch: (receivedUs, indices, sentTimes, receiveCounts) => {
        reportDelivered(journal, receivedUs, indices, sentTimes, receiveCounts);
        reportDelivered(books, receivedUs, indices, sentTimes, receiveCounts);
      },
      malformed: () => {
        journal.malformed();
        books.malformed();
      },
      foreign: () => {
        journal.foreign();
        books.foreign();
      },
      executed: (index, executionUs) => {
        journal.executed(index, executionUs);
        books.executed(index, executionUs);
      },
      completed: (index, sentUs, ackedUs) => {
        books.completed(index, sentUs, ackedUs);
        onCompleted(ackedUs);
      },
      completedBatch: (ackedUs, indices, sentTimes) => {
        reportCompleted(books, ackedUs, indices, sentTimes);
        onCompleted(ackedUs);
      },
      failed: (count, atUs, retryDelayMs) => books.failed(count, atUs, retryDelayMs),
      receiveCall: (empty) => {
        journal.receiveCall(empty);
        books.receiveCall(empty);
      },
      error: (operation, message) => {
        journal.error(operation, message);
        books.error(operation, message);
      },
      received: () => journal.received?.(),
      settling: (kind, indices, count) => journal.settling!(kind, indices, count),
      settled: (id, ok, atUs, only) => journal.settled!(id, ok, atUs, only),
    };
  }

  close(): void {
    this.#consumers.close();
    closeSync(this.#fd);
  }
}

/** A dead worker's books, as its journal tells them. */
export interface JournalBooks {
  /** Absent when it died before writing its header (it published nothing). */
  readonly header: WorkerHeader | undefined;
  /** When its publishing began, reference µs; absent when it died before. */
  readonly startUs: number | undefined;
  /** Its ledger, latencies (end-to-end and completion), counters and timeline. */
  readonly books: RunBooks | undefined;
  /** Its deliveries' end-to-end latencies, of messages it published itself and of the others' (past the warm-up). */
  readonly sameHost: Histogram;
  readonly crossHost: Histogram;
  /** Its index ranges handed to the broker with no answer when it died. */
  readonly inDoubt: [number, number][];
  /** Messages the broker accepted from it. */
  readonly published: number;
  /** Reference µs of its last accepted publish, delivery and completion (0: none). */
  readonly lastPublishUs: number;
  readonly lastDeliveryUs: number;
  readonly lastCompletionUs: number;
  /** Its CPU and peak RSS as last written. */
  readonly usage: { userUs: number; systemUs: number; maxRssKiB: number } | undefined;
  /** Its API requests as last written (brokers that count them). */
  readonly requests: { byKind: Record<string, number>; billed: number } | undefined;
}

/**
 * Reads the journal of a worker that died, to its end: its deliveries and completions booked as its
 * consumers would have (an ack sent and never answered counts as completed: if the broker did not
 * take it, the message comes back and its second completion is a duplicate, never a loss), its
 * publishes accepted, refused, in doubt (sent, no answer) and never sent.
 */
export function readWorkerJournal(path: string): JournalBooks {
  let header: WorkerHeader | undefined;
  let startUs: number | undefined;
  const sending = new Map<number, number>();
  const answered = new Set<number>();
  const refused: [number, number][] = [];
  const accepted: { count: number; atUs: number }[] = [];
  // A record torn by the kill has no newline yet: it was never written, as far as anyone knows.
  forEachLine(path, (line) => {
    const kind = line.charAt(0);
    if (kind === 'W' && header === undefined) header = JSON.parse(line.slice(2)) as WorkerHeader;
    else if (kind === 'G') startUs = Number(line.slice(2));
    else if (kind === 'S' || kind === 'P' || kind === 'F') {
      const [, first, count, atUs] = line.split(' ').map(Number) as [number, number, number, number];
      if (kind === 'S') sending.set(first, count);
      else {
        answered.add(first);
        if (kind === 'F') refused.push([first, count]);
        else accepted.push({ count, atUs });
      }
    }
  });
  const sameHost = createLatencyHistogram();
  const crossHost = createLatencyHistogram();
  if (header === undefined) {
    return { header, startUs, books: undefined, sameHost, crossHost, inDoubt: [], published: 0, lastPublishUs: 0, lastDeliveryUs: 0, lastCompletionUs: 0, usage: undefined, requests: undefined };
  }
  const { config, first, end } = header;
  const origin = startUs ?? 0;
  const books = new RunBooks(config, { nowUs: () => origin }, origin, (index, _receiveCount, sentUs, receivedUs) => {
    if (index < config.warmupMessages) return;
    recordLatency(index >= first && index < end ? sameHost : crossHost, receivedUs - sentUs);
  });
  const reader = new JournalReader(path, config.consumers);
  reader.start(books.sink());
  reader.end();
  const inDoubt: [number, number][] = [];
  for (const [from, count] of sending) if (!answered.has(from)) inDoubt.push([from, from + count]);
  for (const [from, count] of refused) for (let i = from; i < from + count; i++) books.ledger.markPublishFailed(i);
  let published = 0;
  let lastPublishUs = 0;
  for (const { count, atUs } of accepted) {
    published += count;
    books.timeline.add('published', count, atUs);
    lastPublishUs = Math.max(lastPublishUs, atUs);
  }
  books.published = published;
  books.publishFailed = refused.reduce((sum, [, count]) => sum + count, 0);
  // Indices never handed to the broker: the gaps between the batches it sent, and its tail.
  const sent = [...sending].map(([from, count]) => [from, from + count] as const).sort((a, b) => a[0] - b[0]);
  let next = first;
  for (const [from, to] of sent) {
    if (from > next) books.ledger.markNotSent(next, from);
    next = Math.max(next, to);
  }
  books.ledger.markNotSent(next, end);
  return {
    header,
    startUs,
    books,
    sameHost,
    crossHost,
    inDoubt,
    published,
    lastPublishUs,
    lastDeliveryUs: books.lastDeliveryUs,
    lastCompletionUs: books.lastCompletionUs,
    usage: reader.usage,
    requests: reader.requests,
  };
}

/** Calls `each` for every whole line of the file (a last one without its newline is left out), reading it a chunk at a time. */
function forEachLine(path: string, each: (line: string) => void): void {
  const fd = openSync(path, 'r');
  const chunk = Buffer.allocUnsafe(1 << 20);
  // A character split between two chunks is put together again.
  const decoder = new StringDecoder('utf8');
  let rest = '';
  try {
    for (let read = readSync(fd, chunk, 0, chunk.length, null); read > 0; read = readSync(fd, chunk, 0, chunk.length, null)) {
      const text = rest + decoder.write(chunk.subarray(0, read));
      const last = text.lastIndexOf('\n');
      rest = text.slice(last + 1);
      if (last >= 0) for (const line of text.slice(0, last).split('\n')) each(line);
    }
  } finally {
    closeSync(fd);
  }
}
