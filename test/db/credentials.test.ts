import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { credentialAad, KeyRing, legacyCredentialAad } from '../../src/crypto/keyRing.js';
import { CredentialStore, sanitizeReason, type CredentialSecret } from '../../src/db/credentials.js';
import { REFRESH_MARGIN_MS, validateTokenExpiry } from '../../src/model/refreshSchedule.js';
import { ConflictError, NotFoundError, SealError, ValidationError, VersionConflictError } from '../../src/errors.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const k1 = { id: 'k1', key: randomBytes(32) };
const k2 = { id: 'k2', key: randomBytes(32) };
const keys = new KeyRing([k1, k2]);
const token = (prefix: string) => `${prefix}${randomBytes(24).toString('base64url')}`;
const oauthSecret = (): Required<Pick<CredentialSecret, 'accessToken' | 'refreshToken'>> => ({
  accessToken: token('sk-ant-oat01-'),
  refreshToken: token('sk-ant-ort01-'),
});
const inOneHour = () => new Date(Date.now() + 3_600_000);
let counter = 0;
const uniqueName = () => `c${++counter}`;

let t: TestDatabase;
let store: CredentialStore;
beforeAll(async () => {
  t = await createTestDatabase();
  store = new CredentialStore(t.db, keys);
});
afterAll(() => t.close());

const rawRow = async (id: string) =>
  (
    await t.query<{ secret: Buffer; key_id: string; version: number; last_error: string | null; updated_at: Date }>(
      'select * from saved_authentications where id = $1',
      [id],
    )
  )[0]!;

/** Takes the row lock from a separate connection, as a concurrent writer mid-transaction would. */
async function holdRowLock(id: string) {
  const client = new pg.Client({ connectionString: t.url });
  await client.connect();
  await client.query('begin');
  await client.query('select 1 from saved_authentications where id = $1 for update', [id]);
  return {
    release: async () => {
      await client.query('commit');
      await client.end();
    },
  };
}

