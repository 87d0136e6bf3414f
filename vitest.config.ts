import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests share one Redis and start child servers: keep files from starving each other on 2 cores.
    maxWorkers: 2,
  },
});
