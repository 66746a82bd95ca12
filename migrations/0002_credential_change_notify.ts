// Notifies `maestro_credential_changed` with the credential id on every update or delete, so API
// instances invalidate cached tokens without polling (src/db/changes.ts listens).
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function maestro_notify_credential_changed() returns trigger language plpgsql as $$
    begin
      perform pg_notify('maestro_credential_changed', (case when tg_op = 'DELETE' then old.id else new.id end)::text);
      return null;
    end $$`.execute(db);
  await sql`
    create trigger saved_authentications_changed
    after update or delete on saved_authentications
    for each row execute function maestro_notify_credential_changed()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger saved_authentications_changed on saved_authentications`.execute(db);
  await sql`drop function maestro_notify_credential_changed()`.execute(db);
}