async function waitForLockWaiters(count: number) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const rows = await t.query(`select 1 from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'`, [t.name]);
    if (rows.length >= count) return;
    if (Date.now() > deadline) throw new Error(`only ${rows.length} of ${count} writers reached the row lock`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('validateTokenExpiry', () => {
  const expiry = new Date('2030-01-01T12:00:00.000Z');
  const at = (offsetMs: number) => new Date(expiry.getTime() + offsetMs);

  it('classifies exactly at its boundaries', () => {
    expect(validateTokenExpiry(expiry, at(-REFRESH_MARGIN_MS - 1))).toBe('valid');
    expect(validateTokenExpiry(expiry, at(-REFRESH_MARGIN_MS))).toBe('expiring_soon');
    expect(validateTokenExpiry(expiry, at(-1))).toBe('expiring_soon');
    expect(validateTokenExpiry(expiry, at(0))).toBe('expired');
    expect(validateTokenExpiry(expiry, at(1))).toBe('expired');
  });

  it('accepts ISO strings and a custom margin; no expiry is valid; an unreadable one is expired', () => {
    expect(validateTokenExpiry(expiry.toISOString(), at(-60_001), 60_000)).toBe('valid');
    expect(validateTokenExpiry(expiry.toISOString(), at(-60_000), 60_000)).toBe('expiring_soon');
    expect(validateTokenExpiry(null, at(10 ** 12))).toBe('valid');
    expect(validateTokenExpiry('not a date', at(0))).toBe('expired');
  });
});

describe('sanitizeReason', () => {
  it('removes known secret values, provider token shapes, JWTs and long opaque strings, keeps ids and words', () => {
    const refresh = 'opaque-refresh-value-123';
    const id = '7a1c0e56-1c1e-4a55-9d2f-0b9f3a7f0c11';
    const clean = sanitizeReason(
      `invalid_grant for ${id}: refresh ${refresh} rejected; got sk-ant-ort01-${'x'.repeat(40)} ` +
        `and eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl and ${'a1'.repeat(20)}\nBearer abc.def`,
      [refresh],
    );
    expect(clean).toContain('invalid_grant');
    expect(clean).toContain(id);
    expect(clean).not.toContain(refresh);
    expect(clean).not.toMatch(/x{40}|eyJhbGci|a1a1a1a1|abc\.def|\n/);
  });

  it('caps the length', () => {
    expect(sanitizeReason('word '.repeat(500)).length).toBeLessThanOrEqual(500);
  });
});

describe('CredentialStore: sealing at rest', () => {
  it('never stores a token or key in the clear: the raw secret bytes contain none of them', async () => {
    const secret = { ...oauthSecret(), idToken: token('eyJ'), accountId: 'acct_1234567890' };
    const oauth = await store.create({ provider: 'anthropic', authType: 'oauth', name: uniqueName(), secret, expiresAt: inOneHour() });
    const apiKey = token('sk-proj-');
    const key = await store.create({ provider: 'openai', authType: 'api_key', name: uniqueName(), secret: { apiKey } });

    for (const [id, values] of [
      [oauth.id, Object.values(secret)],
      [key.id, [apiKey]],
    ] as const) {
      const row = await rawRow(id);
      expect(row.key_id).toBe('k1');
      for (const value of values) {
        expect(row.secret.includes(value)).toBe(false);
        expect(row.secret.includes(Buffer.from(value).toString('base64'))).toBe(false);
        expect(row.secret.includes(Buffer.from(value).toString('hex'))).toBe(false);
      }
      expect(row.secret.includes('accessToken')).toBe(false); // not even the JSON structure shows
      expect(row.secret.includes(k1.key)).toBe(false);
      // no other column holds it either
      const everything = JSON.stringify(await t.query('select * from saved_authentications where id = $1', [id]));
      for (const value of values) expect(everything).not.toContain(value);
    }
    expect((await store.getWithSecret(oauth.id)).secret).toEqual(secret);
    expect((await store.getWithSecret(key.id)).secret).toEqual({ apiKey });
    // metadata never carries the secret
    expect(JSON.stringify(await store.get(oauth.id))).not.toContain(secret.accessToken);
    expect(JSON.stringify(await store.list())).not.toContain(secret.refreshToken);
  });

  it('a flipped byte, a wrong key id, an unknown key id and a row swap each fail with a SealError', async () => {
    const a = await store.create({ provider: 'anthropic', authType: 'oauth', name: uniqueName(), secret: oauthSecret() });
    const bSecret = oauthSecret();
    const b = await store.create({ provider: 'anthropic', authType: 'oauth', name: uniqueName(), secret: bSecret });
    const original = await rawRow(b.id);
    const restore = () =>
      t.query('update saved_authentications set secret = $1, key_id = $2 where id = $3', [original.secret, original.key_id, b.id]);
    const expectSealError = async () => {
      const error = await store.getWithSecret(b.id).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SealError);
      expect((error as Error).message).not.toContain(bSecret.accessToken);
      await expect(store.getOAuthToken(b.id)).rejects.toBeInstanceOf(SealError);
      return (error as Error).message;
    };

    for (const index of [5, 20, original.secret.length - 1]) {
      const flipped = Buffer.from(original.secret);
      flipped[index] = flipped[index]! ^ 0x80;
      await t.query('update saved_authentications set secret = $1 where id = $2', [flipped, b.id]);
      expect(await expectSealError()).toMatch(/authentication failed/);
    }
    await restore();

    await t.query(`update saved_authentications set key_id = 'k2' where id = $1`, [b.id]);
    expect(await expectSealError()).toMatch(/key id "k2"/);
    await t.query(`update saved_authentications set key_id = 'removed' where id = $1`, [b.id]);
    expect(await expectSealError()).toMatch(/key id "removed" is not in MAESTRO_ENCRYPTION_KEYS/);
    await restore();

    // row swap: a's sealed secret and key id copied into b
    const rowA = await rawRow(a.id);
    await t.query('update saved_authentications set secret = $1, key_id = $2 where id = $3', [rowA.secret, rowA.key_id, b.id]);
    await expectSealError();
    await restore();
    // and moving the row to another provider breaks it too (the provider is in the AAD)
    await t.query(`update saved_authentications set provider = 'gemini' where id = $1`, [b.id]);
    await expectSealError();
    await t.query(`update saved_authentications set provider = 'anthropic' where id = $1`, [b.id]);

    // restored rows open again, and a was never affected
    expect((await store.getWithSecret(b.id)).secret).toEqual(bSecret);
    expect((await store.getWithSecret(a.id)).metadata.id).toBe(a.id);
  });
});

