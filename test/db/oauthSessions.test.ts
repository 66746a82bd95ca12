import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/crypto/keyRing.js';
import { OAUTH_SESSION_TTL_MS, OAuthSessionStore } from '../../src/db/oauthSessions.js';
import { NotFoundError, SealError, ValidationError } from '../../src/errors.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const keys = new KeyRing([{ id: 'k1', key: randomBytes(32) }]);
const login = () => ({
  provider: 'anthropic' as const,
  name: 'work',
  verifier: randomBytes(32).toString('base64url'),
  state: randomBytes(32).toString('base64url'),
  redirectUri: 'https://console.anthropic.com/oauth/code/callback',
});
const GONE = 'login session not found or expired; start a new login';

let t: TestDatabase;
let sessions: OAuthSessionStore;
beforeAll(async () => {
  t = await createTestDatabase();
  sessions = new OAuthSessionStore(t.db, keys);
});
afterAll(() => t.close());

describe('OAuthSessionStore', () => {
  it('seals verifier and state, expires after 10 minutes by default, and can be consumed exactly once', async () => {
    const input = login();
    const now = new Date();
    const { id, expiresAt } = await sessions.create({ ...input, now });
    expect(Date.parse(expiresAt) - now.getTime()).toBe(OAUTH_SESSION_TTL_MS);
    expect(OAUTH_SESSION_TTL_MS).toBe(600_000);

    const [raw] = await t.query<{ sealed: Buffer; key_id: string; redirect_uri: string }>('select * from oauth_sessions where id = $1', [
      id,
    ]);
    expect(raw!.key_id).toBe('k1');
    for (const value of [input.verifier, input.state]) {
      expect(raw!.sealed.includes(value)).toBe(false);
      expect(JSON.stringify(raw)).not.toContain(value);
    }

    expect(await sessions.consume(id)).toEqual({
      provider: input.provider,
      name: input.name,
      verifier: input.verifier,
      state: input.state,
      redirectUri: input.redirectUri,
    });
    await expect(sessions.consume(id)).rejects.toThrow(new NotFoundError(GONE));
  });

  it('concurrent completions of one session: exactly one gets it', async () => {
    const { id } = await sessions.create(login());
    const results = await Promise.allSettled([sessions.consume(id), sessions.consume(id), sessions.consume(id)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
      expect(r.reason).toBeInstanceOf(NotFoundError);
    }
  });

  it('an expired session is refused (at its expiry instant) and removed', async () => {
    const { id, expiresAt } = await sessions.create({ ...login(), ttlMs: 1_000 });
    await expect(sessions.consume(id, new Date(expiresAt))).rejects.toThrow(GONE);
    expect(await t.query('select 1 from oauth_sessions where id = $1', [id])).toEqual([]);
    // one millisecond earlier it would still have worked
    const fresh = await sessions.create({ ...login(), ttlMs: 1_000 });
    await expect(sessions.consume(fresh.id, new Date(Date.parse(fresh.expiresAt) - 1))).resolves.toMatchObject({ name: 'work' });
  });

  it('unknown and malformed ids give the same NotFoundError; bad input is a ValidationError', async () => {
    await expect(sessions.consume('00000000-0000-4000-8000-000000000000')).rejects.toThrow(new NotFoundError(GONE));
    await expect(sessions.consume('not-a-session')).rejects.toThrow(new NotFoundError(GONE));
    await expect(sessions.create({ ...login(), ttlMs: 0 })).rejects.toThrow(ValidationError);
    await expect(sessions.create({ ...login(), verifier: '' })).rejects.toThrow(ValidationError);
  });

  it('a redirect URI changed in the database does not open (bound into the AAD)', async () => {
    const { id } = await sessions.create(login());
    await t.query(`update oauth_sessions set redirect_uri = 'https://attacker.example/cb' where id = $1`, [id]);
    await expect(sessions.consume(id)).rejects.toThrow(SealError);
  });

  it('deleteExpired removes only expired sessions and reports how many', async () => {
    await t.query('delete from oauth_sessions');
    const now = new Date();
    await sessions.create({ ...login(), ttlMs: 1_000, now: new Date(now.getTime() - 5_000) });
    await sessions.create({ ...login(), ttlMs: 1_000, now: new Date(now.getTime() - 1_000) }); // expires exactly now
    const live = await sessions.create({ ...login(), now });
    expect(await sessions.deleteExpired(now)).toBe(2);
    expect(await sessions.deleteExpired(now)).toBe(0);
    await expect(sessions.consume(live.id, now)).resolves.toMatchObject({ provider: 'anthropic' });
  });
});
