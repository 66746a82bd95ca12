// The routing state every API process shares (migration 0010): cooldowns, session bindings,
// recovery-probe leases, each process's in-flight counts, and the pools' event timeline.
// Changes are monotonic, so processes that race cannot undo each other: a cooldown only grows
// (a shorter one never shortens a longer bench), and a success clears only benches set before
// the success was seen. Each change takes the next routing_seq value; readers catch up by seq.
import { sql } from 'kysely';
import type { Db } from './pool.js';
import type { PoolEvent, PoolEventType } from '../model/pools.js';

export interface CooldownRow {
  credentialId: string;
  /** 'credential', 'billing', or a model family. */
  scope: string;
  /** ms epoch; null = cleared. */
  until: number | null;
  reason: string;
  evidence: string;
  setAt: number;
  seq: number;
}

export interface SessionRow {
  poolId: string;
  sessionKey: string;
  credentialId: string;
  expiresAt: number;
  seq: number;
}

export interface NewPoolEvent {
  poolId: string | null;
  credentialId?: string;
  type: PoolEventType;
  sessionKey?: string;
  reason?: string;
  until?: Date;
  details?: Record<string, unknown>;
}

const nextSeq = sql<string>`nextval('routing_seq')`;

export class RoutingStore {
  constructor(private readonly db: Db) {}