describe('CredentialStore: create and read', () => {
  it('creates OAuth and API-key credentials with sane metadata and a created event', async () => {
    const before = Date.now();
    const expiresAt = inOneHour();
    const oauth = await store.create({ provider: 'anthropic', authType: 'oauth', name: ' work ', secret: oauthSecret(), expiresAt });
    expect(oauth).toMatchObject({
      name: 'work',
      provider: 'anthropic',
      authType: 'oauth',
      status: 'active',
      expiresAt: expiresAt.toISOString(),
      version: 1,
      refreshCount: 0,
      lastRefreshedAt: null,
      lastError: null,
    });
    expect(oauth.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(oauth.tokenObtainedAt!)).toBeGreaterThanOrEqual(before);
    const key = await store.create({ provider: 'gemini', authType: 'api_key', secret: { apiKey: token('AIza') } });
    expect(key).toMatchObject({ name: 'default', tokenObtainedAt: null, expiresAt: null });
    expect(await store.listEvents(oauth.id)).toMatchObject([
      { type: 'created', credentialId: oauth.id, details: { provider: 'anthropic', authType: 'oauth', name: 'work', version: 1 } },
    ]);
  });

  it('a duplicate provider + auth type + name is a clear ConflictError and leaves no trace', async () => {
    const name = uniqueName();
    await store.create({ provider: 'openai', authType: 'api_key', name, secret: { apiKey: token('sk-') } });
    const [{ n: eventsBefore }] = (await t.query<{ n: string }>('select count(*) as n from credential_events')) as [{ n: string }];
    const error = await store
      .create({ provider: 'openai', authType: 'api_key', name, secret: { apiKey: token('sk-') } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).not.toBeInstanceOf(VersionConflictError);
    expect((error as ConflictError).type).toBe('conflict');
    expect((error as Error).message).toBe(
      `a api_key credential named "${name}" already exists for openai; pick another name, or replace its tokens instead`,
    );
    const [{ n: eventsAfter }] = (await t.query<{ n: string }>('select count(*) as n from credential_events')) as [{ n: string }];
    expect(eventsAfter).toBe(eventsBefore);
    // same name, other auth type or provider: different credentials
    await expect(store.create({ provider: 'openai', authType: 'oauth', name, secret: oauthSecret() })).resolves.toMatchObject({ name });
    await expect(store.create({ provider: 'gemini', authType: 'api_key', name, secret: { apiKey: token('AIza') } })).resolves.toMatchObject(
      { name },
    );
  });

  it('validates input before touching the database', async () => {
    await expect(store.create({ provider: 'openai', authType: 'api_key', secret: { accessToken: 'x' } })).rejects.toThrow(ValidationError);
    await expect(store.create({ provider: 'openai', authType: 'oauth', name: uniqueName(), secret: { apiKey: 'x' } })).rejects.toThrow(
      /needs an accessToken/,
    );
    await expect(store.create({ provider: 'openai', authType: 'api_key', name: 'x'.repeat(101), secret: { apiKey: 'x' } })).rejects.toThrow(
      /1 to 100/,
    );
    await expect(
      store.create({ provider: 'openai', authType: 'oauth', name: uniqueName(), secret: oauthSecret(), expiresAt: new Date('nope') }),
    ).rejects.toThrow(/expiresAt/);
  });

  it('get, find and list; unknown or malformed ids are NotFoundError, never a database error', async () => {
    const name = uniqueName();
    const key = await store.create({ provider: 'openai', authType: 'api_key', name, secret: { apiKey: token('sk-') } });
    const oauth = await store.create({ provider: 'openai', authType: 'oauth', name, secret: oauthSecret() });
    expect(await store.get(key.id)).toEqual(key);
    expect(await store.find('openai', name)).toEqual(oauth); // OAuth preferred when both exist
    expect(await store.find('openai', name, 'api_key')).toEqual(key);
    expect(await store.find('anthropic', name)).toBeUndefined();
    const listed = await store.list({ provider: 'openai', authType: 'api_key' });
    expect(listed.map((c) => c.id)).toContain(key.id);
    expect(listed.every((c) => c.provider === 'openai' && c.authType === 'api_key')).toBe(true);
    expect((await store.list({ status: 'disabled' })).length).toBe(0);

    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid', "'; drop table x; --"]) {
      await expect(store.get(id)).rejects.toThrow(NotFoundError);
      await expect(store.getWithSecret(id)).rejects.toThrow(NotFoundError);
      await expect(store.updateTokens(id, 1, { secret: oauthSecret(), expiresAt: null, reason: 'refreshed' })).rejects.toThrow(
        NotFoundError,
      );
      await expect(store.markReauthRequired(id, 'x')).rejects.toThrow(NotFoundError);
      await expect(store.recordRefreshFailure(id, 'x')).rejects.toThrow(NotFoundError);
      await expect(store.setStatus(id, 'disabled')).rejects.toThrow(NotFoundError);
      await expect(store.delete(id)).rejects.toThrow(NotFoundError);
      expect(await store.getOAuthToken(id)).toEqual({ status: 'not_found' });
      expect(await store.listEvents(id)).toEqual([]);
    }
    await expect(store.get('not-a-uuid')).rejects.toThrow('credential not found');
  });

  it('getOAuthToken: ok (also inside the refresh margin), expired, or not_found', async () => {
    const secret = oauthSecret();
    const expiresAt = inOneHour();
    const c = await store.create({ provider: 'anthropic', authType: 'oauth', name: uniqueName(), secret, expiresAt });
    const ok = { status: 'ok', accessToken: secret.accessToken, expiresAt: expiresAt.toISOString(), version: 1 };
    expect(await store.getOAuthToken(c.id)).toEqual(ok);
    expect(await store.getOAuthToken(c.id, new Date(expiresAt.getTime() - 1))).toEqual(ok);
    expect(await store.getOAuthToken(c.id, expiresAt)).toEqual({ status: 'expired', expiresAt: expiresAt.toISOString() });
    const forever = await store.create({ provider: 'anthropic', authType: 'oauth', name: uniqueName(), secret: oauthSecret() });
    expect(await store.getOAuthToken(forever.id, new Date(Date.now() + 10 ** 12))).toMatchObject({ status: 'ok', expiresAt: null });
    const key = await store.create({
      provider: 'anthropic',
      authType: 'api_key',
      name: uniqueName(),
      secret: { apiKey: token('sk-ant-api03-') },
    });
    expect(await store.getOAuthToken(key.id)).toEqual({ status: 'not_found' });
    await store.setStatus(c.id, 'disabled');
    expect(await store.getOAuthToken(c.id)).toEqual({ status: 'not_found' });
  });
});

