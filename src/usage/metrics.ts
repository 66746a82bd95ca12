// Prometheus series for usage and provider limits, on the API's registry (src/api/metrics.ts):
// tokens by provider and type (low cardinality), and each credential's last reported limits.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { RateLimitBook } from './rateLimitBook.js';
import type { RateLimitWindow } from './rateLimits.js';
import type { UsageMetrics } from './recorder.js';

export function registerUsageMetrics(registry: Registry, book: Pick<RateLimitBook, 'entries'>): Required<UsageMetrics> {
  const tokens = new Counter({
    name: 'maestro_tokens_total',
    help: 'Tokens the providers reported for proxied and durable calls through this process, by provider and type (input, output, cache_read, cache_write)',
    labelNames: ['provider', 'type'] as const,
    registers: [registry],
  });
  const writeFailures = new Counter({
    name: 'maestro_usage_write_failures_total',
    help: 'Usage batches (or parts of one) PostgreSQL did not take: unavailable (kept in memory for the next batch) or refused (split until the refused row is found and dropped)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'maestro_usage_dropped_total',
    help: 'Usage rows dropped unwritten: refused (a row PostgreSQL would not take) or memory (the in-memory bound was reached while the database was away)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const pending = new Gauge({
    name: 'maestro_usage_pending_rows',
    help: 'Usage rows this process holds for its next batch',
    registers: [registry],
  });
  /** One gauge per window field: its value for every credential and window that reported it. */
  const windowGauge = (name: string, help: string, field: 'utilization' | 'remaining') =>
    new Gauge({
      name,
      help,
      labelNames: ['credential', 'window'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [credential, state] of book.entries()) {
          for (const [window, w] of Object.entries(state.windows) as Array<[string, RateLimitWindow]>) {
            const value = w[field];
            if (value !== undefined) this.set({ credential, window }, value);
          }
        }
      },
    });
  windowGauge(
    'maestro_credential_ratelimit_utilization',
    "The provider's last reported utilization (0..1) of a credential's rate-limit window (e.g. five_hour, seven_day)",
    'utilization',
  );
  windowGauge(
    'maestro_credential_ratelimit_remaining',
    "The provider's last reported remaining requests or tokens of a credential's rate-limit window",
    'remaining',
  );
  return { tokens, writeFailures, dropped, pending };
}
