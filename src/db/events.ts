// credential_events: the append-only history of every credential (no secrets; a deleted
// credential keeps its history). Appends happen inside the store's write transactions.
import type { Kysely } from 'kysely';
import type { Database } from './types.js';

export type CredentialEventType =
  'created' | 'refreshed' | 'tokens_replaced' | 'reauth_required' | 'refresh_failed' | 'status_changed' | 'deleted';

export interface CredentialEvent {
  id: string;
  credentialId: string;
  type: string;
  details: Record<string, unknown>;
  createdAt: string;
}

export async function appendEvent(db: Kysely<Database>, credentialId: string, type: CredentialEventType, details: Record<string, unknown>) {
  await db
    .insertInto('credential_events')
    .values({ credential_id: credentialId, type, details: JSON.stringify(details) })
    .execute();
}

/** Newest first, at most `limit` (1..1000, default 100). */
export async function listEvents(db: Kysely<Database>, id: string, opts: { limit?: number } = {}): Promise<CredentialEvent[]> {
  const limit = Math.min(Math.max(Math.trunc(opts.limit ?? 100), 1), 1000);
  const rows = await db
    .selectFrom('credential_events')
    .selectAll()
    .where('credential_id', '=', id)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    id: String(r.id),
    credentialId: r.credential_id,
    type: r.type,
    details: r.details,
    createdAt: r.created_at.toISOString(),
  }));
}

/**
 * Retention: deletes events created before `cutoff`, oldest first, in batches (short transactions
 * beside the writers; old rows have the smallest ids, so each batch reads the start of the id index).
 */
export async function deleteEventsBefore(db: Kysely<Database>, cutoff: Date, batchSize = 5000): Promise<number> {
  let deleted = 0;
  for (;;) {
    const oldest = db.selectFrom('credential_events').select('id').where('created_at', '<', cutoff).orderBy('id').limit(batchSize);
    const result = await db.deleteFrom('credential_events').where('id', 'in', oldest).executeTakeFirst();
    const n = Number(result.numDeletedRows);
    deleted += n;
    if (n < batchSize) return deleted;
  }
}