describe('CredentialStore: versioned token writes', () => {
  // The transaction (no readAs) and the one-statement write a refresh uses (readAs: the row as read at that version).
  it.each([
    ['in a transaction', undefined],
    ['in one statement', { provider: 'anthropic', authType: 'oauth' } as const],
  ])(
    'two writers with the same version, %s: exactly one wins, the other gets VersionConflictError and changes nothing',
    async (_, readAs) => {
      const c = await store.create({
        provider: 'anthropic',
        authType: 'oauth',
        name: uniqueName(),
        secret: oauthSecret(),
        expiresAt: inOneHour(),
      });
      const a = oauthSecret();
      const b = oauthSecret();
      // Make the race real rather than lucky: hold the row lock, start both writers, wait until
      // both are queued on that lock inside their transactions, then let them go together.
      // Which path each writer takes: the one-statement write falls back to the transaction only when it matched no row.
      const transactions = vi.spyOn(store as unknown as { writeTokens: () => unknown }, 'writeTokens');
      const gate = await holdRowLock(c.id);
      const racing = Promise.allSettled([
        store.updateTokens(c.id, 1, { secret: a, expiresAt: inOneHour(), reason: 'refreshed', readAs }),
        store.updateTokens(c.id, 1, { secret: b, expiresAt: inOneHour(), reason: 'refreshed', readAs }),
      ]);
      await waitForLockWaiters(2);
      await gate.release();
      const results = await racing;
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toBeInstanceOf(VersionConflictError);
      expect(lost[0]!.reason).toMatchObject({ credentialId: c.id, expectedVersion: 1, type: 'conflict' });
      // In one statement the winner needs no transaction; the loser falls back to one to learn why.
      expect(transactions).toHaveBeenCalledTimes(readAs ? 1 : 2);
      transactions.mockRestore();
      const winner = results[0]!.status === 'fulfilled' ? a : b;
      const { metadata, secret } = await store.getWithSecret(c.id);
      expect(secret).toEqual(winner);
      expect(metadata).toMatchObject({ version: 2, refreshCount: 1 });
      expect((await store.listEvents(c.id)).map((e) => e.type)).toEqual(['refreshed', 'created']);

      // a stale writer later: nothing at all changes (bytes, version, timestamps, history)
      const before = await rawRow(c.id);
      await expect(store.updateTokens(c.id, 1, { secret: oauthSecret(), expiresAt: null, reason: 'replaced', readAs })).rejects.toThrow(
        VersionConflictError,
      );
      expect(await rawRow(c.id)).toEqual(before);
      expect(await store.listEvents(c.id)).toHaveLength(2);
    },
  );

  it('the one-statement refresh write leaves what the transaction leaves; a wrong readAs falls back to the transaction', async () => {
    const make = (provider: 'anthropic' | 'openai') =>
      store.create({ provider, authType: 'oauth', name: uniqueName(), secret: oauthSecret(), expiresAt: inOneHour() });
    const viaTransaction = await make('anthropic');
    const viaStatement = await make('anthropic');
    const misread = await make('openai');
    const expiresAt = inOneHour();
    const next = oauthSecret();
    const transactions = vi.spyOn(store as unknown as { writeTokens: (id: string) => unknown }, 'writeTokens');
    const written = [
      await store.updateTokens(viaTransaction.id, 1, { secret: next, expiresAt, reason: 'refreshed' }),
      await store.updateTokens(viaStatement.id, 1, { secret: next, expiresAt, reason: 'refreshed', readAs: viaStatement }),
      // The caller is wrong about the provider: the guarded statement matches nothing, the
      // transaction writes it sealed for the row's real provider.
      await store.updateTokens(misread.id, 1, {
        secret: next,
        expiresAt,
        reason: 'refreshed',
        readAs: { provider: 'anthropic', authType: 'oauth' },
      }),
    ];
    // The transaction wrote the first and, falling back, the third; the second took one statement.
    expect(transactions.mock.calls.map(([id]) => id)).toEqual([viaTransaction.id, misread.id]);
    transactions.mockRestore();
    const comparable = (m: (typeof written)[number]) => ({
      ...m,
      id: undefined,
      name: undefined,
      provider: undefined,
      createdAt: undefined,
      updatedAt: undefined,
      tokenObtainedAt: undefined,
      lastRefreshedAt: undefined,
    });
    for (const m of written) {
      expect(comparable(m)).toEqual(comparable(written[0]!));
      expect(m).toMatchObject({ version: 2, refreshCount: 1, status: 'active', expiresAt: expiresAt.toISOString() });
      expect(m.lastRefreshedAt).toBe(m.updatedAt);
      expect(m.tokenObtainedAt).toBe(m.updatedAt);
      expect((await store.getWithSecret(m.id)).secret).toEqual(next);
      expect(await store.get(m.id)).toEqual(m);
      const events = await store.listEvents(m.id);
      expect(events.map((e) => [e.type, e.details])).toEqual([
        ['refreshed', { version: 2, expiresAt: expiresAt.toISOString() }],
        ['created', expect.anything()],
      ]);
    }
  });

  it('a refresh bumps version and counters, clears errors, and keeps the stored refresh token if none came back', async () => {
    const first = oauthSecret();
    const c = await store.create({ provider: 'openai', authType: 'oauth', name: uniqueName(), secret: { ...first, accountId: 'acct_1' } });
    await store.markReauthRequired(c.id, 'invalid_grant');
    const start = Date.now();
    const expiresAt = inOneHour();
    const updated = await store.updateTokens(c.id, 2, {
      secret: { accessToken: 'new-access-token-value' },
      expiresAt,
      reason: 'refreshed',
    });
    expect(updated).toMatchObject({ version: 3, status: 'active', lastError: null, refreshCount: 1, expiresAt: expiresAt.toISOString() });
    expect(Date.parse(updated.lastRefreshedAt!)).toBeGreaterThanOrEqual(start);
    expect(Date.parse(updated.tokenObtainedAt!)).toBeGreaterThanOrEqual(start);
    expect((await store.getWithSecret(c.id)).secret).toEqual({ accessToken: 'new-access-token-value', refreshToken: first.refreshToken });

    // a replacement is taken as given, and is not counted as a refresh
    const replaced = await store.updateTokens(c.id, 3, {
      secret: { accessToken: 'replaced-access-token' },
      expiresAt: null,
      reason: 'replaced',
    });
    expect(replaced).toMatchObject({ version: 4, refreshCount: 1, lastRefreshedAt: updated.lastRefreshedAt, expiresAt: null });
    expect((await store.getWithSecret(c.id)).secret).toEqual({ accessToken: 'replaced-access-token' });
    expect((await store.listEvents(c.id))[0]).toMatchObject({ type: 'tokens_replaced', details: { version: 4, expiresAt: null } });
  });

  it('replaces an API key; a secret of the wrong shape is refused and changes nothing', async () => {
    const c = await store.create({ provider: 'openai', authType: 'api_key', name: uniqueName(), secret: { apiKey: token('sk-') } });
    await expect(store.updateTokens(c.id, 1, { secret: { accessToken: 'x' }, expiresAt: null, reason: 'replaced' })).rejects.toThrow(
      ValidationError,
    );
    expect((await store.get(c.id)).version).toBe(1);
    const apiKey = token('sk-');
    expect(await store.updateTokens(c.id, 1, { secret: { apiKey }, expiresAt: null, reason: 'replaced' })).toMatchObject({
      version: 2,
      tokenObtainedAt: null,
    });
    expect((await store.getWithSecret(c.id)).secret).toEqual({ apiKey });
  });
});

