// refreshCredential against a real PostgreSQL and a fake provider that rotates strictly (a spent
// refresh token presented again is recorded in reusedRefreshTokens). Each test is one of the ways
// a rotated token used to be lost: a late answer, an odd answer, a database outage between the
// answer and the write, a PATCH or a dead grant racing an in-flight refresh.
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type RefreshResult } from '../../src/activities/index.js';
import { HEARTBEAT_EVERY_MS } from '../../src/activities/failures.js';
import { requestRefresh } from '../../src/auth/tokenClient.js';
import { KeyRing } from '../../src/crypto/keyRing.js';
import { CredentialStore } from '../../src/db/credentials.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createDb, type Db } from '../../src/db/pool.js';
import { RefreshAnswerStore } from '../../src/db/refreshAnswers.js';
import { createLogger } from '../../src/logger.js';
import { ProviderRegistry } from '../../src/providers/registry.js';
import { FailureType } from '../../src/model/failures.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProvider.js';
import { startOwnPostgres, type OwnPostgres } from '../support/processes.js';
import { testConfig, testDurableCalls } from '../support/temporal.js';

let db: TestDatabase;
let fake: FakeProvider;
let config: ReturnType<typeof testConfig>;
let keys: KeyRing;
let store: CredentialStore;
let answers: RefreshAnswerStore;
let providers: ProviderRegistry;

beforeAll(async () => {
  [db, fake] = await Promise.all([createTestDatabase(), startFakeProvider({ provider: 'anthropic', accessTokenTtlSec: 3600 })]);
  const base = testConfig();
  config = { ...base, providers: { ...base.providers, anthropic: fake.overrides } };
  keys = new KeyRing(config.encryptionKeys);
  store = new CredentialStore(db.db, keys);
  answers = new RefreshAnswerStore(db.db, keys);
  providers = new ProviderRegistry(config);
});
afterAll(async () => {
  await fake?.close();
  await db?.close();
});

const activitiesFor = (s: CredentialStore, a: RefreshAnswerStore, extra: { writeAttempts?: number } = {}) =>
  createActivities({
    store: s,
    answers: a,
    providers,
    requestRefresh: async () => {},
    webhook: {},
    durableCalls: testDurableCalls(),
    log: createLogger('silent'),
    ...extra,
  });

let seq = 0;
async function credential(s = store) {
  seq++;
  const refreshToken = `sk-ant-ort01-act-${seq}-0000000000`;
  const accessToken = `sk-ant-oat01-act-${seq}-0000000000`;
  fake.seedTokens(refreshToken, accessToken);
  const created = await s.create({
    provider: 'anthropic',
    authType: 'oauth',
    name: `act-${seq}`,
    secret: { accessToken, refreshToken },
    expiresAt: new Date(Date.now() + 3600_000),
  });
  return { ...created, refreshToken, accessToken };
}

/** One attempt, as Temporal would run it; heartbeats are collected. */
async function attempt(
  activities: ReturnType<typeof createActivities>,
  input: { credentialId: string; expectedVersion: number },
  info: { attempt?: number; heartbeatDetails?: unknown } = {},
) {
  const env = new MockActivityEnvironment({ attempt: info.attempt ?? 1, heartbeatDetails: info.heartbeatDetails });
  const beats: unknown[] = [];
  /** When each beat came, in ms after the attempt started. */
  const beatsAt: number[] = [];
  const started = performance.now();
  env.on('heartbeat', (d: unknown) => {
    beats.push(d);
    beatsAt.push(performance.now() - started);
  });
  try {
    return { result: (await env.run(activities.refreshCredential, input)) as RefreshResult, beats, beatsAt, error: undefined };
  } catch (error) {
    return { result: undefined, beats, beatsAt, error: error as Error };
  }
}

const presentedTwice = () => fake.reusedRefreshTokens;

