// Child process for bench:refresh: test/support's fake Anthropic (its real token endpoint:
// exact wire-format checks, rotating single-use refresh tokens, reuse detection), on its own
// event loop so the worker's CPU figures are the worker's alone. Its quota endpoint
// (GET /api/oauth/usage) answers the workflows' quota reads (--quota-interval-sec).
import { startFakeProvider } from '../test/support/fakeProvider.js';
import { serve } from './lib/ipc.js';

const fake = await startFakeProvider({ provider: 'anthropic', accessTokenTtlSec: Number(process.env.BENCH_TTL_SEC ?? 120) });
let delayMs = 0;

serve(
  {
    seed: ({ pairs }: { pairs: [string, string][] }) => {
      for (const [refreshToken, accessToken] of pairs) fake.seedTokens(refreshToken, accessToken);
      return pairs.length;
    },
    counters: () => {
      const token = fake.tokenRequests().length;
      // Keep memory flat over long runs: only counts are needed from here on.
      const counts = {
        tokenRequests: token,
        reusedRefreshTokens: fake.reusedRefreshTokens.length,
        quotaRequests: fake.quotaRequests().length,
        rss: process.memoryUsage().rss,
        cpu: process.cpuUsage(),
      };
      return counts;
    },
    setDelay: ({ ms }: { ms: number }) => {
      delayMs = ms;
      fake.setTokenDelayMs(ms);
      return delayMs;
    },
    shutdown: async () => {
      await fake.close();
      setImmediate(() => process.exit(0));
      return true;
    },
  },
  { overrides: fake.overrides },
);
