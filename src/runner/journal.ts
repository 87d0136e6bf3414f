// The journal of a consumer child process: one file per child, appended with fs.writeSync, so what the
// child wrote is in the kernel's page cache the moment the call returns and survives a SIGKILL at any
// later instant. The child (src/runner/consumer-process.ts) writes; the parent
// (src/runner/process-consumers.ts) tails it and books what it reads: the only path a delivery or a
// completion of a child takes to the ledger.
//
// Order is what makes the books exact: a batch's deliveries are written right after its receive
// returned, before any task runs; an ack (or nack) intent, naming its messages, is written before the
// call is made, and its outcome after. An intent without an outcome in a dead child's journal is booked
// as completed: if the ack reached the broker the message is done, if not an at-least-once broker
// delivers it again and the second completion is a duplicate, never a loss.
//
// LIMITATION: the journal is as durable as the page cache (a crash of the whole machine loses it, which
// also ends the run). Executions, empty receives, request counts and CPU figures go out with the next
// record or every FLUSH_INTERVAL_MS, so a kill can lose the last few ms of those (not of bookings);
// a receive whose answer was in transit when the process died leaves no trace at all.

import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { reportCompleted, reportDelivered, type SubscriberSink } from '../pipeline/sink.ts';

/**
 * One record per line, fields separated by spaces; `c` is the consumer's number inside its process.
 *   R c                          a receive returned empty
 *   D c receivedUs m f i s rc …  a receive returned: m malformed bodies, f foreign ones (another run's), then (index, sentUs, receiveCount) per message of ours
 *   X c i us                     a task of message i ran for us µs
 *   A c id n atUs i …            an ack of n messages (those of ours listed) is about to be sent
 *   N c id n atUs i …            a nack of n messages is about to be sent
 *   O c id ok atUs [n i …]       the ack or nack `id` returned (ok 1) or failed (ok 0); a partial ack lists the n it settled
 *   E c op text                  a broker call failed
 *   Q billed json                cumulative API requests of the process (last one counts)
 *   U userUs systemUs maxRssKiB  CPU since the process started consuming, and its peak RSS (last one counts)
 */
export const FLUSH_INTERVAL_MS = 20;

/** Times are written as whole µs: formatting a fraction costs more than the record's syscall. */
const us = Math.round;

/** The child's side: sinks, one per consumer, that append to one journal file. */
export class JournalWriter {
  readonly #fd: number;
  /** Records that need not be durable at once; they go out with the next durable one or on flush(). */
  #pending = '';
  #nextId = 1;
  #requestsWritten = '';
  readonly #requests: (() => { byKind: Readonly<Record<string, number>>; billed: number }) | undefined;
  readonly #clock: () => number;

  constructor(path: string, clock: () => number, requests?: () => { byKind: Readonly<Record<string, number>>; billed: number }) {
    this.#fd = openSync(path, 'a');
    this.#clock = clock;
    this.#requests = requests;
  }

  /** A sink for consumer `c`; its deliveries, intents and outcomes are durable before the loop goes on. */
  sink(c: number): SubscriberSink {
    let batch = '';
    let malformed = 0;
    let foreign = 0;
    let receivedUs = 0;
    let receiving = false;
    return {
      receiveCall: (empty) => {
        if (empty) this.#pending += `R ${c}\n`;
        else {
          receiving = true;
          batch = '';
          malformed = 0;
          foreign = 0;
          receivedUs = 0;
        }
      },
      delivered: (index, sentUs, atUs, receiveCount) => {
        receivedUs = atUs;
        batch += ` ${index} ${us(sentUs)} ${receiveCount}`;
      },
      deliveredBatch: (atUs, indices, sentTimes, receiveCounts) => {
        receivedUs = atUs;
        for (let k = 0; k < indices.length; k++) if (indices[k]! >= 0) batch += ` ${indices[k]} ${us(sentTimes[k]!)} ${receiveCounts[k]}`;
      },
      malformed: () => {
        malformed++;
      },
      foreign: () => {
        foreign++;
      },
      received: () => {
        if (!receiving) return;
        receiving = false;
        this.#write(`D ${c} ${us(receivedUs || this.#clock())} ${malformed} ${foreign}${batch}\n`);
      },
      executed: (index, executionUs) => {
        this.#pending += `X ${c} ${index} ${us(executionUs)}\n`;
      },
      settling: (kind, indices, count) => {
        const id = this.#nextId++;
        let line = `${kind === 'ack' ? 'A' : 'N'} ${c} ${id} ${count} ${us(this.#clock())}`;
        for (let k = 0; k < indices.length; k++) line += ` ${indices[k]}`;
        this.#write(`${line}\n`);
        return id;
      },
      settled: (id, ok, atUs, only) => {
        this.#write(`O ${c} ${id} ${ok ? 1 : 0} ${us(atUs)}${only ? ` ${only.length} ${only.join(' ')}` : ''}\n`);
      },
      // Booked by the parent from the intents and their outcomes.
      completed: () => undefined,
      completedBatch: () => undefined,
      failed: () => undefined,
      error: (operation, message) => {
        this.#write(`E ${c} ${operation} ${message.replace(/\s+/g, ' ')}\n`);
      },
    };
  }

