// Usage you can bill by (issue 27): calls whose final token counts never arrived are counted in
// `incomplete`, and the tokens a budget was charged for them beyond what the provider reported
// (their stated upper bound) in `incomplete_charge`, so every API process's budget reads the same
// total. Durable calls are recorded by the worker that made them, once per attempt:
// `durable_call_usage` holds the attempts already recorded (kept as long as the call's claim).
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('usage_hourly')
    .addColumn('incomplete', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('incomplete_charge', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createTable('durable_call_usage')
    .addColumn('workflow_id', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('recorded_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('durable_call_usage_pkey', ['workflow_id', 'attempt'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('durable_call_usage').execute();
  await db.schema.alterTable('usage_hourly').dropColumn('incomplete_charge').dropColumn('incomplete').execute();
}
