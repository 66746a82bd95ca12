// A bench released by a quota read (issues 29 and 30): a member benched until a reset hours away,
// whose window the provider clears early, is routable again after the credential's workflow reads
// its quota (a shortened read interval here), with no restart and no operator — and the API
// process learns it through the shared routing state. The read spends no request and no refresh.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { seedOAuthCredential } from '../support/credentials.js';
import { createDevServerEnv, TEST_API_KEY } from '../support/temporal.js';
import { until } from '../support/wait.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;
const ids: Record<string, string> = {};

beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startApiHarness(env, {
    quotaIntervalMs: 2_000,
    fake: {
      accounts: {
        alice: { token: 'sk-ant-oat01-qa-0000000000', refreshToken: 'sk-ant-ort01-qa-0000000000' },
        bob: { token: 'sk-ant-oat01-qb-0000000000', refreshToken: 'sk-ant-ort01-qb-0000000000' },
      },
    },
  });
  ids.alice = (await seedOAuthCredential(h, { tag: 'qa', name: 'alice' })).credential.id;
  ids.bob = (await seedOAuthCredential(h, { tag: 'qb', name: 'bob' })).credential.id;
  const created = await h.call('POST', '/v1/pools', {
    body: {
      name: 'q',
      provider: 'anthropic',
      strategy: 'priority-fill',
      members: [{ credential: 'alice' }, { credential: 'bob', priority: 1 }],
    },
  });
  expect(created.status, created.text).toBe(201);
}, 180_000);

afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

const send = async () => {
  const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${TEST_API_KEY}`,
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      'x-maestro-pool': 'q',
    },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.text();
  return { status: res.status, member: res.headers.get('x-maestro-credential-id') };
};

it('releases a member benched until a reset hours away as soon as a quota read shows its window cleared early', async () => {
  expect((await send()).member).toBe(ids.alice); // priority-fill: alice first
  h.fake.accounts.exhaust('alice', { window: '5h', resetInSeconds: 3 * 3600 });
  const failedOver = await send();
  expect(failedOver.status).toBe(200);
  expect(failedOver.member).toBe(ids.bob);
  const benched = (await h.call('GET', '/v1/pools/q')).json.members[0];
  expect(benched.state).toBe('cooling');
  expect(Date.parse(benched.until)).toBeGreaterThan(Date.now() + 3 * 3600_000 - 60_000);

  const tokenCalls = h.fake.tokenRequests().length;
  h.fake.accounts.resetEarly('alice'); // the provider resets the window early
  try {
    await until(async () => (await h.call('GET', '/v1/pools/q')).json.members[0].state === 'routable', {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: 'alice routable after a quota read',
    });
  } catch (error) {
    // What the workflow, the credential and the pool said at the end: a failure explains itself.
    const credential = (await h.call('GET', `/v1/credentials/${ids.alice}`)).json;
    const pool = (await h.call('GET', '/v1/pools/q')).json;
    const events = (await h.call('GET', '/v1/pools/q/events')).json;
    throw new Error(
      `${(error as Error).message}; workflow: ${JSON.stringify(credential.workflow)}; rateLimit: ${JSON.stringify(credential.rateLimit)}; ` +
        `member: ${JSON.stringify(pool.members[0])}; events: ${JSON.stringify(events.events)}; quota reads: ${h.fake.quotaRequests().length}`,
      { cause: error },
    );
  }
  expect((await send()).member).toBe(ids.alice);
  const events = (await h.call('GET', '/v1/pools/q/events')).json.events as Array<{ type: string; credentialId?: string }>;
  expect(events.some((e) => e.type === 'quota_read' && e.credentialId === ids.alice)).toBe(true);
  expect(h.fake.tokenRequests().length).toBe(tokenCalls); // reads never refresh
}, 90_000);