describe('refreshCredential keeps every rotated refresh token', () => {
  it('waits for a provider that rotated and answers after 31 s (the old 30 s timer), heartbeating meanwhile', async () => {
    const c = await credential();
    fake.setTokenAnswerHoldMs(31_000); // the token call used to be cut at 30 s
    try {
      const { result, beats, error } = await attempt(activitiesFor(store, answers), { credentialId: c.id, expectedVersion: c.version });
      expect(error).toBeUndefined();
      expect(result).toMatchObject({ outcome: 'refreshed', credential: { status: 'active', version: c.version + 1 } });
      expect(beats.length).toBeGreaterThanOrEqual(2); // every 3 s while waiting, then the answer
    } finally {
      fake.setTokenAnswerHoldMs(0);
    }
    const { secret } = await store.getWithSecret(c.id);
    expect(secret.refreshToken).toBe(fake.issued.refreshTokens.at(-1));
    expect(fake.tokenAnswersLost()).toBe(0);
    expect(presentedTwice()).toEqual([]);
  }, 60_000);

  it("no beat before the answer but the 3-second ones: a quick answer is the attempt's first heartbeat (Temporal core sends a first beat at once, holds later ones back)", async () => {
    const c = await credential();
    const { result, beats, beatsAt } = await attempt(activitiesFor(store, answers), { credentialId: c.id, expectedVersion: c.version });
    expect(result?.outcome).toBe('refreshed');
    const answered = beats.findIndex((b) => (b as { answer?: { data: string } }).answer?.data);
    expect(answered).toBeGreaterThanOrEqual(0);
    // Before the answer only the interval's beats (none at the start: quick, the answer is the first); after it, every beat carries it.
    for (const at of beatsAt.slice(0, answered)) expect(at).toBeGreaterThanOrEqual(HEARTBEAT_EVERY_MS - 50);
    for (const b of beats.slice(answered)) expect((b as { answer?: { data: string } }).answer?.data).toBeTruthy();
  });

  it('stores usable 2xx answers of odd shapes, spending each token once', async () => {
    const shapes: Array<[string, (b: Record<string, unknown>) => unknown]> = [
      ['scope as an array', (b) => ({ ...b, scope: ['user:inference', 'user:profile'] })],
      ['expires_in as a string', (b) => ({ ...b, expires_in: '3600' })],
      ['expires_in unreadable', (b) => ({ ...b, expires_in: 'soon' })],
      ['id_token empty', (b) => ({ ...b, id_token: '' })],
      ['refresh_token null', (b) => ({ ...b, refresh_token: null })],
      ['token_type a number, extra fields', (b) => ({ ...b, token_type: 42, account: { uuid: 'x' }, organization: { name: 'o' } })],
      ['expires_in past year 9999', (b) => ({ ...b, expires_in: 1e12 })],
    ];
    for (const [what, reshape] of shapes) {
      const c = await credential();
      fake.reshapeNextTokenAnswers([reshape]);
      const { result, error } = await attempt(activitiesFor(store, answers), { credentialId: c.id, expectedVersion: c.version });
      expect(error, what).toBeUndefined();
      expect(result?.outcome, what).toBe('refreshed');
      const { secret, metadata } = await store.getWithSecret(c.id);
      expect(secret.accessToken, what).toBe(fake.issued.accessTokens.at(-1));
      // A null refresh_token is "no new one": the stored one stays (the fake did rotate, so that one is spent).
      if (what !== 'refresh_token null') expect(secret.refreshToken, what).toBe(fake.issued.refreshTokens.at(-1));
      if (what === 'expires_in as a string') expect(Date.parse(metadata.expiresAt!) - Date.now()).toBeGreaterThan(3500_000);
      if (what === 'expires_in past year 9999') expect(metadata.expiresAt).toBeNull();
    }
    expect(presentedTwice()).toEqual([]);
  });

  it('records a 2xx without an access token as a provider fault, keeps it sealed for an operator, and does not call again', async () => {
    const c = await credential();
    fake.reshapeNextTokenAnswers([(b) => ({ ...b, access_token: undefined })]);
    const before = fake.tokenRequests().length;
    const { error } = await attempt(activitiesFor(store, answers), { credentialId: c.id, expectedVersion: c.version });
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect((error as ApplicationFailure).type).toBe(FailureType.malformed);
    expect((error as ApplicationFailure).nonRetryable).toBe(true);
    expect(fake.tokenRequests().length - before).toBe(1);
    expect(await answers.list(c.id)).toEqual([expect.objectContaining({ expectedVersion: c.version, state: 'unusable' })]);
    const rows = await db.query<{ sealed: Buffer }>('select sealed from refresh_answers where credential_id = $1', [c.id]);
    expect(rows[0]!.sealed.toString('latin1')).not.toContain(fake.issued.refreshTokens.at(-1)!);
    expect((await store.get(c.id)).lastError).toMatch(/no usable access_token/);
  });

  it('an answer recorded in the write-ahead row by an attempt that then died is stored by the next attempt, without a token call', async () => {
    const c = await credential();
    // The dead attempt: it got the provider's answer (spending the token) and recorded it.
    const answer = await requestRefresh(providers.get('anthropic'), c.refreshToken, {});
    await answers.record(c.id, c.version, answers.seal(c.id, c.version, answer));
    const before = fake.tokenRequests().length;
    const { result, error } = await attempt(
      activitiesFor(store, answers),
      { credentialId: c.id, expectedVersion: c.version },
      { attempt: 2 },
    );
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ outcome: 'refreshed', attempts: 2 });
    expect(fake.tokenRequests().length).toBe(before);
    expect((await store.getWithSecret(c.id)).secret.refreshToken).toBe(fake.issued.refreshTokens.at(-1));
    expect(await answers.list(c.id)).toEqual([]);
    expect(presentedTwice()).toEqual([]);
  });
});