  /** Writes what is pending, the request counts if they changed, and `usage` if given. */
  flush(usage?: { userUs: number; systemUs: number; maxRssKiB: number }): void {
    this.#write(usage ? `U ${usage.userUs} ${usage.systemUs} ${usage.maxRssKiB}\n` : '');
  }

  close(): void {
    closeSync(this.#fd);
  }

  /** One writeSync of the pending records, `record` and the request counts when they changed. */
  #write(record: string): void {
    let text = this.#pending + record;
    this.#pending = '';
    if (this.#requests) {
      const { byKind, billed } = this.#requests();
      const counts = `${billed} ${JSON.stringify(byKind)}`;
      if (counts !== this.#requestsWritten) {
        this.#requestsWritten = counts;
        text += `Q ${counts}\n`;
      }
    }
    if (text.length > 0) writeSync(this.#fd, text);
  }
}

/** What a consumer was doing when its process died, from its last record. */
export type ConsumerActivity = 'receiving' | 'executing' | 'acking' | 'nacking';

/** What a dead (or any) child's journal says it held at its end. */
export interface JournalState {
  /** Delivered and not settled, and in no ack or nack in flight: flat [index, receivedUs] pairs. */
  readonly held: number[];
  /** Messages of ours in acks sent and not answered (booked as completed at the end). */
  readonly acking: number[];
  /** Messages of ours in nacks sent and not answered. */
  readonly nacking: number[];
  /** Consumers by what their last record says they were doing. */
  readonly activity: Record<ConsumerActivity, number>;
}

interface Intent {
  readonly kind: 'A' | 'N';
  readonly c: number;
  readonly count: number;
  readonly atUs: number;
  /** Indices of ours. */
  readonly entries: number[];
}

/** Observers of what the parent books, after the sink has booked it. */
export interface JournalObservers {
  readonly onDelivered?: (index: number, receivedUs: number, receiveCount: number) => void;
  readonly onCompleted?: (index: number, ackedUs: number) => void;
}

/** The parent's side: reads a child's journal as it grows and books every record once. */
export class JournalReader {
  readonly #fd: number;
  #offset = 0;
  /** Bytes after the last newline: a record still being written (or torn by a kill). */
  #rest = '';
  #sink: SubscriberSink | undefined;
  readonly #observers: JournalObservers;
  readonly #intents = new Map<number, Intent>();
  /** Delivered and not settled, by index: receivedUs. */
  readonly #held = new Map<number, number>();
  /** Send times of the messages delivered and not yet settled, by index, for booking their completions. */
  readonly #sentUs = new Map<number, number>();
  readonly #activity = new Map<number, ConsumerActivity>();
  #inHand = 0;
  #closed = false;
  /** Cumulative API requests of the child, by kind, and billed; undefined until it wrote some. */
  requests: { byKind: Record<string, number>; billed: number } | undefined;
  /** The child's CPU and peak RSS, as last written. */
  usage: { userUs: number; systemUs: number; maxRssKiB: number } | undefined;
  /** Ack intents without outcome that end() booked as completed. */
  unansweredAcks = 0;

  /** `consumers`: how many the child runs; each is taken to be receiving until its first record. */
  constructor(path: string, consumers: number, observers: JournalObservers = {}) {
    this.#fd = openSync(path, 'r');
    this.#observers = observers;
    for (let c = 0; c < consumers; c++) this.#activity.set(c, 'receiving');
  }

  /** Messages received and not yet settled, as far as the journal tells. */
  get inHand(): number {
    return this.#inHand;
  }

  /** Books from here on into `sink`; records read before are booked now. */
  start(sink: SubscriberSink): void {
    this.#sink = sink;
    this.poll();
  }

