import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Finds or starts the Redis every integration test uses and hands its URL on through REDIS_URL.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests share one Redis and start child servers: keep files from starving each other on 2 cores.
    maxWorkers: 2,
  },
});
