// Redis' own memory figures, for the Redis adapters' MemoryReporting: INFO memory for the whole
// server, MEMORY USAGE (every element sampled) for the keys a queue is made of.
//
// LIMITATION: used_memory is the whole server's, so other clients' writes land in any difference
// taken from it; MEMORY USAGE is exact for the keys named but costs O(elements) per key.

import type { Redis } from 'ioredis';
import type { ServerMemory } from '../broker.ts';

/** used_memory, maxmemory and maxmemory_policy from INFO memory. */
export async function redisServerMemory(client: Redis): Promise<ServerMemory> {
  const info = await client.info('memory');
  const field = (name: string): string | undefined => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1];
  return {
    usedBytes: Number(field('used_memory') ?? 0),
    maxBytes: Number(field('maxmemory') ?? 0),
    policy: field('maxmemory_policy') ?? 'unknown',
  };
}

/** Bytes held by `keys` (a key that does not exist holds none), every element of each counted. */
export async function redisKeysMemoryBytes(client: Redis, keys: readonly string[]): Promise<number> {
  const pipeline = client.pipeline();
  for (const key of keys) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
  const results = (await pipeline.exec()) ?? [];
  let total = 0;
  for (const [error, bytes] of results) {
    if (error) throw error;
    total += Number(bytes ?? 0);
  }
  return total;
}
