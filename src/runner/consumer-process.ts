// A consumer child process: opens the adapter with the parent's connection settings and namespace,
// runs its share of the consumers (src/pipeline/subscriber.ts) and reports every delivery and
// completion to the parent over IPC, in small batches. The parent (src/runner/process-consumers.ts)
// books them, so its ledger stays the only one. Started with `node --import tsx`; it exits when the
// parent says stop, or on its own when the IPC channel closes (the parent died).
//
// LIMITATION: reports travel in batches every REPORT_INTERVAL_MS, so the parent sees deliveries a
// few ms late (the times inside are the child's own, so latencies are not affected). A SIGKILL loses
// what was not yet sent; `freeze` exists so a planned kill loses nothing the parent needs to know.

import { pathToFileURL } from 'node:url';
import type { Broker, BrokerOptions, QueueSpec } from '../broker.ts';
import { systemClock } from '../clock.ts';
import { Executor, seededRandom, type TaskSpec } from '../pipeline/executor.ts';
import { stopSubscribers, Subscriber, type SubscriberSink } from '../pipeline/subscriber.ts';

/** The parent's first message: everything the child needs to consume like an in-process consumer. */
export interface ConsumerProcessInit {
  readonly type: 'init';
  /** Canonical adapter name, e.g. `redis-list`. */
  readonly adapter: string;
  /** The parent's connection options, namespace and mode included (the URL may hold a password). */
  readonly options: BrokerOptions;
  /** Queues to prepare (idempotent: the parent prepared them already; adapters keep specs per handle). */
  readonly queues: readonly QueueSpec[];
  /** One consumer per entry, reading that queue. */
  readonly consumerQueues: readonly string[];
  readonly receiveBatch: number;
  readonly receiveWaitMs: number;
  readonly retryDelayMs: number;
  /** Messages in the run: bodies with an index at or above this are not ours. */
  readonly messages: number;
  /** The run's token: bodies without it are foreign (src/pipeline/message.ts). */
  readonly runToken: string;
  readonly task: TaskSpec;
  /** Seed for this process's task durations and failures. */
  readonly seed: number;
}

/** What the parent sends. */
export type ParentMessage = ConsumerProcessInit | { readonly type: 'go' | 'freeze' | 'stop' };

/** Reports gathered since the last flush; times are monotonic µs (src/clock.ts), the child's own. */
export interface ConsumerReport {
  /** Flat quadruples: index, sentUs, receivedUs, receiveCount. */
  readonly delivered: number[];
  /** Flat triples: index, sentUs, ackedUs. */
  readonly completed: number[];
  /** Flat pairs: index, executionUs. */
  readonly executed: number[];
  /** Flat pairs: count, atUs. */
  readonly failed: number[];
  readonly malformed: number;
  /** Well-formed bodies without the run's token. */
  readonly foreign: number;
  readonly receiveCalls: number;
  readonly emptyReceives: number;
  /** The first few errors since the last flush: [operation, message]. */
  readonly errors: [string, string][];
  /** Messages in this process's hands right now. */
  readonly inHand: number;
}

/** What the child sends. */
export type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'fatal'; readonly message: string }
  | { readonly type: 'report'; readonly report: ConsumerReport }
  /** Answer to `freeze`: no broker call in flight any more; the messages held, flat [index, receivedUs] pairs. */
  | { readonly type: 'frozen'; readonly held: number[] }
  | { readonly type: 'stopped' };

const REPORT_INTERVAL_MS = 20;
/** On `freeze`, how long to wait for the consumers to hold something before freezing empty-handed. */
export const HOLD_WAIT_MS = 5_000;
/** Flush at once past this many buffered deliveries, so a report never grows large. */
const REPORT_MAX_DELIVERIES = 2000;
const MAX_ERRORS_PER_REPORT = 5;

/** Buffers a subscriber's reports and sends them to the parent in batches. */
class ReportBuffer implements SubscriberSink {
  #delivered: number[] = [];
  #completed: number[] = [];
  #executed: number[] = [];
  #failed: number[] = [];
  #malformed = 0;
  #foreign = 0;
  #receiveCalls = 0;
  #emptyReceives = 0;
  #errors: [string, string][] = [];
  readonly #send: (message: ChildMessage) => void;
  readonly #inHand: () => number;

  constructor(send: (message: ChildMessage) => void, inHand: () => number) {
    this.#send = send;
    this.#inHand = inHand;
  }

  delivered(index: number, sentUs: number, receivedUs: number, receiveCount: number): void {
    this.#delivered.push(index, sentUs, receivedUs, receiveCount);
    if (this.#delivered.length >= REPORT_MAX_DELIVERIES * 4) this.flush();
  }
  malformed(): void {
    this.#malformed++;
  }
  foreign(): void {
    this.#foreign++;
  }
  executed(index: number, executionUs: number): void {
    this.#executed.push(index, executionUs);
  }
  completed(index: number, sentUs: number, ackedUs: number): void {
    this.#completed.push(index, sentUs, ackedUs);
  }
  failed(count: number, atUs: number): void {
    this.#failed.push(count, atUs);
  }
  receiveCall(empty: boolean): void {
    this.#receiveCalls++;
    if (empty) this.#emptyReceives++;
  }
  error(operation: string, message: string): void {
    if (this.#errors.length < MAX_ERRORS_PER_REPORT) this.#errors.push([operation, message]);
  }

  /** Sends what was gathered (and the in-hand count, which the parent's drain watches), if anything changed. */
  flush(force = false): void {
    const empty =
      this.#delivered.length + this.#completed.length + this.#executed.length + this.#failed.length + this.#errors.length === 0 &&
      this.#malformed + this.#foreign + this.#receiveCalls === 0;
    if (empty && !force) return;
    this.#send({
      type: 'report',
      report: {
        delivered: this.#delivered,
        completed: this.#completed,
        executed: this.#executed,
        failed: this.#failed,
        malformed: this.#malformed,
        foreign: this.#foreign,
        receiveCalls: this.#receiveCalls,
        emptyReceives: this.#emptyReceives,
        errors: this.#errors,
        inHand: this.#inHand(),
      },
    });
    this.#delivered = [];
    this.#completed = [];
    this.#executed = [];
    this.#failed = [];
    this.#malformed = 0;
    this.#foreign = 0;
    this.#receiveCalls = 0;
    this.#emptyReceives = 0;
    this.#errors = [];
  }
}

