// Usage per key, credential, provider, model and hour (DESIGN.md "Usage and rate limits"):
// every API process aggregates in memory and adds its batch with one upsert (`+ excluded`), so
// several processes add up. And the provider's last reported rate-limit state per credential,
// shared between processes at a low rate.
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('usage_hourly')
    .addColumn('hour', 'timestamptz', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('credential_id', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('requests', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('errors', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('input_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('output_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('cache_read_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('cache_write_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('usage_hourly_pkey', ['hour', 'key_id', 'credential_id', 'provider', 'model'])
    .execute();
  // Budgets read one key's day; /v1/usage for a client key reads its own rows.
  await db.schema.createIndex('usage_hourly_key_hour_idx').on('usage_hourly').columns(['key_id', 'hour']).execute();

  await db.schema
    .createTable('credential_rate_limits')
    .addColumn('credential_id', 'uuid', (c) => c.primaryKey())
    .addColumn('state', 'jsonb', (c) => c.notNull())
    .addColumn('observed_at', 'timestamptz', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('credential_rate_limits').execute();
  await db.schema.dropTable('usage_hourly').execute();
}
