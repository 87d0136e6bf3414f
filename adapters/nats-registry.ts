// What the nats registry entry says about its server beyond opening it: where it comes from
// (NATS_URL, the local 4222, a throw-away nats-server -js), which variable holds a secret, how names
// become stream names, and what the tests need (leftover streams under a namespace).
//
// LIMITATION: leftovers are found by listing every stream name on the server: fine for test servers,
// slow on one holding many thousands of streams.

import { connect, type ConnectionOptions } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { BrokerAdapter, Endpoint, Environment } from '../src/broker.ts';
import { resolveNats } from '../src/services/nats-server.ts';

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/**
 * A name as a stream-name part: stream names and subject tokens cannot hold `.`, `*`, `>`, blanks or
 * slashes, and `_` separates the parts, so every character but letters, digits and `-` is written as
 * `%` and its code. One-to-one: two queue names never share a stream.
 */
export function streamPart(name: string): string {
  return name.replace(/[^A-Za-z0-9-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Connection options for `url`: the server without its user part, and the token (`nats://token@host`)
 * or user and password (`nats://user:pass@host`) that was in it, percent-decoded.
 */
export function connectionOptions(url: string, timeoutMs: number): ConnectionOptions {
  const options: ConnectionOptions = { servers: url, timeout: timeoutMs, name: 'brokerbench' };
  const at = url.lastIndexOf('@');
  const start = url.indexOf('://') + 3;
  if (at < start) return options;
  const userinfo = url.slice(start, at);
  const server = url.slice(0, start) + url.slice(at + 1);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return { ...options, servers: server, token: decodeURIComponent(userinfo) };
  return { ...options, servers: server, user: decodeURIComponent(userinfo.slice(0, colon)), pass: decodeURIComponent(userinfo.slice(colon + 1)) };
}

/** The URL without its user part (a token or a user and password), for messages and result files. */
export function displayUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** The registry facts of the nats entry. */
export const natsServerFacts = {
  serverVariable: 'NATS_URL',
  async resolve(env: Environment): Promise<Endpoint> {
    const nats = await resolveNats({ NATS_URL: env['NATS_URL'] });
    return { url: nats.url, settings: { endpointKind: nats.kind }, stop: () => nats.stop() };
  },
  // A token in the user part (nats://token@host) is kept out of output by displayUrl, where the adapter shows its URL.
  secretVariables: [{ name: 'NATS_URL', part: 'url-userinfo' }],
  testing: {
    leftovers: (endpoint, namespace) => streamsWithPrefix(endpoint.url ?? DEFAULT_NATS_URL, `${streamPart(namespace)}_`),
    unreachableUrl: (port: number) => `nats://127.0.0.1:${port}`,
  },
} as const satisfies Partial<BrokerAdapter>;

/** Names of the streams on `url` whose name starts with `prefix`. */
export async function streamsWithPrefix(url: string, prefix: string): Promise<string[]> {
  const nc = await connect(connectionOptions(url, 5_000));
  try {
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    const found: string[] = [];
    for await (const name of jsm.streams.names()) if (name.startsWith(prefix)) found.push(name);
    return found;
  } finally {
    await nc.close();
  }
}
