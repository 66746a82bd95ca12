// Client keys (DESIGN.md "Client keys"): `msk_<id>_<secret>`, stored as SHA-256(secret) only.
// Revocation keeps the row (revoked_at) so a revoked key is told apart from an unknown one and
// its history stays. Every change that matters to an API process's in-memory copy notifies
// `maestro_api_key_changed` (last_used_at, written in batches, does not); credential inserts now
// notify too, so a proxy that picked a provider's default learns of a new one.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'bytea', (c) => c.notNull())
    // [{ id, provider }]: the credentials a client key may use (ids resolved at creation).
    .addColumn('credentials', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('providers', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('limits', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('expires_at', 'timestamptz')
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('last_used_at', 'timestamptz')
    .addCheckConstraint('api_keys_role_check', sql`role in ('admin', 'client')`)
    .addCheckConstraint('api_keys_name_check', sql`length(name) between 1 and 100`)
    .addCheckConstraint('api_keys_secret_hash_check', sql`length(secret_hash) = 32`)
    .execute();

  await db.schema
    .createTable('api_key_events')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('details', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('api_key_events_key_id_idx').on('api_key_events').columns(['key_id', 'id']).execute();

  await sql`
    create function maestro_notify_api_key_changed() returns trigger language plpgsql as $$
    begin
      perform pg_notify('maestro_api_key_changed', (case when tg_op = 'DELETE' then old.id else new.id end)::text);
      return null;
    end $$`.execute(db);
  await sql`
    create trigger api_keys_changed
    after insert or delete or update of name, role, secret_hash, credentials, providers, limits, expires_at, version, revoked_at
    on api_keys for each row execute function maestro_notify_api_key_changed()`.execute(db);

  // Inserts notify as well (0002 covered update and delete).
  await sql`drop trigger saved_authentications_changed on saved_authentications`.execute(db);
  await sql`
    create trigger saved_authentications_changed
    after insert or update or delete on saved_authentications
    for each row execute function maestro_notify_credential_changed()`.execute(db);
  // The periodic re-check reads the newest creation time (an index lookup, not a scan).
  await db.schema.createIndex('saved_authentications_created_at_idx').on('saved_authentications').column('created_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('saved_authentications_created_at_idx').execute();
  await sql`drop trigger saved_authentications_changed on saved_authentications`.execute(db);
  await sql`
    create trigger saved_authentications_changed
    after update or delete on saved_authentications
    for each row execute function maestro_notify_credential_changed()`.execute(db);
  await sql`drop trigger api_keys_changed on api_keys`.execute(db);
  await sql`drop function maestro_notify_api_key_changed()`.execute(db);
  await db.schema.dropTable('api_key_events').execute();
  await db.schema.dropTable('api_keys').execute();
}
