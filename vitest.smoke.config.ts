import { defineConfig } from 'vitest/config';

// `npm run test:smoke`: the built service (npm run build) installed with production dependencies
// only, run as production runs it. Same setup as the fault suite: real processes, one file at a time.
export default defineConfig({
  test: {
    include: ['test/smoke/**/*.test.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 600_000,
    env: { MAESTRO_ENV: 'test' },
  },
});
