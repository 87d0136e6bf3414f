// What the rabbitmq registry entry says about its server beyond opening it: where it comes from
// (RABBITMQ_URL, else the RabbitMQ on 127.0.0.1:5672), which variable holds a secret, and what the tests
// need (leftover queues and exchanges under a namespace).
//
// LIMITATION: without the management plugin nothing lists a server's queues, so leftovers are the
// names the adapter made in this process, each checked with a passive declare (a queue or exchange made
// by a consumer process is not seen). No throw-away server: RabbitMQ needs an Erlang node and root-level
// set-up to start, so an unreachable default ends in one line saying how to get one.

import { connect, type Channel } from 'amqplib';
import { createConnection } from 'node:net';
import type { BrokerAdapter, Endpoint, Environment } from '../src/broker.ts';
import { UsageError } from '../src/errors.ts';
import { redactUrl } from '../src/redact.ts';

export const DEFAULT_RABBITMQ_URL = 'amqp://guest:guest@127.0.0.1:5672';
/** How long the default server gets to accept a connection before it counts as absent. */
const PROBE_TIMEOUT_MS = 1_000;

export const HOW_TO_START =
  'start one (Debian: apt-get install rabbitmq-server, which starts it; with Docker: docker compose up -d rabbitmq) or set RABBITMQ_URL';

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

function isLoopback(url: string): boolean {
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
