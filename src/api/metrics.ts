// Prometheus metrics at /metrics (prom-client), on the API port or MAESTRO_METRICS_PORT (metricsServer.ts).
// Counts from the database are read at scrape time from small counter tables that triggers keep
// (src/db/stats.ts), so they are right across every API and worker process and cheap to scrape.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Where the stored counts come from (src/db/stats.ts). */
export interface MetricsSource {
  credentialCounts(): Promise<Array<{ provider: string; authType: string; status: string; count: number }>>;
  refreshOutcomeCounts(): Promise<Array<{ outcome: string; count: number }>>;
}

export interface Metrics {
  registry: Registry;
  proxyRequests: Counter<'provider' | 'status'>;
  addedLatency: Histogram<'provider'>;
}

export function createMetrics(source: MetricsSource): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'maestro_process_' });
  const proxyRequests = new Counter({
    name: 'maestro_proxy_requests_total',
    help: 'Proxied requests by provider and upstream status',
    labelNames: ['provider', 'status'] as const,
    registers: [registry],
  });
  const addedLatency = new Histogram({
    name: 'maestro_proxy_added_latency_seconds',
    help: 'Time Maestro spends before handing a proxied request to the provider',
    labelNames: ['provider'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1],
    registers: [registry],
  });
  new Gauge({
    name: 'maestro_credentials',
    help: 'Stored credentials by provider, auth type and status, across every process (0: a combination that had credentials)',
    labelNames: ['provider', 'auth_type', 'status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await source.credentialCounts()) this.set({ provider: r.provider, auth_type: r.authType, status: r.status }, r.count);
    },
  });
  new Gauge({
    name: 'maestro_refreshes',
    help: 'Refresh outcomes (refreshed, refresh_failed, reauth_required) recorded so far: the history when migration 0006 ran plus every one since; never lowered by event retention',
    labelNames: ['outcome'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await source.refreshOutcomeCounts()) this.set({ outcome: r.outcome }, r.count);
    },
  });
  return { registry, proxyRequests, addedLatency };
}