describe('refreshCredential with the database down after the answer arrived', () => {
  let pgServer: OwnPostgres;
  let ownDb: Db;
  beforeAll(async () => {
    pgServer = await startOwnPostgres();
    ownDb = createDb(pgServer.url, 4);
    await migrateToLatest(ownDb);
  });
  afterAll(async () => {
    await ownDb?.destroy();
    await pgServer?.close();
  });

  it('carries the sealed answer to the next attempt in its heartbeat details; that attempt stores it', async () => {
    const s = new CredentialStore(ownDb, keys);
    const a = new RefreshAnswerStore(ownDb, keys);
    const c = await credential(s);
    const activities = activitiesFor(s, a, { writeAttempts: 2 });
    fake.setTokenAnswerHoldMs(1_500);
    const first = attempt(activities, { credentialId: c.id, expectedVersion: c.version });
    await new Promise((r) => setTimeout(r, 500)); // the request is out; the provider has rotated
    await pgServer.stop();
    const failed = await first;
    fake.setTokenAnswerHoldMs(0);
    expect(failed.error).toBeInstanceOf(ApplicationFailure);
    expect((failed.error as ApplicationFailure).nonRetryable).toBe(false);
    const details = failed.beats.at(-1) as { answer?: { keyId: string; data: string } };
    expect(details.answer?.data).toBeTruthy();
    // Temporal would show this: ciphertext only.
    const shown = JSON.stringify(failed.beats);
    for (const token of [...fake.issued.refreshTokens, ...fake.issued.accessTokens, c.refreshToken]) expect(shown).not.toContain(token);

    await pgServer.start();
    const before = fake.tokenRequests().length;
    const retried = await attempt(
      activities,
      { credentialId: c.id, expectedVersion: c.version },
      { attempt: 2, heartbeatDetails: details },
    );
    expect(retried.error).toBeUndefined();
    expect(retried.result?.outcome).toBe('refreshed');
    expect(fake.tokenRequests().length).toBe(before);
    expect((await s.getWithSecret(c.id)).secret.refreshToken).toBe(fake.issued.refreshTokens.at(-1));
    expect(presentedTwice()).toEqual([]);
  }, 60_000);
});

describe('refreshCredential racing a PATCH', () => {
  const patchTokens = () => {
    seq++;
    const t = { accessToken: `sk-ant-oat01-patch-${seq}-000000`, refreshToken: `sk-ant-ort01-patch-${seq}-000000` };
    fake.seedTokens(t.refreshToken, t.accessToken);
    return t;
  };

  async function duringRefresh(c: { id: string; version: number }, during: () => Promise<unknown>) {
    fake.setTokenAnswerHoldMs(800);
    try {
      const running = attempt(activitiesFor(store, answers), { credentialId: c.id, expectedVersion: c.version });
      await new Promise((r) => setTimeout(r, 300));
      await during();
      return await running;
    } finally {
      fake.setTokenAnswerHoldMs(0);
    }
  }

  it('a PATCH with both tokens while the refresh is out wins; the refresh reports already current', async () => {
    const c = await credential();
    const t = patchTokens();
    const { result } = await duringRefresh(c, () => store.replaceTokens(c.id, { secret: t, expiresAt: new Date(Date.now() + 3600_000) }));
    expect(result?.outcome).toBe('already_current');
    expect((await store.getWithSecret(c.id)).secret).toMatchObject(t);
  });

  it('a PATCH of the access token only, while the refresh is out, ends with the rotated refresh token (not the spent one)', async () => {
    const c = await credential();
    const { accessToken } = patchTokens();
    const { result } = await duringRefresh(c, () =>
      store.replaceTokens(c.id, { secret: { accessToken }, expiresAt: null, keep: ['refreshToken'] }),
    );
    expect(result?.outcome).toBe('already_current');
    const { secret, metadata } = await store.getWithSecret(c.id);
    expect(secret.accessToken).toBe(accessToken);
    expect(secret.refreshToken).toBe(fake.issued.refreshTokens.at(-1));
    // And the next refresh spends that one, once.
    const next = await attempt(activitiesFor(store, answers), { credentialId: c.id, expectedVersion: metadata.version });
    expect(next.result?.outcome).toBe('refreshed');
    expect(presentedTwice()).toEqual([]);
  });

  it('a PATCH of the access token only, after the refresh wrote, keeps the newest refresh token', async () => {
    const c = await credential();
    const { result } = await attempt(activitiesFor(store, answers), { credentialId: c.id, expectedVersion: c.version });
    expect(result?.outcome).toBe('refreshed');
    const { accessToken } = patchTokens();
    await store.replaceTokens(c.id, { secret: { accessToken }, expiresAt: null, keep: ['refreshToken'] });
    expect((await store.getWithSecret(c.id)).secret).toMatchObject({ accessToken, refreshToken: fake.issued.refreshTokens.at(-1) });
  });

  it('good tokens PATCHed while a dying refresh is out are not marked reauth_required', async () => {
    const c = await credential();
    const t = patchTokens();
    fake.failNextToken([{ status: 400, body: { error: 'invalid_grant', error_description: 'Refresh token revoked' } }]);
    const { result, error } = await duringRefresh(c, () =>
      store.replaceTokens(c.id, { secret: t, expiresAt: new Date(Date.now() + 3600_000) }),
    );
    expect(error).toBeUndefined();
    expect(result?.outcome).toBe('already_current');
    const stored = await store.get(c.id);
    expect(stored.status).toBe('active');
    expect((await store.listEvents(c.id)).map((e) => e.type)).not.toContain('reauth_required');
  });
});
