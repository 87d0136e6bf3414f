// A consumer child process: opens the adapter with the parent's connection settings and namespace,
// runs its share of the consumers (src/pipeline/subscriber.ts) and writes every delivery, ack intent
// and outcome to its journal (src/runner/journal.ts), which the parent (src/runner/process-consumers.ts)
// reads and books, so its ledger stays the only one and a SIGKILL at any instant takes no booking with
// it. IPC carries control only. Started with `node --import tsx`; it exits when the parent says stop,
// or on its own when the IPC channel closes (the parent died).
//
// LIMITATION: the parent tails the journal every FLUSH_INTERVAL_MS, so it sees deliveries a few ms
// late (the times inside are the child's own, so latencies are not affected). `freeze` stops the
// consumers between broker calls, for a staged kill whose victim is caught holding messages.

import { pathToFileURL } from 'node:url';
import { findAdapter } from '../../adapters/index.ts';
import { isRequestCounting, type Broker } from '../broker.ts';
import { systemClock } from '../clock.ts';
import { Executor, seededRandom } from '../pipeline/executor.ts';
import { Subscriber } from '../pipeline/subscriber.ts';
import { FLUSH_INTERVAL_MS, JournalWriter } from './journal.ts';
import { stopSubscribers } from './local-consumers.ts';
import { HOLD_WAIT_MS, type ChildMessage, type ConsumerProcessInit, type ParentMessage } from './consumer-protocol.ts';

/** The child's whole life: init, go, then freeze or stop. */
class ConsumerProcess {
  #broker: Broker | undefined;
  #handles: Broker[] = [];
  #subscribers: Subscriber[] = [];
  #runs: Promise<void>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #journal: JournalWriter | undefined;
  /** CPU when consuming began, so the journal's figures cover the run, not the start-up. */
  #cpuAtGo: NodeJS.CpuUsage | undefined;
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
    const adapter = findAdapter(init.adapter);
    if (!adapter) throw new Error(`unknown adapter ${init.adapter}`);
    this.#broker = await adapter.open(init.options);
    for (const spec of init.queues) await this.#broker.prepare(spec);
    for (let c = 0; c < init.consumerQueues.length; c++) this.#handles.push(await this.#broker.duplicate());
    const broker = this.#broker;
    // Counts are per connection and shared by every duplicate: the opening handle's are the process's.
    const requests = isRequestCounting(broker) ? () => ({ byKind: broker.requestCounts(), billed: broker.billedRequests() }) : undefined;
    this.#journal = new JournalWriter(init.journalPath, () => systemClock.nowUs(), requests);
    send({ type: 'ready' });
  }

  #go(): void {
    const init = this.#init;
    const journal = this.#journal;
    if (!init || !journal || this.#cpuAtGo) return;
    this.#cpuAtGo = process.cpuUsage();
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
          journal.sink(c),
        ),
    );
    this.#runs = this.#subscribers.map((subscriber) => subscriber.run());
    this.#timer = setInterval(() => this.#flush(), FLUSH_INTERVAL_MS);
  }

  /** Writes what is pending in the journal, with this process's CPU and peak RSS so far. */
  #flush(): void {
    const cpu = process.cpuUsage(this.#cpuAtGo);
    this.#journal?.flush({ userUs: cpu.user, systemUs: cpu.system, maxRssKiB: process.resourceUsage().maxRSS });
  }

  /**
   * Halts every consumer the moment one holds messages outside an ack or nack call (at once if one does already; empty-handed after
   * HOLD_WAIT_MS), waits for the broker calls in flight, reports, and lists what is held. Halting in the
   * same turn as the batch arrives means no ack for it can have started.
   */
  async #freeze(): Promise<void> {
    const haltAll = (): void => {
      for (const subscriber of this.#subscribers) subscriber.halt();
    };
    // Messages in an ack or nack call already are no holdings: waiting for the call would settle them.
    if (this.#subscribers.some((subscriber) => subscriber.holding > 0)) {
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
    this.#flush();
    send({ type: 'frozen' });
  }

  async #stop(): Promise<void> {
    await stopSubscribers(this.#subscribers, this.#runs, this.#handles, { grace: 'round' });
    clearInterval(this.#timer);
    await this.#broker?.close().catch(() => undefined);
    this.#flush();
    this.#journal?.close();
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
