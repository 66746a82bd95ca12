// Quota reads through the real API and the real dev server (issue 30): an early reset seen by the
// idle reads of a shortened interval, POST /v1/credentials/:id/quota answered through the
// workflow with one read in flight, a refused token marked stale without a refresh, 409 for API
// keys, and the windows on GET /v1/credentials/:id and /metrics with their source.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RateLimitState } from '../../src/usage/rateLimits.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { createDevServerEnv } from '../support/temporal.js';
import { until } from '../support/wait.js';

let env: TestWorkflowEnvironment;
let idle: ApiHarness; // reads every ~2 s (a shortened MAESTRO_QUOTA_INTERVAL)
let asked: ApiHarness; // reads only when benched or asked
const reads: Array<{ credentialId: string; state: RateLimitState }> = [];

beforeAll(async () => {
  env = await createDevServerEnv();
  [idle, asked] = await Promise.all([
    startApiHarness(env, { quotaIntervalMs: 2_000, onQuotaRead: async (credentialId, state) => void reads.push({ credentialId, state }) }),
    startApiHarness(env, { quotaIntervalMs: 0 }),
  ]);
});
afterAll(async () => {
  await Promise.all([idle?.close(), asked?.close()]);
  await env?.teardown();
});

let seq = 0;
async function oauthCredential(h: ApiHarness): Promise<{ id: string; accessToken: string }> {
  seq++;
  const accessToken = `sk-ant-oat01-quota-api-${seq}-0000000000`;
  const refreshToken = `sk-ant-ort01-quota-api-${seq}-0000000000`;
  h.fake.seedTokens(refreshToken, accessToken);
  const created = await h.call('POST', '/v1/credentials', {
    body: { provider: 'anthropic', authType: 'oauth', name: `quota-${seq}`, accessToken, refreshToken, expiresIn: 3600 },
  });
  expect(created.status, created.text).toBe(201);
  return { id: created.json.id, accessToken };
}

describe('quota reads through the API', () => {
  it('early reset on the dev server: the idle reads of a shortened interval see the window cleared, with no restart', async () => {
    idle.fake.setQuotaWindow('five_hour', { utilization: 100, resetsAt: new Date(Date.now() + 4 * 3600_000) });
    const { id } = await oauthCredential(idle);
    await until(() => reads.some((r) => r.credentialId === id && r.state.windows.five_hour?.utilization === 1), {
      what: 'a read showing the window used up',
    });
    await idle.core.workflows.noteBenched(id, new Date(Date.now() + 4 * 3600_000).toISOString());

    idle.fake.setQuotaWindow('five_hour', { utilization: 0, resetsAt: new Date(Date.now() + 5 * 3600_000) });
    await until(() => reads.some((r) => r.credentialId === id && r.state.windows.five_hour?.utilization === 0), {
      what: 'a read showing room',
    });
    const status = await until(
      async () => {
        const s = await idle.core.workflows.status(id);
        return s?.quota?.benchedUntil === null && s.quota.lastOutcome === 'ok' ? s : undefined;
      },
      { what: 'the bench released' },
    );
    expect(status.phase).toBe('sleeping');

    const got = await idle.call('GET', `/v1/credentials/${id}`);
    expect(got.status).toBe(200);
    expect(got.json.rateLimit.windows.five_hour).toMatchObject({ utilization: 0, source: 'endpoint' });
    expect(Date.parse(got.json.rateLimit.windows.five_hour.observedAt)).toBeGreaterThan(0);

    const metrics = await idle.call('GET', '/metrics');
    expect(metrics.text).toContain(`maestro_credential_quota_utilization{credential="${id}",window="five_hour"} 0`);
    expect(metrics.text).toMatch(/maestro_quota_reads\{outcome="ok"\} \d+/);
    expect(idle.fake.tokenRequests()).toHaveLength(0);
  });

  it('POST /v1/credentials/:id/quota reads through the workflow; concurrent asks share one read in flight', async () => {
    const { id } = await oauthCredential(asked);
    asked.fake.setQuotaWindow('five_hour', { utilization: 26, resetsAt: new Date(Date.now() + 3600_000) });
    asked.fake.setQuotaDelayMs(3_000); // every ask arrives while the read is in flight
    const before = asked.fake.quotaRequests().length;
    const answers = await Promise.all([1, 2, 3].map(() => asked.call('POST', `/v1/credentials/${id}/quota`)));
    asked.fake.setQuotaDelayMs(0);
    for (const a of answers) {
      expect(a.status, a.text).toBe(200);
      expect(a.json.windows.five_hour).toMatchObject({ utilization: 0.26, source: 'endpoint' });
    }
    expect(asked.fake.quotaRequests().length - before).toBe(1);
  });

  it('a refused token: 200 with the state marked stale, and no refresh', async () => {
    const { id, accessToken } = await oauthCredential(asked);
    expect((await asked.call('POST', `/v1/credentials/${id}/quota`)).status).toBe(200);
    const tokenCalls = asked.fake.tokenRequests().length;
    asked.fake.revokeAccessToken(accessToken);
    const refused = await asked.call('POST', `/v1/credentials/${id}/quota`);
    expect(refused.status, refused.text).toBe(200);
    expect(refused.json.stale).toBe(true);
    expect(refused.json.windows.five_hour).toMatchObject({ source: 'endpoint' }); // the last windows, with their age
    expect(asked.fake.tokenRequests().length).toBe(tokenCalls);
  });

  it('409 for an API-key credential, 404 for none', async () => {
    const key = await asked.call('POST', '/v1/credentials', {
      body: { provider: 'anthropic', authType: 'api_key', name: 'quota-key', apiKey: asked.fake.apiKey },
    });
    expect(key.status).toBe(201);
    const refused = await asked.call('POST', `/v1/credentials/${key.json.id}/quota`);
    expect(refused.status).toBe(409);
    expect(refused.json.error.message).toMatch(/no quota endpoint/);
    expect((await asked.call('POST', '/v1/credentials/00000000-0000-4000-8000-000000000000/quota')).status).toBe(404);
  });
});
