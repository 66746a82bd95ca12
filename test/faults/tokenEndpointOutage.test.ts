// The provider's token endpoint is down for an hour (time-skipping test server, real worker,
// real database): half an hour of 503s, then half an hour of connections cut without an answer.
// The refresh retries with exponential backoff capped at 5 minutes (no storm: about 20 attempts
// in the hour, never two closer than the backoff allows), the credential stays active (an outage
// is not a dead login), and the first attempt after the endpoint returns succeeds.
import { randomBytes } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCore, activityDeps, type Core } from '../../src/app/services.js';
import { createLogger } from '../../src/logger.js';
import { createMaestroWorker, type MaestroWorker } from '../../src/temporal/worker.js';
import { statusQuery } from '../../src/workflows/credentialRefresh.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProvider.js';
import { startTokenGate, type TokenGate } from '../support/processes.js';
import { createTimeSkippingEnv, testConfig, testDataConverter, workflowBundle } from '../support/temporal.js';
import { seedOAuthCredential } from '../support/credentials.js';

let env: TestWorkflowEnvironment;
let db: TestDatabase;
let fake: FakeProvider;
let gate: TokenGate;
let core: Core;
let worker: MaestroWorker;
let running: Promise<void>;

beforeAll(async () => {
  [env, db, fake] = await Promise.all([
    createTimeSkippingEnv(),
    createTestDatabase(),
    startFakeProvider({ provider: 'anthropic', accessTokenTtlSec: 1800 }),
  ]);
  gate = await startTokenGate(fake.tokenUrl);
  const base = testConfig();
  const taskQueue = `outage-${randomBytes(4).toString('hex')}`;
  const config = {
    ...base,
    temporal: { ...base.temporal, taskQueue },
    providers: { ...base.providers, anthropic: { ...fake.overrides, oauthTokenUrl: gate.url } },
  };
  core = createCore(config, db.db, env.client);
  worker = await createMaestroWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    workflowBundle: await workflowBundle(),
    deps: activityDeps(config, createLogger('silent'), core),
    dataConverter: testDataConverter(),
  });
  running = worker.run();
});
afterAll(async () => {
  for (const c of (await core?.store.list().catch(() => [])) ?? []) {
    await env.client.workflow
      .getHandle(`credential:${c.id}`)
      .terminate('test finished')
      .catch(() => {});
  }
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running;
  await gate?.close();
  await fake?.close();
  await db?.close();
  await env?.teardown();
});

describe('token endpoint down for an hour', () => {
  it('backs off up to 5 minutes, makes about 20 attempts, keeps the credential active, and recovers on the first attempt after', async () => {
    const { credential, refreshToken } = await seedOAuthCredential(
      { core, fake },
      { tag: `outage-${randomBytes(12).toString('hex')}`, name: 'outage', lifetimeMs: 30 * 60_000 }, // refresh due at 24 min
    );
    const handle = env.client.workflow.getHandle(`credential:${credential.id}`);

    // When (on the server's clock) each attempt reached the endpoint.
    const attemptsAt: Promise<number>[] = [];
    gate.onRequest = () => void attemptsAt.push(env.currentTimeMs());
    gate.mode = 'down';
    const t0 = await env.currentTimeMs();
    await env.sleep('23 minutes');
    expect(attemptsAt).toHaveLength(0);
    await env.sleep('31 minutes'); // 503s from 24 min to 54 min
    gate.mode = 'reset';
    await env.sleep('30 minutes'); // cut connections until 84 min: the hour is over
    const during = (await Promise.all(attemptsAt)).map((t) => (t - t0) / 60_000);

    const mid = await core.store.get(credential.id);
    expect(mid.status).toBe('active'); // an outage is not a dead login
    expect(mid.version).toBe(1);
    expect(mid.lastError).toMatch(/503|unreachable|socket|closed|other side|terminated/i);
    expect((await handle.query(statusQuery)).phase).toBe('refreshing');

    // No storm: the first attempt on time, then exponential backoff capped at 5 minutes.
    const gaps = during.slice(1).map((t, i) => t - during[i]!);
    console.log(`[tokenEndpointOutage] ${during.length} attempts in the hour; gaps (min): ${gaps.map((g) => g.toFixed(2)).join(' ')}`);
    expect(gate.calls.filter((c) => c.status === 503).length).toBeGreaterThan(3);
    expect(gate.calls.filter((c) => c.fate === 'refused' && c.status === undefined).length).toBeGreaterThan(3);
    expect(during[0]).toBeGreaterThanOrEqual(23.9);
    expect(during[0]).toBeLessThanOrEqual(24.2);
    expect(during.length).toBeGreaterThanOrEqual(15);
    expect(during.length).toBeLessThanOrEqual(25);
    for (let i = 0; i < gaps.length; i++) {
      expect(gaps[i]!, `gap ${i}`).toBeLessThanOrEqual(5 + 0.5); // the cap (plus the attempt's own time)
    }
    // Exponential growth: retries wait 2 s, 4 s, 8 s, … A reading of the server clock can land a
    // little late (it is an RPC while time skips), which shifts one gap into the next, so check
    // spans from the first attempt: 30 s to the 5th attempt, 254 s (≈ 4.2 min) to the 8th.
    expect(during[4]! - during[0]!).toBeGreaterThan(0.4);
    expect(during[4]! - during[0]!).toBeLessThan(1.0);
    expect(during[7]! - during[0]!).toBeGreaterThan(3.9);
    expect(during[7]! - during[0]!).toBeLessThan(5.0);
    expect(gaps.slice(-5).every((g) => g >= 4.5)).toBe(true); // settled at the cap

    // The endpoint is back: the next attempt (within the 5-minute cap) succeeds, and that is all.
    gate.mode = 'open';
    await env.sleep('6 minutes');
    const calls = gate.calls.length;
    const after = await core.store.getWithSecret(credential.id);
    expect(after.metadata).toMatchObject({ status: 'active', version: 2, lastError: null, refreshCount: 1 });
    expect(after.secret.refreshToken).toBe(fake.issued.refreshTokens.at(-1));
    expect(gate.calls.filter((c) => c.status === 200)).toHaveLength(1);
    expect(fake.reusedRefreshTokens).toEqual([]);
    expect((await handle.query(statusQuery)).lastResult).toMatchObject({ outcome: 'refreshed' });
    // The new 30-minute token is next due in 24 minutes, not sooner.
    await env.sleep('20 minutes');
    expect(gate.calls.length).toBe(calls);
    const events = await core.store.listEvents(credential.id, { limit: 1000 });
    expect(events.filter((e) => e.type === 'refresh_failed').length).toBe(during.length);
    expect(JSON.stringify(events)).not.toContain(refreshToken);
  });
});
