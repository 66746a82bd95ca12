// The credential store: saved_authentications with sealed secrets, optimistic versioning and an
// append-only history. Every write and its history row commit together (one transaction, or one
// statement), so the history never claims a change that did not happen (or misses one that did).
import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { ProviderId } from '../model/providers.js';
import type { KeyRing } from '../crypto/keyRing.js';
import { ConflictError, NotFoundError, ValidationError, VersionConflictError } from '../errors.js';
import { safeText } from '../redact.js';
import { isStorableDate, STORABLE_DATE_RANGE } from '../dates.js';
import type { Db } from './pool.js';
import { appendEvent, deleteEventsBefore, listEvents, type CredentialEvent } from './events.js';

import {
  checkSecret,
  openCredentialSecret,
  sealCredentialSecret,
  type CredentialSecret,
  type SealedRow,
  type SealedRowPlace,
} from './credentialSecrets.js';
import { validateTokenExpiry } from '../model/refreshSchedule.js';
import type { AuthType, CredentialStatus, Database, ProviderMetadata, SavedAuthenticationsTable } from './types.js';
import { UUID } from '../ids.js';
import type { CredentialMetadata } from '../model/credentials.js';

export type { CredentialEvent, CredentialEventType } from './events.js';
export type { CredentialSecret } from './credentialSecrets.js';

export type { CredentialMetadata, ProviderMetadata } from '../model/credentials.js';

export type TokenLookup =
  | { status: 'ok'; accessToken: string; expiresAt: string | null; version: number }
  | { status: 'not_found' }
  | { status: 'expired'; expiresAt: string };

const MAX_REASON_LENGTH = 500;

/** Text safe to store in last_error or event details (see src/redact.ts). */
export function sanitizeReason(text: string, knownSecrets: readonly (string | undefined)[] = []): string {
  return safeText(text, { knownSecrets, max: MAX_REASON_LENGTH });
}

// Every column but the secret: metadata reads never load (or risk returning) sealed bytes.
const METADATA_COLUMNS = [
  'id',
  'name',
  'provider',
  'auth_type',
  'status',
  'expires_at',
  'token_obtained_at',
  'version',
  'refresh_count',
  'last_refreshed_at',
  'last_error',
  'provider_metadata',
  'created_at',
  'updated_at',
] as const;

type Row = Selectable<SavedAuthenticationsTable>;
type MetadataRow = Pick<Row, (typeof METADATA_COLUMNS)[number]>;

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

