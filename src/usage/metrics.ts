// Prometheus series for usage and provider limits, on the API's registry (src/api/metrics.ts):
// tokens by provider and type (low cardinality), and each credential's last reported limits.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { RateLimitBook } from './rateLimitBook.js';
import type { RateLimitState, RateLimitWindow } from './rateLimits.js';
import { asOf } from './quota.js';
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

/** Where the quota series come from: the quota reads the workers stored (src/db/usage.ts), read at scrape time. */
export interface QuotaMetricsSource {
  quotas(): Promise<Array<{ credentialId: string; state: Record<string, unknown> }>>;
  quotaReadCounts(): Promise<Array<{ outcome: string; count: number }>>;
}

/**
 * Quota reads (issue 30), the same in every process (from the database): each credential's
 * windows as its last quota read showed them (a window whose reset has passed is left out: its
 * capacity is unknown), and the reads so far by outcome.
 */
export function registerQuotaMetrics(registry: Registry, source: QuotaMetricsSource): void {
  new Gauge({
    name: 'maestro_credential_quota_utilization',
    help: "A credential's window utilization (0..1) as its last quota-endpoint read showed it (windows whose reset has passed are left out)",
    labelNames: ['credential', 'window'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const now = Date.now();
      for (const { credentialId, state } of await source.quotas()) {
        const current = asOf(state as unknown as RateLimitState, now);
        for (const [window, w] of Object.entries(current.windows)) {
          if (w.utilization !== undefined && w.source === 'endpoint') this.set({ credential: credentialId, window }, w.utilization);
        }
      }
    },
  });
  new Gauge({
    name: 'maestro_quota_reads',
    help: 'Quota-endpoint reads recorded so far by outcome (ok, stale, rate_limited, failed, unsupported), across every worker',
    labelNames: ['outcome'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await source.quotaReadCounts()) this.set({ outcome: r.outcome }, r.count);
    },
  });
}
