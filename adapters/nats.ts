// The NATS JetStream adapter: per run queue a work-queue stream (`<ns>_<queue>`) read by one durable
// pull consumer (`work`), at-least-once. Publish awaits every PubAck of a batch at once; receive sends one
// pull request (no_wait with an expiry of waitMs: the server answers as soon as anything is there, and
// never holds the request open after it); ack and nack publish to each message's ack subject and
// confirm the batch with one acknowledged ack on its last message (the server settles one consumer's
// acks in order); nack takes a delay (-NAK {"delay"}). The visibility timeout is the consumer's
// ack_wait, maxReceives its max_deliver. A message delivered that often is announced by the server's
// max-deliveries advisory, which a stream of its own (`<stream>_adv`) keeps; depth() moves each
// announced message to `<stream>_dlq` (read by stream sequence, published with a Nats-Msg-Id so a
// repeated move is dropped, then deleted from the work stream), so dead counts are exact when asked.
// Fan-out (ConsumerGroups): a group handle reads the queue's stream as durable consumer `g-<group>`;
// the stream is then a limits stream (a work queue allows one consumer), and acks delete nothing.
//
// Settings read from `options.settings`:
//   endpointKind  string  what describe() reports as `endpointKind` (resolve() passes it); default 'local'.
//
// LIMITATION: nats-server 2.9 has no per-message delay (message schedules came in 2.12), so publish
// delays are not offered. A dead letter waits in the work stream until the next depth() moves it.
// num_ack_pending counts a message nacked with a delay as in flight until it is redelivered.

import { connect, createInbox, headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  type JetStreamManager,
} from '@nats-io/jetstream';
import type { BrokerCapabilities, BrokerOptions, OutgoingMessage, QueueDepth, QueueSpec, ReceiveOptions, ReceivedMessage } from '../src/broker.ts';
import { HOW_TO_START_NATS } from '../src/services/nats-server.ts';
import { defineAdapter, firstLine, SettingsReader, withTimeout, type Driver, type ServerInfo } from './kit/index.ts';
import { connectionOptions, DEFAULT_NATS_URL, displayUrl, natsServerFacts, streamPart } from './nats-registry.ts';

const ADAPTER = 'nats';
const MODE = 'jetstream';
/** The consumer every plain handle reads a queue's stream through. */
const WORK = 'work';

const CAPABILITIES: BrokerCapabilities = {
  delivery: 'at-least-once', delay: false, maxDelayMs: 0, deadLetter: true, visibilityTimeout: true, nackDelay: true,
  // No limit of the server's own on a nak delay: a week, as the memory adapter's delays.
  maxNackDelayMs: 7 * 24 * 3600 * 1000,
  // Redelivered and nacked messages come back between newer ones.
  ordering: 'none',
  maxBatchSize: 1_000,
  // The server's default max_payload is 1 MiB; a dead-letter copy carries a Nats-Msg-Id header besides the body.
  maxPayloadBytes: 1024 * 1024 - 1024,
  sharedAcrossProcesses: true,
};

const ACK = '+ACK';
/** Pull requests, messages and ack subjects are latin-1 text; bodies UTF-8. */
const decoder = new TextDecoder();

const dlqOf = (stream: string, consumer: string): string => (consumer === WORK ? `${stream}_dlq` : `${stream}_${consumer}_dlq`);
const advisoriesOf = (stream: string): string => `${stream}_adv`;

/** The delivery count in an ack subject: `$JS.ACK.<stream>.<consumer>.<delivered>.…` (9 tokens), or with a domain and account hash after `$JS.ACK.` (11 or 12). */
function deliveryCount(ackSubject: string): number {
  const tokens = ackSubject.split('.');
  const count = Number(tokens[tokens.length >= 11 ? 6 : 4]);
  return count >= 1 ? count : 1;
}

function isApiError(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}

/** How long past its expiry a pull request may stay unanswered before the server is asked whether it is there, ms. */
const SILENCE_GRACE_MS = 250;

/**
 * One pull request at a time on an inbox of the handle's own. Messages are collected until the batch is
 * full or the server ends the request (404 nothing there, 408 expired, both after what it delivered);
 * anything that arrives for a request given up on is kept for the next call, never dropped.
 */
class Puller {
  readonly #nc: NatsConnection;
  readonly #inbox = createInbox();
  readonly #sub: Subscription;
  #kept: Msg[] = [];
  #requests = 0;
  #waiting: { subject: string; want: number; done: (status?: string) => void } | undefined;

