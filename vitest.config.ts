import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Suites start real servers and speech engines; two workers fit the 2-core CI machine.
    pool: 'forks',
    maxWorkers: 2,
  },
});