function toMetadata(row: MetadataRow): CredentialMetadata {
  return {
    id: row.id,
    name: row.name,
    provider: row.provider,
    authType: row.auth_type,
    status: row.status,
    expiresAt: iso(row.expires_at),
    tokenObtainedAt: iso(row.token_obtained_at),
    version: row.version,
    refreshCount: row.refresh_count,
    lastRefreshedAt: iso(row.last_refreshed_at),
    lastError: row.last_error,
    providerMetadata: row.provider_metadata ?? null,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/**
 * The columns a token write sets, in the transaction (writeTokens) and in its one-statement form
 * (writeAtVersion): new sealed tokens, active again, the version moved on by one.
 */
function tokenColumns(
  sealed: { ciphertext: Buffer; keyId: string },
  expiresAt: Date | null,
  authType: string,
  refreshed: boolean,
  now: Date,
) {
  return {
    secret: sealed.ciphertext,
    key_id: sealed.keyId,
    expires_at: expiresAt,
    token_obtained_at: authType === 'oauth' ? now : null,
    status: 'active' as const,
    last_error: null,
    version: sql<number>`version + 1`,
    updated_at: now,
    ...(refreshed ? { refresh_count: sql<number>`refresh_count + 1`, last_refreshed_at: now } : {}),
  };
}

function notFound(id: string): NotFoundError {
  // The id is echoed only when it is a well-formed uuid: arbitrary caller text stays out of messages.
  return new NotFoundError(UUID.test(id) ? `credential ${id} not found` : 'credential not found');
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === '23505';
}

function checkDate(value: Date | null | undefined, field: string): Date | null {
  if (value === undefined || value === null) return null;
  if (Number.isNaN(value.getTime())) throw new ValidationError(`${field} is not a valid date`);
  if (!isStorableDate(value)) throw new ValidationError(`${field} must be ${STORABLE_DATE_RANGE}`);
  return value;
}

type Executor = Kysely<Database>;

export class CredentialStore {
  constructor(
    private readonly db: Db,
    private readonly keys: KeyRing,
  ) {}

  async create(input: {
    provider: ProviderId;
    authType: AuthType;
    name?: string;
    secret: CredentialSecret;
    expiresAt?: Date | null;
    providerMetadata?: ProviderMetadata | null;
  }): Promise<CredentialMetadata> {
    const name = (input.name ?? 'default').trim();
    if (name.length < 1 || name.length > 100) throw new ValidationError('name must be 1 to 100 characters');
    checkSecret(input.authType, input.secret);
    const expiresAt = checkDate(input.expiresAt, 'expiresAt');
    // The id is part of the AAD, so it must exist before sealing: generate it here, not in Postgres.
    const id = randomUUID();
    // A new row starts at version 1 (the column default), so that is the version it is sealed at.
    const sealed = this.seal({ id, provider: input.provider, auth_type: input.authType, version: 1 }, input.secret);
    const now = new Date();
    try {
      return await this.db.transaction().execute(async (trx) => {
        const row = await trx
          .insertInto('saved_authentications')
          .values({
            id,
            name,
            provider: input.provider,
            auth_type: input.authType,
            secret: sealed.ciphertext,
            key_id: sealed.keyId,
            version: 1,
            expires_at: expiresAt,
            token_obtained_at: input.authType === 'oauth' ? now : null,
            provider_metadata: input.providerMetadata ? JSON.stringify(input.providerMetadata) : null,
            created_at: now,
            updated_at: now,
          })
          .returning(METADATA_COLUMNS)
          .executeTakeFirstOrThrow();
        await appendEvent(trx, id, 'created', {
          provider: input.provider,
          authType: input.authType,
          name,
          expiresAt: iso(expiresAt),
          version: row.version,
        });
        return toMetadata(row);
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new ConflictError(
          `a ${input.authType} credential named "${name}" already exists for ${input.provider}; ` +
            'pick another name, or replace its tokens instead',
        );
      }
      throw error;
    }
  }

  async get(id: string): Promise<CredentialMetadata> {
    if (!UUID.test(id)) throw notFound(id);
    const row = await this.db.selectFrom('saved_authentications').select(METADATA_COLUMNS).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(id);
    return toMetadata(row);
  }

  /** By provider + name. Without an auth type, an OAuth credential wins over an API key of the same name. */
  async find(provider: ProviderId, name: string, authType?: AuthType): Promise<CredentialMetadata | undefined> {
    let query = this.db
      .selectFrom('saved_authentications')
      .select(METADATA_COLUMNS)
      .where('provider', '=', provider)
      .where('name', '=', name);
    if (authType) query = query.where('auth_type', '=', authType);
    const row = await query
      .orderBy(sql`auth_type = 'oauth'`, 'desc')
      .limit(1)
      .executeTakeFirst();
    return row && toMetadata(row);
  }

  async list(filter: { provider?: ProviderId; authType?: AuthType; status?: CredentialStatus } = {}): Promise<CredentialMetadata[]> {
    let query = this.db.selectFrom('saved_authentications').select(METADATA_COLUMNS);
    if (filter.provider) query = query.where('provider', '=', filter.provider);
    if (filter.authType) query = query.where('auth_type', '=', filter.authType);
    if (filter.status) query = query.where('status', '=', filter.status);
    const rows = await query.orderBy('created_at').orderBy('id').execute();
    return rows.map(toMetadata);
  }

  /** Internal callers only (activities, proxy): the opened secret never leaves Maestro. */
  /** The current version of each of `ids` that still exists: the token cache's periodic re-check. */
  async versions(ids: string[]): Promise<Map<string, number>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db.selectFrom('saved_authentications').select(['id', 'version']).where('id', 'in', ids).execute();
    return new Map(rows.map((r) => [r.id, r.version]));
  }

  /** When the newest credential was created (an index lookup): a change means a provider default may have changed. */
  async newestCreatedAt(): Promise<number | null> {
    const row = await this.db
      .selectFrom('saved_authentications')
      .select('created_at')
      .orderBy('created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? row.created_at.getTime() : null;
  }

  async getWithSecret(id: string): Promise<{ metadata: CredentialMetadata; secret: CredentialSecret }> {
    if (!UUID.test(id)) throw notFound(id);
    const row = await this.db.selectFrom('saved_authentications').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(id);
    return { metadata: toMetadata(row), secret: this.open(row) };
  }

  /**
   * The access token of an OAuth credential, or why there is none. API-key and disabled
   * credentials are `not_found`: an operator-disabled credential must not be used.
   */
  async getOAuthToken(id: string, now = new Date()): Promise<TokenLookup> {
    if (!UUID.test(id)) return { status: 'not_found' };
    const row = await this.db.selectFrom('saved_authentications').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || row.auth_type !== 'oauth' || row.status === 'disabled') return { status: 'not_found' };
    if (row.expires_at && validateTokenExpiry(row.expires_at, now) === 'expired') {
      return { status: 'expired', expiresAt: row.expires_at.toISOString() };
    }
    const { accessToken } = this.open(row);
    if (!accessToken) return { status: 'not_found' };
    return { status: 'ok', accessToken, expiresAt: iso(row.expires_at), version: row.version };
  }

  /**
   * Writes new tokens only if the row is still at `expectedVersion` (the refresh workflow's
   * concurrency token); otherwise VersionConflictError and nothing changes. For a refresh whose
   * response carried no refresh token, the stored one is kept (providers that do not rotate it).
   */
  async updateTokens(
    id: string,
    expectedVersion: number,
    update: {
      secret: CredentialSecret;
      expiresAt: Date | null;
      reason: 'refreshed' | 'replaced';
      /** What the caller read at `expectedVersion`: lets the write be one statement (see writeAtVersion). */
      readAs?: Pick<CredentialMetadata, 'provider' | 'authType'>;
    },
  ): Promise<CredentialMetadata> {
    if (!UUID.test(id)) throw notFound(id);
    const keep: Array<keyof CredentialSecret> = update.reason === 'refreshed' ? ['refreshToken'] : [];
    if (update.readAs && keep.every((field) => update.secret[field])) {
      const written = await this.writeAtVersion(id, expectedVersion, update.readAs, update);
      if (written) return written;
      // Not at that version (or gone): the transaction below says which, under the row lock.
    }
    return this.writeTokens(id, expectedVersion, { ...update, keep });
  }

  /**
   * writeTokens in one statement, for a caller that knows the row at `expectedVersion` (the refresh
   * activity, every cycle): update guarded by version, provider and auth type, and its history row
   * in the same statement (a data-modifying CTE: atomic like the transaction, one round trip instead
   * of five). Undefined when the row is not at that version; nothing was written then.
   */
  private async writeAtVersion(
    id: string,
    expectedVersion: number,
    place: Pick<CredentialMetadata, 'provider' | 'authType'>,
    update: { secret: CredentialSecret; expiresAt: Date | null; reason: 'refreshed' | 'replaced' },
  ): Promise<CredentialMetadata | undefined> {
    const expiresAt = checkDate(update.expiresAt, 'expiresAt');
    try {
      checkSecret(place.authType, update.secret);
    } catch {
      return undefined; // the transaction says what is wrong, in its order (a conflict before a bad secret)
    }
    const version = expectedVersion + 1;
    const sealed = this.seal({ id, provider: place.provider, auth_type: place.authType, version }, update.secret);
    const now = new Date();
    const refreshed = update.reason === 'refreshed';
    const details = JSON.stringify({ version, expiresAt: iso(expiresAt) });
    const row = await this.db
      .with('updated', (db) =>
        db
          .updateTable('saved_authentications')
          .set(tokenColumns(sealed, expiresAt, place.authType, refreshed, now))
          .where('id', '=', id)
          .where('version', '=', expectedVersion)
          .where('provider', '=', place.provider)
          .where('auth_type', '=', place.authType)
          .returning(METADATA_COLUMNS),
      )
      .with('event', (db) =>
        db
          .insertInto('credential_events')
          .columns(['credential_id', 'type', 'details'])
          .expression((eb) =>
            eb
              .selectFrom('updated')
              .select([
                'updated.id',
                sql<string>`${refreshed ? 'refreshed' : 'tokens_replaced'}::text`.as('type'),
                sql<string>`${details}::jsonb`.as('details'),
              ]),
          ),
      )
      .selectFrom('updated')
      .selectAll()
      .executeTakeFirst();
    return row && toMetadata(row);
  }

  private async writeTokens(
    id: string,
    /** 'any': whatever the row holds now (a replacement wins over any version). */
    expectedVersion: number | 'any',
    update: {
      secret: CredentialSecret;
      expiresAt: Date | null;
      reason: 'refreshed' | 'replaced';
      keep?: Array<keyof CredentialSecret>;
      /** Set: replaces the provider metadata (a new login); unset: kept. */
      providerMetadata?: ProviderMetadata | null;
    },
  ): Promise<CredentialMetadata> {
    const expiresAt = checkDate(update.expiresAt, 'expiresAt');
    return this.db.transaction().execute(async (trx) => {
      // The row lock serialises writers: the loser waits, then sees the moved version.
      const current = await trx.selectFrom('saved_authentications').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
      if (!current) throw notFound(id);
      if (expectedVersion !== 'any' && current.version !== expectedVersion) throw new VersionConflictError(id, expectedVersion);
      const version = current.version;
      let secret = { ...update.secret };
      const missing = (update.keep ?? []).filter((field) => !secret[field]);
      if (missing.length > 0) {
        const previous = this.tryOpen(current);
        for (const field of missing) if (previous?.[field]) secret = { ...secret, [field]: previous[field] };
      }
      checkSecret(current.auth_type, secret);
      const sealed = this.seal({ ...current, version: version + 1 }, secret);
      const now = new Date();
      const refreshed = update.reason === 'refreshed';
      const row = await trx
        .updateTable('saved_authentications')
        .set({
          ...tokenColumns(sealed, expiresAt, current.auth_type, refreshed, now),
          ...(update.providerMetadata !== undefined
            ? { provider_metadata: update.providerMetadata ? JSON.stringify(update.providerMetadata) : null }
            : {}),
        })
        .where('id', '=', id)
        .where('version', '=', version)
        .returning(METADATA_COLUMNS)
        .executeTakeFirst();
      // Unreachable under the row lock; kept so the guard is explicit in the statement itself.
      if (!row) throw new VersionConflictError(id, version);
      await appendEvent(trx, id, refreshed ? 'refreshed' : 'tokens_replaced', { version: row.version, expiresAt: iso(expiresAt) });
      return toMetadata(row);
    });
  }

  /**
   * Replaces tokens whatever the version (a PATCH or a new login: the caller's tokens win). Fields
   * listed in `keep` are taken from the row as it is at write time, under its lock, so a refresh
   * that committed a moment earlier keeps its new refresh token.
   */
  async replaceTokens(
    id: string,
    update: {
      secret: CredentialSecret;
      expiresAt: Date | null;
      keep?: Array<'refreshToken' | 'accountId' | 'idToken'>;
      providerMetadata?: ProviderMetadata | null;
    },
  ): Promise<CredentialMetadata> {
    if (!UUID.test(id)) throw notFound(id);
    return this.writeTokens(id, 'any', { ...update, reason: 'replaced' });
  }

  /**
   * A refresh whose write lost to a PATCH that kept the refresh token the refresh had just spent:
   * moves the row to the new refresh token (the PATCHed access token stays). No-op (undefined)
   * when the row no longer holds `spent`.
   */
  async adoptRotatedRefreshToken(id: string, spent: string, fresh: string): Promise<CredentialMetadata | undefined> {
    if (!UUID.test(id)) throw notFound(id);
    return this.db.transaction().execute(async (trx) => {
      const current = await trx.selectFrom('saved_authentications').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
      if (!current) throw notFound(id);
      const secret = this.tryOpen(current);
      if (!secret || secret.refreshToken !== spent) return undefined;
      const sealed = this.seal({ ...current, version: current.version + 1 }, { ...secret, refreshToken: fresh });
      const row = await trx
        .updateTable('saved_authentications')
        .set({ secret: sealed.ciphertext, key_id: sealed.keyId, version: sql`version + 1`, updated_at: new Date() })
        .where('id', '=', id)
        .returning(METADATA_COLUMNS)
        .executeTakeFirstOrThrow();
      await appendEvent(trx, id, 'refreshed', { version: row.version, refreshTokenOnly: true });
      return toMetadata(row);
    });
  }

  /**
   * The refresh token is dead: only a new login helps. Bumps the version so in-flight refreshes
   * stop. With `expectedVersion`, only if the row is still at it (VersionConflictError otherwise):
   * tokens PATCHed in the meantime are good and must not be marked.
   */
  async markReauthRequired(id: string, reason: string, expectedVersion?: number): Promise<CredentialMetadata> {
    return this.changeWithReason(id, reason, async (trx, current, clean, secret) => {
      if (expectedVersion !== undefined && current.version !== expectedVersion) throw new VersionConflictError(id, expectedVersion);
      const row = await trx
        .updateTable('saved_authentications')
        .set({
          status: 'reauth_required',
          last_error: clean,
          version: current.version + 1,
          ...this.resealed(current, secret),
          updated_at: new Date(),
        })
        .where('id', '=', id)
        .returning(METADATA_COLUMNS)
        .executeTakeFirstOrThrow();
      await appendEvent(trx, id, 'reauth_required', { reason: clean, version: row.version, previousStatus: current.status });
      return toMetadata(row);
    });
  }

  /**
   * A refresh attempt failed but may succeed later: recorded, version unchanged (the workflow
   * retries against it). With `expectedVersion`, skipped (false) when the row has moved on.
   */
  async recordRefreshFailure(id: string, reason: string, expectedVersion?: number): Promise<boolean> {
    return this.changeWithReason(id, reason, async (trx, current, clean) => {
      if (expectedVersion !== undefined && current.version !== expectedVersion) return false;
      await trx.updateTable('saved_authentications').set({ last_error: clean, updated_at: new Date() }).where('id', '=', id).execute();
      await appendEvent(trx, id, 'refresh_failed', { reason: clean, version: current.version });
      return true;
    });
  }

  async setStatus(id: string, status: CredentialStatus): Promise<CredentialMetadata> {
    if (!UUID.test(id)) throw notFound(id);
    return this.db.transaction().execute(async (trx) => {
      const current = await trx.selectFrom('saved_authentications').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
      if (!current) throw notFound(id);
      if (current.status === status) return toMetadata(current);
      const row = await trx
        .updateTable('saved_authentications')
        .set({ status, version: current.version + 1, ...this.resealed(current), updated_at: new Date() })
        .where('id', '=', id)
        .returning(METADATA_COLUMNS)
        .executeTakeFirstOrThrow();
      await appendEvent(trx, id, 'status_changed', { from: current.status, to: status, version: row.version });
      return toMetadata(row);
    });
  }

  /** Removes the row and with it the sealed secret; the history (no FK) stays, with a 'deleted' entry. */
  async delete(id: string): Promise<void> {
    if (!UUID.test(id)) throw notFound(id);
    await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .deleteFrom('saved_authentications')
        .where('id', '=', id)
        .returning(['provider', 'auth_type', 'name', 'version'])
        .executeTakeFirst();
      if (!row) throw notFound(id);
      await appendEvent(trx, id, 'deleted', { provider: row.provider, authType: row.auth_type, name: row.name, version: row.version });
    });
  }

  /** Newest first. Works for deleted credentials too (that is the point of keeping history). */
  listEvents(id: string, opts: { limit?: number } = {}): Promise<CredentialEvent[]> {
    return UUID.test(id) ? listEvents(this.db, id, opts) : Promise.resolve([]);
  }

  /** Retention (the maintenance schedule): history older than `cutoff` goes; returns how many events. */
  purgeEventsBefore(cutoff: Date): Promise<number> {
    return deleteEventsBefore(this.db, cutoff);
  }

  // --- internals -------------------------------------------------------------------------

  /** Sealed for the row as it will be written: `version` is the version the write sets. */
  private seal(row: SealedRowPlace, secret: CredentialSecret) {
    return sealCredentialSecret(this.keys, row, secret);
  }

  /**
   * The row's secret re-sealed for the next version (a write that bumps the version without new
   * tokens); nothing when it cannot be opened (it stays as unreadable as it already was).
   */
  private resealed(current: Row, secret = this.tryOpen(current)): { secret: Buffer; key_id: string } | Record<string, never> {
    if (!secret) return {};
    const sealed = this.seal({ ...current, version: current.version + 1 }, secret);
    return { secret: sealed.ciphertext, key_id: sealed.keyId };
  }

  private open(row: SealedRow): CredentialSecret {
    return openCredentialSecret(this.keys, row);
  }

  private tryOpen(row: Row): CredentialSecret | undefined {
    try {
      return this.open(row);
    } catch {
      return undefined;
    }
  }

  /** Locks the row, sanitises `reason` against its own secret values too, then runs `write`. */
  private async changeWithReason<T>(
    id: string,
    reason: string,
    /** `secret`: the row's opened secret (undefined when it does not open), so writers need not open it again. */
    write: (trx: Executor, current: Row, clean: string, secret: CredentialSecret | undefined) => Promise<T>,
  ): Promise<T> {
    if (!UUID.test(id)) throw notFound(id);
    return this.db.transaction().execute(async (trx) => {
      const current = await trx.selectFrom('saved_authentications').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
      if (!current) throw notFound(id);
      const secret = this.tryOpen(current);
      const clean = sanitizeReason(reason, secret ? Object.values(secret) : []) || 'unknown error';
      return write(trx, current, clean, secret);
    });
  }
}
