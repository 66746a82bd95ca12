// readQuota against a real PostgreSQL and the fake provider's quota endpoint (which checks the
// exact headers and refuses expired or revoked tokens). A read never refreshes: 100 reads, with
// the token seconds from its expiry, expired, and refused, cause no token-endpoint call at all.
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type QuotaReadInput, type QuotaReadResult } from '../../src/activities/index.js';
import { KeyRing } from '../../src/crypto/keyRing.js';
import { CredentialStore } from '../../src/db/credentials.js';
import { RefreshAnswerStore } from '../../src/db/refreshAnswers.js';
import { UsageStore } from '../../src/db/usage.js';
import { createLogger } from '../../src/logger.js';
import { ANTHROPIC_OAUTH_BETA } from '../../src/providers/anthropic.js';
import { ProviderRegistry } from '../../src/providers/registry.js';
import type { RateLimitState } from '../../src/usage/rateLimits.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProvider.js';
import { testConfig, testDurableCalls } from '../support/temporal.js';
import { until } from '../support/wait.js';

let db: TestDatabase;
let fake: FakeProvider;
let openai: FakeProvider;
let gemini: FakeProvider;
let store: CredentialStore;
let usage: UsageStore;
let activities: ReturnType<typeof createActivities>;
const seen: Array<{ credentialId: string; state: RateLimitState }> = [];

beforeAll(async () => {
  [db, fake, openai, gemini] = await Promise.all([
    createTestDatabase(),
    startFakeProvider({ provider: 'anthropic', accessTokenTtlSec: 3600 }),
    startFakeProvider({ provider: 'openai', accessTokenTtlSec: 3600 }),
    startFakeProvider({ provider: 'gemini', accessTokenTtlSec: 3600 }),
  ]);
  const base = testConfig();
  const config = {
    ...base,
    providers: { ...base.providers, anthropic: fake.overrides, openai: openai.overrides, gemini: gemini.overrides },
  };
  const keys = new KeyRing(config.encryptionKeys);
  store = new CredentialStore(db.db, keys);
  usage = new UsageStore(db.db);
  activities = createActivities({
    store,
    answers: new RefreshAnswerStore(db.db, keys),
    providers: new ProviderRegistry(config),
    requestRefresh: async () => {
      throw new Error('a quota read must never ask for a refresh');
    },
    webhook: {},
    durableCalls: testDurableCalls(),
    quota: usage,
    onQuotaRead: async (credentialId, state) => void seen.push({ credentialId, state }),
    log: createLogger('silent'),
  });
});
afterAll(async () => {
  await Promise.all([fake?.close(), openai?.close(), gemini?.close()]);
  await db?.close();
});

const read = (input: QuotaReadInput): Promise<QuotaReadResult> => new MockActivityEnvironment().run(activities.readQuota, input);

let seq = 0;
async function credential(f: FakeProvider, lifetimeMs: number) {
  seq++;
  const refreshToken = `rt-quota-${seq}-0000000000`;
  const accessToken = `at-quota-${seq}-0000000000`;
  f.seedTokens(refreshToken, accessToken);
  const created = await store.create({
    provider: f.provider,
    authType: 'oauth',
    name: `quota-${seq}`,
    secret: { accessToken, refreshToken, ...(f.provider === 'openai' ? { accountId: f.accountId } : {}) },
    expiresAt: new Date(Date.now() + lifetimeMs),
    ...(f.provider === 'gemini' ? { providerMetadata: { project: f.codeAssistProject } } : {}),
  });
  return { ...created, accessToken };
}

