// Shared helpers for tests that talk to a real Redis: where it is, fresh key prefixes, and adapter
// handles that are always torn down and closed.

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Broker, QueueSpec } from '../../src/broker.ts';
import { redisListAdapter } from '../../adapters/redis-list.ts';

/** The Redis tests use: REDIS_URL, else the one on 127.0.0.1:6379. */
export function redisUrl(): string {
  return process.env['REDIS_URL'] || 'redis://127.0.0.1:6379';
}

/** A key prefix no other test or program uses. */
export function uniqueNamespace(): string {
  return `bb-test-${randomUUID().slice(0, 8)}`;
}

/** An open redis-list handle plus everything a test needs to clean up after it. */
export interface RedisListFixture {
  readonly broker: Broker;
  readonly namespace: string;
  readonly queue: string;
  /** Extra handles (from `broker.duplicate()`) to close on cleanup. */
  readonly others: Broker[];
  /** Tears the queue down and closes every handle. Safe to call twice. */
  cleanup(): Promise<void>;
}

/** Opens a redis-list handle on a fresh namespace and prepares `queue` on it. */
export async function openRedisListFixture(
  mode: 'reliable' | 'simple',
  spec: Partial<Omit<QueueSpec, 'name'>> = {},
): Promise<RedisListFixture> {
  const namespace = uniqueNamespace();
  const queue = 'q';
  const broker = await redisListAdapter.open({ namespace, mode, url: redisUrl(), commandTimeoutMs: 2_000 });
  await broker.prepare({ name: queue, visibilityTimeoutMs: spec.visibilityTimeoutMs ?? 30_000, maxReceives: spec.maxReceives ?? 0 });
  const others: Broker[] = [];
  let cleaned = false;
  return {
    broker,
    namespace,
    queue,
    others,
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      await Promise.all(others.map((other) => other.close()));
      await broker.teardown(queue).catch(() => {});
      await broker.close();
    },
  };
}

/** Every key whose name starts with `prefix` on `url` (default: redisUrl()), found with SCAN (never KEYS on a shared server). */
export async function keysWithPrefix(prefix: string, url: string = redisUrl()): Promise<string[]> {
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
