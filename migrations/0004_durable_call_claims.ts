// durable_call_claims: which workflow run a signed durable call belongs to. The first run that
// presents a signature claims it; its own retries pass, any other run (a copy of the sealed input
// started by hand through Temporal) is refused. Rows older than the signature lifetime are purged.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('durable_call_claims')
    .addColumn('workflow_id', 'text', (c) => c.primaryKey())
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('claimed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('durable_call_claims').execute();
}
