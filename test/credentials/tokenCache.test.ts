// The proxy's token cache: one shared refresh per credential, and a waiter that goes away (a
// client that disconnected) is released at once without cancelling the refresh for the others.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { TokenCache } from '../../src/credentials/tokenCache.js';
import { KeyRing } from '../../src/crypto/keyRing.js';
import { CredentialStore } from '../../src/db/credentials.js';
import { CallerGoneError } from '../../src/errors.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { testConfig } from '../support/temporal.js';

let db: TestDatabase;
let store: CredentialStore;
beforeAll(async () => {
  db = await createTestDatabase();
  store = new CredentialStore(db.db, new KeyRing(testConfig().encryptionKeys));
});
afterAll(async () => {
  await db?.close();
});

it('releases a disconnected waiter at once; the shared refresh goes on and serves the others', async () => {
  const c = await store.create({
    provider: 'anthropic',
    authType: 'oauth',
    name: 'cache',
    secret: { accessToken: 'sk-ant-oat01-cache-old-00000000', refreshToken: 'sk-ant-ort01-cache-000000' },
  });
  let calls = 0;
  // Stands in for the workflow's refresh-now (what the cache is given): slow, then a new token.
  const cache = new TokenCache({
    store,
    apiKeyFallback: false,
    refresh: async (id, ifVersion) => {
      calls++;
      await new Promise((r) => setTimeout(r, 500));
      await store.updateTokens(id, ifVersion, {
        secret: { accessToken: 'sk-ant-oat01-cache-new-00000000' },
        expiresAt: null,
        reason: 'refreshed',
      });
    },
  });
  const leaving = new AbortController();
  const started = Date.now();
  const gone = cache.refresh(c.id, c.version, leaving.signal).catch((error: Error) => error);
  const staying = cache.refresh(c.id, c.version, new AbortController().signal);
  setTimeout(() => leaving.abort(), 50);
  const left = await gone;
  expect(left).toBeInstanceOf(CallerGoneError);
  expect(Date.now() - started).toBeLessThan(400);
  const entry = await staying;
  expect(entry.auth).toMatchObject({ type: 'oauth', accessToken: 'sk-ant-oat01-cache-new-00000000' });
  expect(calls).toBe(1);
});

it('caches a credential id once, however its letters are cased, and a change drops it for every spelling', async () => {
  const c = await store.create({
    provider: 'anthropic',
    authType: 'api_key',
    name: 'cased',
    secret: { apiKey: 'sk-ant-api03-cased-000000000000' },
  });
  const cache = new TokenCache({ store, apiKeyFallback: false, refresh: async () => {} });
  const lookups = vi.spyOn(store, 'get');
  const spellings = [c.id, c.id.toUpperCase(), c.id.replace(/[a-f]/, (x) => x.toUpperCase())];
  for (const selector of spellings) expect((await cache.resolve('anthropic', selector)).metadata.id).toBe(c.id);
  // One pick for the id, not one per spelling (each pick is a query, and an entry a client could multiply).
  expect(lookups).toHaveBeenCalledTimes(1);

  // A change notification marks the selector stale: the next resolve picks again, for any spelling, once.
  await store.replaceTokens(c.id, { secret: { apiKey: 'sk-ant-api03-cased-111111111111' }, expiresAt: null });
  cache.invalidate(c.id);
  for (const selector of spellings) {
    expect((await cache.resolve('anthropic', selector)).auth).toEqual({ type: 'api_key', apiKey: 'sk-ant-api03-cased-111111111111' });
  }
  expect(lookups).toHaveBeenCalledTimes(2);
  lookups.mockRestore();
});
