// credentialRefreshWorkflow on the real time-skipping test server, with a real database and a
// fake token endpoint that rotates refresh tokens and rejects a reused one (as Anthropic does).
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type RefreshResult } from '../../src/activities/index.js';
import { ReauthRequiredError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { createMaestroWorker } from '../../src/temporal/worker.js';
import { credentialWorkflowId, statusQuery, stopSignal } from '../../src/workflows/credentialRefresh.js';
import {
  createTimeSkippingEnv,
  startHarness,
  testDataConverter,
  testDurableCalls,
  workflowBundle,
  type Harness,
} from '../support/temporal.js';
import { seedOAuthCredential } from '../support/credentials.js';

let env: TestWorkflowEnvironment;
let h: Harness | undefined;
beforeAll(async () => {
  env = await createTimeSkippingEnv();
});
afterEach(async () => {
  await h?.close();
  h = undefined;
});
afterAll(async () => {
  await env?.teardown();
});

let seq = 0;
/** An OAuth credential whose refresh token the fake accepts, with its workflow started. */
async function oauthCredential(harness: Harness, lifetimeMs: number, start = true) {
  seq++;
  const { credential, refreshToken } = await seedOAuthCredential(harness, { tag: `seed-${seq}`, name: `c${seq}`, lifetimeMs, start });
  return { credential, handle: env.client.workflow.getHandle(credentialWorkflowId(credential.id)), refreshToken };
}

describe('credentialRefreshWorkflow', () => {
  it('refreshes a 20-minute token 5 minutes before expiry', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 20 * 60 } });
    await oauthCredential(h, 20 * 60_000);
    await env.sleep('14 minutes');
    expect(h.fake.tokenRequests()).toHaveLength(0);
    await env.sleep('2 minutes');
    expect(h.fake.tokenRequests()).toHaveLength(1);
  });

  it('refreshes a 2-minute token halfway through its life, and keeps doing so without a loop', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 120 } });
    await oauthCredential(h, 120_000);
    await env.sleep('50 seconds');
    expect(h.fake.tokenRequests()).toHaveLength(0);
    await env.sleep('20 seconds'); // t = 70 s: the first refresh ran at 60 s
    expect(h.fake.tokenRequests()).toHaveLength(1);
    await env.sleep('10 minutes'); // then one every 60 s
    const count = h.fake.tokenRequests().length;
    expect(count).toBeGreaterThanOrEqual(10);
    expect(count).toBeLessThanOrEqual(12);
    expect(h.fake.reusedRefreshTokens).toEqual([]);
  });

  it('wakes at least every 24 hours for a long-lived token and refreshes on time', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 10 * 24 * 3600 }, maxHistoryEvents: 10_000 }); // one run: its history holds every timer
    const { handle } = await oauthCredential(h, 10 * 24 * 3600_000);
    await env.sleep('3 days');
    expect(h.fake.tokenRequests()).toHaveLength(0);
    const status = await handle.query(statusQuery);
    expect(status.phase).toBe('sleeping');
    await env.sleep('121 hours'); // due at 8 days
    expect(h.fake.tokenRequests()).toHaveLength(1);
    // It slept in steps of at most 24 hours: one timer per day, then the refresh.
    const history = await handle.fetchHistory();
    const timers = history.events?.filter((e) => e.timerStartedEventAttributes) ?? [];
    expect(timers.length).toBeGreaterThanOrEqual(8);
    for (const t of timers.slice(0, 7)) {
      expect(Number(t.timerStartedEventAttributes!.startToFireTimeout!.seconds)).toBeLessThanOrEqual(24 * 3600);
    }
  });

  it('retries a failing token endpoint with growing delays, then succeeds', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 } });
    h.fake.failNextToken([{ status: 503 }, { status: 500 }, { status: 502 }]);
    const { credential, handle } = await oauthCredential(h, 60_000);
    // Due at 30 s; retries follow after 2 s, 4 s and 8 s.
    await env.sleep('31 seconds');
    expect(h.fake.tokenRequests()).toHaveLength(1);
    await env.sleep('2.5 seconds'); // t ≈ 33.5: second attempt at 32
    expect(h.fake.tokenRequests()).toHaveLength(2);
    await env.sleep('2 seconds'); // t ≈ 35.5: third is due at 36
    expect(h.fake.tokenRequests()).toHaveLength(2);
    await env.sleep('1 second'); // t ≈ 36.5
    expect(h.fake.tokenRequests()).toHaveLength(3);
    await env.sleep('7 seconds'); // t ≈ 43.5: fourth is due at 44
    expect(h.fake.tokenRequests()).toHaveLength(3);
    await env.sleep('1 second');
    expect(h.fake.tokenRequests()).toHaveLength(4);
    const status = await handle.query(statusQuery);
    expect(status.lastResult).toMatchObject({ outcome: 'refreshed', attempts: 4 });
    expect(await h.core.store.get(credential.id)).toMatchObject({ version: 2, status: 'active', lastError: null });
    const events = await h.core.store.listEvents(credential.id);
    expect(events.filter((e) => e.type === 'refresh_failed')).toHaveLength(3);
  });

  it('honours Retry-After from a 429', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 } });
    h.fake.failNextToken([{ status: 429, headers: { 'retry-after': '120' }, body: { error: { type: 'rate_limit_error' } } }]);
    await oauthCredential(h, 60_000);
    await env.sleep('31 seconds');
    expect(h.fake.tokenRequests()).toHaveLength(1);
    await env.sleep('100 seconds'); // the backoff alone would have retried after 2 s
    expect(h.fake.tokenRequests()).toHaveLength(1);
    await env.sleep('30 seconds');
    expect(h.fake.tokenRequests()).toHaveLength(2);
  });

  it('parks on invalid_grant, notifies, and resumes when new tokens arrive', async () => {
    const received: { body: string; signature: string; timestamp: string }[] = [];
    const hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({
          body,
          signature: String(req.headers['x-maestro-signature']),
          timestamp: String(req.headers['x-maestro-timestamp']),
        });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const secret = 'whsec_test_0123456789';
    try {
      h = await startHarness(env, {
        fake: { accessTokenTtlSec: 3600 },
        webhook: { url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`, secret },
      });
      const { credential, handle } = await oauthCredential(h, 3600_000);
      h.fake.revokeAllRefreshTokens();
      await expect(h.core.workflows.refreshNow(credential.id)).rejects.toBeInstanceOf(ReauthRequiredError);
      await env.sleep('1 second');
      expect((await handle.query(statusQuery)).phase).toBe('parked');
      const parked = await h.core.store.get(credential.id);
      expect(parked.status).toBe('reauth_required');
      expect(parked.lastError).toMatch(/invalid_grant|revoked|login/i);
      expect((await h.core.store.listEvents(credential.id)).map((e) => e.type)).toContain('reauth_required');
      // refreshNow on a parked credential is refused with a clear error, not a hang
      await expect(h.core.workflows.refreshNow(credential.id)).rejects.toThrow(/new login/);
      // Later sleeps do not hammer the dead refresh token.
      await env.sleep('2 hours');
      expect(h.fake.tokenRequests()).toHaveLength(1);

      expect(received).toHaveLength(1);
      const first = received[0]!;
      expect(JSON.parse(first.body)).toMatchObject({
        event: 'credential.reauth_required',
        credentialId: credential.id,
        provider: 'anthropic',
      });
      expect(first.signature).toBe(`sha256=${createHmac('sha256', secret).update(`${first.timestamp}.${first.body}`).digest('hex')}`);
      expect(first.body).not.toMatch(/sk-ant/);

      // A new login: new tokens replace the old ones and the workflow is told.
      h.fake.seedTokens('sk-ant-ort01-relogin-000000000', 'sk-ant-oat01-relogin-000000000');
      const replaced = await h.core.store.updateTokens(credential.id, parked.version, {
        secret: { accessToken: 'sk-ant-oat01-relogin-000000000', refreshToken: 'sk-ant-ort01-relogin-000000000' },
        expiresAt: new Date(Date.now() + 3600_000),
        reason: 'replaced',
      });
      await h.core.workflows.credentialUpdated(replaced);
      await env.sleep('1 second');
      expect((await handle.query(statusQuery)).phase).toBe('sleeping');
      const refreshed = await h.core.workflows.refreshNow(credential.id);
      expect(refreshed.status).toBe('active');
      expect(h.fake.tokenRequests()).toHaveLength(2);
      await env.sleep('1 second');
      expect(received.map((r) => JSON.parse(r.body).event)).toEqual(['credential.reauth_required', 'credential.recovered']);
    } finally {
      hook.close();
    }
  });

  it('serves ten concurrent refreshNow calls with one token-endpoint call', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 } });
    h.fake.setTokenDelayMs(300);
    const { credential } = await oauthCredential(h, 3600_000);
    const results = await Promise.all(Array.from({ length: 10 }, () => h!.core.workflows.refreshNow(credential.id)));
    expect(h.fake.tokenRequests()).toHaveLength(1);
    expect(new Set(results.map((r) => r.version))).toEqual(new Set([2]));
    expect((await h.core.store.get(credential.id)).refreshCount).toBe(1);
  });

  it('ends on stop', async () => {
    h = await startHarness(env);
    const { handle } = await oauthCredential(h, 3600_000);
    await handle.signal(stopSignal);
    const final = await handle.result();
    expect(final.phase).toBe('stopped');
    expect((await handle.describe()).status.name).toBe('COMPLETED');
    expect(h.fake.tokenRequests()).toHaveLength(0);
  });

  it('does not spend a refresh token twice when refreshCredential is retried after its database write', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 } });
    const { credential } = await oauthCredential(h, 3600_000, false);
    const activities = createActivities({
      store: h.core.store,
      answers: h.core.answers,
      providers: h.core.providers,
      requestRefresh: async () => {},
      webhook: {},
      durableCalls: testDurableCalls(),
      log: createLogger('silent'),
    });
    const input = { credentialId: credential.id, expectedVersion: credential.version };
    const first = (await new MockActivityEnvironment({ attempt: 1 }).run(activities.refreshCredential, input)) as RefreshResult;
    // The worker "crashed" before reporting success: Temporal retries with the same input.
    const retried = (await new MockActivityEnvironment({ attempt: 2 }).run(activities.refreshCredential, input)) as RefreshResult;
    expect(first.outcome).toBe('refreshed');
    expect(retried).toMatchObject({ outcome: 'already_current', attempts: 2 });
    expect(retried.credential.version).toBe(first.credential.version);
    expect(h.fake.tokenRequests()).toHaveLength(1);
    expect(h.fake.reusedRefreshTokens).toEqual([]);
    const { secret } = await h.core.store.getWithSecret(credential.id);
    expect(secret.refreshToken).toBe(h.fake.issued.refreshTokens.at(-1));
  });
  it('resumes on time after its worker is restarted in the middle of a sleep', async () => {
    // Its own server: the test server's clock can stay locked by update requests of earlier tests.
    // No sticky cache: the test server would otherwise hold a task for the dead worker's queue.
    const ownEnv = await createTimeSkippingEnv();
    const env = ownEnv;
    try {
      h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 }, maxCachedWorkflows: 0 });
      const { credential } = await oauthCredential(h, 3600_000); // due at 48 min
      await env.sleep('10 minutes');
      await h.stopWorker();
      await env.sleep('20 minutes'); // nothing runs the workflow now
      const worker = await createMaestroWorker({
        connection: env.nativeConnection,
        namespace: 'default',
        taskQueue: h.taskQueue,
        workflowBundle: await workflowBundle(),
        maxCachedWorkflows: 0,
        dataConverter: testDataConverter(),
        deps: {
          store: h.core.store,
          answers: h.core.answers,
          providers: h.core.providers,
          requestRefresh: async () => {},
          webhook: {},
          durableCalls: testDurableCalls(),
          log: createLogger('silent'),
        },
      });
      await worker.runUntil(async () => {
        await env.sleep('17 minutes'); // t = 47 min
        expect(h!.fake.tokenRequests()).toHaveLength(0);
        await env.sleep('2 minutes'); // t = 49 min
        expect(h!.fake.tokenRequests()).toHaveLength(1);
        expect((await h!.core.store.get(credential.id)).version).toBe(2);
      });
      await h.close();
      h = undefined;
    } finally {
      await ownEnv.teardown();
    }
  });
});
