// Quota reads (issue 30): each credential's last quota-endpoint state, written by the worker that
// read it (the credential's workflow is the single reader), kept apart from the header-learnt
// state in credential_rate_limits so neither writer overwrites the other; GET /v1/credentials/:id
// merges both window by window. Reads are counted by outcome for /metrics (every process alike).
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('credential_quota')
    .addColumn('credential_id', 'uuid', (c) => c.primaryKey().references('saved_authentications.id').onDelete('cascade'))
    .addColumn('state', 'jsonb', (c) => c.notNull())
    .addColumn('observed_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('quota_read_counts')
    .addColumn('outcome', 'text', (c) => c.primaryKey())
    .addColumn('count', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('quota_read_counts').execute();
  await db.schema.dropTable('credential_quota').execute();
}