/** The child's whole life: init, go, then freeze or stop. */
class ConsumerProcess {
  #broker: Broker | undefined;
  #handles: Broker[] = [];
  #subscribers: Subscriber[] = [];
  #runs: Promise<void>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #buffer: ReportBuffer | undefined;
  #init: ConsumerProcessInit | undefined;
  /** Set while a freeze waits for the consumers to hold something; called the moment one does. */
  #onHold: (() => void) | undefined;

  async onMessage(message: ParentMessage): Promise<void> {
    switch (message.type) {
      case 'init':
        return this.#start(message);
      case 'go':
        return this.#go();
      case 'freeze':
        return this.#freeze();
      case 'stop':
        return this.#stop();
    }
  }

  async #start(init: ConsumerProcessInit): Promise<void> {
    this.#init = init;
    // Imported here, not at the top: the registry pulls in every adapter, which only this path needs.
    const { findAdapter } = await import('../../adapters/index.ts');
    const adapter = findAdapter(init.adapter);
    if (!adapter) throw new Error(`unknown adapter ${init.adapter}`);
    this.#broker = await adapter.open(init.options);
    for (const spec of init.queues) await this.#broker.prepare(spec);
    for (let c = 0; c < init.consumerQueues.length; c++) this.#handles.push(await this.#broker.duplicate());
    send({ type: 'ready' });
  }

  #go(): void {
    const init = this.#init;
    if (!init || this.#buffer) return;
    const buffer = new ReportBuffer(send, () => this.#subscribers.reduce((sum, s) => sum + s.inHand, 0));
    this.#buffer = buffer;
    const executor = new Executor(init.task, seededRandom(init.seed));
    this.#subscribers = this.#handles.map(
      (handle, c) =>
        new Subscriber(
          handle,
          {
            queue: init.consumerQueues[c]!,
            receiveBatch: init.receiveBatch,
            receiveWaitMs: init.receiveWaitMs,
            retryDelayMs: init.retryDelayMs,
            messages: init.messages,
            runToken: init.runToken,
            executor,
            clock: systemClock,
            onHold: () => this.#onHold?.(),
          },
          buffer,
        ),
    );
    this.#runs = this.#subscribers.map((subscriber) => subscriber.run());
    this.#timer = setInterval(() => buffer.flush(), REPORT_INTERVAL_MS);
  }

  /**
   * Halts every consumer the moment one holds messages (at once if one does already; empty-handed after
   * HOLD_WAIT_MS), waits for the broker calls in flight, reports, and lists what is held. Halting in the
   * same turn as the batch arrives means no ack for it can have started.
   */
  async #freeze(): Promise<void> {
    const haltAll = (): void => {
      for (const subscriber of this.#subscribers) subscriber.halt();
    };
    if (this.#subscribers.some((subscriber) => subscriber.inHand > 0)) {
      haltAll();
    } else {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#onHold = undefined;
          haltAll();
          resolve();
        }, HOLD_WAIT_MS);
        this.#onHold = () => {
          this.#onHold = undefined;
          clearTimeout(timer);
          haltAll();
          resolve();
        };
      });
    }
    await Promise.all(this.#subscribers.map((subscriber) => subscriber.freeze()));
    clearInterval(this.#timer);
    this.#buffer?.flush(true);
    send({ type: 'frozen', held: this.#subscribers.flatMap((subscriber) => subscriber.held()) });
  }

  async #stop(): Promise<void> {
    await stopSubscribers(this.#subscribers, this.#runs, this.#handles);
    clearInterval(this.#timer);
    this.#buffer?.flush(true);
    await this.#broker?.close().catch(() => undefined);
    send({ type: 'stopped' }, () => process.exit(0));
  }
}

function send(message: ChildMessage, then?: () => void): void {
  if (!process.send || !process.connected) {
    then?.();
    return;
  }
  process.send(message, undefined, {}, () => then?.());
}

function main(): void {
  const child = new ConsumerProcess();
  const fatal = (error: unknown): void => {
    const text = error instanceof Error ? error.message : String(error);
    send({ type: 'fatal', message: text.split('\n')[0] ?? text }, () => process.exit(1));
  };
  process.on('message', (message: ParentMessage) => {
    child.onMessage(message).catch(fatal);
  });
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  // The parent is gone: nobody books what this process would do, so it stops at once.
  process.on('disconnect', () => process.exit(0));
  // Ctrl-C reaches the whole process group: the parent decides when its consumers stop, not the terminal.
  process.on('SIGINT', () => undefined);
}

if (process.send !== undefined && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