describe('CredentialStore: history', () => {
  it('every state change appends an event without secrets; delete removes the secret and keeps the history', async () => {
    const secret = oauthSecret();
    const c = await store.create({ provider: 'anthropic', authType: 'oauth', name: uniqueName(), secret, expiresAt: inOneHour() });
    const refreshed = oauthSecret();
    await store.updateTokens(c.id, 1, { secret: refreshed, expiresAt: inOneHour(), reason: 'refreshed' });
    // a careless caller passes the provider's error text, which echoes the refresh token
    await store.recordRefreshFailure(c.id, `HTTP 503 from token endpoint for refresh_token=${refreshed.refreshToken}`);
    let meta = await store.get(c.id);
    expect(meta.version).toBe(2); // a failure is not a write of tokens
    expect(meta.lastError).toMatch(/^HTTP 503 from token endpoint for refresh_token=\[REDACTED\]$/);
    meta = await store.markReauthRequired(c.id, `invalid_grant: token ${refreshed.refreshToken} was revoked`);
    expect(meta).toMatchObject({ status: 'reauth_required', version: 3 });
    expect(meta.lastError).toBe('invalid_grant: token [REDACTED] was revoked');
    const replacement = oauthSecret();
    await store.updateTokens(c.id, 3, { secret: replacement, expiresAt: null, reason: 'replaced' });
    expect(await store.setStatus(c.id, 'disabled')).toMatchObject({ status: 'disabled', version: 5 });
    expect(await store.setStatus(c.id, 'disabled')).toMatchObject({ version: 5 }); // no change, no event
    await store.delete(c.id);

    await expect(store.get(c.id)).rejects.toThrow(NotFoundError);
    expect(await t.query('select 1 from saved_authentications where id = $1', [c.id])).toEqual([]);
    const events = await store.listEvents(c.id);
    expect(events.map((e) => e.type)).toEqual([
      'deleted',
      'status_changed',
      'tokens_replaced',
      'reauth_required',
      'refresh_failed',
      'refreshed',
      'created',
    ]);
    expect(events[0]!.details).toMatchObject({ provider: 'anthropic', authType: 'oauth', name: c.name });
    expect(events[1]!.details).toEqual({ from: 'active', to: 'disabled', version: 5 });
    expect(events.every((e) => e.credentialId === c.id && !Number.isNaN(Date.parse(e.createdAt)))).toBe(true);
    expect(await store.listEvents(c.id, { limit: 2 })).toEqual(events.slice(0, 2));

    const stored = JSON.stringify(await t.query('select * from credential_events where credential_id = $1', [c.id]));
    for (const value of [...Object.values(secret), ...Object.values(refreshed), ...Object.values(replacement)]) {
      expect(stored).not.toContain(value);
    }
    await expect(store.delete(c.id)).rejects.toThrow(NotFoundError);
  });
});

