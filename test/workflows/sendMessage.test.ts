// sendMessageWorkflow: the durable provider call, with the shared client builder, retries on
// 429/5xx/529 and one refresh on a 401.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConflictError } from '../../src/errors.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTimeSkippingEnv, startHarness, type Harness } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let h: Harness;
beforeAll(async () => {
  env = await createTimeSkippingEnv();
  h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 } });
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

const request = {
  path: '/v1/messages',
  body: { model: 'claude-maestro-test', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
  headers: { 'anthropic-version': '2023-06-01' },
};

describe('sendMessageWorkflow', () => {
  it('calls the provider with an API key in its own header', async () => {
    const key = await h.core.store.create({ provider: 'anthropic', authType: 'api_key', name: 'k', secret: { apiKey: h.fake.apiKey } });
    const answer = await h.core.workflows.sendMessage(key.id, request);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ type: 'message' });
    const seen = h.fake.apiRequests().at(-1)!;
    expect(seen.headers['x-api-key']).toBe(h.fake.apiKey);
    expect(seen.headers.authorization).toBeUndefined();
  });

  it('retries 529 and 503 answers, then returns the answer', async () => {
    const key = await h.core.store.find('anthropic', 'k', 'api_key');
    const before = h.fake.apiRequests().length;
    h.fake.failNextApi([{ status: 529, body: { type: 'error', error: { type: 'overloaded_error' } } }, { status: 503 }]);
    const answer = await h.core.workflows.sendMessage(key!.id, request);
    expect(answer.status).toBe(200);
    expect(h.fake.apiRequests().length - before).toBe(3);
  });

  it('waits for a long generation (31 s, past the old 30 s header timer) instead of sending it again', async () => {
    const key = await h.core.store.find('anthropic', 'k', 'api_key');
    const before = h.fake.apiRequests().length;
    h.fake.setApiDelayMs(31_000);
    try {
      const answer = await h.core.workflows.sendMessage(key!.id, request);
      expect(answer.status).toBe(200);
    } finally {
      h.fake.setApiDelayMs(0);
    }
    expect(h.fake.apiRequests().length - before).toBe(1);
  }, 90_000);

  it('does not send again a call whose connection was cut after the provider got it (it may have been processed)', async () => {
    const key = await h.core.store.find('anthropic', 'k', 'api_key');
    const before = h.fake.apiRequests().length;
    h.fake.failNextApi([{ status: 0, reset: true }]);
    await expect(h.core.workflows.sendMessage(key!.id, request)).rejects.toThrow(/after it was sent/);
    expect(h.fake.apiRequests().length - before).toBe(1);
  });

  it('returns a 4xx answer as it is, without retrying', async () => {
    const key = await h.core.store.find('anthropic', 'k', 'api_key');
    const before = h.fake.apiRequests().length;
    h.fake.failNextApi([
      { status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: required' } } },
    ]);
    const answer = await h.core.workflows.sendMessage(key!.id, request);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: { type: 'invalid_request_error' } });
    expect(h.fake.apiRequests().length - before).toBe(1);
  });

  it('on a 401 with OAuth asks the credential workflow to refresh once, then retries', async () => {
    h.fake.seedTokens('sk-ant-ort01-msg-seed-0000000', 'sk-ant-oat01-msg-seed-0000000');
    const credential = await h.core.store.create({
      provider: 'anthropic',
      authType: 'oauth',
      name: 'o',
      secret: { accessToken: 'sk-ant-oat01-msg-seed-0000000', refreshToken: 'sk-ant-ort01-msg-seed-0000000' },
      expiresAt: new Date(Date.now() + 3600_000),
    });
    await h.core.workflows.start(credential);
    h.fake.revokeAccessToken('sk-ant-oat01-msg-seed-0000000');
    const answer = await h.core.workflows.sendMessage(credential.id, request);
    expect(answer.status).toBe(200);
    expect(h.fake.tokenRequests()).toHaveLength(1);
    expect(h.fake.apiRequests().at(-1)!.headers.authorization).toBe(`Bearer ${h.fake.issued.accessTokens.at(-1)}`);
    expect((await h.core.store.get(credential.id)).version).toBe(2);
  });

  it('refuses a disabled credential without calling the provider, as the proxy does (409)', async () => {
    const key = await h.core.store.create({ provider: 'anthropic', authType: 'api_key', name: 'off', secret: { apiKey: h.fake.apiKey } });
    await h.core.store.setStatus(key.id, 'disabled');
    const before = h.fake.apiRequests().length;
    const error = await h.core.workflows.sendMessage(key.id, request).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toMatch(/is disabled/);
    expect(h.fake.apiRequests().length - before).toBe(0);
  });
});