  /** Reads and books every complete record written since the last call. */
  poll(): void {
    if (this.#closed || !this.#sink) return;
    const size = fstatSync(this.#fd).size;
    if (size <= this.#offset) return;
    const buffer = Buffer.allocUnsafe(size - this.#offset);
    let got = 0;
    while (got < buffer.length) {
      const n = readSync(this.#fd, buffer, got, buffer.length - got, this.#offset + got);
      if (n === 0) break;
      got += n;
    }
    this.#offset += got;
    const text = this.#rest + buffer.toString('utf8', 0, got);
    const last = text.lastIndexOf('\n');
    this.#rest = text.slice(last + 1);
    if (last < 0) return;
    for (const line of text.slice(0, last).split('\n')) this.#book(line);
  }

  /**
   * The child is gone: reads to the end, drops a torn last record, books every ack still unanswered as
   * completed (at the time of its intent) and every unanswered nack as failed, and returns what it held.
   */
  end(): JournalState {
    this.poll();
    this.#rest = '';
    // What each consumer was doing, before the unanswered calls below are taken as answered.
    const activity: Record<ConsumerActivity, number> = { receiving: 0, executing: 0, acking: 0, nacking: 0 };
    for (const state of this.#activity.values()) activity[state]++;
    const acking: number[] = [];
    const nacking: number[] = [];
    for (const [id, intent] of this.#intents) {
      if (intent.kind === 'A') {
        acking.push(...intent.entries);
        this.unansweredAcks++;
      } else {
        nacking.push(...intent.entries);
      }
      this.#outcome(id, true, intent.atUs);
    }
    const held: number[] = [];
    for (const [index, receivedUs] of this.#held) held.push(index, receivedUs);
    // What was booked stays in the sink; the held messages are no longer anyone's.
    this.#held.clear();
    this.#sentUs.clear();
    this.#inHand = 0;
    if (!this.#closed) closeSync(this.#fd);
    this.#closed = true;
    return { held, acking, nacking, activity };
  }

  #book(line: string): void {
    const sink = this.#sink!;
    const f = line.split(' ');
    const c = Number(f[1]);
    switch (f[0]) {
      case 'R':
        sink.receiveCall(true);
        this.#activity.set(c, 'receiving');
        return;
      case 'D': {
        const receivedUs = Number(f[2]);
        const malformed = Number(f[3]);
        const foreign = Number(f[4]);
        sink.receiveCall(false);
        for (let k = 0; k < malformed; k++) sink.malformed();
        for (let k = 0; k < foreign; k++) sink.foreign();
        // The whole receive, as the child's loop reported it: the bodies not ours first, by a negative index.
        const indices: number[] = new Array<number>(malformed + foreign).fill(-1);
        const sentTimes: number[] = new Array<number>(malformed + foreign).fill(0);
        const receiveCounts: number[] = new Array<number>(malformed + foreign).fill(1);
        for (let k = 5; k + 2 < f.length; k += 3) {
          const index = Number(f[k]);
          const sentUs = Number(f[k + 1]);
          indices.push(index);
          sentTimes.push(sentUs);
          receiveCounts.push(Number(f[k + 2]));
          this.#sentUs.set(index, sentUs);
          this.#held.set(index, receivedUs);
        }
        reportDelivered(sink, receivedUs, indices, sentTimes, receiveCounts);
        if (this.#observers.onDelivered) {
          for (let k = malformed + foreign; k < indices.length; k++) this.#observers.onDelivered(indices[k]!, receivedUs, receiveCounts[k]!);
        }
        this.#inHand += indices.length;
        this.#activity.set(c, 'executing');
        return;
      }
      case 'X':
        sink.executed(Number(f[2]), Number(f[3]));
        return;
      case 'A':
      case 'N': {
        const entries: number[] = [];
        for (let k = 5; k < f.length; k++) entries.push(Number(f[k]));
        this.#intents.set(Number(f[2]), { kind: f[0], c, count: Number(f[3]), atUs: Number(f[4]), entries });
        for (const index of entries) this.#held.delete(index);
        this.#activity.set(c, f[0] === 'A' ? 'acking' : 'nacking');
        return;
      }
      case 'O':
        // A partial ack lists, after its time, how many and which of its messages the broker settled.
        this.#outcome(Number(f[2]), f[3] === '1', Number(f[4]), f.length > 5 ? new Set(f.slice(6).map(Number)) : undefined);
        return;
      case 'E': {
        const operation = f[2] as 'receive' | 'ack' | 'nack';
        sink.error(operation, f.slice(3).join(' '));
        if (operation === 'receive') this.#activity.set(c, 'receiving');
        return;
      }
      case 'Q':
        this.requests = { billed: Number(f[1]), byKind: JSON.parse(f.slice(2).join(' ')) as Record<string, number> };
        return;
      case 'U':
        this.usage = { userUs: Number(f[1]), systemUs: Number(f[2]), maxRssKiB: Number(f[3]) };
        return;
      default:
      // An empty line or a record this reader does not know: nothing to book.
    }
  }

  /** An ack or nack answered (or, at the end, taken as answered): its messages leave the consumer's hands. */
  #outcome(id: number, ok: boolean, atUs: number, only?: ReadonlySet<number>): void {
    const intent = this.#intents.get(id);
    if (!intent) return;
    this.#intents.delete(id);
    this.#inHand -= intent.count;
    this.#activity.set(intent.c, 'receiving');
    const sink = this.#sink!;
    const sent = this.#sentUs;
    if (intent.kind === 'N') {
      for (const index of intent.entries) sent.delete(index);
      // Failed tasks, whether the nack was answered or not: the broker gives them again either way.
      sink.failed(intent.count, atUs);
      return;
    }
    const indices: number[] = [];
    const sentTimes: number[] = [];
    for (const index of intent.entries) {
      const sentUs = sent.get(index) ?? atUs;
      sent.delete(index);
      // A failed ack (or the unsettled part of a partial one): an at-least-once broker delivers the
      // messages again, so they are not completed.
      if (!ok || (only !== undefined && !only.has(index))) continue;
      indices.push(index);
      sentTimes.push(sentUs);
    }
    if (indices.length === 0) return;
    reportCompleted(sink, atUs, indices, sentTimes);
    for (const index of indices) this.#observers.onCompleted?.(index, atUs);
  }
}
