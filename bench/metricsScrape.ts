// npm run bench:metrics — what a /metrics scrape costs with a big credential history, before and
// after migration 0006 (counter tables kept by triggers), and what the trigger adds to an event insert.
//
//   npm run bench:metrics                               # 2,000,000 events, 1,000 credentials, 15 rounds (~1 min)
//   npm run bench:metrics -- --events 500000 --rounds 9
//
// A throwaway embedded PostgreSQL (temp dir, random port): migrated to the migration before 0006,
// filled with generate_series, VACUUM ANALYZE, then migrated to the latest (timed: it holds the
// writers' lock while it counts). Scrapes are `registry.metrics()` — what the /metrics route awaits —
// with the old queries (the group-by and count(*) of src/db/stats.ts before 0006, copied below) and
// with the counter tables, alternating in one run; median over rounds. Event inserts: one-row
// INSERTs, each its own transaction as in the store, with synchronous_commit off (no fsync wait, so
// the trigger's own cost shows), the counting trigger enabled and disabled, alternating.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Migrator, sql } from 'kysely';
import { migrations } from '../migrations/index.js';
import { createMetrics, type MetricsSource } from '../src/api/metrics.js';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { createDb, type Db } from '../src/db/pool.js';
import { databaseStats } from '../src/db/stats.js';
import { argNumber, median, percentile, round, table } from './lib/stats.js';

const EVENTS = argNumber('events', 2_000_000);
const CREDENTIALS = argNumber('credentials', 1_000);
const ROUNDS = argNumber('rounds', 15);
const INSERTS = argNumber('inserts', 2_000);
const WRITERS = argNumber('writers', 16);

/** src/db/stats.ts before migration 0006: a group-by over saved_authentications, a count over credential_events. */
function scanningStats(db: Db): MetricsSource {
  return {
    async credentialCounts() {
      const rows = await db
        .selectFrom('saved_authentications')
        .select(['provider', 'auth_type', 'status', sql<string>`count(*)`.as('n')])
        .groupBy(['provider', 'auth_type', 'status'])
        .execute();
      return rows.map((r) => ({ provider: r.provider, authType: r.auth_type, status: r.status, count: Number(r.n) }));
    },
    async refreshOutcomeCounts() {
      const rows = await db
        .selectFrom('credential_events')
        .select(['type', sql<string>`count(*)`.as('n')])
        .where('type', 'in', ['refreshed', 'refresh_failed', 'reauth_required'])
        .groupBy('type')
        .execute();
      return rows.map((r) => ({ outcome: r.type, count: Number(r.n) }));
    },
  };
}

const log = (line: string) => process.stderr.write(`[bench:metrics] ${line}\n`);
const timed = async (fn: () => Promise<unknown>) => {
  const started = performance.now();
  await fn();
  return performance.now() - started;
};

