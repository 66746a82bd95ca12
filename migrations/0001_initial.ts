// The three tables of DESIGN.md: credentials (sealed secrets, optimistic version), pending PKCE
// logins, and the append-only credential history (kept after a credential is deleted: no FK).
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('saved_authentications')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('name', 'text', (c) => c.notNull().defaultTo('default'))
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('auth_type', 'text', (c) => c.notNull())
    .addColumn('secret', 'bytea', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz')
    .addColumn('token_obtained_at', 'timestamptz')
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('refresh_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_refreshed_at', 'timestamptz')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('saved_authentications_provider_auth_type_name_key', ['provider', 'auth_type', 'name'])
    .addCheckConstraint('saved_authentications_provider_check', sql`provider in ('anthropic', 'openai', 'gemini')`)
    .addCheckConstraint('saved_authentications_auth_type_check', sql`auth_type in ('oauth', 'api_key')`)
    .addCheckConstraint('saved_authentications_status_check', sql`status in ('active', 'reauth_required', 'disabled')`)
    .addCheckConstraint('saved_authentications_name_check', sql`length(name) between 1 and 100`)
    .addCheckConstraint('saved_authentications_version_check', sql`version >= 1`)
    .execute();

  await db.schema
    .createTable('oauth_sessions')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull().defaultTo('default'))
    .addColumn('sealed', 'bytea', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addCheckConstraint('oauth_sessions_provider_check', sql`provider in ('anthropic', 'openai', 'gemini')`)
    .execute();

  await db.schema
    .createTable('credential_events')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('credential_id', 'uuid', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('details', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('credential_events_credential_id_idx').on('credential_events').columns(['credential_id', 'id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('credential_events').execute();
  await db.schema.dropTable('oauth_sessions').execute();
  await db.schema.dropTable('saved_authentications').execute();
}