  /** Benches a credential (or one family of it) until `until`, unless a longer bench is in place. True when it changed. */
  async setCooldown(c: {
    credentialId: string;
    scope: string;
    until: Date;
    reason: string;
    evidence: string;
    setAt: Date;
  }): Promise<boolean> {
    const result = await this.db
      .insertInto('routing_cooldowns')
      .values({
        credential_id: c.credentialId,
        scope: c.scope,
        until: c.until,
        reason: c.reason,
        evidence: c.evidence.slice(0, 300),
        set_at: c.setAt,
        seq: nextSeq,
      })
      .onConflict((oc) =>
        oc
          .columns(['credential_id', 'scope'])
          .doUpdateSet({
            until: (eb) => eb.ref('excluded.until'),
            reason: (eb) => eb.ref('excluded.reason'),
            evidence: (eb) => eb.ref('excluded.evidence'),
            set_at: (eb) => eb.ref('excluded.set_at'),
            seq: nextSeq,
          })
          .where((eb) => eb.or([eb('routing_cooldowns.until', 'is', null), eb('routing_cooldowns.until', '<', eb.ref('excluded.until'))])),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /**
   * Clears the benches of a credential (every scope, or those listed) set at or before `seenAt` — a
   * success or a quota read seen then; a bench set after it stands. Returns the scopes cleared.
   */
  async clearCooldowns(credentialId: string, seenAt: Date, scopes?: string[]): Promise<string[]> {
    let query = this.db
      .updateTable('routing_cooldowns')
      .set({ until: null, seq: nextSeq, set_at: seenAt })
      .where('credential_id', '=', credentialId)
      .where('until', 'is not', null)
      .where('set_at', '<=', seenAt);
    if (scopes) query = query.where('scope', 'in', scopes.length > 0 ? scopes : ['']);
    const rows = await query.returning('scope').execute();
    return rows.map((r) => r.scope);
  }

  async cooldownsSince(seq: number): Promise<CooldownRow[]> {
    const rows = await this.db.selectFrom('routing_cooldowns').selectAll().where('seq', '>', String(seq)).orderBy('seq').execute();
    return rows.map((r) => ({
      credentialId: r.credential_id,
      scope: r.scope,
      until: r.until ? r.until.getTime() : null,
      reason: r.reason,
      evidence: r.evidence,
      setAt: r.set_at.getTime(),
      seq: Number(r.seq),
    }));
  }

  async sessionsSince(seq: number): Promise<SessionRow[]> {
    const rows = await this.db
      .selectFrom('pool_sessions')
      .selectAll()
      .where('seq', '>', String(seq))
      .where('expires_at', '>', new Date())
      .orderBy('seq')
      .execute();
    return rows.map((r) => ({
      poolId: r.pool_id,
      sessionKey: r.session_key,
      credentialId: r.credential_id,
      expiresAt: r.expires_at.getTime(),
      seq: Number(r.seq),
    }));
  }

  /** Binds (or moves, or slides) a session to a member. */
  async bindSession(s: { poolId: string; sessionKey: string; credentialId: string; expiresAt: Date }): Promise<void> {
    await this.db
      .insertInto('pool_sessions')
      .values({ pool_id: s.poolId, session_key: s.sessionKey, credential_id: s.credentialId, expires_at: s.expiresAt, seq: nextSeq })
      .onConflict((oc) =>
        oc.columns(['pool_id', 'session_key']).doUpdateSet({
          credential_id: (eb) => eb.ref('excluded.credential_id'),
          expires_at: (eb) => eb.ref('excluded.expires_at'),
          seq: nextSeq,
        }),
      )
      .execute();
  }

  /** A session's binding, if it has one that has not expired. */
  async findSession(poolId: string, sessionKey: string): Promise<SessionRow | undefined> {
    const r = await this.db
      .selectFrom('pool_sessions')
      .selectAll()
      .where('pool_id', '=', poolId)
      .where('session_key', '=', sessionKey)
      .where('expires_at', '>', new Date())
      .executeTakeFirst();
    return (
      r && {
        poolId: r.pool_id,
        sessionKey: r.session_key,
        credentialId: r.credential_id,
        expiresAt: r.expires_at.getTime(),
        seq: Number(r.seq),
      }
    );
  }

  /**
   * Binds a new session unless another process bound it first (its first calls raced through two
   * processes): the binding that stands, new or not.
   */
  async bindSessionIfAbsent(s: { poolId: string; sessionKey: string; credentialId: string; expiresAt: Date }): Promise<SessionRow> {
    const inserted = await this.db
      .insertInto('pool_sessions')
      .values({ pool_id: s.poolId, session_key: s.sessionKey, credential_id: s.credentialId, expires_at: s.expiresAt, seq: nextSeq })
      .onConflict((oc) =>
        oc
          .columns(['pool_id', 'session_key'])
          .doUpdateSet({
            credential_id: (eb) => eb.ref('excluded.credential_id'),
            expires_at: (eb) => eb.ref('excluded.expires_at'),
            seq: nextSeq,
          })
          .where('pool_sessions.expires_at', '<', new Date()),
      )
      .returningAll()
      .executeTakeFirst();
    const row =
      inserted ??
      (await this.db
        .selectFrom('pool_sessions')
        .selectAll()
        .where('pool_id', '=', s.poolId)
        .where('session_key', '=', s.sessionKey)
        .executeTakeFirstOrThrow());
    return {
      poolId: row.pool_id,
      sessionKey: row.session_key,
      credentialId: row.credential_id,
      expiresAt: row.expires_at.getTime(),
      seq: Number(row.seq),
    };
  }

  /** One recovery probe per member across every process: true when `holder` holds the lease now. */
  async acquireProbe(credentialId: string, holder: string, leaseMs: number): Promise<boolean> {
    const until = new Date(Date.now() + leaseMs);
    const row = await this.db
      .insertInto('routing_probes')
      .values({ credential_id: credentialId, holder, lease_until: until })
      .onConflict((oc) =>
        oc
          .column('credential_id')
          .doUpdateSet({ holder, lease_until: until })
          .where((eb) => eb.or([eb('routing_probes.lease_until', '<', new Date()), eb('routing_probes.holder', '=', holder)])),
      )
      .returning('holder')
      .executeTakeFirst();
    return row?.holder === holder;
  }

  /** Writes this process's in-flight counts (zeros delete) and reads every live process's sums. */
  async shareInflight(
    processId: string,
    counts: Map<string, { count: number; pickedAt: number }>,
  ): Promise<Map<string, { count: number; pickedAt: number }>> {
    const now = new Date();
    const live = [...counts].filter(([, c]) => c.count > 0);
    if (live.length > 0) {
      await this.db
        .insertInto('routing_inflight')
        .values(
          live.map(([credentialId, c]) => ({
            process_id: processId,
            credential_id: credentialId,
            count: c.count,
            picked_at: c.pickedAt ? new Date(c.pickedAt) : null,
            updated_at: now,
          })),
        )
        .onConflict((oc) =>
          oc.columns(['process_id', 'credential_id']).doUpdateSet({
            count: (eb) => eb.ref('excluded.count'),
            picked_at: (eb) => eb.ref('excluded.picked_at'),
            updated_at: now,
          }),
        )
        .execute();
    }
    const gone = [...counts].filter(([, c]) => c.count <= 0).map(([id]) => id);
    if (gone.length > 0) {
      await this.db.deleteFrom('routing_inflight').where('process_id', '=', processId).where('credential_id', 'in', gone).execute();
    }
    const rows = await this.db
      .selectFrom('routing_inflight')
      .select(['credential_id', (eb) => eb.fn.sum<string>('count').as('count'), (eb) => eb.fn.max('picked_at').as('picked_at')])
      .where('process_id', '<>', processId)
      .where('updated_at', '>', new Date(now.getTime() - 5_000))
      .groupBy('credential_id')
      .execute();
    return new Map(
      rows.map((r) => [r.credential_id, { count: Number(r.count), pickedAt: r.picked_at ? new Date(r.picked_at).getTime() : 0 }]),
    );
  }

  async addEvents(events: NewPoolEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.db
      .insertInto('pool_events')
      .values(
        events.map((e) => ({
          pool_id: e.poolId,
          credential_id: e.credentialId ?? null,
          type: e.type,
          session_key: e.sessionKey ?? null,
          reason: e.reason ?? null,
          until: e.until ?? null,
          details: JSON.stringify(e.details ?? {}),
        })),
      )
      .execute();
  }

  /** A pool's events, newest first: its own and its members' credential-wide ones (a cooldown concerns every pool it is in). */
  async events(poolId: string, memberIds: string[], limit: number): Promise<PoolEvent[]> {
    const rows = await this.db
      .selectFrom('pool_events')
      .selectAll()
      .where((eb) =>
        eb.or([
          eb('pool_id', '=', poolId),
          ...(memberIds.length > 0 ? [eb.and([eb('pool_id', 'is', null), eb('credential_id', 'in', memberIds)])] : []),
        ]),
      )
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      at: r.at.toISOString(),
      type: r.type as PoolEventType,
      ...(r.credential_id && { credentialId: r.credential_id }),
      ...(r.session_key && { sessionKey: r.session_key }),
      ...(r.reason && { reason: r.reason }),
      ...(r.until && { until: r.until.toISOString() }),
      details: r.details,
    }));
  }

  /** Housekeeping: events older than `cutoff`, expired sessions and leases, stale in-flight rows; returns rows deleted. */
  async purge(cutoff: Date): Promise<number> {
    const now = new Date();
    const results = await Promise.all([
      this.db.deleteFrom('pool_events').where('at', '<', cutoff).executeTakeFirst(),
      this.db.deleteFrom('pool_sessions').where('expires_at', '<', now).executeTakeFirst(),
      this.db.deleteFrom('routing_probes').where('lease_until', '<', now).executeTakeFirst(),
      this.db
        .deleteFrom('routing_inflight')
        .where('updated_at', '<', new Date(now.getTime() - 60_000))
        .executeTakeFirst(),
      this.db.deleteFrom('routing_cooldowns').where('until', 'is', null).where('set_at', '<', cutoff).executeTakeFirst(),
    ]);
    return results.reduce((n, r) => n + Number(r.numDeletedRows), 0);
  }
}
