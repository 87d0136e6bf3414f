// Where Redis comes from: a throw-away redis-server, and REDIS_URL taken as given.

import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { pingRedis, resolveRedis, startRedisServer } from '../../src/services/redis-server.ts';

describe('startRedisServer', () => {
  it('starts a server on a free port that answers, and stop() ends it', async () => {
    const server = await startRedisServer({ args: ['--maxmemory', '10mb'] });
    try {
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      expect(server.port).not.toBe(6379);
      expect(await pingRedis('127.0.0.1', server.port, 1_000)).toBe(true);
      const client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
      await client.connect();
      expect(await client.config('GET', 'maxmemory')).toEqual(['maxmemory', '10485760']);
      expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
      await client.quit();
    } finally {
      await server.stop();
    }
    expect(server.process.exitCode !== null || server.process.signalCode !== null).toBe(true);
    expect(await pingRedis('127.0.0.1', server.port, 500)).toBe(false);
    await server.stop();
  });

  it('refuses a server that exits during start with a one-line UsageError, not a bug report', async () => {
    const start = startRedisServer({ args: ['--no-such-option', 'x'] });
    await expect(start).rejects.toThrow(UsageError);
    await expect(start).rejects.toThrow(/^redis-server exited during start \(port \d+\): [^\n]+$/);
  });
});

describe('resolveRedis', () => {
  it('returns REDIS_URL unchanged, local for loopback hosts and other for the rest', async () => {
    const remote = await resolveRedis({ REDIS_URL: 'redis://:pw@10.1.2.3:6380/2' });
    expect(remote.url).toBe('redis://:pw@10.1.2.3:6380/2');
    expect(remote.kind).toBe('other');
    await remote.stop();
    const local = await resolveRedis({ REDIS_URL: 'redis://localhost:6390' });
    expect(local).toMatchObject({ url: 'redis://localhost:6390', kind: 'local' });
  });

  it('uses 127.0.0.1:6379 when it answers, else starts an embedded server', async () => {
    const defaultAnswers = await pingRedis('127.0.0.1', 6379, 500);
    const endpoint = await resolveRedis({});
    try {
      expect(endpoint.kind).toBe(defaultAnswers ? 'local' : 'embedded');
      const port = Number(new URL(endpoint.url).port);
      expect(await pingRedis('127.0.0.1', port, 1_000)).toBe(true);
    } finally {
      await endpoint.stop();
    }
  });
});
