// Before any test file: find the Redis the integration tests use, starting a throw-away redis-server
// when REDIS_URL is unset and nothing answers on 127.0.0.1:6379, so `npm test` needs no set-up of
// its own beyond redis-server being installed. Test workers inherit REDIS_URL from here.

import { resolveRedis, type RedisEndpoint } from '../src/services/redis-server.ts';

let redis: RedisEndpoint | undefined;

export async function setup(): Promise<void> {
  // Whether the user named a Redis, for suites that may start their own servers only when none was given.
  process.env.BROKERBENCH_TEST_REDIS_GIVEN = process.env.REDIS_URL?.trim() ? 'yes' : 'no';
  redis = await resolveRedis({ REDIS_URL: process.env.REDIS_URL });
  process.env.REDIS_URL = redis.url;
  console.log(`tests use Redis ${redis.url.replace(/\/\/[^@/]*@/, '//***@')} (${redis.kind})`);
}

export async function teardown(): Promise<void> {
  await redis?.stop();
}
