import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Run by their own configs: npm run test:faults, npm run test:smoke (needs a build).
    exclude: ['test/faults/**', 'test/smoke/**'],
    globalSetup: ['test/support/globalSetup.ts'],
    // Temporal's native worker and the servers each test file starts are happiest in child processes.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    env: { MAESTRO_ENV: 'test' },
  },
});
