// The RabbitMQ driver, through amqplib (its registry entry is adapters/rabbitmq.ts): quorum queues (default) or classic ones, publisher confirms awaited once per
// batch, basic.consume into a local buffer that receive() serves (prefetch = the receive batch), dead
// letters to `<queue>.dead`, delays and nack delays through wait queues, fan-out through a fanout exchange.
//
// Names, all under the namespace on the default vhost `/`, for run queue q (base B = `<namespace>-q`):
//   B              the queue; dead-letters to B.dead through the default exchange (no exchange to make or delete)
//   B.dead         dead letters
//   B.wait.<ms>    a wait queue per distinct delay, made on first use: x-message-ttl <ms>, dead-letters to B.
//                  A queue expires messages only at its head, so one TTL queue serves one delay only.
//   B.waits        names of the wait queues made for B by any process, so depth and teardown find them
//   B.fanout       fanout exchange, made when a consumer group prepares q; B.group.<g> is that group's queue
//
// Receive counts: quorum queues count returns in `x-delivery-count`; classic queues only set `redelivered`,
// so a classic message redelivered after its consumer died says 2, however often it came back. A nack with a
// delay (and every nack on a classic queue) publishes a copy carrying the receives so far in `bb-receives`
// and acks the original, so counts and dead letters after nacks are exact in both modes.
//
// Settings read from `options.settings` (all optional):
//   endpointKind   `local` | `docker` | `other`, from resolve(); default from the URL.
//   prefetch       unacked deliveries per consumer; default the receive batch (raised if a receive asks for more).
//
// LIMITATION: no visibility timeout: an unacked message comes back only when its channel closes (consumer
// died) or after the server's consumer_timeout (30 min by default, which then closes the channel). depth()
// counts as in flight only what receive() handed out in this process and is not settled (AMQP reports ready
// messages only; other processes' are not seen), and what this process's consumers prefetched as ready. A
// lost connection is not reopened: the handle fails every call after it (its unacked messages go back).

import type { ChannelModel, ConfirmChannel, ConsumeMessage, Message, Options } from 'amqplib';
import { PartialSettleError, type OutgoingMessage, type QueueDepth, type QueueSpec, type ReceivedMessage, type ReceiveOptions } from '../src/broker.ts';
import { firstLine, withTimeout, type Driver, type ServerInfo } from './kit/index.ts';
import { bindGroup, declareFamily, declareWaitQueue, explainRefusal, openConnection, readList, STEP_MS, type Mode, type Route } from './rabbitmq-registry.ts';

export const ADAPTER = 'rabbitmq';
/** A copy made by a nack carries the receives before it here. */
const RECEIVES_HEADER = 'bb-receives';
const PERSISTENT: Options.Publish = { persistent: true, mandatory: true };
interface Batch { readonly messages: readonly OutgoingMessage[]; returned: number }

/** What every handle opened from one open() shares in this process. */
export interface Shared {
  readonly url: string;
  readonly mode: Mode;
  readonly namespace: string;
  readonly timeoutMs: number;
  readonly info: ServerInfo;
  readonly prefetch: number | undefined;
  /** Specs of the run queues prepared here, by name: maxReceives for nack and receive. */
  readonly specs: Map<string, QueueSpec>;
  /** Wait queues known to exist, by name: declaring, then declared. */
  readonly waits: Map<string, Promise<void>>;
  /** Run queues read by consumer groups: their groups' queue bases. */
  readonly groups: Map<string, Set<string>>;
  /** Deliveries handed out by receive() in this process and not yet settled, by queue base. */
  readonly inFlight: Map<string, number>;
  readonly drivers: Set<RabbitDriver>;
  /** Deliveries that reached this process's consumers, ever. */
  deliveries: number;
}

/** One queue's consumer on a handle: deliveries wait in `buffer` until a receive takes them. */
interface Consumer { readonly base: string; tag: string; prefetch: number; buffer: ConsumeMessage[]; wake: (() => void) | undefined }

