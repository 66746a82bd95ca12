// Two API processes and one worker (all child processes of the real CLI) share one credential.
//   - One refresh, and both APIs' token caches pick up the new token (Postgres LISTEN/NOTIFY).
//   - The provider revokes the access token early: calls through both APIs at once get a 401
//     upstream, Maestro refreshes once (one token-endpoint call for everyone), every call succeeds.
//   - The refresh token is dead too: the caller gets a clear 409 reauth_required through either
//     API, and the credential shows reauth_required.
// (test/api/api.test.ts covers the single-process version of the revoked-token case.)
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { killAllChildren } from '../support/children.js';
import { startDevServer, type DevServer } from '../support/processes.js';
import { until } from '../support/wait.js';
import { knownSecrets, proxiedMessage, startRig, type ApiChild, type Rig } from './rig.js';

let dev: DevServer;
let testDb: TestDatabase;
let rig: Rig;
let a: ApiChild;
let b: ApiChild;

beforeAll(async () => {
  [dev, testDb] = await Promise.all([startDevServer(inject('temporalCliPath')), createTestDatabase({ migrate: false })]);
  rig = await startRig({ dev, dbUrl: testDb.url, fake: { accessTokenTtlSec: 3600 } });
  await rig.startWorker();
  [a, b] = await Promise.all([rig.startApi(), rig.startApi()]);
});
afterAll(async () => {
  await rig?.close();
  await dev?.close();
  await killAllChildren();
  await testDb?.close();
});

/** The bearer token the fake saw on the latest API request. */
const lastBearer = () => String(rig.fake.apiRequests().at(-1)!.headers.authorization).replace(/^Bearer /, '');
const tokenCalls = () => rig.gate.calls.length;

describe('one credential, two API processes, one worker', () => {
  it('one refresh reaches both caches; an early-revoked token is refreshed once for both; a dead login is a clear 409 everywhere', async () => {
    const tag = randomBytes(10).toString('hex');
    const seeded = { accessToken: `sk-ant-oat01-multi-${tag}`, refreshToken: `sk-ant-ort01-multi-${tag}` };
    rig.fake.seedTokens(seeded.refreshToken, seeded.accessToken);
    const created = await a.call('POST', '/v1/credentials', {
      body: { provider: 'anthropic', authType: 'oauth', name: 'shared', ...seeded, expiresIn: 3600 },
    });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    await until(async () => (await b.call('GET', `/v1/credentials/${id}`)).json?.workflow?.phase === 'sleeping', {
      what: 'the refresh workflow asleep',
    });

    // Both caches hold the imported token.
    for (const api of [a, b]) {
      expect((await proxiedMessage(api, 'shared')).status).toBe(200);
      expect(lastBearer()).toBe(seeded.accessToken);
    }

    // One refresh (through API a): both APIs switch to the new token, nobody refreshes again.
    const refreshed = await a.call('POST', `/v1/credentials/${id}/refresh`);
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.version).toBe(2);
    expect(tokenCalls()).toBe(1);
    const second = rig.fake.issued.accessTokens.at(-1)!;
    for (const api of [b, a]) {
      await until(async () => (await proxiedMessage(api, 'shared')).status === 200 && lastBearer() === second, {
        timeoutMs: 5_000,
        what: `${api.url} to use the new token`,
      });
    }
    expect(tokenCalls()).toBe(1);

    // Revoked early by the provider: 20 calls through each API at once.
    rig.fake.revokeAccessToken(second);
    const apiCallsBefore = rig.fake.apiRequests().length;
    const results = await Promise.all([
      ...Array.from({ length: 20 }, () => proxiedMessage(a, 'shared')),
      ...Array.from({ length: 20 }, () => proxiedMessage(b, 'shared')),
    ]);
    expect(results.map((r) => r.status)).toEqual(Array(40).fill(200));
    expect(tokenCalls()).toBe(2); // one refresh for both processes
    const third = rig.fake.issued.accessTokens.at(-1)!;
    const upstream = rig.fake.apiRequests().slice(apiCallsBefore);
    const rejected = upstream.filter((r) => r.headers.authorization === `Bearer ${second}`).length;
    expect(upstream.length - rejected).toBe(40); // each call retried once at most, with the new token
    expect(upstream.filter((r) => r.headers.authorization === `Bearer ${third}`)).toHaveLength(40);
    expect((await a.call('GET', `/v1/credentials/${id}`)).json).toMatchObject({ version: 3, refreshCount: 2, status: 'active' });

    // The refresh token is dead too: 409 reauth_required, through either API.
    rig.fake.revokeAccessToken(third);
    rig.fake.revokeAllRefreshTokens();
    const dead = await proxiedMessage(a, 'shared');
    expect(dead.status).toBe(409);
    expect(dead.json.error.type).toBe('reauth_required');
    expect(dead.json.error.message).toMatch(/new login/);
    await until(async () => (await proxiedMessage(b, 'shared')).status === 409, {
      timeoutMs: 5_000,
      what: 'API b to refuse the dead credential',
    });
    const viaB = await proxiedMessage(b, 'shared');
    expect(viaB.json.error.type).toBe('reauth_required');
    const shown = await b.call('GET', `/v1/credentials/${id}`);
    expect(shown.json).toMatchObject({ status: 'reauth_required', workflow: { phase: 'parked' } });
    expect(shown.json.lastError).toMatch(/invalid_grant|revoked|login/i);
    const apiCallsAfterDead = rig.fake.apiRequests().length;
    expect((await proxiedMessage(b, 'shared')).status).toBe(409);
    expect(rig.fake.apiRequests().length).toBe(apiCallsAfterDead); // refused without calling the provider
    expect(tokenCalls()).toBe(3);
    expect(rig.fake.reusedRefreshTokens).toEqual([]);

    const everything = [...rig.logLines(), created.text, refreshed.text, dead.text, shown.text].join('\n');
    for (const s of knownSecrets(rig, Object.values(seeded))) expect(everything).not.toContain(s);
  });
});