const dir = mkdtempSync(path.join(os.tmpdir(), 'maestro-bench-metrics-'));
const server = await startEmbeddedPostgres(path.join(dir, 'pg'), { port: 0 });
const dbUrl = await server.createDatabase('bench');
const db = createDb(dbUrl);
try {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const before0006 = Object.keys(migrations)
    .sort()
    .filter((n) => n < '0006_metric_counts')
    .at(-1)!;
  const { error } = await migrator.migrateTo(before0006);
  if (error) throw error;

  log(`filling: ${CREDENTIALS} credentials, ${EVENTS} events`);
  await sql`
    insert into saved_authentications (name, provider, auth_type, secret, key_id, status)
    select 'c' || i, (array['anthropic', 'openai', 'gemini'])[1 + i % 3], (array['oauth', 'api_key'])[1 + (i / 3) % 2],
           decode(repeat('ab', 200), 'hex'), 'k1', case when i % 50 = 0 then 'reauth_required' else 'active' end
    from generate_series(1, ${CREDENTIALS}) i`.execute(db);
  // A refresh-heavy history like production's: mostly `refreshed`, some failures and other events.
  for (let start = 1; start <= EVENTS; start += 500_000) {
    const end = Math.min(EVENTS, start + 499_999);
    await sql`
      insert into credential_events (credential_id, type, details, created_at)
      select gen_random_uuid(),
             case when i % 100 < 90 then 'refreshed' when i % 100 < 96 then 'refresh_failed' when i % 100 < 97 then 'reauth_required'
                  else 'tokens_replaced' end,
             jsonb_build_object('version', i % 5000, 'expiresAt', '2026-01-01T00:00:00.000Z'),
             now() - make_interval(secs => (${EVENTS} - i) * 0.12)
      from generate_series(${start}::int, ${end}::int) i`.execute(db);
    log(`  ${end} events`);
  }
  await sql`vacuum analyze`.execute(db);
  const size = await sql<{ s: string }>`select pg_size_pretty(pg_total_relation_size('credential_events')) as s`.execute(db);

  const migrateMs = await timed(async () => {
    const { error: e } = await migrator.migrateToLatest();
    if (e) throw e;
  });
  log(`migrated to latest in ${round(migrateMs, 0)} ms`);

  const sources = { scanning: scanningStats(db), counters: databaseStats(db) };
  const scanning = createMetrics(sources.scanning).registry;
  const counters = createMetrics(sources.counters).registry;
  // Same numbers both ways (the sanity check that the counters start right).
  const gauges = async (r: typeof scanning) =>
    (await r.metrics())
      .split('\n')
      .filter((l) => /^maestro_(credentials|refreshes)\{/.test(l) && !l.endsWith(' 0'))
      .sort()
      .join('\n');
  if ((await gauges(scanning)) !== (await gauges(counters))) throw new Error('counter tables disagree with a full count');

  for (let i = 0; i < 3; i++) await Promise.all([scanning.metrics(), counters.metrics()]); // warm-up
  const scrape = { scanning: [] as number[], counters: [] as number[] };
  const queries = { scanning: [] as number[], counters: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? (['counters', 'scanning'] as const) : (['scanning', 'counters'] as const);
    for (const which of order) scrape[which].push(await timed(() => (which === 'scanning' ? scanning : counters).metrics()));
    // The two database reads alone (the rest of a scrape is prom-client's process metrics).
    for (const which of order) {
      const source = sources[which];
      queries[which].push(await timed(() => Promise.all([source.credentialCounts(), source.refreshOutcomeCounts()])));
    }
  }

  // The trigger's cost per event insert, alternating enabled and disabled.
  const insertUs = { on: [] as number[], off: [] as number[] };
  for (let r = 0; r < 10; r++) {
    const which = r % 2 ? 'off' : 'on';
    await sql
      .raw(`alter table credential_events ${which === 'on' ? 'enable' : 'disable'} trigger credential_events_count_outcomes`)
      .execute(db);
    const ms = await timed(() =>
      db.connection().execute(async (conn) => {
        await sql`set synchronous_commit = off`.execute(conn);
        for (let i = 0; i < INSERTS; i++) {
          await conn
            .insertInto('credential_events')
            .values({ credential_id: '00000000-0000-4000-8000-000000000001', type: 'refreshed', details: '{"version":1}' })
            .execute();
        }
      }),
    );
    insertUs[which].push((ms * 1000) / INSERTS);
  }
  await sql`alter table credential_events enable trigger credential_events_count_outcomes`.execute(db);

  // Contention: every counted insert updates its outcome's one row and holds that row until its commit
  // is flushed, so concurrent writers of one outcome commit one after another. WRITERS connections,
  // each inserting `refreshed` events in their own transactions with synchronous_commit on (as in production).
  const concurrent = { on: [] as number[], off: [] as number[] };
  const pool = createDb(dbUrl, WRITERS);
  try {
    for (let r = 0; r < 6; r++) {
      const which = r % 2 ? 'off' : 'on';
      await sql
        .raw(`alter table credential_events ${which === 'on' ? 'enable' : 'disable'} trigger credential_events_count_outcomes`)
        .execute(db);
      const perWriter = Math.ceil(INSERTS / WRITERS);
      const ms = await timed(() =>
        Promise.all(
          Array.from({ length: WRITERS }, async () => {
            for (let i = 0; i < perWriter; i++) {
              await pool
                .insertInto('credential_events')
                .values({ credential_id: '00000000-0000-4000-8000-000000000002', type: 'refreshed', details: '{"version":1}' })
                .execute();
            }
          }),
        ),
      );
      concurrent[which].push((perWriter * WRITERS) / (ms / 1000));
    }
  } finally {
    await sql`alter table credential_events enable trigger credential_events_count_outcomes`.execute(db);
    await pool.destroy();
  }

  const row = (name: string, v: number[]) => [name, round(median(v), 2), round(percentile(v, 90), 2), round(Math.max(...v), 2)];
  process.stdout.write(
    [
      `# /metrics scrape with ${EVENTS.toLocaleString('en')} credential_events (${size.rows[0]!.s}), ${CREDENTIALS} credentials`,
      '',
      `Migration 0006 on this history (counts existing rows while holding the writers' lock): ${round(migrateMs, 0)} ms`,
      '',
      `Scrape (registry.metrics()), ${ROUNDS} rounds, ms:`,
      '',
      table(
        ['source', 'median', 'p90', 'max'],
        [
          row('group-by + count(*) (before)', scrape.scanning),
          row('counter tables (after)', scrape.counters),
          row('before: the two queries alone', queries.scanning),
          row('after: the two queries alone', queries.counters),
        ],
      ),
      '',
      `Event insert (one-row INSERT and commit, synchronous_commit off, ${INSERTS} per round, 5 rounds each), µs per insert:`,
      '',
      table(['counting trigger', 'median', 'p90', 'max'], [row('enabled', insertUs.on), row('disabled', insertUs.off)]),
      '',
      `Concurrent \`refreshed\` inserts, ${WRITERS} connections, synchronous_commit on, 3 rounds each, inserts/s:`,
      '',
      table(
        ['counting trigger', 'median', 'min', 'max'],
        [
          ['enabled', round(median(concurrent.on), 0), round(Math.min(...concurrent.on), 0), round(Math.max(...concurrent.on), 0)],
          ['disabled', round(median(concurrent.off), 0), round(Math.min(...concurrent.off), 0), round(Math.max(...concurrent.off), 0)],
        ],
      ),
      '',
    ].join('\n'),
  );
} finally {
  await db.destroy();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
