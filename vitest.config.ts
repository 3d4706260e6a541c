import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two test files at a time: vitest's default (cores - 1) is one on the 2-core CI machines,
    // and most of the time goes to single-threaded QEMU guests and the cloud-init client.
    maxWorkers: 2,
  },
});
