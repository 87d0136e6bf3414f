// What both Redis adapters' registry entries say about their server, shared so the two never drift:
// where the server comes from (REDIS_URL, the local 6379, a throw-away redis-server), which variable
// holds a secret, the memory-capped server for --maxmemory, and what the tests need (leftover keys).
//
// LIMITATION: leftovers are found with SCAN over the whole keyspace (MATCH prefix*): fine for test
// servers, slow on a server holding millions of keys.

import { Redis } from 'ioredis';
import type { BrokerAdapter, Endpoint, Environment } from '../src/broker.ts';
import { resolveRedis, startRedisServer } from '../src/services/redis-server.ts';

/** The registry facts the Redis adapters share; each entry spreads them. */
export const redisServerFacts = {
  serverVariable: 'REDIS_URL',
  async resolve(env: Environment): Promise<Endpoint> {
    const redis = await resolveRedis({ REDIS_URL: env['REDIS_URL'] });
    return { url: redis.url, settings: { endpointKind: redis.kind }, stop: () => redis.stop() };
  },
  secretVariables: [{ name: 'REDIS_URL', part: 'url-password' }],
  cappedServer: {
    program: 'redis-server',
    // noeviction: a full server refuses writes rather than drop keys.
    async start(maxMemoryBytes: number): Promise<Endpoint> {
      const server = await startRedisServer({ args: ['--maxmemory', String(maxMemoryBytes), '--maxmemory-policy', 'noeviction'] });
      return { url: server.url, settings: { endpointKind: 'embedded' }, stop: server.stop };
    },
  },
  testing: {
    leftovers: (endpoint, namespace) => keysWithPrefix(namespace, endpoint.url ?? 'redis://127.0.0.1:6379'),
    unreachableUrl: (port: number) => `redis://127.0.0.1:${port}`,
  },
} as const satisfies Partial<BrokerAdapter>;

/** Every key whose name starts with `prefix` on `url`, found with SCAN (never KEYS on a shared server). */
export async function keysWithPrefix(prefix: string, url: string): Promise<string[]> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  await client.connect();
  try {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    return found;
  } finally {
    await client.quit();
  }
}
