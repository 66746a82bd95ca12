// Pools (DESIGN.md "Pools"): named sets of one provider's credentials, and the routing state every
// API process shares — cooldowns (per credential, or per model family), session bindings, recovery
// probe leases, each process's in-flight counts, and the pool's event timeline. Every change to the
// routing state takes the next `routing_seq` value, so a process catches up by reading rows past the
// last seq it saw; the triggers notify `maestro_routing_changed` so it usually learns at once.
// Client keys may list pools; usage rows name the pool that routed them ('' for none).
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('pools')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('strategy', 'text', (c) => c.notNull())
    .addColumn('on_exhausted', 'jsonb', (c) => c.notNull())
    .addColumn('plan_limits_only', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('session_ttl_seconds', 'integer', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('pools_name_check', sql`length(name) between 1 and 100`)
    .execute();
  await db.schema
    .createTable('pool_members')
    .addColumn('pool_id', 'uuid', (c) => c.notNull().references('pools.id').onDelete('cascade'))
    .addColumn('credential_id', 'uuid', (c) => c.notNull().references('saved_authentications.id').onDelete('cascade'))
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('weight', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('max_utilization', 'double precision', (c) => c.notNull().defaultTo(0.98))
    .addColumn('paused', 'boolean', (c) => c.notNull().defaultTo(false))
    .addPrimaryKeyConstraint('pool_members_pkey', ['pool_id', 'credential_id'])
    .execute();
  await db.schema.createIndex('pool_members_credential_idx').on('pool_members').column('credential_id').execute();

  await sql`create sequence routing_seq`.execute(db);
  // scope: 'credential' or a model family. until null = cleared (the row stays, so a late, older
  // bench cannot come back: a change applies only when it is newer than what is there).
  await db.schema
    .createTable('routing_cooldowns')
    .addColumn('credential_id', 'uuid', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('until', 'timestamptz')
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('evidence', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('set_at', 'timestamptz', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('routing_cooldowns_pkey', ['credential_id', 'scope'])
    .execute();
  await db.schema.createIndex('routing_cooldowns_seq_idx').on('routing_cooldowns').column('seq').execute();
  await db.schema
    .createTable('pool_sessions')
    .addColumn('pool_id', 'uuid', (c) => c.notNull())
    .addColumn('session_key', 'text', (c) => c.notNull())
    .addColumn('credential_id', 'uuid', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('pool_sessions_pkey', ['pool_id', 'session_key'])
    .execute();
  await db.schema.createIndex('pool_sessions_seq_idx').on('pool_sessions').column('seq').execute();
  // One recovery probe per member across every process: a lease.
  await db.schema
    .createTable('routing_probes')
    .addColumn('credential_id', 'uuid', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('lease_until', 'timestamptz', (c) => c.notNull())
    .execute();
  // Each API process's calls in flight per credential, written about once a second while nonzero.
  await db.schema
    .createTable('routing_inflight')
    .addColumn('process_id', 'text', (c) => c.notNull())
    .addColumn('credential_id', 'uuid', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addColumn('picked_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('routing_inflight_pkey', ['process_id', 'credential_id'])
    .execute();
  await db.schema
    .createTable('pool_events')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('pool_id', 'uuid')
    .addColumn('credential_id', 'uuid')
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('session_key', 'text')
    .addColumn('reason', 'text')
    .addColumn('until', 'timestamptz')
    .addColumn('details', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('pool_events_pool_idx').on('pool_events').columns(['pool_id', 'id']).execute();
  await db.schema.createIndex('pool_events_credential_idx').on('pool_events').columns(['credential_id', 'id']).execute();

  await sql`
    create function maestro_notify_routing_changed() returns trigger language plpgsql as $$
    begin
      perform pg_notify('maestro_routing_changed', tg_argv[0]);
      return null;
    end $$`.execute(db);
  for (const table of ['routing_cooldowns', 'pool_sessions', 'pools', 'pool_members']) {
    await sql`
      create trigger ${sql.raw(`${table}_routing_changed`)}
      after insert or update or delete on ${sql.table(table)}
      for each statement execute function maestro_notify_routing_changed(${sql.lit(table)})`.execute(db);
  }

  await db.schema
    .alterTable('api_keys')
    .addColumn('pools', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .execute();
  await sql`drop trigger api_keys_changed on api_keys`.execute(db);
  await sql`
    create trigger api_keys_changed
    after insert or delete or update of name, role, secret_hash, credentials, providers, pools, limits, expires_at, version, revoked_at
    on api_keys for each row execute function maestro_notify_api_key_changed()`.execute(db);

  await db.schema
    .alterTable('usage_hourly')
    .addColumn('pool_id', 'text', (c) => c.notNull().defaultTo(''))
    .execute();
  await sql`alter table usage_hourly drop constraint usage_hourly_pkey`.execute(db);
  await sql`alter table usage_hourly add constraint usage_hourly_pkey primary key (hour, key_id, credential_id, provider, model, pool_id)`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`delete from usage_hourly where pool_id <> ''`.execute(db);
  await sql`alter table usage_hourly drop constraint usage_hourly_pkey`.execute(db);
  await sql`alter table usage_hourly add constraint usage_hourly_pkey primary key (hour, key_id, credential_id, provider, model)`.execute(
    db,
  );
  await db.schema.alterTable('usage_hourly').dropColumn('pool_id').execute();
  await sql`drop trigger api_keys_changed on api_keys`.execute(db);
  await sql`
    create trigger api_keys_changed
    after insert or delete or update of name, role, secret_hash, credentials, providers, limits, expires_at, version, revoked_at
    on api_keys for each row execute function maestro_notify_api_key_changed()`.execute(db);
  await db.schema.alterTable('api_keys').dropColumn('pools').execute();
  for (const table of ['routing_cooldowns', 'pool_sessions', 'pools', 'pool_members']) {
    await sql`drop trigger ${sql.raw(`${table}_routing_changed`)} on ${sql.table(table)}`.execute(db);
  }
  await sql`drop function maestro_notify_routing_changed()`.execute(db);
  for (const table of [
    'pool_events',
    'routing_inflight',
    'routing_probes',
    'pool_sessions',
    'routing_cooldowns',
    'pool_members',
    'pools',
  ]) {
    await db.schema.dropTable(table).execute();
  }
  await sql`drop sequence routing_seq`.execute(db);
}
