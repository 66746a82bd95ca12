// Prometheus series for usage and provider limits, on the API's registry (src/api/metrics.ts):
// tokens by provider and type (low cardinality), and each credential's last reported limits.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { RateLimitBook } from './rateLimitBook.js';

export function registerUsageMetrics(registry: Registry, book: Pick<RateLimitBook, 'entries'>): { tokens: Counter<'provider' | 'type'> } {
  const tokens = new Counter({
    name: 'maestro_tokens_total',
    help: 'Tokens the providers reported for proxied and durable calls through this process, by provider and type (input, output, cache_read, cache_write)',
    labelNames: ['provider', 'type'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'maestro_credential_ratelimit_utilization',
    help: "The provider's last reported utilization (0..1) of a credential's rate-limit window (e.g. five_hour, seven_day)",
    labelNames: ['credential', 'window'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [credential, state] of book.entries()) {
        for (const [window, w] of Object.entries(state.windows))
          if (w.utilization !== undefined) this.set({ credential, window }, w.utilization);
      }
    },
  });
  new Gauge({
    name: 'maestro_credential_ratelimit_remaining',
    help: "The provider's last reported remaining requests or tokens of a credential's rate-limit window",
    labelNames: ['credential', 'window'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [credential, state] of book.entries()) {
        for (const [window, w] of Object.entries(state.windows))
          if (w.remaining !== undefined) this.set({ credential, window }, w.remaining);
      }
    },
  });
  return { tokens };
}
