// Counts for /metrics, read at scrape time from the counter tables that triggers keep in the writers'
// transactions (migrations/0006_metric_counts.ts): exact across every API and worker process, and a
// scrape reads a few dozen rows at most, never saved_authentications or credential_events.
import { sql } from 'kysely';
import type { Db } from './pool.js';

export interface DatabaseStats {
  /** Stored credentials by provider, auth type and status (0 for a combination that had some). */
  credentialCounts(): Promise<Array<{ provider: string; authType: string; status: string; count: number }>>;
  /** Refresh outcomes recorded so far: a running total that purging old events does not lower. */
  refreshOutcomeCounts(): Promise<Array<{ outcome: string; count: number }>>;
}

export function databaseStats(db: Db): DatabaseStats {
  return {
    async credentialCounts() {
      const rows = await db.selectFrom('credential_counts').select(['provider', 'auth_type', 'status', 'n']).execute();
      return rows.map((r) => ({ provider: r.provider, authType: r.auth_type, status: r.status, count: Number(r.n) }));
    },
    async refreshOutcomeCounts() {
      // At most 16 shards per outcome (migrations/0006_metric_counts.ts).
      const rows = await db
        .selectFrom('credential_event_counts')
        .select(['type', sql<string>`sum(n)`.as('n')])
        .groupBy('type')
        .execute();
      return rows.map((r) => ({ outcome: r.type, count: Number(r.n) }));
    },
  };
}
