// The usage_hourly and credential_rate_limits tables (migration 0007). Batches are added with one
// upsert that sums into existing rows, so every API process's batches add up.
import { sql, type Kysely } from 'kysely';
import type { Db } from './pool.js';
import type { Database } from './types.js';
import type { UsageCounts, UsageDimension, UsageQuery, UsageReportRow } from '../model/usage.js';

export type { UsageCounts, UsageDimension, UsageQuery, UsageReportRow } from '../model/usage.js';

export interface UsageRow extends UsageCounts {
  hour: Date;
  keyId: string;
  credentialId: string;
  provider: string;
  model: string;
  /** The pool that routed the calls ('' for none). */
  poolId: string;
  /** Tokens budgets were charged for incomplete calls beyond what the provider reported (their stated upper bound). */
  incompleteCharge: number;
}

const COLUMN: Record<UsageDimension, 'key_id' | 'credential_id' | 'provider' | 'model' | 'pool_id'> = {
  pool: 'pool_id',
  key: 'key_id',
  credential: 'credential_id',
  provider: 'provider',
  model: 'model',
};

/** A sum as a JSON number: past 2^53 − 1 (only a provider reporting absurd counts gets there) it is shown as 2^53 − 1. */
const count = (sum: unknown) => Math.min(Number(sum), Number.MAX_SAFE_INTEGER);

export class UsageStore {
  constructor(private readonly db: Db) {}

  async add(rows: UsageRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.upsert(this.db, rows);
  }

