// Counter tables for /metrics, kept by triggers in the writers' own transactions: exact across
// every process, and a scrape reads a few rows instead of grouping saved_authentications and
// counting credential_events (160–220 ms per scrape at 2 M event rows, issue 15).
//   credential_counts: credentials per (provider, auth_type, status); a combination that had
//     credentials stays at 0 rather than vanishing from the gauge.
//   credential_event_counts: refresh outcomes recorded so far, in up to SHARDS rows per outcome
//     (summed when read); retention deletes never lower it.
import { sql, type Kysely } from 'kysely';

const OUTCOMES = ['refreshed', 'refresh_failed', 'reauth_required'];
const SHARDS = 16;
const outcomeList = sql.raw(OUTCOMES.map((t) => `'${t}'`).join(', '));

export async function up(db: Kysely<unknown>): Promise<void> {
  // Writers wait until this migration commits (its whole transaction), so the counts taken below and
  // the triggers created after them see every row exactly once.
  await sql`lock table saved_authentications, credential_events in share row exclusive mode`.execute(db);

  await db.schema
    .createTable('credential_counts')
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('auth_type', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('n', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('credential_counts_pkey', ['provider', 'auth_type', 'status'])
    .execute();
  await sql`
    insert into credential_counts (provider, auth_type, status, n)
    select provider, auth_type, status, count(*) from saved_authentications group by provider, auth_type, status`.execute(db);

  await db.schema
    .createTable('credential_event_counts')
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('shard', 'smallint', (c) => c.notNull())
    .addColumn('n', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('credential_event_counts_pkey', ['type', 'shard'])
    .execute();
  // Every outcome has its row from the start (shard 0, holding the history so far; 0 when there is none).
  await sql`
    insert into credential_event_counts (type, shard, n)
    select t.type, 0, count(e.id) from unnest(array[${outcomeList}]) as t(type) left join credential_events e on e.type = t.type
    group by t.type`.execute(db);

  // Rows are locked in key order (an UPDATE moving a credential between two keys takes both), so two
  // opposite status changes cannot deadlock on the counter rows.
  await sql`
    create function maestro_count_credentials() returns trigger language plpgsql as $$
    declare
      key_old text[];
      key_new text[];
    begin
      if tg_op <> 'INSERT' then key_old := array[old.provider, old.auth_type, old.status]; end if;
      if tg_op <> 'DELETE' then key_new := array[new.provider, new.auth_type, new.status]; end if;
      if key_old = key_new then return null; end if;
      insert into credential_counts as c (provider, auth_type, status, n)
      select k.key[1], k.key[2], k.key[3], k.delta
      from (values (key_old, -1), (key_new, 1)) as k(key, delta)
      where k.key is not null
      order by k.key
      on conflict (provider, auth_type, status) do update set n = c.n + excluded.n;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger saved_authentications_count
    after insert or delete on saved_authentications
    for each row execute function maestro_count_credentials()`.execute(db);
  // Token writes set status = 'active' in their UPDATE, so UPDATE OF alone would fire on every
  // refresh: the WHEN clause (which needs OLD and NEW, hence a trigger of its own) skips the
  // function unless a counted column really changed.
  await sql`
    create trigger saved_authentications_count_moves
    after update of provider, auth_type, status on saved_authentications
    for each row
    when ((old.provider, old.auth_type, old.status) is distinct from (new.provider, new.auth_type, new.status))
    execute function maestro_count_credentials()`.execute(db);

  // A counted insert holds its counter row until its commit is flushed, so with one row per outcome
  // concurrent refreshes commit one after another (bench/metricsScrape.ts: 16 writers of `refreshed`
  // ~1,300 inserts/s against ~4,500 without the trigger). Each connection counts in its own shard
  // (backend pid mod SHARDS) instead, so writers wait only on the rare pid collision. Per-statement
  // triggers would not help: every event is its own single-row INSERT.
  await sql`
    create function maestro_count_refresh_outcomes() returns trigger language plpgsql as $$
    begin
      insert into credential_event_counts as c (type, shard, n) values (new.type, pg_backend_pid() % ${sql.raw(String(SHARDS))}, 1)
      on conflict (type, shard) do update set n = c.n + 1;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger credential_events_count_outcomes
    after insert on credential_events
    for each row
    when (new.type in (${outcomeList}))
    execute function maestro_count_refresh_outcomes()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger credential_events_count_outcomes on credential_events`.execute(db);
  await sql`drop function maestro_count_refresh_outcomes()`.execute(db);
  await sql`drop trigger saved_authentications_count_moves on saved_authentications`.execute(db);
  await sql`drop trigger saved_authentications_count on saved_authentications`.execute(db);
  await sql`drop function maestro_count_credentials()`.execute(db);
  await db.schema.dropTable('credential_event_counts').execute();
  await db.schema.dropTable('credential_counts').execute();
}