describe('readQuota', () => {
  it('reads Anthropic /api/oauth/usage with exactly the bearer token and the OAuth beta, and stores the windows as fractions', async () => {
    const c = await credential(fake, 3600_000);
    const resetsAt = new Date(Date.now() + 2 * 3600_000);
    fake.setQuotaWindow('five_hour', { utilization: 26, resetsAt });
    const before = fake.quotaRequests().length;
    const result = await read({ credentialId: c.id });
    expect(result.outcome).toBe('ok');
    expect(result.room).toBe(true);
    expect(result.state?.windows.five_hour).toMatchObject({ utilization: 0.26, reset: resetsAt.toISOString(), source: 'endpoint' });
    const [request] = fake.quotaRequests().slice(before);
    expect(request).toMatchObject({ method: 'GET', path: '/api/oauth/usage' });
    expect(request!.headers.authorization).toBe(`Bearer ${c.accessToken}`);
    expect(request!.headers['anthropic-beta']).toBe(ANTHROPIC_OAUTH_BETA);
    expect(request!.headers['x-api-key']).toBeUndefined();
    expect(request!.body.length).toBe(0);
    const stored = await usage.quota(c.id);
    expect((stored?.state as unknown as RateLimitState).windows.five_hour!.utilization).toBe(0.26);
    expect(seen.at(-1)).toMatchObject({ credentialId: c.id });
  });

  it('reads ChatGPT /backend-api/wham/usage with the account header', async () => {
    const c = await credential(openai, 3600_000);
    openai.setQuotaWindow('primary', { utilization: 100, resetsAt: new Date(Date.now() + 3600_000) });
    const result = await read({ credentialId: c.id });
    expect(result.outcome).toBe('ok');
    expect(result.room).toBe(false);
    expect(result.state?.windows.primary).toMatchObject({ utilization: 1, windowMinutes: 300, source: 'endpoint' });
    const request = openai.quotaRequests().at(-1)!;
    expect(request.path).toBe('/backend-api/wham/usage');
    expect(request.headers['chatgpt-account-id']).toBe(openai.accountId);
    expect(request.headers.authorization).toBe(`Bearer ${c.accessToken}`);
  });

  it('keeps the ChatGPT credits object beside the windows', async () => {
    const c = await credential(openai, 3600_000);
    openai.setQuotaCredits({ has_credits: true, unlimited: false, balance: '5.39' });
    try {
      const result = await read({ credentialId: c.id });
      expect(result.state?.credits).toEqual({ hasCredits: true, unlimited: false, balance: '5.39' });
    } finally {
      openai.setQuotaCredits(undefined);
    }
  });

  it("reads Gemini Code Assist retrieveUserQuota: POST naming the credential's project, buckets as daily family windows", async () => {
    const c = await credential(gemini, 3600_000);
    const resetsAt = new Date(Date.now() + 5 * 3600_000);
    gemini.setQuotaWindow('gemini-2.5-pro', { utilization: 100, resetsAt });
    gemini.setQuotaWindow('gemini-2.5-flash', { utilization: 25, resetsAt });
    const before = gemini.quotaRequests().length;
    const result = await read({ credentialId: c.id });
    expect(result.outcome).toBe('ok');
    expect(result.room).toBe(false); // the pro bucket is spent
    expect(result.state?.windows.one_day_pro).toMatchObject({ utilization: 1, reset: resetsAt.toISOString(), source: 'endpoint' });
    expect(result.state?.windows.one_day_flash).toMatchObject({ utilization: 0.25, windowMinutes: 1440 });
    const requests = gemini.quotaRequests().slice(before);
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({
      method: 'POST',
      path: '/v1internal:retrieveUserQuota',
      json: { project: gemini.codeAssistProject },
    });
    expect(requests[0]!.headers.authorization).toBe(`Bearer ${c.accessToken}`);
    expect(requests[0]!.headers['x-goog-api-key']).toBeUndefined();
    expect(gemini.tokenRequests()).toHaveLength(0);
  });

  it('100 reads, with the token seconds from expiry, expired and refused (401): no token-endpoint call; stale after the 401', async () => {
    const tokenCallsBefore = fake.tokenRequests().length;
    const fresh = await credential(fake, 3600_000);
    const nearExpiry = await credential(fake, 30_000); // seconds from expiry: still presented (the margin is 5 s)
    const expired = await credential(fake, 3600_000);
    await store.updateTokens(expired.id, expired.version, {
      secret: { accessToken: expired.accessToken, refreshToken: 'rt-unused' },
      expiresAt: new Date(Date.now() - 1000),
      reason: 'replaced',
    });
    const outcomes: string[] = [];
    for (let i = 0; i < 97; i++) outcomes.push((await read({ credentialId: i % 2 === 0 ? fresh.id : nearExpiry.id })).outcome);
    outcomes.push((await read({ credentialId: expired.id })).outcome);
    fake.failNextQuota([
      { status: 401, body: { type: 'error', error: { type: 'authentication_error', message: 'OAuth token has expired' } } },
    ]);
    const refused = await read({ credentialId: fresh.id });
    outcomes.push(refused.outcome);
    fake.revokeAccessToken(nearExpiry.accessToken);
    outcomes.push((await read({ credentialId: nearExpiry.id })).outcome);

    expect(outcomes).toHaveLength(100);
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(97);
    expect(outcomes.slice(97)).toEqual(['stale', 'stale', 'stale']);
    expect(fake.tokenRequests().length).toBe(tokenCallsBefore);
    // The refused read keeps the windows it had, marked stale, and the credential is untouched.
    expect(refused.state?.stale).toBe(true);
    expect(refused.state?.windows.five_hour).toMatchObject({ source: 'endpoint' });
    expect((await usage.quota(fresh.id))?.state).toMatchObject({ stale: true });
    expect((await store.get(fresh.id)).version).toBe(fresh.version);
    // The expired token was never presented.
    expect(fake.quotaRequests().some((r) => r.headers.authorization === `Bearer ${expired.accessToken}`)).toBe(false);
  });

  it('a 429 is an outcome with its retry-after, not a failure; API keys and a Gemini sign-in without its project cannot be read', async () => {
    const c = await credential(fake, 3600_000);
    fake.failNextQuota([{ status: 429, headers: { 'retry-after': '120' }, body: { type: 'error', error: { type: 'rate_limit_error' } } }]);
    expect(await read({ credentialId: c.id })).toEqual({ outcome: 'rate_limited', retryAfterMs: 120_000 });
    const key = await store.create({ provider: 'anthropic', authType: 'api_key', name: `key-${seq}`, secret: { apiKey: fake.apiKey } });
    expect(await read({ credentialId: key.id })).toEqual({ outcome: 'unsupported' });
    const noProject = await store.create({
      provider: 'gemini',
      authType: 'oauth',
      name: `gemini-${seq}`,
      secret: { accessToken: 'ya29.quota', refreshToken: 'rt' },
      expiresAt: new Date(Date.now() + 3600_000),
    });
    const quotaCallsBefore = gemini.quotaRequests().length;
    expect(await read({ credentialId: noProject.id })).toEqual({ outcome: 'unsupported' });
    expect(gemini.quotaRequests()).toHaveLength(quotaCallsBefore);
    expect(await read({ credentialId: '00000000-0000-4000-8000-000000000000' })).toEqual({ outcome: 'not_found' });
    // The activity counts outcomes without waiting for the write (a read's answer never waits on a counter): read them once written.
    const counts = await until(
      async () => {
        const c = Object.fromEntries((await usage.quotaReadCounts()).map((r) => [r.outcome, r.count]));
        return Number(c.rate_limited) >= 1 && Number(c.unsupported) >= 2 ? c : undefined;
      },
      { what: 'the read counts written' },
    );
    expect(counts).toMatchObject({ rate_limited: 1, unsupported: 2 });
  });
});
