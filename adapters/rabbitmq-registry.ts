// What the rabbitmq registry entry says about its broker beyond the driver: its capabilities, where its
// server comes from (RABBITMQ_URL, else the RabbitMQ on 127.0.0.1:5672), how a connection is opened and a
// failure told in one line, what the adapter declares on the server (names in adapters/rabbitmq.ts) and
// so what the tests find left over, and which variable holds a secret.
//
// LIMITATION: without the management plugin nothing lists a server's queues, so leftovers are the
// names the adapter made in this process, each checked with a passive declare (a queue or exchange made
// by a consumer process is not seen). No throw-away server: RabbitMQ needs an Erlang node and root-level
// set-up to start, so an unreachable default ends in one line saying how to get one.

import { connect, type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { createConnection } from 'node:net';
import type { BrokerAdapter, BrokerCapabilities, Endpoint, Environment } from '../src/broker.ts';
import { UsageError } from '../src/errors.ts';
import { redactUrl } from '../src/redact.ts';
import { firstLine, withTimeout } from './kit/index.ts';

/** Delays are rounded up to whole steps: one wait queue per distinct step. */
export const STEP_MS = 100;

/** Both modes alike: classic queues differ in how they count receives (see adapters/rabbitmq.ts), not in what they can do. */
export const RABBITMQ_CAPABILITIES: BrokerCapabilities = {
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


export const DEFAULT_RABBITMQ_URL = 'amqp://guest:guest@127.0.0.1:5672';
/** How long the default server gets to accept a connection before it counts as absent. */
const PROBE_TIMEOUT_MS = 1_000;

export const HOW_TO_START =
  'start one (Debian: apt-get install rabbitmq-server, which starts it; with Docker: docker compose up -d rabbitmq) or set RABBITMQ_URL';

/** A connection to `url` within `timeoutMs`, or an Error whose message says in one line what to do. */
export async function openConnection(url: string, timeoutMs: number): Promise<ChannelModel> {
  try {
    return await withTimeout(timeoutMs, 'connect', () => connect(url, { timeout: timeoutMs }));
  } catch (error) {
    throw new Error(explainConnect(url, error));
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

export type Mode = 'quorum' | 'classic';
/** Where a publish goes: an exchange ('' = the default one) and a routing key. */
export interface Route { readonly exchange: string; readonly key: string }

/** Declares run queue base B of `mode`: B (dead-lettering to B.dead, after maxReceives on quorum queues), B.dead, B.waits. */
export async function declareFamily(channel: Channel, mode: Mode, base: string, maxReceives: number): Promise<void> {
  await channel.assertQueue(`${base}.dead`, { durable: true, arguments: { 'x-queue-type': mode } });
  await channel.assertQueue(`${base}.waits`, { durable: true, arguments: { 'x-queue-type': 'classic' } });
  // A quorum queue dead-letters a message returned more than x-delivery-limit times: received maxReceives times.
  const limit = mode === 'quorum' && maxReceives > 0 ? { 'x-delivery-limit': maxReceives - 1 } : {};
  await channel.assertQueue(base, { durable: true, arguments: { 'x-queue-type': mode, ...deadLetterTo(mode, { exchange: '', key: `${base}.dead` }), ...limit } });
  for (const name of [base, `${base}.dead`, `${base}.waits`]) noteMade(name, 'queue');
}

/** Makes fanout exchange `exchange` and binds group queue `base` to it. */
export async function bindGroup(channel: Channel, base: string, exchange: string): Promise<void> {
  await channel.assertExchange(exchange, 'fanout', { durable: true });
  noteMade(exchange, 'exchange');
  await channel.bindQueue(base, exchange, '');
}

/** Declares wait queue `name`, holding each message `delayMs` and then dead-lettering it to `target`, and lists it in `list`. */
export async function declareWaitQueue(channel: ConfirmChannel, mode: Mode, name: string, delayMs: number, target: Route, list: string): Promise<void> {
  await channel.assertQueue(name, { durable: true, arguments: { 'x-queue-type': mode, 'x-message-ttl': delayMs, ...deadLetterTo(mode, target) } });
  noteMade(name, 'queue');
  await new Promise<void>((resolve, reject) =>
    channel.sendToQueue(list, Buffer.from(name), { persistent: true, mandatory: true }, (error) => (error ? reject(new Error(`listing ${name} in ${list} failed`)) : resolve())),
  );
}

/** The names listed in queue `list` (none if it is gone), read and given back: closing the channel unacked returns them. */
export async function readList(connection: ChannelModel, list: string): Promise<string[]> {
  const names: string[] = [];
  const channel = await connection.createChannel();
  channel.on('error', () => undefined);
  try {
    for (let entry = await channel.get(list); entry !== false; entry = await channel.get(list)) names.push(entry.content.toString('utf8'));
  } catch (error) {
    if ((error as { code?: unknown }).code !== 404) throw error;
  } finally {
    await channel.close().catch(() => undefined);
  }
  return names;
}

/** Arguments that dead-letter to `target` (the key only on the default exchange); at least once on quorum queues. */
function deadLetterTo(mode: Mode, target: Route): Record<string, string> {
  const args: Record<string, string> = { 'x-dead-letter-exchange': target.exchange };
  if (target.exchange === '') args['x-dead-letter-routing-key'] = target.key;
  if (mode === 'quorum') Object.assign(args, { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' });
  return args;
}

/** A channel error in one line, with what to do about a missing queue (404) or one declared otherwise (406). */
export function explainRefusal(error: unknown): string {
  const text = firstLine(error);
  const code = (error as { code?: unknown } | null)?.code;
  const said = /[A-Z_]+ - ([^"]*)/.exec(text)?.[1] ?? text;
  if (code === 404) return `${said}; prepare the queue first`;
  if (code === 406) return `${said}; tear the queue down or use a new namespace`;
  return text;
}

/** Every queue and exchange the adapter made in this process, by name: what leftovers() checks. */
const made = new Map<string, 'queue' | 'exchange'>();

export function noteMade(name: string, kind: 'queue' | 'exchange'): void {
  made.set(name, kind);
}

/** The registry facts of the rabbitmq entry. */
export const rabbitmqServerFacts = {
  serverVariable: 'RABBITMQ_URL',
  async resolve(env: Environment): Promise<Endpoint> {
    const noop = async (): Promise<void> => {};
    const given = env['RABBITMQ_URL']?.trim();
    if (given) {
      const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(given)?.[1]?.toLowerCase();
      if (scheme !== 'amqp' && scheme !== 'amqps') {
        throw new UsageError(`RABBITMQ_URL "${redactUrl(given)}" is not an amqp:// or amqps:// URL, e.g. ${DEFAULT_RABBITMQ_URL.replace(':guest@', ':***@')}`);
      }
      return { url: given, settings: { endpointKind: isLoopback(given) ? 'local' : 'other' }, stop: noop };
    }
    if (!(await answers('127.0.0.1', 5672, PROBE_TIMEOUT_MS))) {
      throw new UsageError(`no RabbitMQ: nothing answers on 127.0.0.1:5672; ${HOW_TO_START}`);
    }
    return { url: DEFAULT_RABBITMQ_URL, settings: { endpointKind: 'local' }, stop: noop };
  },
  secretVariables: [{ name: 'RABBITMQ_URL', part: 'url-password' }],
  testing: {
    leftovers: (endpoint, namespace) => leftoversOf(endpoint.url ?? DEFAULT_RABBITMQ_URL, namespace),
    unreachableUrl: (port: number) => `amqp://127.0.0.1:${port}`,
  },
} as const satisfies Partial<BrokerAdapter>;

/** Which of the names made in this process under `namespace` still exist on the server at `url`. */
async function leftoversOf(url: string, namespace: string): Promise<string[]> {
  const names = [...made].filter(([name]) => name.startsWith(namespace));
  if (names.length === 0) return [];
  const connection = await connect(url);
  connection.on('error', () => undefined);
  const found: string[] = [];
  try {
    let channel: Channel | undefined;
    for (const [name, kind] of names) {
      // A passive declare of something missing closes the channel (404): a new one for the next name.
      channel ??= await connection.createChannel();
      channel.on('error', () => undefined);
      try {
        if (kind === 'queue') await channel.checkQueue(name);
        else await channel.checkExchange(name);
        found.push(name);
      } catch {
        channel = undefined;
      }
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
  return found.sort();
}

export function isLoopback(url: string): boolean {
  return /^amqps?:\/\/([^@/]*@)?(127\.|localhost|\[::1\])/i.test(url);
}

/** True if something accepts a TCP connection on host:port within timeoutMs. */
function answers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
