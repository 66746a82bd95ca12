// The api_keys table (migration 0005): client keys as metadata plus SHA-256(secret), and their
// history in api_key_events. The in-memory copy each API process checks keys against is
// src/clientKeys/registry.ts; this module is only the rows.
import { sql } from 'kysely';
import type { Db } from './pool.js';
import type { ApiKeyRow, KeyCredentialGrant, KeyLimits, KeyRole } from './types.js';
import type { ProviderId } from '../model/providers.js';
import { NotFoundError } from '../errors.js';

export interface StoredKey {
  id: string;
  name: string;
  role: KeyRole;
  secretHash: Buffer;
  credentials: KeyCredentialGrant[];
  providers: ProviderId[];
  /** Pool ids the key may use (migration 0010). */
  pools: string[];
  limits: KeyLimits;
  expiresAt: Date | null;
  version: number;
  createdBy: string | null;
  createdAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

const toKey = (r: ApiKeyRow): StoredKey => ({
  id: r.id,
  name: r.name,
  role: r.role,
  secretHash: r.secret_hash,
  credentials: r.credentials,
  providers: r.providers,
  pools: r.pools,
  limits: r.limits,
  expiresAt: r.expires_at,
  version: r.version,
  createdBy: r.created_by,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
  lastUsedAt: r.last_used_at,
});

export class ApiKeyStore {
  constructor(private readonly db: Db) {}

  async create(input: Omit<StoredKey, 'version' | 'createdAt' | 'revokedAt' | 'lastUsedAt'>): Promise<StoredKey> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('api_keys')
        .values({
          id: input.id,
          name: input.name,
          role: input.role,
          secret_hash: input.secretHash,
          credentials: JSON.stringify(input.credentials),
          providers: JSON.stringify(input.providers),
          pools: JSON.stringify(input.pools),
          limits: JSON.stringify(input.limits),
          expires_at: input.expiresAt,
          created_by: input.createdBy,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await trx
        .insertInto('api_key_events')
        .values({
          key_id: input.id,
          type: 'key_created',
          details: JSON.stringify({ name: input.name, role: input.role, by: input.createdBy }),
        })
        .execute();
      return toKey(row);
    });
  }

  async get(id: string): Promise<StoredKey> {
    const row = await this.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError(`Maestro key ${id} not found`);
    return toKey(row);
  }

  /** A key by id, or undefined (the registry's reload after a notification). */
  async find(id: string): Promise<StoredKey | undefined> {
    const row = await this.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toKey(row);
  }

  async list(): Promise<StoredKey[]> {
    return (await this.db.selectFrom('api_keys').selectAll().orderBy('created_at').orderBy('id').execute()).map(toKey);
  }

  /** Every key's id and version: what the periodic re-check compares with memory. */
  async versions(): Promise<Map<string, number>> {
    const rows = await this.db.selectFrom('api_keys').select(['id', 'version']).execute();
    return new Map(rows.map((r) => [r.id, r.version]));
  }

  /** Revokes once; a second revoke changes nothing. Returns the key as stored. */
  async revoke(id: string, by: string): Promise<StoredKey> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('api_keys')
        .set({ revoked_at: sql`now()`, version: sql`version + 1` })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (!row) {
        const existing = await trx.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
        if (!existing) throw new NotFoundError(`Maestro key ${id} not found`);
        return toKey(existing);
      }
      await trx
        .insertInto('api_key_events')
        .values({ key_id: id, type: 'key_revoked', details: JSON.stringify({ by }) })
        .execute();
      return toKey(row);
    });
  }

  async events(id: string): Promise<Array<{ type: string; details: Record<string, unknown>; createdAt: Date }>> {
    const rows = await this.db.selectFrom('api_key_events').selectAll().where('key_id', '=', id).orderBy('id', 'desc').limit(200).execute();
    return rows.map((r) => ({ type: r.type, details: r.details, createdAt: r.created_at }));
  }

  /** Batched "last used" write: one statement for every key used since the last batch; never moves a time back. */
  async recordLastUsed(used: Map<string, Date>): Promise<void> {
    if (used.size === 0) return;
    const ids = [...used.keys()];
    const times = ids.map((id) => used.get(id)!.toISOString());
    await sql`
      update api_keys set last_used_at = u.at
      from unnest(${ids}::text[], ${times}::timestamptz[]) as u(id, at)
      where api_keys.id = u.id and (api_keys.last_used_at is null or api_keys.last_used_at < u.at)`.execute(this.db);
  }
}
