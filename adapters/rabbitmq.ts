// RabbitMQ through amqplib: quorum queues (default) or classic ones, publisher confirms awaited once per
// batch, basic.consume into a local buffer that receive() serves (prefetch = the receive batch), dead
// letters to `<queue>.dead`, delays and nack delays through wait queues, fan-out through a fanout exchange.
//
// Names, all under the namespace on the default vhost `/`, for run queue q (base B = `<namespace>-q`):
//   B              the queue; dead-letters to B.dead through the default exchange
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

import { connect, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Message, type Options } from 'amqplib';
import {
  PartialSettleError,
  type BrokerCapabilities,
  type BrokerOptions,
  type OutgoingMessage,
  type QueueDepth,
  type QueueSpec,
  type ReceivedMessage,
  type ReceiveOptions,
} from '../src/broker.ts';
import { redactUrl } from '../src/redact.ts';
import { defineAdapter, firstLine, SettingsReader, withTimeout, type Driver, type ServerInfo } from './kit/index.ts';
import { DEFAULT_RABBITMQ_URL, HOW_TO_START, noteMade, rabbitmqServerFacts } from './rabbitmq-registry.ts';

const ADAPTER = 'rabbitmq';
const STEP_MS = 100;
const RECEIVES_HEADER = 'bb-receives';

const QUORUM: BrokerCapabilities = {
  delivery: 'at-least-once', delay: true, maxDelayMs: 24 * 3600 * 1000, deadLetter: true, visibilityTimeout: false, nackDelay: true,
  // Requeued and delayed messages rejoin at the back.
  ordering: 'none',
  maxBatchSize: 1_000,
  // The server's max_message_size default (128 MiB).
  maxPayloadBytes: 128 * 1024 * 1024,
  delayGranularity: { ms: STEP_MS, says: 'RabbitMQ delays go through one wait queue per delay, in steps of 100 ms' },
  nackDelayGranularity: { ms: STEP_MS, says: 'RabbitMQ retry delays go through one wait queue per delay, in steps of 100 ms' },
  sharedAcrossProcesses: true,
};

type Mode = 'quorum' | 'classic';
interface Route { readonly exchange: string; readonly key: string }
interface Batch { readonly messages: readonly OutgoingMessage[]; returned: number }

/** What every handle opened from one open() shares in this process. */
interface Shared {
  readonly url: string;
  readonly mode: Mode;
  readonly namespace: string;
  readonly timeoutMs: number;
  readonly info: ServerInfo;
  readonly prefetch: number | undefined;
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

const PERSISTENT: Options.Publish = { persistent: true, mandatory: true };

async function open(url: string, timeoutMs: number): Promise<ChannelModel> {
  try {
    return await withTimeout(timeoutMs, 'connect', () => connect(url, { timeout: timeoutMs }));
  } catch (error) {
    throw new Error(explainConnect(url, error));
  }
}

class RabbitDriver implements Driver {
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
    const connection = opened ?? (await open(shared.url, shared.timeoutMs));
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