  /**
   * Adds one durable call attempt's row unless that attempt was recorded already (its key is
   * `durable_call_usage`'s, in the same transaction): a retried write never counts a call twice.
   * True when it was added now.
   */
  async addOnce(call: { workflowId: string; attempt: number }, row: UsageRow): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const claimed = await trx
        .insertInto('durable_call_usage')
        .values({ workflow_id: call.workflowId, attempt: call.attempt })
        .onConflict((oc) => oc.doNothing())
        .returning('attempt')
        .executeTakeFirst();
      if (!claimed) return false;
      await this.upsert(trx, [row]);
      return true;
    });
  }

  /** Housekeeping: the record of attempts older than `cutoff` (their calls' signatures expired); returns how many. */
  async deleteRecordedCallsBefore(cutoff: Date): Promise<number> {
    const result = await this.db.deleteFrom('durable_call_usage').where('recorded_at', '<', cutoff).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  private async upsert(db: Kysely<Database>, rows: UsageRow[]): Promise<void> {
    await db
      .insertInto('usage_hourly')
      .values(
        rows.map((r) => ({
          hour: r.hour,
          key_id: r.keyId,
          credential_id: r.credentialId,
          provider: r.provider,
          model: r.model,
          pool_id: r.poolId,
          requests: r.requests,
          errors: r.errors,
          input_tokens: r.inputTokens,
          output_tokens: r.outputTokens,
          cache_read_tokens: r.cacheReadTokens,
          cache_write_tokens: r.cacheWriteTokens,
          incomplete: r.incomplete,
          incomplete_charge: r.incompleteCharge,
        })),
      )
      .onConflict((oc) =>
        oc.columns(['hour', 'key_id', 'credential_id', 'provider', 'model', 'pool_id']).doUpdateSet({
          requests: sql`usage_hourly.requests + excluded.requests`,
          errors: sql`usage_hourly.errors + excluded.errors`,
          input_tokens: sql`usage_hourly.input_tokens + excluded.input_tokens`,
          output_tokens: sql`usage_hourly.output_tokens + excluded.output_tokens`,
          cache_read_tokens: sql`usage_hourly.cache_read_tokens + excluded.cache_read_tokens`,
          cache_write_tokens: sql`usage_hourly.cache_write_tokens + excluded.cache_write_tokens`,
          incomplete: sql`usage_hourly.incomplete + excluded.incomplete`,
          incomplete_charge: sql`usage_hourly.incomplete_charge + excluded.incomplete_charge`,
        }),
      )
      .execute();
  }

  /** Every token of each key since `since` (the budget's day), for the keys given, with what incomplete calls were charged. */
  async tokensSince(keyIds: string[], since: Date): Promise<Map<string, number>> {
    if (keyIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('usage_hourly')
      .select([
        'key_id',
        sql<string>`sum(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens + incomplete_charge)`.as('tokens'),
      ])
      .where('key_id', 'in', keyIds)
      .where('hour', '>=', since)
      .groupBy('key_id')
      .execute();
    return new Map(rows.map((r) => [r.key_id, Number(r.tokens)]));
  }

  async query(q: UsageQuery): Promise<UsageReportRow[]> {
    const dims = q.groupBy.map((d) => COLUMN[d]);
    const bucket = q.bucket === 'hour' ? sql<Date>`hour` : q.bucket === 'day' ? sql<Date>`date_trunc('day', hour, 'UTC')` : undefined;
    let query = this.db
      .selectFrom('usage_hourly')
      .select([
        sql<string>`sum(requests)`.as('requests'),
        sql<string>`sum(errors)`.as('errors'),
        sql<string>`sum(input_tokens)`.as('input_tokens'),
        sql<string>`sum(output_tokens)`.as('output_tokens'),
        sql<string>`sum(cache_read_tokens)`.as('cache_read_tokens'),
        sql<string>`sum(cache_write_tokens)`.as('cache_write_tokens'),
        sql<string>`sum(incomplete)`.as('incomplete'),
      ])
      .where('hour', '>=', sql<Date>`date_trunc('hour', ${q.from}::timestamptz, 'UTC')`)
      .where('hour', '<', q.to);
    if (q.keyId !== undefined) query = query.where('key_id', '=', q.keyId);
    for (const d of dims) query = query.select(d).groupBy(d).orderBy(d);
    if (bucket)
      query = query
        .select(bucket.as('bucket_start'))
        .groupBy(sql`bucket_start`)
        .orderBy(sql`bucket_start`);
    const rows = (await query.execute()) as Array<Record<string, unknown>>;
    return rows
      .filter((r) => r.requests !== null)
      .map((r) => {
        const out: UsageReportRow = {
          requests: count(r.requests),
          errors: count(r.errors),
          inputTokens: count(r.input_tokens),
          outputTokens: count(r.output_tokens),
          cacheReadTokens: count(r.cache_read_tokens),
          cacheWriteTokens: count(r.cache_write_tokens),
          incomplete: count(r.incomplete),
        };
        for (const d of q.groupBy) {
          // Calls outside any pool are stored under '' and shown as null.
          if (d === 'pool') out.pool = r.pool_id === '' ? null : String(r.pool_id);
          else out[d] = String(r[COLUMN[d]]);
        }
        if (bucket) out.bucketStart = (r.bucket_start as Date).toISOString();
        return out;
      });
  }

  async saveRateLimits(states: Array<{ credentialId: string; state: Record<string, unknown>; observedAt: Date }>): Promise<void> {
    if (states.length === 0) return;
    await this.db
      .insertInto('credential_rate_limits')
      .values(states.map((s) => ({ credential_id: s.credentialId, state: JSON.stringify(s.state), observed_at: s.observedAt })))
      // Never replace a newer observation (another process's) with an older one.
      .onConflict((oc) =>
        oc
          .column('credential_id')
          .doUpdateSet({ state: sql`excluded.state`, observed_at: sql`excluded.observed_at` })
          .where('credential_rate_limits.observed_at', '<', sql<Date>`excluded.observed_at`),
      )
      .execute();
  }

  async rateLimit(credentialId: string): Promise<{ state: Record<string, unknown>; observedAt: Date } | undefined> {
    const row = await this.db.selectFrom('credential_rate_limits').selectAll().where('credential_id', '=', credentialId).executeTakeFirst();
    return row && { state: row.state, observedAt: row.observed_at };
  }

  /** The credential's last quota-endpoint state (written by its workflow's read; never replaced by an older one). */
  async saveQuota(credentialId: string, state: Record<string, unknown>, observedAt: Date): Promise<void> {
    await this.db
      .insertInto('credential_quota')
      .values({ credential_id: credentialId, state: JSON.stringify(state), observed_at: observedAt })
      .onConflict((oc) =>
        oc
          .column('credential_id')
          .doUpdateSet({ state: sql`excluded.state`, observed_at: sql`excluded.observed_at` })
          .where('credential_quota.observed_at', '<=', sql<Date>`excluded.observed_at`),
      )
      .execute();
  }

  async quota(credentialId: string): Promise<{ state: Record<string, unknown>; observedAt: Date } | undefined> {
    const row = await this.db.selectFrom('credential_quota').selectAll().where('credential_id', '=', credentialId).executeTakeFirst();
    return row && { state: row.state, observedAt: row.observed_at };
  }

  /** Every credential's quota state, for the utilization gauge (read at scrape time). */
  async quotas(): Promise<Array<{ credentialId: string; state: Record<string, unknown> }>> {
    const rows = await this.db.selectFrom('credential_quota').select(['credential_id', 'state']).execute();
    return rows.map((r) => ({ credentialId: r.credential_id, state: r.state }));
  }

  async countQuotaRead(outcome: string): Promise<void> {
    await this.db
      .insertInto('quota_read_counts')
      .values({ outcome, count: 1 })
      .onConflict((oc) => oc.column('outcome').doUpdateSet({ count: sql`quota_read_counts.count + 1`, updated_at: sql`now()` }))
      .execute();
  }

  async quotaReadCounts(): Promise<Array<{ outcome: string; count: number }>> {
    const rows = await this.db.selectFrom('quota_read_counts').select(['outcome', 'count']).execute();
    return rows.map((r) => ({ outcome: r.outcome, count: Number(r.count) }));
  }
}
