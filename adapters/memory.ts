// The in-memory adapter: queues in this process's memory, at-least-once with a visibility timeout, delays, nack
// with a retry delay and dead letters. The worked example of an adapter (README: "Adding a broker"), and the broker
// unit tests run pipelines on without a server.
//
// LIMITATION: one process only: consumer processes (crash-recovery, scale-out --scale-by processes) would open an
// empty memory of their own, so it declares `sharedAcrossProcesses: false` and such runs are refused. It measures
// the harness alone: no network, no persistence, no serialisation.

import type { BrokerCapabilities, OutgoingMessage, QueueDepth, QueueSpec, ReceiveOptions, ReceivedMessage } from '../src/broker.ts';
import { defineAdapter, type Driver, type ServerInfo } from './kit/index.ts';

const CAPABILITIES: BrokerCapabilities = {
  delivery: 'at-least-once', delay: true, maxDelayMs: 7 * 24 * 3600 * 1000, deadLetter: true, visibilityTimeout: true, nackDelay: true,
  // Redelivered and nacked messages go to the back of the queue, as in the reliable Redis list.
  ordering: 'none',
  // Limits of its own, so runs keep to batches and payloads a real broker would take (the kit holds every call to them).
  maxBatchSize: 1_000, maxPayloadBytes: 1024 * 1024,
  sharedAcrossProcesses: false,
};

interface Stored { readonly body: string; receiveCount: number; dueMs: number }
/** Numbers every delivery in this process: its receipt, so the receipt of a delivery that expired settles nothing. */
let deliveries = 0;

/**
 * Ready messages in order: taken from the front by moving a head index, so a receive costs its batch, not
 * the backlog (`splice(0, n)` moved every message behind it: 500,000 queued made each receive linear).
 */
class Fifo {
  #items: Stored[] = [];
  #head = 0;
  get length(): number {
    return this.#items.length - this.#head;
  }
  push(message: Stored): void {
    this.#items.push(message);
  }
  take(count: number): Stored[] {
    const taken = this.#items.slice(this.#head, this.#head + count);
    this.#head += taken.length;
    // Drop the taken prefix once it is most of the array, so memory follows the backlog.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) [this.#items, this.#head] = [this.#items.slice(this.#head), 0];
    return taken;
  }
}

/** One queue's messages by state. */
class Queue {
  ready = new Fifo();
  dead: Stored[] = [];
  /** In receive order, which is due order: a queue has one visibility timeout. */
  readonly inFlight = new Map<string, Stored>();
  /** Sorted by `dueMs`, latest first, so due ones pop off the end. */
  delayed: Stored[] = [];
  /** Blocked receives, woken when something may have become ready. */
  readonly waiters = new Set<() => void>();
  constructor(public spec: Omit<QueueSpec, 'name'>) {}

  delay(message: Stored, dueMs: number): void {
    message.dueMs = dueMs;
    const at = this.delayed.findIndex((other) => other.dueMs <= dueMs);
    this.delayed.splice(at < 0 ? this.delayed.length : at, 0, message);
  }

  /** A delivered message back to the queue (nack, expiry), or to the dead letters once received maxReceives times. */
  giveBack(message: Stored, nowMs: number, retryDelayMs: number): void {
    if (this.spec.maxReceives > 0 && message.receiveCount >= this.spec.maxReceives) this.dead.push(message);
    else if (retryDelayMs > 0) this.delay(message, nowMs + retryDelayMs);
    else this.ready.push(message);
  }

  /** Moves what fell due (expired deliveries, delays run out); returns when the next will, in ms since the epoch, or Infinity. */
  promote(nowMs: number): number {
    for (const [receipt, message] of this.inFlight) {
      if (message.dueMs > nowMs) break;
      this.inFlight.delete(receipt);
      this.giveBack(message, nowMs, 0);
    }
    while (this.delayed.length > 0 && this.delayed.at(-1)!.dueMs <= nowMs) this.ready.push(this.delayed.pop()!);
    const first = this.inFlight.values().next();
    return Math.min(first.done ? Infinity : first.value.dueMs, this.delayed.at(-1)?.dueMs ?? Infinity);
  }

  wake(): void {
    for (const waiter of this.waiters) waiter();
  }
}

/** Each namespace's queues, shared by every handle opened on it in this process; dropped with its last queue. */
const namespaces = new Map<string, Map<string, Queue>>();

function queuesOf(namespace: string): Map<string, Queue> {
  const queues = namespaces.get(namespace) ?? new Map<string, Queue>();
  namespaces.set(namespace, queues);
  return queues;
}