  explain(error: unknown): string {
    const text = firstLine(error);
    const code = (error as { code?: unknown } | null)?.code;
    const said = /[A-Z_]+ - ([^"]*)/.exec(text)?.[1] ?? text;
    if (code === 404) return `${said}; prepare the queue first`;
    if (code === 406) return `${said}; tear the queue down or use a new namespace`;
    return text;
  }

  async prepare(spec: QueueSpec): Promise<void> {
    this.#check();
    const side = await this.#sideChannel();
    const base = this.#base(spec.name);
    await this.#declareFamily(side, base, spec.maxReceives);
    if (this.#group !== undefined) {
      const exchange = `${this.#mainBase(spec.name)}.fanout`;
      await side.assertExchange(exchange, 'fanout', { durable: true });
      noteMade(exchange, 'exchange');
      await side.bindQueue(base, exchange, '');
      const groups = this.#shared.groups.get(spec.name) ?? new Set();
      this.#shared.groups.set(spec.name, groups.add(base));
    }
    this.#shared.specs.set(spec.name, spec);
  }

  async #declareFamily(side: ConfirmChannel, base: string, maxReceives: number): Promise<void> {
    const type = { 'x-queue-type': this.#shared.mode };
    await side.assertQueue(`${base}.dead`, { durable: true, arguments: type });
    await side.assertQueue(`${base}.waits`, { durable: true, arguments: { 'x-queue-type': 'classic' } });
    const limit = this.#shared.mode === 'quorum' && maxReceives > 0 ? { 'x-delivery-limit': maxReceives - 1 } : {};
    await side.assertQueue(base, { durable: true, arguments: { ...type, ...this.#deadLetterTo('', `${base}.dead`), ...limit } });
    for (const name of [base, `${base}.dead`, `${base}.waits`]) noteMade(name, 'queue');
  }

  /** Arguments that dead-letter to `exchange` (with `key` on the default exchange): at least once on quorum queues. */
  #deadLetterTo(exchange: string, key: string): Record<string, string> {
    const args: Record<string, string> = { 'x-dead-letter-exchange': exchange };
    if (exchange === '') args['x-dead-letter-routing-key'] = key;
    if (this.#shared.mode === 'quorum') Object.assign(args, { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' });
    return args;
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
      declared = (async () => {
        const side = await this.#sideChannel();
        const args = { 'x-queue-type': this.#shared.mode, 'x-message-ttl': delayMs, ...this.#deadLetterTo(target.exchange, target.key) };
        await side.assertQueue(name, { durable: true, arguments: args });
        noteMade(name, 'queue');
        await new Promise<void>((resolve, reject) =>
          side.sendToQueue(`${owner}.waits`, Buffer.from(name), PERSISTENT, (error) => (error ? reject(new Error(`listing ${name} failed`)) : resolve())),
        );
      })();
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
      throw new PartialSettleError(ADAPTER, 'nack', `queue ${base}: ${this.explain(error)}`, settled, { cause: error });
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

  /** The wait queues made for `base`, by this process or any other (from `<base>.waits`, read and given back). */
  async #waitQueuesOf(base: string): Promise<string[]> {
    const names = new Set<string>();
    for (const name of this.#shared.waits.keys()) if (name.startsWith(`${base}.`)) names.add(name);
    const listing = await this.#connection.createChannel();
    listing.on('error', () => undefined);
    try {
      for (let entry = await listing.get(`${base}.waits`); entry !== false; entry = await listing.get(`${base}.waits`)) {
        names.add(entry.content.toString('utf8'));
      }
    } catch (error) {
      // No list (torn down already): only the names this process knows.
      if ((error as { code?: unknown }).code !== 404) throw error;
    } finally {
      // Closing without acks puts every entry back.
      await listing.close().catch(() => undefined);
    }
    return [...names];
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
    for (const [tag, held] of this.#unacked) {
      if (held.out) this.#count(-1, held.base);
      this.#unacked.delete(tag);
    }
    if (this.#broken === undefined) await this.#connection.close().catch(() => undefined);
  }

  #mainBase(queue: string): string {
    return `${this.#shared.namespace}-${queue}`;
  }

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

/** Why `url` could not be opened, and what to do, in one line without the password. */
function explainConnect(url: string, error: unknown): string {
  const where = redactUrl(url);
  const text = firstLine(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (/ACCESS[-_]REFUSED|403/.test(text)) return `authentication failed at ${where} (ACCESS_REFUSED); check the user name and password in RABBITMQ_URL`;
  if (/NOT_ALLOWED|530/.test(text)) return `the vhost of ${where} is refused (NOT_ALLOWED); check the vhost in RABBITMQ_URL`;
  if (/timed out/i.test(text) || code === 'ETIMEDOUT') return `cannot reach ${where} (connect timed out); ${HOW_TO_START}`;
  return `cannot reach ${where} (${typeof code === 'string' ? code : text}); ${HOW_TO_START}`;
}

export const rabbitmqAdapter = defineAdapter({
  name: ADAPTER,
  aliases: ['RABBITMQ', 'RABBIT', 'AMQP'],
  modes: { quorum: QUORUM, classic: QUORUM },
  defaultMode: 'quorum',
  limits: { owner: "RabbitMQ's" },
  async connect(options: BrokerOptions, mode: string): Promise<Driver> {
    const settings = new SettingsReader(ADAPTER, options.settings);
    const url = options.url ?? DEFAULT_RABBITMQ_URL;
    const loopback = /^amqps?:\/\/([^@/]*@)?(127\.|localhost|\[::1\])/i.test(url);
    const connection = await open(url, options.commandTimeoutMs);
    const version = String(connection.connection.serverProperties.version ?? 'unknown');
    const shared: Shared = {
      url,
      mode: mode as Mode,
      namespace: options.namespace,
      timeoutMs: options.commandTimeoutMs,
      info: { serverVersion: version, endpoint: redactUrl(url), endpointKind: settings.endpointKind(loopback ? 'local' : 'other') },
      prefetch: settings.number('prefetch', { min: 1, integer: true }),
      specs: new Map(),
      waits: new Map(),
      groups: new Map(),
      inFlight: new Map(),
      drivers: new Set(),
      deliveries: 0,
    };
    return RabbitDriver.connect(shared, undefined, connection);
  },
  ...rabbitmqServerFacts,
});