describe('what a sealed secret is bound to', () => {
  it('an older ciphertext of the same row, copied back, does not open (no reviving a spent refresh token)', async () => {
    const first = oauthSecret();
    const created = await store.create({
      provider: 'anthropic',
      authType: 'oauth',
      name: uniqueName(),
      secret: first,
      expiresAt: inOneHour(),
    });
    const old = (await rawRow(created.id)).secret;
    await store.updateTokens(created.id, 1, { secret: oauthSecret(), expiresAt: inOneHour(), reason: 'refreshed' });
    await t.query('update saved_authentications set secret = $1 where id = $2', [old, created.id]);
    await expect(store.getWithSecret(created.id)).rejects.toThrow(SealError);
    // With the version rolled back too it opens again: the version (the workflow's token) must also move back.
    await t.query('update saved_authentications set version = 1 where id = $1', [created.id]);
    expect((await store.getWithSecret(created.id)).secret).toEqual(first);
  });

  it('a secret does not open under another auth type (an OAuth secret read as an API key row, or back)', async () => {
    const key = await store.create({ provider: 'openai', authType: 'api_key', name: uniqueName(), secret: { apiKey: token('sk-') } });
    await t.query(`update saved_authentications set auth_type = 'oauth' where id = $1`, [key.id]);
    await expect(store.getWithSecret(key.id)).rejects.toThrow(SealError);
  });

  it('status changes and reauth marks re-seal for the new version; the secret stays readable', async () => {
    const secret = oauthSecret();
    const created = await store.create({ provider: 'anthropic', authType: 'oauth', name: uniqueName(), secret, expiresAt: inOneHour() });
    await store.setStatus(created.id, 'disabled');
    await store.setStatus(created.id, 'active');
    await store.markReauthRequired(created.id, 'refresh token revoked', 3);
    const { metadata, secret: opened } = await store.getWithSecret(created.id);
    expect(metadata.version).toBe(4);
    expect(opened).toEqual(secret);
  });

  it('a seal from before the binding (legacy AAD) still opens, and the next write binds it', async () => {
    const created = await store.create({
      provider: 'anthropic',
      authType: 'oauth',
      name: uniqueName(),
      secret: oauthSecret(),
      expiresAt: inOneHour(),
    });
    const legacy = oauthSecret();
    const sealed = keys.seal(JSON.stringify(legacy), legacyCredentialAad(created.id, 'anthropic'));
    await t.query('update saved_authentications set secret = $1, key_id = $2 where id = $3', [sealed.ciphertext, sealed.keyId, created.id]);
    expect((await store.getWithSecret(created.id)).secret).toEqual(legacy);
    await store.setStatus(created.id, 'disabled');
    const row = await t.query<{ secret: Buffer; key_id: string; version: number }>('select * from saved_authentications where id = $1', [
      created.id,
    ]);
    const bound = keys.open(row[0]!.secret, row[0]!.key_id, credentialAad(created.id, 'anthropic', 'oauth', row[0]!.version));
    expect(JSON.parse(bound.toString('utf8'))).toEqual(legacy);
  });
});