/** One handle: the kit (adapters/kit) has checked every call against the capabilities before it gets here. */
export class MemoryDriver implements Driver {
  /** Wakes this handle's blocked receive (a handle serves one at a time): for close(). */
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(readonly namespace: string) {}

  async describe(): Promise<ServerInfo> {
    return { serverVersion: `node-${process.versions.node}`, endpoint: 'this process', endpointKind: 'embedded' };
  }

  async prepare({ name, ...spec }: QueueSpec): Promise<void> {
    const queues = queuesOf(this.namespace);
    const queue = queues.get(name);
    if (queue === undefined) queues.set(name, new Queue(spec));
    else queue.spec = spec;
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    const queues = queuesOf(this.namespace);
    // A queue published to before it was prepared is made with the harness's defaults, as Redis would.
    const target = queues.get(queue) ?? new Queue({ visibilityTimeoutMs: 30_000, maxReceives: 0 });
    queues.set(queue, target);
    const nowMs = Date.now();
    for (const { body, delayMs = 0 } of messages) {
      const stored: Stored = { body, receiveCount: 0, dueMs: 0 };
      if (delayMs > 0) target.delay(stored, nowMs + delayMs);
      else target.ready.push(stored);
    }
    target.wake();
  }

  async receive(queue: string, { maxMessages, waitMs }: ReceiveOptions): Promise<ReceivedMessage[]> {
    const deadlineMs = Date.now() + waitMs;
    while (!this.#closed) {
      const target = namespaces.get(this.namespace)?.get(queue);
      const nowMs = Date.now();
      const nextDueMs = target?.promote(nowMs) ?? Infinity;
      if (target !== undefined && target.ready.length > 0) return take(target, maxMessages, nowMs);
      if (nowMs >= deadlineMs) break;
      // No spin: sleeps until a publish or nack wakes it, the next message falls due, the wait ends or close() is called.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, Math.min(deadlineMs, nextDueMs, nowMs + 2 ** 31 - 1) - nowMs));
        this.#wake = () => resolve(clearTimeout(timer));
        target?.waiters.add(this.#wake);
      });
      target?.waiters.delete(this.#wake!);
    }
    return [];
  }

  async ack(queue: string, messages: readonly ReceivedMessage[]): Promise<void> {
    const target = queuesOf(this.namespace).get(queue);
    for (const { receipt } of messages) target?.inFlight.delete(receipt);
  }

  async nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    const target = queuesOf(this.namespace).get(queue);
    if (target === undefined) return;
    for (const { receipt } of messages) {
      const message = target.inFlight.get(receipt);
      // An unknown receipt was settled already, or expired and is back in the queue: nothing to give back.
      if (message !== undefined && target.inFlight.delete(receipt)) target.giveBack(message, Date.now(), retryDelayMs);
    }
    target.wake();
  }

  async depth(queue: string): Promise<QueueDepth> {
    const target = queuesOf(this.namespace).get(queue);
    target?.promote(Date.now());
    return { ready: target?.ready.length ?? 0, inFlight: target?.inFlight.size ?? 0, delayed: target?.delayed.length ?? 0, dead: target?.dead.length ?? 0 };
  }

  async purge(queue: string): Promise<void> {
    const target = queuesOf(this.namespace).get(queue);
    target?.inFlight.clear();
    if (target !== undefined) [target.ready, target.delayed, target.dead] = [new Fifo(), [], []];
  }

  async teardown(queue: string): Promise<void> {
    const queues = queuesOf(this.namespace);
    queues.get(queue)?.wake();
    queues.delete(queue);
    if (queues.size === 0) namespaces.delete(this.namespace);
  }

  async duplicate(): Promise<Driver> {
    return new MemoryDriver(this.namespace);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
  }
}

/** Delivers up to `maxMessages` ready messages: each becomes in flight until its visibility timeout. */
function take(target: Queue, maxMessages: number, nowMs: number): ReceivedMessage[] {
  return target.ready.take(maxMessages).map((message) => {
    message.receiveCount++;
    message.dueMs = nowMs + target.spec.visibilityTimeoutMs;
    const receipt = String(++deliveries);
    target.inFlight.set(receipt, message);
    return { body: message.body, receiveCount: message.receiveCount, receipt };
  });
}

/** Names of the queues `namespace` holds in this process: how tests see that teardown left nothing behind. */
export function memoryQueueNames(namespace: string): string[] {
  return [...(namespaces.get(namespace)?.keys() ?? [])];
}

export const memoryAdapter = defineAdapter({
  name: 'memory', aliases: ['MEMORY'], modes: { default: CAPABILITIES }, defaultMode: 'default',
  connect: async (options) => new MemoryDriver(options.namespace),
  testing: { leftovers: async (_endpoint, namespace) => memoryQueueNames(namespace) },
});
