// Counts for /metrics, read at scrape time so they are right across every API and worker process.
import { sql } from 'kysely';
import type { Db } from './pool.js';

export interface DatabaseStats {
  /** Stored credentials by provider, auth type and status. */
  credentialCounts(): Promise<Array<{ provider: string; authType: string; status: string; count: number }>>;
  /** Refresh outcomes recorded in the credential history. */
  refreshOutcomeCounts(): Promise<Array<{ outcome: string; count: number }>>;
}

export function databaseStats(db: Db): DatabaseStats {
  return {
    async credentialCounts() {
      const rows = await db
        .selectFrom('saved_authentications')
        .select(['provider', 'auth_type', 'status', sql<string>`count(*)`.as('n')])
        .groupBy(['provider', 'auth_type', 'status'])
        .execute();
      return rows.map((r) => ({ provider: r.provider, authType: r.auth_type, status: r.status, count: Number(r.n) }));
    },
    async refreshOutcomeCounts() {
      const rows = await db
        .selectFrom('credential_events')
        .select(['type', sql<string>`count(*)`.as('n')])
        .where('type', 'in', ['refreshed', 'refresh_failed', 'reauth_required'])
        .groupBy('type')
        .execute();
      return rows.map((r) => ({ outcome: r.type, count: Number(r.n) }));
    },
  };
}