export class RabbitDriver implements Driver {
  readonly #shared: Shared;
  readonly #connection: ChannelModel;
  readonly #channel: ConfirmChannel;
  /** For passive declares, deletes and purges, whose refusal closes a channel: made again when it closed. */
  #side: Promise<ConfirmChannel> | undefined;
  /** The group this handle reads as, if any. */
  readonly #group: string | undefined;
  readonly #consumers = new Map<string, Consumer>();
  /** Every delivery not yet acked or nacked: delivery tag -> message, its queue base, and whether a receive handed it out. */
  readonly #unacked = new Map<number, { message: ConsumeMessage; base: string; out: boolean }>();
  readonly #batches = new Set<Batch>();
  #broken: string | undefined;
  #closed = false;

  constructor(shared: Shared, connection: ChannelModel, channel: ConfirmChannel, group?: string) {
    this.#shared = shared;
    this.#connection = connection;
    this.#channel = channel;
    this.#group = group;
    const lost = (why: string) => (): void => {
      this.#broken ??= why;
      for (const consumer of this.#consumers.values()) consumer.wake?.();
    };
    connection.on('error', (error: Error) => lost(`the connection failed (${firstLine(error)})`)());
    connection.on('close', lost('the connection to RabbitMQ closed; this handle does not reconnect'));
    channel.on('error', (error: Error) => lost(`the channel closed (${firstLine(error)})`)());
    channel.on('close', lost('the channel closed'));
    channel.on('return', (message: Message) => this.#returned(message));
    shared.drivers.add(this);
  }

  static async connect(shared: Shared, group?: string, opened?: ChannelModel): Promise<RabbitDriver> {
    const connection = opened ?? (await openConnection(shared.url, shared.timeoutMs));
    try {
      return new RabbitDriver(shared, connection, await connection.createConfirmChannel(), group);
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw error;
    }
  }

  async describe(): Promise<ServerInfo> {
    this.#check();
    return this.#shared.info;
  }

  queueName(queue: string): string {
    return this.#base(queue);
  }

  readonly explain = explainRefusal;

  async prepare(spec: QueueSpec): Promise<void> {
    this.#check();
    const side = await this.#sideChannel();
    const base = this.#base(spec.name);
    await declareFamily(side, this.#shared.mode, base, spec.maxReceives);
    if (this.#group !== undefined) {
      await bindGroup(side, base, `${this.#mainBase(spec.name)}.fanout`);
      const groups = this.#shared.groups.get(spec.name) ?? new Set();
      this.#shared.groups.set(spec.name, groups.add(base));
    }
    this.#shared.specs.set(spec.name, spec);
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    this.#check();
    const fanout = this.#shared.groups.has(queue);
    const route: Route = fanout ? { exchange: `${this.#mainBase(queue)}.fanout`, key: '' } : { exchange: '', key: this.#base(queue) };
    let waits: Map<number, Route> | undefined;
    for (const { delayMs = 0 } of messages) {
      if (delayMs <= 0) continue;
      const stepped = Math.ceil(delayMs / STEP_MS) * STEP_MS;
      waits ??= new Map();
      if (!waits.has(stepped)) waits.set(stepped, await this.#waitQueue(this.#mainBase(queue), route, stepped));
    }
    await this.#send(messages, (message) => (message.delayMs ? waits!.get(Math.ceil(message.delayMs / STEP_MS) * STEP_MS)! : route));
  }

  /** Publishes every message where `routeOf` says; resolves once the broker confirmed all, rejects if any was refused or unroutable. */
  async #send(messages: readonly OutgoingMessage[], routeOf: (message: OutgoingMessage) => Route, headers?: (message: OutgoingMessage) => Options.Publish): Promise<void> {
    const batch: Batch = { messages, returned: 0 };
    this.#batches.add(batch);
    try {
      await withTimeout(this.#shared.timeoutMs, `confirm of ${messages.length} messages`, () => new Promise<void>((resolve, reject) => {
        let left = messages.length;
        let refused = 0;
        const confirmed = (error: unknown): void => {
          if (error) refused++;
          if (--left > 0) return;
          if (refused > 0) reject(new Error(`RabbitMQ refused ${refused} of ${messages.length} messages (basic.nack)`));
          else resolve();
        };
        for (const message of messages) {
          const { exchange, key } = routeOf(message);
          this.#channel.publish(exchange, key, Buffer.from(message.body, 'utf8'), headers?.(message) ?? PERSISTENT, confirmed);
        }
      }));
      if (batch.returned > 0) throw new Error(`${batch.returned} of ${messages.length} messages were unroutable (no such queue): prepare the queue first`);
    } finally {
      this.#batches.delete(batch);
    }
  }

  /** A message came back unroutable (basic.return precedes its confirm): its batch fails. Rare, so a scan. */
  #returned(message: Message): void {
    const body = message.content.toString('utf8');
    for (const batch of this.#batches) if (batch.messages.some((m) => m.body === body)) batch.returned++;
  }

  /** The wait queue that holds messages for `delayMs`, then dead-letters them to `target`; made once, and listed in `<owner>.waits`. */
  async #waitQueue(owner: string, target: Route, delayMs: number): Promise<Route> {
    const name = `${target.exchange || target.key}.wait.${delayMs}`;
    let declared = this.#shared.waits.get(name);
    if (declared === undefined) {
      declared = this.#sideChannel().then((side) => declareWaitQueue(side, this.#shared.mode, name, delayMs, target, `${owner}.waits`));
      this.#shared.waits.set(name, declared);
      declared.catch(() => this.#shared.waits.delete(name));
    }
    await declared;
    return { exchange: '', key: name };
  }

  async receive(queue: string, { maxMessages, waitMs }: ReceiveOptions): Promise<ReceivedMessage[]> {
    this.#check();
    const consumer = await this.#consumer(queue, maxMessages);
    if (consumer.buffer.length === 0 && waitMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        consumer.wake = () => resolve(clearTimeout(timer));
      });
      consumer.wake = undefined;
      this.#check();
    }
    const taken = consumer.buffer.length <= maxMessages ? consumer.buffer.splice(0) : consumer.buffer.splice(0, maxMessages);
    const maxReceives = this.#shared.specs.get(queue)?.maxReceives ?? 0;
    const received: ReceivedMessage[] = [];
    for (const message of taken) {
      const receiveCount = this.#receiveCount(message);
      // Returned past maxReceives (its consumer died, which no nack saw): dead-lettered, as SQS does on receive.
      if (maxReceives > 0 && receiveCount > maxReceives) {
        this.#settle(message.fields.deliveryTag, () => this.#channel.reject(message, false));
        continue;
      }
      received.push({ body: message.content.toString('utf8'), receiveCount, receipt: String(message.fields.deliveryTag) });
      this.#unacked.get(message.fields.deliveryTag)!.out = true;
    }
    if (received.length > 0) this.#count(received.length, this.#base(queue));
    return received;
  }

