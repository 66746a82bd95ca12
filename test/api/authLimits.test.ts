// Failed key checks are limited per client address (MAESTRO_AUTH_FAILURES_PER_MINUTE), on the
// /v1 routes and the proxy's fast path alike, and the address is the one MAESTRO_TRUST_PROXY says
// to believe: behind a load balancer each client has its own bucket; without it, X-Forwarded-For
// is ignored (a client cannot pick a fresh bucket per request by forging it).
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FailedAuthLimiter } from '../../src/api/auth.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { TEST_API_KEY, createDevServerEnv } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness | undefined;
beforeAll(async () => {
  env = await createDevServerEnv();
});
afterEach(async () => {
  await h?.close();
  h = undefined;
});
afterAll(async () => {
  await env?.teardown();
});

const WRONG = 'msk_wrong_key_0000000000';
const from = (address: string, key: string) => ({ headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': address } });
const message = { model: 'claude-test', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] };

describe('failed key checks', () => {
  it('without MAESTRO_TRUST_PROXY: 5 failures from one socket address refuse it (429, Retry-After) whatever it forwards, keys not even checked', async () => {
    h = await startApiHarness(env, { config: { authFailuresPerMinute: 5 } });
    for (let i = 0; i < 5; i++) {
      const path = i % 2 ? '/v1/credentials' : '/proxy/anthropic/v1/messages';
      expect(
        (await h.call(i % 2 ? 'GET' : 'POST', path, { ...from(`203.0.113.${i}`, WRONG), body: i % 2 ? undefined : message })).status,
      ).toBe(401);
    }
    const apiCalls = h.fake.apiRequests().length;
    for (const [method, path] of [
      ['GET', '/v1/credentials'],
      ['POST', '/proxy/anthropic/v1/messages'],
    ] as const) {
      const refused = await h.call(method, path, { ...from('198.51.100.7', TEST_API_KEY), body: method === 'POST' ? message : undefined });
      expect(refused.status).toBe(429);
      expect(refused.json.error).toMatchObject({ type: 'rate_limited', message: expect.stringMatching(/too many failed key checks/) });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    }
    expect(h.fake.apiRequests().length).toBe(apiCalls); // nothing went upstream
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200); // probes are not gated
  });

  it('with MAESTRO_TRUST_PROXY=loopback: the forwarded address is the bucket; other clients behind the same proxy go on', async () => {
    h = await startApiHarness(env, { config: { authFailuresPerMinute: 3, trustProxy: ['loopback'] } });
    for (let i = 0; i < 3; i++) expect((await h.call('GET', '/v1/credentials', from('203.0.113.9', WRONG))).status).toBe(401);
    expect((await h.call('GET', '/v1/credentials', from('203.0.113.9', TEST_API_KEY))).status).toBe(429);
    expect((await h.call('GET', '/v1/credentials', from('198.51.100.7', TEST_API_KEY))).status).toBe(200);
    const proxied = await h.call('POST', '/proxy/anthropic/v1/messages', { ...from('203.0.113.9', TEST_API_KEY), body: message });
    expect(proxied.status).toBe(429);
  });
});

describe('FailedAuthLimiter', () => {
  it('keeps a blocked address blocked while a flood of new addresses fills its table', () => {
    const limiter = new FailedAuthLimiter(3, 60_000, 100);
    const now = 1_000_000;
    for (let i = 0; i < 3; i++) limiter.failed('198.51.100.1', now);
    expect(limiter.refused('198.51.100.1', now)?.status).toBe(429);
    for (let i = 0; i < 500; i++) limiter.failed(`2001:db8::${i.toString(16)}`, now);
    expect(limiter.refused('198.51.100.1', now)?.status).toBe(429);
    // The window ends: the address may try again.
    expect(limiter.refused('198.51.100.1', now + 60_001)).toBeUndefined();
  });

  it('limits a new address again once a full table of blocked addresses has expired (expired entries go first)', () => {
    const limiter = new FailedAuthLimiter(3, 60_000, 100);
    const now = 1_000_000;
    for (let i = 0; i < 100; i++) for (let j = 0; j < 3; j++) limiter.failed(`2001:db8::${i.toString(16)}`, now);
    expect(limiter.refused('2001:db8::0', now)?.status).toBe(429);
    // A day later every one of those blocks has long ended; nobody asked for them since.
    const later = now + 86_400_000;
    for (let j = 0; j < 3; j++) limiter.failed('198.51.100.2', later);
    expect(limiter.refused('198.51.100.2', later)?.status).toBe(429);
    expect(limiter.refused('2001:db8::0', later)).toBeUndefined();
  });
});
