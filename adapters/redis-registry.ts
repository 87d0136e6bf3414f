// What the Redis adapters' registry entries say about their server, shared so they never drift:
// where the server comes from (REDIS_URL, which may name any node of a Redis Cluster; REDIS_CLUSTER=N
// for a throw-away cluster of N masters; the local 6379; a throw-away redis-server), which variable
// holds a secret, the memory-capped server for --maxmemory, and what the tests need (leftover keys).
//
// LIMITATION: leftovers are found with SCAN over the whole keyspace (MATCH prefix*), of every master
// on a cluster: fine for test servers, slow on a server holding millions of keys.

import { Redis } from 'ioredis';
import type { BrokerAdapter, Endpoint, Environment } from '../src/broker.ts';
import { UsageError } from '../src/errors.ts';
import { MAX_CLUSTER_MASTERS, MIN_CLUSTER_MASTERS, startRedisCluster } from '../src/services/redis-cluster.ts';
import { resolveRedis, startRedisServer } from '../src/services/redis-server.ts';

/** The registry facts the Redis adapters share; each entry spreads them. */
export const redisServerFacts = {
  serverVariable: 'REDIS_URL',
  async resolve(env: Environment): Promise<Endpoint> {
    const masters = clusterMasters(env);
    if (masters !== undefined) {
      const cluster = await startRedisCluster({ masters });
      return { url: cluster.url, settings: { endpointKind: 'embedded' }, stop: () => cluster.stop() };
    }
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

/**
 * REDIS_CLUSTER=N: how many masters the throw-away cluster gets; undefined when unset. A value that is no
 * count in range, or REDIS_URL set beside it, is a UsageError: both say where Redis is.
 */
export function clusterMasters(env: Environment): number | undefined {
  const given = env['REDIS_CLUSTER']?.trim();
  if (!given) return undefined;
  const masters = /^\d+$/.test(given) ? Number(given) : Number.NaN;
  if (!(masters >= MIN_CLUSTER_MASTERS && masters <= MAX_CLUSTER_MASTERS)) {
    throw new UsageError(`REDIS_CLUSTER must be a number of masters from ${MIN_CLUSTER_MASTERS} to ${MAX_CLUSTER_MASTERS}, got "${given}"`);
  }
  if (env['REDIS_URL']?.trim()) {
    throw new UsageError('REDIS_URL and REDIS_CLUSTER are both set: REDIS_CLUSTER starts a throw-away cluster, REDIS_URL names a server; unset one');
  }
  return masters;
}

/**
 * Every key whose name starts with `prefix` on `url`, found with SCAN (never KEYS on a shared server);
 * on a node of a cluster, on every master of it.
 */
export async function keysWithPrefix(prefix: string, url: string): Promise<string[]> {
  const found: string[] = [];
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  await client.connect();
  try {
    if (!/^cluster_enabled:1\b/m.test(await client.info('cluster'))) return await scanPrefix(client, prefix);
    const slots = (await client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]]][];
    const masters = [...new Set(slots.map(([, , [host, port]]) => `${host}:${port}`))];
    for (const master of masters) {
      const [host, port] = [master.slice(0, master.lastIndexOf(':')), Number(master.slice(master.lastIndexOf(':') + 1))];
      const node = client.duplicate({ host, port, lazyConnect: true });
      await node.connect();
      try {
        found.push(...(await scanPrefix(node, prefix)));
      } finally {
        await node.quit();
      }
    }
    return found;
  } finally {
    await client.quit();
  }
}

async function scanPrefix(client: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}
