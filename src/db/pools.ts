// The pools and pool_members tables (migration 0010): what a pool is (its policy) and who is in it.
// The routing state that changes with traffic (cooldowns, sessions…) is src/db/routing.ts.
import { randomUUID } from 'node:crypto';
import type { Db } from './pool.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { MemberRecord, PoolPolicy, PoolRecord, PoolStrategy } from '../model/pools.js';
import type { ProviderId } from '../model/providers.js';

export type { MemberRecord, PoolPolicy, PoolRecord } from '../model/pools.js';

export type NewMember = Omit<MemberRecord, 'position' | 'paused'>;

const isUniqueViolation = (error: unknown) => typeof error === 'object' && error !== null && 'code' in error && error.code === '23505';

export class PoolStore {
  constructor(private readonly db: Db) {}

  async create(policy: PoolPolicy, members: NewMember[]): Promise<PoolRecord> {
    const id = randomUUID();
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('pools')
          .values({
            id,
            name: policy.name,
            provider: policy.provider,
            strategy: policy.strategy,
            on_exhausted: JSON.stringify(policy.onExhausted),
            plan_limits_only: policy.planLimitsOnly,
            session_ttl_seconds: policy.sessionTtlSeconds,
          })
          .execute();
        await insertMembers(trx, id, members, new Map());
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError(`a pool named "${policy.name}" exists already`);
      throw error;
    }
    return this.get(id);
  }

  /** Changes the policy and, when given, the members (a member kept keeps its paused flag). */
  async update(id: string, policy: Partial<PoolPolicy>, members: NewMember[] | undefined): Promise<PoolRecord> {
    try {
      await this.db.transaction().execute(async (trx) => {
        const found = await trx.selectFrom('pools').select('id').where('id', '=', id).forUpdate().executeTakeFirst();
        if (!found) throw new NotFoundError(`pool ${id} not found`);
        await trx
          .updateTable('pools')
          .set((eb) => ({
            ...(policy.name !== undefined && { name: policy.name }),
            ...(policy.strategy !== undefined && { strategy: policy.strategy }),
            ...(policy.onExhausted !== undefined && { on_exhausted: JSON.stringify(policy.onExhausted) }),
            ...(policy.planLimitsOnly !== undefined && { plan_limits_only: policy.planLimitsOnly }),
            ...(policy.sessionTtlSeconds !== undefined && { session_ttl_seconds: policy.sessionTtlSeconds }),
            version: eb('version', '+', 1),
            updated_at: new Date(),
          }))
          .where('id', '=', id)
          .execute();
        if (members) {
          const old = await trx.selectFrom('pool_members').select(['credential_id', 'paused']).where('pool_id', '=', id).execute();
          await trx.deleteFrom('pool_members').where('pool_id', '=', id).execute();
          await insertMembers(trx, id, members, new Map(old.map((m) => [m.credential_id, m.paused])));
        }
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError(`a pool named "${policy.name ?? ''}" exists already`);
      throw error;
    }
    return this.get(id);
  }

  async setPaused(id: string, credentialId: string, paused: boolean): Promise<boolean> {
    const result = await this.db
      .updateTable('pool_members')
      .set({ paused })
      .where('pool_id', '=', id)
      .where('credential_id', '=', credentialId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async delete(id: string): Promise<void> {
    const result = await this.db.deleteFrom('pools').where('id', '=', id).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) throw new NotFoundError(`pool ${id} not found`);
  }

  async get(id: string): Promise<PoolRecord> {
    const [pool] = await this.load(id);
    if (!pool) throw new NotFoundError(`pool ${id} not found`);
    return pool;
  }

  async findByName(name: string): Promise<PoolRecord | undefined> {
    const row = await this.db.selectFrom('pools').select('id').where('name', '=', name).executeTakeFirst();
    return row ? this.get(row.id) : undefined;
  }

  /** Every pool with its members (the routing state's copy is made from this). */
  list(): Promise<PoolRecord[]> {
    return this.load(undefined);
  }

  private async load(id: string | undefined): Promise<PoolRecord[]> {
    let pools = this.db.selectFrom('pools').selectAll().orderBy('name');
    let members = this.db.selectFrom('pool_members').selectAll().orderBy('position');
    if (id !== undefined) {
      pools = pools.where('id', '=', id);
      members = members.where('pool_id', '=', id);
    }
    const [rows, memberRows] = await Promise.all([pools.execute(), members.execute()]);
    const byPool = new Map<string, MemberRecord[]>();
    for (const m of memberRows) {
      const list = byPool.get(m.pool_id) ?? [];
      list.push({
        credentialId: m.credential_id,
        position: m.position,
        priority: m.priority,
        weight: m.weight,
        maxUtilization: m.max_utilization,
        paused: m.paused,
      });
      byPool.set(m.pool_id, list);
    }
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      provider: r.provider as ProviderId,
      strategy: r.strategy as PoolStrategy,
      onExhausted: r.on_exhausted,
      planLimitsOnly: r.plan_limits_only,
      sessionTtlSeconds: r.session_ttl_seconds,
      version: r.version,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      members: byPool.get(r.id) ?? [],
    }));
  }
}

async function insertMembers(trx: Db, poolId: string, members: NewMember[], paused: Map<string, boolean>) {
  if (members.length === 0) return;
  await trx
    .insertInto('pool_members')
    .values(
      members.map((m, position) => ({
        pool_id: poolId,
        credential_id: m.credentialId,
        position,
        priority: m.priority,
        weight: m.weight,
        max_utilization: m.maxUtilization,
        paused: paused.get(m.credentialId) ?? false,
      })),
    )
    .execute();
}
