// The proxy's token cache: one shared refresh per credential, and a waiter that goes away (a
// client that disconnected) is released at once without cancelling the refresh for the others.
import { afterAll, beforeAll, expect, it } from 'vitest';
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
