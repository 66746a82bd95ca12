// The pools' Prometheus metrics (DESIGN.md "Pools"): routable members per pool (read at scrape
// time from the routing state), failovers by reason, and requests that found the pool exhausted.
import { Counter, Gauge, type Registry } from 'prom-client';

export interface PoolMetrics {
  failovers: Counter<'pool' | 'reason'>;
  exhausted: Counter<'pool'>;
}

export function registerPoolMetrics(registry: Registry, routable: () => Array<{ pool: string; routable: number }>): PoolMetrics {
  new Gauge({
    name: 'maestro_pool_routable',
    help: 'Members of the pool that take new work now',
    labelNames: ['pool'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of routable()) this.set({ pool: p.pool }, p.routable);
    },
  });
  return {
    failovers: new Counter({
      name: 'maestro_pool_failovers_total',
      help: 'Requests moved to another pool member, by the classified reason',
      labelNames: ['pool', 'reason'],
      registers: [registry],
    }),
    exhausted: new Counter({
      name: 'maestro_pool_exhausted_total',
      help: 'Requests that found no routable member (rejected, or held and then rejected)',
      labelNames: ['pool'],
      registers: [registry],
    }),
  };
}
