import { defineConfig } from 'vitest/config';

// `npm run test:faults`: the slow fault-injection suite (real processes killed for real, servers
// stopped and restarted). Same setup as vitest.config.ts; one file at a time, since each file runs
// its own Temporal dev server, PostgreSQL, workers and APIs and their timing must not compete.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 180_000,
    env: { MAESTRO_ENV: 'test' },
  },
});
