// The counter tables behind /metrics (migration 0006) stay exact through the store's real writes,
// do no work on token writes, never drop when retention purges events, start from the rows a
// database already holds, and go away with down().
import { randomBytes } from 'node:crypto';
import { Kysely, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index.js';
import { KeyRing } from '../../src/crypto/keyRing.js';
import { CredentialStore } from '../../src/db/credentials.js';
import { createMetrics } from '../../src/api/metrics.js';
import { databaseStats } from '../../src/db/stats.js';
import type { Database } from '../../src/db/types.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const keys = new KeyRing([{ id: 'k1', key: randomBytes(32) }]);
const oauth = () => ({
  accessToken: `sk-ant-oat01-${randomBytes(12).toString('hex')}`,
  refreshToken: `sk-ant-ort01-${randomBytes(12).toString('hex')}`,
});
const inOneHour = () => new Date(Date.now() + 3_600_000);
let counter = 0;
const name = () => `m${++counter}`;

/** What a full scan would say, to compare the counters against. */
async function truth(t: TestDatabase) {
  const credentials = await t.query<{ k: string; n: string }>(
    `select provider || '/' || auth_type || '/' || status as k, count(*) as n from saved_authentications group by 1`,
  );
  return Object.fromEntries(credentials.map((r) => [r.k, Number(r.n)]));
}
async function counted(t: TestDatabase) {
  const rows = await databaseStats(t.db).credentialCounts();
  return Object.fromEntries(rows.filter((r) => r.count !== 0).map((r) => [`${r.provider}/${r.authType}/${r.status}`, r.count]));
}
async function outcomes(t: TestDatabase) {
  const rows = await databaseStats(t.db).refreshOutcomeCounts();
  return Object.fromEntries(rows.map((r) => [r.outcome, r.count]));
}
/** Row versions (xmin) of credential_counts: unchanged means no trigger wrote it. */
const countRows = (t: TestDatabase) =>
  t.query(`select xmin::text as xmin, provider, auth_type, status, n from credential_counts order by 2, 3, 4`);
const refreshedEvents = async (t: TestDatabase) =>
  Number((await t.query<{ n: string }>(`select count(*) as n from credential_events where type = 'refreshed'`))[0]!.n);

describe('counter tables', () => {
  let t: TestDatabase;
  let store: CredentialStore;
  beforeAll(async () => {
    t = await createTestDatabase();
    store = new CredentialStore(t.db, keys);
  });
  afterAll(() => t.close());

  it('start with every refresh outcome at 0 and no credentials', async () => {
    expect(await outcomes(t)).toEqual({ refreshed: 0, refresh_failed: 0, reauth_required: 0 });
    expect(await counted(t)).toEqual({});
  });

  it('follow inserts, status changes, refreshes, failures and deletes exactly, and never fall with retention', async () => {
    const a = await store.create({ provider: 'anthropic', authType: 'oauth', name: name(), secret: oauth(), expiresAt: inOneHour() });
    const b = await store.create({ provider: 'anthropic', authType: 'oauth', name: name(), secret: oauth(), expiresAt: inOneHour() });
    await store.create({ provider: 'openai', authType: 'api_key', name: name(), secret: { apiKey: 'sk-test-0123456789abcdef' } });
    expect(await counted(t)).toEqual({ 'anthropic/oauth/active': 2, 'openai/api_key/active': 1 });

    // A refresh (sets status = 'active' on an active row) and a refresh failure: no counter row is written.
    const before = await countRows(t);
    await store.updateTokens(a.id, a.version, { secret: oauth(), expiresAt: inOneHour(), reason: 'refreshed' });
    await store.recordRefreshFailure(a.id, 'token endpoint said 500');
    expect(await countRows(t)).toEqual(before);
    expect(await outcomes(t)).toEqual({ refreshed: 1, refresh_failed: 1, reauth_required: 0 });

    await store.markReauthRequired(b.id, 'invalid_grant');
    expect(await counted(t)).toEqual({ 'anthropic/oauth/active': 1, 'anthropic/oauth/reauth_required': 1, 'openai/api_key/active': 1 });
    // New tokens for the reauth one: back to active (a token write that does change status).
    await store.replaceTokens(b.id, { secret: oauth(), expiresAt: inOneHour() });
    await store.setStatus(a.id, 'disabled');
    expect(await counted(t)).toEqual({ 'anthropic/oauth/active': 1, 'anthropic/oauth/disabled': 1, 'openai/api_key/active': 1 });
    await store.delete(a.id);
    expect(await counted(t)).toEqual(await truth(t));
    expect(await counted(t)).toEqual({ 'anthropic/oauth/active': 1, 'openai/api_key/active': 1 });
    // A combination that had credentials reports 0 rather than vanishing.
    expect((await databaseStats(t.db).credentialCounts()).find((r) => r.status === 'disabled')?.count).toBe(0);
    expect(await outcomes(t)).toEqual({ refreshed: 1, refresh_failed: 1, reauth_required: 1 });

    // Retention deletes every event; the running totals stay.
    expect(await store.purgeEventsBefore(new Date(Date.now() + 60_000))).toBeGreaterThan(0);
    expect(await t.query('select 1 from credential_events')).toEqual([]);
    expect(await outcomes(t)).toEqual({ refreshed: 1, refresh_failed: 1, reauth_required: 1 });
  });

  it('stay exact under concurrent writers on every pool connection', async () => {
    const created = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        store.create({ provider: i % 2 ? 'gemini' : 'openai', authType: 'oauth', name: name(), secret: oauth(), expiresAt: inOneHour() }),
      ),
    );
    const [countedBefore, eventsBefore] = [(await outcomes(t)).refreshed!, await refreshedEvents(t)];
    // Each credential gets a refresh and a status change at once; whichever loses the version race is refused.
    const results = await Promise.allSettled(
      created.flatMap((c, i) => [
        store.updateTokens(c.id, c.version, { secret: oauth(), expiresAt: inOneHour(), reason: 'refreshed' }),
        i % 3 === 0 ? store.setStatus(c.id, 'disabled') : store.markReauthRequired(c.id, 'invalid_grant', c.version),
      ]),
    );
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThanOrEqual(30);
    expect(await counted(t)).toEqual(await truth(t));
    expect((await outcomes(t)).refreshed! - countedBefore).toBe((await refreshedEvents(t)) - eventsBefore);
  });
});

