import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { EncryptionKey } from '../../src/config.js';
import { KeyRing, credentialAad, legacyCredentialAad } from '../../src/crypto/keyRing.js';
import { rotateKeys } from '../../src/db/rotate.js';
import { CredentialStore, type CredentialSecret } from '../../src/db/credentials.js';
import { OAuthSessionStore } from '../../src/db/oauthSessions.js';
import { spawnChild } from '../support/children.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const oldKey: EncryptionKey = { id: 'old', key: randomBytes(32) };
const newKey: EncryptionKey = { id: 'new', key: randomBytes(32) };
const oldOnly = new KeyRing([oldKey]);
const rotating = new KeyRing([newKey, oldKey]); // the new key seals, the old one still opens
const newOnly = new KeyRing([newKey]); // what is left once the old key is removed

const CREDENTIALS = 250;
const SESSIONS = 30;
const BATCH = 50;

interface Fixture {
  t: TestDatabase;
  secrets: Map<string, CredentialSecret>;
  sessions: Map<string, { verifier: string; state: string }>;
  versions: Map<string, number>;
}

const open: TestDatabase[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

/** 250 credentials (some at version > 1) and 30 pending logins, all sealed under the old key. */
async function seed(): Promise<Fixture> {
  const t = await createTestDatabase();
  open.push(t);
  const store = new CredentialStore(t.db, oldOnly);
  const loginStore = new OAuthSessionStore(t.db, oldOnly);
  const secrets = new Map<string, CredentialSecret>();
  const versions = new Map<string, number>();
  for (let i = 0; i < CREDENTIALS; i += 5) {
    await Promise.all(
      Array.from({ length: 5 }, async (_, j) => {
        const n = i + j;
        const secret: CredentialSecret =
          n % 3 === 0
            ? { apiKey: `sk-${randomBytes(20).toString('hex')}` }
            : { accessToken: `at-${randomBytes(20).toString('hex')}`, refreshToken: `rt-${randomBytes(20).toString('hex')}` };
        let meta = await store.create({
          provider: (['anthropic', 'openai', 'gemini'] as const)[n % 3]!,
          authType: secret.apiKey ? 'api_key' : 'oauth',
          name: `c${n}`,
          secret,
        });
        if (n % 7 === 0) meta = await store.setStatus(meta.id, 'disabled'); // a version that is not 1
        secrets.set(meta.id, secret);
        versions.set(meta.id, meta.version);
      }),
    );
  }
  const sessions = new Map<string, { verifier: string; state: string }>();
  for (let i = 0; i < SESSIONS; i += 1) {
    const value = { verifier: randomBytes(32).toString('base64url'), state: randomBytes(16).toString('base64url') };
    const { id } = await loginStore.create({
      provider: 'openai',
      name: `s${i}`,
      redirectUri: 'http://localhost:1455/auth/callback',
      ...value,
    });
    sessions.set(id, value);
  }
  return { t, secrets, sessions, versions };
}

const keyIdCounts = async (t: TestDatabase) =>
  Object.fromEntries(
    (
      await t.query<{ key_id: string; n: string }>(
        `select key_id, count(*)::text as n from (select key_id from saved_authentications union all select key_id from oauth_sessions) s group by key_id`,
      )
    ).map((r) => [r.key_id, Number(r.n)]),
  );

/** Every row opens with the new key alone, holds its original secret, and kept its version. */
async function expectAllUnderNewKeyOnly(f: Fixture) {
  expect(await keyIdCounts(f.t)).toEqual({ new: CREDENTIALS + SESSIONS });
  const store = new CredentialStore(f.t.db, newOnly);
  for (const [id, secret] of f.secrets) {
    const { metadata, secret: opened } = await store.getWithSecret(id);
    expect(opened).toEqual(secret);
    expect(metadata.version).toBe(f.versions.get(id)); // re-sealing is not a token write
  }
  const logins = new OAuthSessionStore(f.t.db, newOnly);
  for (const [id, value] of f.sessions) expect(await logins.consume(id)).toMatchObject(value);
}

function runChild(url: string, env: Record<string, string>) {
  const script = fileURLToPath(new URL('../support/rotateChild.ts', import.meta.url));
  // node --import tsx, not `npx tsx`: one process, so SIGKILL hits the rotation itself and no
  // orphaned grandchild keeps rotating after the "kill".
  return spawnChild('rotation', process.execPath, ['--import', 'tsx', script], {
    env: { ROTATE_DATABASE_URL: url, ROTATE_KEYS: `new:${newKey.key.toString('base64')},old:${oldKey.key.toString('base64')}`, ...env },
  });
}

describe('rotateKeys', () => {
  it('re-seals every row in batches, reports counts, keeps versions, and lets the old key go', async () => {
    const f = await seed();
    expect(await keyIdCounts(f.t)).toEqual({ old: CREDENTIALS + SESSIONS });
    const progress: number[] = [];
    const result = await rotateKeys(f.t.db, rotating, { batchSize: BATCH, onBatch: (done) => void progress.push(done) });
    expect(result).toEqual({ rotated: CREDENTIALS + SESSIONS, alreadyCurrent: 0, failed: [], remaining: 0 });
    expect(progress).toEqual([50, 100, 150, 200, 250, 280]);
    // idempotent: a second run finds nothing to do
    expect(await rotateKeys(f.t.db, rotating, { batchSize: BATCH })).toEqual({
      rotated: 0,
      alreadyCurrent: CREDENTIALS + SESSIONS,
      failed: [],
      remaining: 0,
    });
    await expectAllUnderNewKeyOnly(f);
  });

  it('survives being SIGKILLed halfway: no row is lost or half-written, and a re-run finishes the job', async () => {
    const f = await seed();
    const run = runChild(f.t.url, { ROTATE_BATCH_SIZE: String(BATCH), ROTATE_PAUSE_AT: '150' });
    await run.waitFor(/paused/, 30_000);
    await run.kill('SIGKILL');
    expect(await run.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(run.output()).not.toContain('done');

    // exactly the committed batches moved; every row still opens with the keys of the rotation
    expect(await keyIdCounts(f.t)).toEqual({ new: 150, old: CREDENTIALS + SESSIONS - 150 });
    const during = new CredentialStore(f.t.db, rotating);
    for (const [id, secret] of f.secrets) expect((await during.getWithSecret(id)).secret).toEqual(secret);

    // the re-run (again in a child process, as the CLI would) picks up where the first stopped
    const rerun = runChild(f.t.url, { ROTATE_BATCH_SIZE: String(BATCH) });
    expect(await rerun.exited).toEqual({ code: 0, signal: null });
    const done = /done (.*)/.exec(rerun.output())?.[1];
    expect(JSON.parse(done ?? 'null')).toEqual({ rotated: CREDENTIALS + SESSIONS - 150, alreadyCurrent: 150, failed: [], remaining: 0 });
    await expectAllUnderNewKeyOnly(f);
  });

  it('never overwrites a token write that races with it', async () => {
    const f = await seed();
    const ids = [...f.secrets.keys()].sort();
    const storeOld = new CredentialStore(f.t.db, oldOnly); // a service instance not yet given the new key
    const storeNew = new CredentialStore(f.t.db, rotating);
    const oauthIds = ids.filter((id) => f.secrets.get(id)!.accessToken);
    const early = oauthIds[0]!; // in the first batch
    const late = oauthIds.at(-1)!; // in the last batch of credentials

    // 1. a writer holds the row lock on `early` while rotation starts: rotation must wait, then
    //    re-seal the secret the writer committed (not the one it would have read before).
    const writer = new pg.Client({ connectionString: f.t.url });
    await writer.connect();
    await writer.query('begin');
    const [row] = (
      await writer.query<{ provider: string; auth_type: string; version: number }>(
        'select provider, auth_type, version from saved_authentications where id = $1 for update',
        [early],
      )
    ).rows;
    const rotation = rotateKeys(f.t.db, rotating, {
      batchSize: BATCH,
      onBatch: async (done) => {
        // 2. between batches, a refresh through an old-key service instance writes `late`
        if (done === BATCH) {
          const meta = await storeOld.updateTokens(late, f.versions.get(late)!, {
            secret: { accessToken: 'late-access', refreshToken: 'late-refresh' },
            expiresAt: null,
            reason: 'refreshed',
          });
          f.secrets.set(late, { accessToken: 'late-access', refreshToken: 'late-refresh' });
          f.versions.set(late, meta.version);
        }
      },
    });
    // wait until rotation is blocked on the writer's lock
    const deadline = Date.now() + 20_000;
    for (;;) {
      const waiting = await f.t.query(`select 1 from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'`, [f.t.name]);
      if (waiting.length > 0) break;
      if (Date.now() > deadline) throw new Error('rotation never waited for the row lock');
      await new Promise((r) => setTimeout(r, 20));
    }
    const fresh = { accessToken: 'early-access', refreshToken: 'early-refresh' };
    const sealed = oldOnly.seal(JSON.stringify(fresh), credentialAad(early, row!.provider, row!.auth_type, row!.version + 1));
    await writer.query('update saved_authentications set secret = $1, key_id = $2, version = version + 1 where id = $3', [
      sealed.ciphertext,
      sealed.keyId,
      early,
    ]);
    await writer.query('commit');
    await writer.end();
    f.secrets.set(early, fresh);
    f.versions.set(early, row!.version + 1);

    expect(await rotation).toMatchObject({ rotated: CREDENTIALS + SESSIONS, failed: [], remaining: 0 });
    await expectAllUnderNewKeyOnly(f); // includes both raced rows with their new secrets and versions

    // and after rotation, token writes keep working against the versions rotation left alone
    expect(
      await storeNew.updateTokens(early, f.versions.get(early)!, { secret: fresh, expiresAt: null, reason: 'replaced' }),
    ).toMatchObject({
      version: row!.version + 2,
    });
  });

  it('reports rows it cannot open instead of stopping, and leaves them untouched', async () => {
    const f = await seed();
    const [victim] = [...f.secrets.keys()];
    await f.t.query(`update saved_authentications set key_id = 'lost' where id = $1`, [victim]);
    const before = await f.t.query<{ secret: Buffer }>('select secret from saved_authentications where id = $1', [victim]);
    const result = await rotateKeys(f.t.db, rotating, { batchSize: BATCH });
    expect(result.rotated).toBe(CREDENTIALS + SESSIONS - 1);
    expect(result.remaining).toBe(1);
    expect(result.failed).toEqual([
      {
        table: 'saved_authentications',
        id: victim,
        keyId: 'lost',
        reason: expect.stringMatching(/key id "lost" is not in MAESTRO_ENCRYPTION_KEYS/),
      },
    ]);
    expect(await f.t.query('select secret, key_id from saved_authentications where id = $1', [victim])).toEqual([
      { secret: before[0]!.secret, key_id: 'lost' },
    ]);
  });

  it('moves seals from before the auth-type/version binding onto it: after rotation only the bound form opens', async () => {
    const f = await seed();
    const [id] = [...f.secrets.keys()];
    const [row] = await f.t.query<{ provider: string; auth_type: string; version: number }>(
      'select provider, auth_type, version from saved_authentications where id = $1',
      [id],
    );
    const legacy = oldOnly.seal(JSON.stringify(f.secrets.get(id!)), legacyCredentialAad(id!, row!.provider));
    await f.t.query('update saved_authentications set secret = $1 where id = $2', [legacy.ciphertext, id]);
    expect((await rotateKeys(f.t.db, rotating, { batchSize: BATCH })).failed).toEqual([]);
    const [after] = await f.t.query<{ secret: Buffer; key_id: string }>('select secret, key_id from saved_authentications where id = $1', [
      id,
    ]);
    expect(after!.key_id).toBe('new');
    const opened = newOnly.open(after!.secret, 'new', credentialAad(id!, row!.provider, row!.auth_type, row!.version));
    expect(JSON.parse(opened.toString('utf8'))).toEqual(f.secrets.get(id!));
    await expectAllUnderNewKeyOnly(f);
  });
});
