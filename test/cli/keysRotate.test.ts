// `npm run keys:rotate` as an operator runs it: every secret is re-sealed under the new first key,
// the count is reported, and afterwards the old key can be removed.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { KeyRing } from '../../src/crypto/keyRing.js';
import { CredentialStore } from '../../src/db/credentials.js';
import { parseEncryptionKeys } from '../../src/config.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { runMaestro } from '../support/children.js';

const OLD = `old:${Buffer.alloc(32, 1).toString('base64')}`;
const NEW = `new:${Buffer.alloc(32, 2).toString('base64')}`;
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

it('re-seals every row under the first key and reports how many moved', async () => {
  const oldStore = new CredentialStore(t.db, new KeyRing(parseEncryptionKeys(OLD)));
  for (let i = 0; i < 7; i++) {
    await oldStore.create({ provider: 'openai', authType: 'api_key', name: `k${i}`, secret: { apiKey: `sk-proj-rotate-${i}-abcdefgh` } });
  }
  const run = runMaestro(['keys', 'rotate', '--batch-size', '3'], {
    DATABASE_URL: t.url,
    MAESTRO_ENCRYPTION_KEYS: `${NEW},${OLD}`,
    NODE_ENV: 'production',
    MAESTRO_API_KEYS: 'msk_unused_0123456789abcdef',
  });
  expect((await run.exited).code).toBe(0);
  expect(run.output()).toMatch(/rotation: 7 rows re-sealed under key "new", 0 already current, 0 remaining/);
  expect(run.output()).toMatch(/older keys can now be removed/);

  const rows = await t.query<{ key_id: string }>('select key_id from saved_authentications');
  expect(rows.map((r) => r.key_id)).toEqual(Array(7).fill('new'));
  // The new key alone opens everything.
  const newOnly = new CredentialStore(t.db, new KeyRing(parseEncryptionKeys(NEW)));
  for (const c of await newOnly.list()) {
    expect((await newOnly.getWithSecret(c.id)).secret.apiKey).toMatch(/^sk-proj-rotate-\d-abcdefgh$/);
  }
  // Running it again moves nothing.
  const again = runMaestro(['keys', 'rotate'], {
    DATABASE_URL: t.url,
    MAESTRO_ENCRYPTION_KEYS: `${NEW},${OLD}`,
    NODE_ENV: 'production',
    MAESTRO_API_KEYS: 'msk_unused_0123456789abcdef',
  });
  expect((await again.exited).code).toBe(0);
  expect(again.output()).toMatch(/rotation: 0 rows re-sealed under key "new", 7 already current/);
}, 60_000);