describe('a scrape', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
    const store = new CredentialStore(t.db, keys);
    const c = await store.create({ provider: 'anthropic', authType: 'oauth', name: name(), secret: oauth(), expiresAt: inOneHour() });
    await store.updateTokens(c.id, c.version, { secret: oauth(), expiresAt: inOneHour(), reason: 'refreshed' });
  });
  afterAll(() => t.close());

  it('reads only the counter tables: no query names, and no scan touches, saved_authentications or credential_events', async () => {
    // One connection, so its table statistics can be flushed on demand (pg_stat_force_next_flush, PostgreSQL 15+).
    const sent: string[] = [];
    const db = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: t.url, max: 1 }) }),
      log: (event) => void sent.push(event.query.sql),
    });
    const scans = async () => {
      await sql`select pg_stat_force_next_flush()`.execute(db);
      const rows = await t.query<{ n: string }>(
        `select sum(seq_scan + coalesce(idx_scan, 0)) as n from pg_stat_user_tables where relname in ('saved_authentications', 'credential_events')`,
      );
      return Number(rows[0]!.n);
    };
    try {
      const registry = createMetrics(databaseStats(db)).registry;
      const before = await scans();
      const text = await registry.metrics();
      expect(await scans()).toBe(before);
      expect(text).toMatch(/^maestro_credentials\{provider="anthropic",auth_type="oauth",status="active"\} 1$/m);
      expect(text).toMatch(/^maestro_refreshes\{outcome="refreshed"\} 1$/m);
      const scrape = sent.filter((q) => !q.includes('pg_stat_force_next_flush'));
      expect(scrape).toHaveLength(2);
      for (const q of scrape) expect(q).not.toMatch(/"(saved_authentications|credential_events)"/);

      // The check can see a scan: the query the scrape used to send moves the counters.
      await sql`select type, count(*) from credential_events group by type`.execute(db);
      expect(await scans()).toBeGreaterThan(before);
    } finally {
      await db.destroy();
    }
  });
});

describe('migration 0006', () => {
  const previous = Object.keys(migrations)
    .sort()
    .filter((n) => n < '0006_metric_counts')
    .at(-1)!;
  let t: TestDatabase;
  let migrator: Migrator;
  beforeAll(async () => {
    t = await createTestDatabase({ migrate: false });
    migrator = new Migrator({ db: t.db, provider: { getMigrations: async () => migrations } });
    expect((await migrator.migrateTo(previous)).error).toBeUndefined();
  });
  afterAll(() => t.close());

  it('counts the rows already there, and down() removes tables, triggers and functions', async () => {
    await t.query(`insert into saved_authentications (name, provider, auth_type, secret, key_id, status)
      select 'c' || i, 'anthropic', 'oauth', '\\x00', 'k1', case when i <= 3 then 'reauth_required' else 'active' end
      from generate_series(1, 10) i`);
    await t.query(`insert into credential_events (credential_id, type)
      select gen_random_uuid(), (array['refreshed', 'refreshed', 'refresh_failed', 'created'])[1 + i % 4] from generate_series(1, 1000) i`);
    expect((await migrator.migrateTo('0006_metric_counts')).error).toBeUndefined();
    expect(await counted(t)).toEqual({ 'anthropic/oauth/active': 7, 'anthropic/oauth/reauth_required': 3 });
    expect(await outcomes(t)).toEqual({ refreshed: 500, refresh_failed: 250, reauth_required: 0 });

    expect((await migrator.migrateTo(previous)).error).toBeUndefined();
    const left = await t.query(
      `select relname as name from pg_class where relname like 'credential%counts'
       union all select tgname from pg_trigger where tgname like '%count%'
       union all select proname from pg_proc where proname like 'maestro_count%'`,
    );
    expect(left).toEqual([]);
  });
});
