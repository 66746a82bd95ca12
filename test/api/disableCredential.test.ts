// POST /v1/credentials/:id/disable and /enable: a disabled credential takes no proxied call (409
// that says so) until enabled; both are idempotent, admin-only, and written to its history.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { createDevServerEnv } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;

beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startApiHarness(env);
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

it('refuses calls through a disabled credential until it is enabled again', async () => {
  const created = await h.call('POST', '/v1/credentials', {
    body: { provider: 'anthropic', authType: 'api_key', name: 'switch', apiKey: h.fake.apiKey },
  });
  expect(created.status, created.text).toBe(201);
  const id = created.json.id as string;
  const call = () =>
    h.call('POST', '/proxy/anthropic/v1/messages', {
      headers: { 'x-maestro-credential': 'switch', 'anthropic-version': '2023-06-01' },
      body: { model: 'claude-test', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] },
    });
  expect((await call()).status).toBe(200);

  for (let i = 0; i < 2; i++) {
    const disabled = await h.call('POST', `/v1/credentials/${id}/disable`);
    expect(disabled.status, disabled.text).toBe(200);
    expect(disabled.json.status).toBe('disabled');
  }
  const refused = await call();
  expect(refused.status).toBe(409);
  expect(refused.json.error.message).toContain('disabled');
  expect(h.fake.requests.filter((r) => r.kind === 'api')).toHaveLength(1); // nothing more reached the provider

  const client = await h.call('POST', '/v1/keys', { body: { name: 'c', role: 'client', providers: ['anthropic'] } });
  expect((await h.call('POST', `/v1/credentials/${id}/enable`, { headers: { authorization: `Bearer ${client.json.key}` } })).status).toBe(
    403,
  );

  const enabled = await h.call('POST', `/v1/credentials/${id}/enable`);
  expect(enabled.json.status).toBe('active');
  expect((await call()).status).toBe(200);
  const events = (await h.call('GET', `/v1/credentials/${id}/events`)).json.events as Array<{ type: string; details: { to?: string } }>;
  expect(events.filter((e) => e.type === 'status_changed').map((e) => e.details.to)).toEqual(['active', 'disabled']);
  expect((await h.call('POST', '/v1/credentials/00000000-0000-4000-8000-000000000000/disable')).status).toBe(404);
});
