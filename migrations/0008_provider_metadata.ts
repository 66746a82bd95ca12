// Provider facts a credential needs on every call that are not secrets: the Code Assist project
// of a Gemini sign-in (found once at login). Null for everything else.
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('saved_authentications').addColumn('provider_metadata', 'jsonb').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('saved_authentications').dropColumn('provider_metadata').execute();
}