  constructor(nc: NatsConnection) {
    this.#nc = nc;
    this.#sub = nc.subscribe(`${this.#inbox}.*`, { callback: (_error, msg) => this.#arrived(msg) });
  }

  #arrived(msg: Msg): void {
    const waiting = this.#waiting;
    if (msg.reply) {
      this.#kept.push(msg);
      if (waiting !== undefined && this.#kept.length >= waiting.want) waiting.done();
    } else if (waiting !== undefined && msg.subject === waiting.subject) {
      const code = msg.headers?.code ?? 0;
      waiting.done(code === 404 || code === 408 ? undefined : `${code} ${msg.headers?.description ?? ''}`.trim());
    }
  }

  /** Up to `batch` messages of `consumerSubject` (the consumer's MSG.NEXT subject), waiting up to `waitMs` for the first. */
  async pull(consumerSubject: string, batch: number, waitMs: number, timeoutMs: number): Promise<Msg[]> {
    if (this.#kept.length === 0) {
      const subject = `${this.#inbox}.${++this.#requests}`;
      const request = waitMs > 0 ? { batch, no_wait: true, expires: Math.ceil(waitMs) * 1e6 } : { batch, no_wait: true };
      const status = await new Promise<string | undefined>((resolve) => {
        const timer = setTimeout(() => done('silent'), waitMs + SILENCE_GRACE_MS);
        const done = (outcome?: string): void => {
          clearTimeout(timer);
          this.#waiting = undefined;
          resolve(outcome);
        };
        this.#waiting = { subject, want: batch, done };
        this.#nc.publish(consumerSubject, JSON.stringify(request), { reply: subject });
      });
      if (status === 'silent' && this.#kept.length === 0) {
        // nats-server 2.9 can let a pull request expire without a word (seen when a nak-delayed message
        // falls due as the request expires; the message comes with the next request). A server that
        // answers a ping is there: the wait simply brought nothing. One that does not is a timeout.
        await withTimeout(timeoutMs, 'receive', () => this.#nc.flush());
        return [];
      }
      if (status !== undefined && status !== 'silent' && this.#kept.length === 0) {
        throw new Error(status.startsWith('503') ? 'no such consumer: prepare the queue first' : `pull request ended: ${status}`);
      }
    }
    return this.#kept.splice(0, batch);
  }

  /** Ends a wait, and gives back what was delivered to this handle and never handed out. */
  close(): void {
    this.#waiting?.done();
    for (const msg of this.#kept.splice(0)) this.#nc.publish(msg.reply!, '-NAK');
    this.#sub.unsubscribe();
  }
}

/** One connection: a plain handle reads through `work`, a group handle through its own durable consumer. */
class NatsDriver implements Driver {
  readonly #options: BrokerOptions;
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #consumer: string;
  readonly #url: string;
  readonly #timeoutMs: number;
  #puller: Puller | undefined;

  constructor(options: BrokerOptions, nc: NatsConnection, jsm: JetStreamManager, consumer: string) {
    this.#options = options;
    this.#nc = nc;
    this.#jsm = jsm;
    this.#consumer = consumer;
    this.#url = options.url ?? DEFAULT_NATS_URL;
    this.#timeoutMs = options.commandTimeoutMs;
  }

  #stream(queue: string): string {
    return `${streamPart(this.#options.namespace)}_${streamPart(queue)}`;
  }

  queueName(queue: string): string {
    return this.#stream(queue);
  }

  explain(error: unknown): string {
    const text = firstLine(error);
    if (/jetstream is not enabled|JetStreamNotEnabled/i.test(`${text} ${(error as Error)?.name}`)) {
      return `JetStream is not enabled on the NATS server at ${displayUrl(this.#url)}: start it with \`nats-server -js\``;
    }
    // A publish to a subject no stream captures, or a pull on a consumer that is not there.
    if (/no responders/i.test(text)) return `${text}: no stream or consumer answers, so the queue is not prepared (or was torn down)`;
    return text;
  }

  async describe(): Promise<ServerInfo> {
    const kind = new SettingsReader(ADAPTER, this.#options.settings).endpointKind('local');
    return { serverVersion: this.#nc.info?.version ?? 'unknown', endpoint: displayUrl(this.#url), endpointKind: kind };
  }

  async prepare({ name, visibilityTimeoutMs, maxReceives }: QueueSpec): Promise<void> {
    const stream = this.#stream(name);
    if (this.#consumer === WORK) await this.#ensureStream(stream, RetentionPolicy.Workqueue);
    else await this.#ensureGroupStream(stream);
    await this.#ensureStream(advisoriesOf(stream), RetentionPolicy.Limits, [`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.*`]);
    await this.#ensureStream(dlqOf(stream, this.#consumer), RetentionPolicy.Limits);
    const settings = { ack_wait: Math.ceil(visibilityTimeoutMs) * 1e6, max_deliver: maxReceives > 0 ? maxReceives : -1, max_ack_pending: -1 };
    try {
      await this.#jsm.consumers.add(stream, { durable_name: this.#consumer, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ...settings });
    } catch (error) {
      // Made before with other settings (a second prepare with another spec): take the new ones.
      if ((await this.#jsm.consumers.info(stream, this.#consumer).catch(() => undefined)) === undefined) throw error;
      await this.#jsm.consumers.update(stream, this.#consumer, settings);
    }
  }

  /** Creates the stream unless one of that name exists (whatever its settings: another handle made it). */
  async #ensureStream(name: string, retention: RetentionPolicy, subjects = [name]): Promise<void> {
    try {
      await this.#jsm.streams.add({ name, subjects, retention });
    } catch (error) {
      if ((await this.#streamInfo(name)) === undefined) throw error;
    }
  }

  /** A work-queue stream takes one consumer only: an empty one is made a limits stream, which any number of groups can read. */
  async #ensureGroupStream(stream: string): Promise<void> {
    const info = await this.#streamInfo(stream);
    if (info?.config.retention === RetentionPolicy.Workqueue) {
      if (info.state.messages > 0) {
        throw new Error(`queue ${stream} already holds ${info.state.messages} messages as a work queue: open its consumer groups before publishing`);
      }
      await this.#jsm.streams.delete(stream);
    }
    await this.#ensureStream(stream, RetentionPolicy.Limits);
  }

  async #streamInfo(name: string) {
    try {
      return await this.#jsm.streams.info(name);
    } catch (error) {
      if (isApiError(error, JetStreamApiCodes.StreamNotFound)) return undefined;
      throw error;
    }
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    const subject = this.#stream(queue);
    const options = { timeout: this.#timeoutMs };
    // Every message is sent before any PubAck is awaited: one round trip per batch, not per message.
    const acks = messages.map(({ body }) => this.#nc.request(subject, body, options));
    for (const reply of await Promise.all(acks)) {
      const text = decoder.decode(reply.data);
      if (text.includes('"error"')) {
        const { error } = JSON.parse(text) as { error: { code: number; description: string } };
        throw new Error(`stream ${subject} refused a message: ${error.description} (${error.code})`);
      }
    }
  }

  async receive(queue: string, { maxMessages, waitMs }: ReceiveOptions): Promise<ReceivedMessage[]> {
    this.#puller ??= new Puller(this.#nc);
    const next = `$JS.API.CONSUMER.MSG.NEXT.${this.#stream(queue)}.${this.#consumer}`;
    const msgs = await this.#puller.pull(next, maxMessages, waitMs, this.#timeoutMs);
    const received = new Array<ReceivedMessage>(msgs.length);
    for (let i = 0; i < msgs.length; i++) {
      const reply = msgs[i]!.reply!;
      received[i] = { body: decoder.decode(msgs[i]!.data), receiveCount: deliveryCount(reply), receipt: reply };
    }
    return received;
  }

  ack(_queue: string, messages: readonly ReceivedMessage[]): Promise<void> {
    return this.#settle(messages, ACK);
  }

  nack(_queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    return this.#settle(messages, retryDelayMs > 0 ? `-NAK {"delay":${Math.ceil(retryDelayMs) * 1e6}}` : '-NAK');
  }

  /**
   * Publishes `verdict` to every message's ack subject and asks the server to confirm the last one: a
   * consumer takes the acks of one connection in order, so that answer means every one was taken.
   */
  async #settle(messages: readonly ReceivedMessage[], verdict: string): Promise<void> {
    const last = messages.length - 1;
    for (let i = 0; i < last; i++) this.#nc.publish(messages[i]!.receipt, verdict);
    await this.#nc.request(messages[last]!.receipt, verdict, { timeout: this.#timeoutMs });
  }

  async depth(queue: string): Promise<QueueDepth> {
    const stream = this.#stream(queue);
    await this.#moveDeadLetters(stream);
    const info = await this.#jsm.consumers.info(stream, this.#consumer);
    const dead = (await this.#streamInfo(dlqOf(stream, this.#consumer)))?.state.messages ?? 0;
    return { ready: info.num_pending, inFlight: info.num_ack_pending, delayed: 0, dead };
  }

  /**
   * Moves every message a max-deliveries advisory announced to its consumer's dead-letter stream. Safe
   * to run from several handles at once, and again after a crash: the copy carries a Nats-Msg-Id
   * the dead-letter stream drops repeats of, and each step skips what is already done.
   */
  async #moveDeadLetters(stream: string): Promise<void> {
    const advisories = advisoriesOf(stream);
    const info = await this.#streamInfo(advisories);
    if (info === undefined || info.state.messages === 0) return;
    const js = this.#jsm.jetstream();
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const advisory = await this.#jsm.streams.getMessage(advisories, { seq });
      if (advisory === null) continue;
      const { stream_seq: streamSeq, consumer } = advisory.json<{ stream_seq: number; consumer: string }>();
      const original = await this.#jsm.streams.getMessage(stream, { seq: streamSeq });
      if (original !== null) {
        const marks = headers();
        marks.set('Nats-Msg-Id', `${consumer}-${streamSeq}`);
        await js.publish(dlqOf(stream, consumer), original.data, { headers: marks, timeout: this.#timeoutMs });
        // A limits stream (fan-out) keeps it: other groups may not have read it yet.
        if (consumer === WORK) await this.#deleteMessage(stream, streamSeq);
      }
      await this.#deleteMessage(advisories, seq);
    }
  }

  async #deleteMessage(stream: string, seq: number): Promise<void> {
    try {
      await this.#jsm.streams.deleteMessage(stream, seq, false);
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.NoMessageFound)) throw error;
    }
  }

  async purge(queue: string): Promise<void> {
    const stream = this.#stream(queue);
    // Announcements first, so nothing purged is moved to a dead-letter stream afterwards.
    for (const name of [advisoriesOf(stream), stream, ...(await this.#sideStreams(stream))]) {
      if ((await this.#streamInfo(name)) !== undefined) await this.#jsm.streams.purge(name);
    }
  }

  async teardown(queue: string): Promise<void> {
    const stream = this.#stream(queue);
    for (const name of [stream, ...(await this.#sideStreams(stream))]) {
      try {
        await this.#jsm.streams.delete(name);
      } catch (error) {
        if (!isApiError(error, JetStreamApiCodes.StreamNotFound)) throw error;
      }
    }
  }

  /** The dead-letter and advisory streams of `stream` (every group's): names that continue it after `_`. */
  async #sideStreams(stream: string): Promise<string[]> {
    const found: string[] = [];
    for await (const name of this.#jsm.streams.names()) if (name.startsWith(`${stream}_`)) found.push(name);
    return found;
  }

  duplicate(): Promise<Driver> {
    return openDriver(this.#options, this.#consumer);
  }

  openGroup(group: string): Promise<Driver> {
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(group)) throw new Error(`group name "${group}" must be 1 to 40 letters, digits, '-' or '_'`);
    return openDriver(this.#options, `g-${streamPart(group)}`);
  }

  async close(): Promise<void> {
    this.#puller?.close();
    // Out before the socket closes: the naks of what was delivered to this handle and never handed out.
    await this.#nc.flush().catch(() => undefined);
    await this.#nc.close();
  }
}

/** Connects, checking JetStream answers on the first handle; every failure in one line saying what to do. */
async function openDriver(options: BrokerOptions, consumer: string, checkJetStream = false): Promise<NatsDriver> {
  const url = options.url ?? DEFAULT_NATS_URL;
  let nc: NatsConnection;
  try {
    nc = await connect(connectionOptions(url, options.commandTimeoutMs));
  } catch (error) {
    const code = (error as { cause?: { code?: string } })?.cause?.code ?? firstLine(error);
    throw new Error(`cannot reach NATS at ${displayUrl(url)} (${code}); ${HOW_TO_START_NATS}`, { cause: error });
  }
  try {
    const jsm = await jetstreamManager(nc, { timeout: options.commandTimeoutMs, checkAPI: checkJetStream });
    return new NatsDriver(options, nc, jsm, consumer);
  } catch (error) {
    await nc.close().catch(() => undefined);
    if (/not enabled|no responders/i.test(firstLine(error))) {
      throw new Error(`JetStream is not enabled on the NATS server at ${displayUrl(url)}: start it with \`nats-server -js\``, { cause: error });
    }
    throw error;
  }
}

export const natsAdapter = defineAdapter({
  name: ADAPTER,
  aliases: ['NATS', 'JETSTREAM'],
  modes: { [MODE]: CAPABILITIES },
  defaultMode: MODE,
  limits: { owner: 'NATS', noDelay: 'nats-server 2.9 has no per-message delay (message schedules need 2.12)' },
  connect: (options) => openDriver(options, WORK, true),
  ...natsServerFacts,
});