  #receiveCount(message: ConsumeMessage): number {
    const headers = message.properties.headers;
    const before = Number(headers?.[RECEIVES_HEADER] ?? 0);
    if (this.#shared.mode === 'classic') return before + (message.fields.redelivered ? 2 : 1);
    return before + Number(headers?.['x-delivery-count'] ?? 0) + 1;
  }

  /** This handle's consumer of `queue`, started (or started again with a larger prefetch) as the receive needs. */
  async #consumer(queue: string, maxMessages: number): Promise<Consumer> {
    const existing = this.#consumers.get(queue);
    if (existing !== undefined && existing.prefetch >= maxMessages) return existing;
    const base = this.#base(queue);
    // Consuming from a missing queue would close the main channel: ask on the side channel first.
    await (await this.#sideChannel()).checkQueue(base);
    const prefetch = Math.max(maxMessages, this.#shared.prefetch ?? 0);
    const consumer: Consumer = existing ?? { base, tag: '', prefetch, buffer: [], wake: undefined };
    await this.#channel.prefetch(prefetch);
    const { consumerTag } = await this.#channel.consume(base, (message) => {
      if (message === null) {
        this.#consumers.delete(queue);
      } else {
        this.#unacked.set(message.fields.deliveryTag, { message, base, out: false });
        this.#shared.deliveries++;
        consumer.buffer.push(message);
      }
      consumer.wake?.();
    });
    if (existing !== undefined) await this.#channel.cancel(existing.tag);
    consumer.tag = consumerTag;
    consumer.prefetch = prefetch;
    this.#consumers.set(queue, consumer);
    return consumer;
  }

  /** Acks, nacks or rejects delivery `tag` once; false if it was settled (or dropped) already. */
  #settle(tag: number, send: (message: ConsumeMessage) => void): boolean {
    const held = this.#unacked.get(tag);
    if (held === undefined) return false;
    send(held.message);
    this.#unacked.delete(tag);
    if (held.out) this.#count(-1, held.base);
    return true;
  }

  #count(change: number, base: string): void {
    this.#shared.inFlight.set(base, (this.#shared.inFlight.get(base) ?? 0) + change);
  }

  async ack(_queue: string, messages: readonly ReceivedMessage[]): Promise<void> {
    this.#check();
    // The usual batch is the oldest deliveries this channel holds, in order: one basic.ack (multiple) for all of them.
    let k = 0;
    for (const tag of this.#unacked.keys()) {
      if (k === messages.length || tag !== Number(messages[k]!.receipt)) break;
      k++;
    }
    if (k === messages.length) {
      this.#channel.ack(this.#unacked.get(Number(messages[k - 1]!.receipt))!.message, true);
      for (const { receipt } of messages) this.#settle(Number(receipt), () => undefined);
      return;
    }
    for (const { receipt } of messages) this.#settle(Number(receipt), (message) => this.#channel.ack(message));
  }

  async nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    this.#check();
    const maxReceives = this.#shared.specs.get(queue)?.maxReceives ?? 0;
    const native = this.#shared.mode === 'quorum' && retryDelayMs === 0;
    const settled: ReceivedMessage[] = [];
    const copies: ReceivedMessage[] = [];
    for (const message of messages) {
      const tag = Number(message.receipt);
      if (!this.#unacked.has(tag)) continue;
      if (maxReceives > 0 && message.receiveCount >= maxReceives) {
        this.#settle(tag, (held) => this.#channel.reject(held, false));
        settled.push(message);
      } else if (native) {
        this.#settle(tag, (held) => this.#channel.nack(held, false, true));
        settled.push(message);
      } else {
        copies.push(message);
      }
    }
    if (copies.length === 0) return;
    const base = this.#base(queue);
    try {
      const home: Route = { exchange: '', key: base };
      const route = retryDelayMs > 0 ? await this.#waitQueue(base, home, Math.ceil(retryDelayMs / STEP_MS) * STEP_MS) : home;
      const counts = new Map(copies.map((message) => [message.body, message.receiveCount]));
      await this.#send(copies, () => route, (copy) => ({ ...PERSISTENT, headers: { [RECEIVES_HEADER]: counts.get(copy.body) } }));
    } catch (error) {
      if (settled.length === 0) throw error;
      throw new PartialSettleError(ADAPTER, 'nack', `queue ${base}: ${explainRefusal(error)}`, settled, { cause: error });
    }
    // The copy is confirmed: the original goes. A death in between delivers it twice, never not at all.
    for (const message of copies) this.#settle(Number(message.receipt), (held) => this.#channel.ack(held));
  }

  async depth(queue: string): Promise<QueueDepth> {
    this.#check();
    const side = await this.#sideChannel();
    const base = this.#base(queue);
    // Deliveries waiting in this process's consumer buffers were not received yet: ready, as the broker's own. A
    // delivery arriving while the broker counts may be in its count or not: counted again until none arrives meanwhile.
    let ready = 0;
    for (let attempt = 0; attempt < 5; attempt++) {
      const before = this.#shared.deliveries;
      ready = (await side.checkQueue(base)).messageCount;
      if (this.#shared.deliveries === before) break;
    }
    for (const driver of this.#shared.drivers) for (const consumer of driver.#consumers.values()) if (consumer.base === base) ready += consumer.buffer.length;
    const dead = (await side.checkQueue(`${base}.dead`)).messageCount;
    let delayed = 0;
    for (const name of await this.#waitQueuesOf(base)) delayed += (await side.checkQueue(name)).messageCount;
    return { ready, inFlight: this.#shared.inFlight.get(base) ?? 0, delayed, dead };
  }

  /** The wait queues made for `base`, by this process or any other (listed in `<base>.waits`). */
  async #waitQueuesOf(base: string): Promise<string[]> {
    const known = [...this.#shared.waits.keys()].filter((name) => name.startsWith(`${base}.`));
    return [...new Set([...known, ...(await readList(this.#connection, `${base}.waits`))])];
  }

  async purge(queue: string): Promise<void> {
    this.#check();
    const side = await this.#sideChannel();
    const base = this.#base(queue);
    for (const name of [base, `${base}.dead`, ...(await this.#waitQueuesOf(base))]) await side.purgeQueue(name);
    // What this process's consumers hold is dropped too: acked, so it is gone.
    for (const driver of this.#shared.drivers) driver.#drop(base, (message) => driver.#channel.ack(message));
  }

  /** Forgets every delivery of `base` this handle holds, settling each with `send` while the channel is open. */
  #drop(base: string, send?: (message: ConsumeMessage) => void): void {
    for (const consumer of this.#consumers.values()) consumer.buffer = consumer.buffer.filter((message) => this.#unacked.get(message.fields.deliveryTag)?.base !== base);
    for (const [tag, held] of this.#unacked) {
      if (held.base === base) this.#settle(tag, this.#broken === undefined && send !== undefined ? send : () => undefined);
    }
  }

  async teardown(queue: string): Promise<void> {
    this.#check();
    const bases = [...(this.#group === undefined ? (this.#shared.groups.get(queue) ?? []) : []), this.#base(queue)];
    const side = await this.#sideChannel();
    for (const base of bases) {
      for (const driver of this.#shared.drivers) driver.#drop(base);
      const waits = await this.#waitQueuesOf(base);
      for (const name of [...waits, base, `${base}.dead`, `${base}.waits`]) await side.deleteQueue(name);
      for (const name of waits) this.#shared.waits.delete(name);
    }
    if (this.#group === undefined) {
      await side.deleteExchange(`${this.#mainBase(queue)}.fanout`);
      this.#shared.groups.delete(queue);
    }
    this.#shared.specs.delete(queue);
  }

  async duplicate(): Promise<Driver> {
    this.#check();
    return RabbitDriver.connect(this.#shared, this.#group);
  }

  async openGroup(group: string): Promise<Driver> {
    this.#check();
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(group)) throw new Error(`group name "${group}" must be 1 to 40 letters, digits, '-' or '_'`);
    return RabbitDriver.connect(this.#shared, group);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#shared.drivers.delete(this);
    for (const consumer of this.#consumers.values()) consumer.wake?.();
    // Unacked deliveries go back to their queues when the connection closes.
    for (const [tag] of this.#unacked) this.#settle(tag, () => undefined);
    if (this.#broken !== undefined) return;
    // A quorum queue applies acks asynchronously: closing right after them can lose them (the messages come back).
    // A basic.cancel is a round trip behind them, so they have landed once it answers.
    const cancels = [...this.#consumers.values()].map((consumer) => this.#channel.cancel(consumer.tag));
    await withTimeout(this.#shared.timeoutMs, 'cancel', () => Promise.all(cancels)).catch(() => undefined);
    await this.#connection.close().catch(() => undefined);
  }

  #mainBase(queue: string): string {
    return `${this.#shared.namespace}-${queue}`;
  }

  /** The queue this handle reads for run queue `queue`: its own, or its group's. */
  #base(queue: string): string {
    return this.#group === undefined ? this.#mainBase(queue) : `${this.#mainBase(queue)}.group.${this.#group}`;
  }

  #check(): void {
    if (this.#closed) throw new Error('handle is closed');
    if (this.#broken !== undefined) throw new Error(this.#broken);
  }

  #sideChannel(): Promise<ConfirmChannel> {
    this.#side ??= this.#connection.createConfirmChannel().then((channel) => {
      channel.on('error', () => undefined);
      channel.on('close', () => (this.#side = undefined));
      return channel;
    });
    return this.#side;
  }
}
