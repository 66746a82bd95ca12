// Pending PKCE logins: the code verifier and state are secrets (with the authorization code they
// buy a token), so they are sealed like credentials. A session is single use and short lived:
// consume() deletes it in the same statement that reads it, so a replayed completion finds nothing.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ProviderId } from '../model/providers.js';
import { oauthSessionAad, type KeyRing } from '../crypto/keyRing.js';
import { NotFoundError, SealError, ValidationError } from '../errors.js';
import type { Db } from './pool.js';
import { UUID } from '../ids.js';

export const OAUTH_SESSION_TTL_MS = 10 * 60_000;

const sealedSchema = z.object({ verifier: z.string(), state: z.string() });

export interface ConsumedOAuthSession {
  provider: ProviderId;
  name: string;
  verifier: string;
  state: string;
  redirectUri: string;
}

// One message for unknown, used, expired and malformed: the caller's next step is the same,
// and a probe learns nothing about which sessions exist.
const gone = () => new NotFoundError('login session not found or expired; start a new login');

export class OAuthSessionStore {
  constructor(
    private readonly db: Db,
    private readonly keys: KeyRing,
  ) {}

  async create(input: {
    provider: ProviderId;
    name: string;
    verifier: string;
    state: string;
    redirectUri: string;
    ttlMs?: number;
    /** For tests and callers with their own clock. */
    now?: Date;
  }): Promise<{ id: string; expiresAt: string }> {
    const ttlMs = input.ttlMs ?? OAUTH_SESSION_TTL_MS;
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new ValidationError('ttlMs must be a positive number of milliseconds');
    if (!input.verifier || !input.state) throw new ValidationError('a login session needs a verifier and a state');
    const id = randomUUID();
    const now = input.now ?? new Date();
    const expiresAt = new Date(now.getTime() + ttlMs);
    const sealed = this.keys.seal(
      JSON.stringify({ verifier: input.verifier, state: input.state }),
      oauthSessionAad(id, input.provider, input.name, input.redirectUri),
    );
    await this.db
      .insertInto('oauth_sessions')
      .values({
        id,
        provider: input.provider,
        name: input.name,
        sealed: sealed.ciphertext,
        key_id: sealed.keyId,
        redirect_uri: input.redirectUri,
        created_at: now,
        expires_at: expiresAt,
      })
      .execute();
    return { id, expiresAt: expiresAt.toISOString() };
  }

  /** Single use: the row is deleted whether or not it is still valid (an expired one is useless anyway). */
  async consume(id: string, now = new Date()): Promise<ConsumedOAuthSession> {
    if (!UUID.test(id)) throw gone();
    const row = await this.db.deleteFrom('oauth_sessions').where('id', '=', id).returningAll().executeTakeFirst();
    if (!row || row.expires_at.getTime() <= now.getTime()) throw gone();
    const plaintext = this.keys.open(row.sealed, row.key_id, oauthSessionAad(row.id, row.provider, row.name, row.redirect_uri));
    let json: unknown;
    try {
      json = JSON.parse(plaintext.toString('utf8'));
    } catch {
      json = undefined;
    }
    const parsed = sealedSchema.safeParse(json);
    if (!parsed.success) throw new SealError(`sealed data of login session ${row.id} is not a login session`);
    return { provider: row.provider, name: row.name, redirectUri: row.redirect_uri, ...parsed.data };
  }

  /** Housekeeping: removes sessions past their expiry; returns how many. */
  async deleteExpired(now = new Date()): Promise<number> {
    const result = await this.db.deleteFrom('oauth_sessions').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
