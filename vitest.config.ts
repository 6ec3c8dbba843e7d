import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'bench/src/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two noisy cores: the process-spawning suites fight for CPU when run wide.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
