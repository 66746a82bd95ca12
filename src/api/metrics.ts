// Prometheus metrics at /metrics (prom-client). Counts from the database are read at scrape time,
// so they are right across every API and worker process.
import { sql } from 'kysely';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Db } from '../db/pool.js';

export interface Metrics {
  registry: Registry;
  proxyRequests: Counter<'provider' | 'status'>;
  addedLatency: Histogram<'provider'>;
}

export function createMetrics(db: Db): Metrics {
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
    help: 'Stored credentials by provider, auth type and status',
    labelNames: ['provider', 'auth_type', 'status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await db
        .selectFrom('saved_authentications')
        .select(['provider', 'auth_type', 'status', sql<string>`count(*)`.as('n')])
        .groupBy(['provider', 'auth_type', 'status'])
        .execute();
      for (const r of rows) this.set({ provider: r.provider, auth_type: r.auth_type, status: r.status }, Number(r.n));
    },
  });
  new Gauge({
    name: 'maestro_refreshes',
    help: 'Refresh outcomes recorded in the credential history (refreshed, refresh_failed, reauth_required)',
    labelNames: ['outcome'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await db
        .selectFrom('credential_events')
        .select(['type', sql<string>`count(*)`.as('n')])
        .where('type', 'in', ['refreshed', 'refresh_failed', 'reauth_required'])
        .groupBy('type')
        .execute();
      for (const r of rows) this.set({ outcome: r.type }, Number(r.n));
    },
  });
  return { registry, proxyRequests, addedLatency };
}
