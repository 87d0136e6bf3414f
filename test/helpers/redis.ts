// Shared helpers for tests that talk to a real Redis: where it is, fresh key prefixes, and adapter
// handles that are always torn down and closed.

import { Redis } from 'ioredis';
import type { QueueSpec } from '../../src/broker.ts';
import { redisListAdapter } from '../../adapters/redis-list.ts';
import { keysWithPrefix as registryKeysWithPrefix } from '../../adapters/redis-registry.ts';
import { prepareQueueFixture, uniqueNamespace, type QueueFixture } from './fixture.ts';

export { uniqueNamespace };

/** The Redis tests use: REDIS_URL, else the one on 127.0.0.1:6379. */
export function redisUrl(): string {
  return process.env['REDIS_URL'] || 'redis://127.0.0.1:6379';
}

/** An open redis-list handle plus everything a test needs to clean up after it. */
export type RedisListFixture = QueueFixture;

/** Opens a redis-list handle on a fresh namespace and prepares queue `q` on it. */
export async function openRedisListFixture(
  mode: 'reliable' | 'simple',
  spec: Partial<Omit<QueueSpec, 'name'>> = {},
): Promise<RedisListFixture> {
  const namespace = uniqueNamespace();
  const broker = await redisListAdapter.open({ namespace, mode, url: redisUrl(), commandTimeoutMs: 2_000 });
  return prepareQueueFixture(broker, namespace, spec);
}

/** Every key whose name starts with `prefix` on `url` (default: redisUrl()), found with SCAN (never KEYS on a shared server). */
export function keysWithPrefix(prefix: string, url: string = redisUrl()): Promise<string[]> {
  return registryKeysWithPrefix(prefix, url);
}

/** Pauses every client of the server at `url` for `ms` (CLIENT PAUSE ALL), from a connection of its own closed at once. */
export async function pauseRedis(url: string, ms: number): Promise<void> {
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  await admin.connect();
  try {
    await admin.call('CLIENT', 'PAUSE', String(ms), 'ALL');
  } finally {
    admin.disconnect();
  }
}
