// Pools at their edges (DESIGN.md "Pools"), real API, PostgreSQL and Temporal, a fake Anthropic
// with per-account windows: a model family's weekly limit benches that family only; thirty
// sessions that lose their member at once spread over the others instead of herding onto one; a
// client that leaves during a hold ends its wait and frees its slot.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { seedOAuthCredential } from '../support/credentials.js';
import { createDevServerEnv, TEST_API_KEY } from '../support/temporal.js';
import { sleep, until } from '../support/wait.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;
const ids: Record<string, string> = {};
const NAMES = ['alice', 'bob', 'carol'] as const;

beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startApiHarness(env, {
    fake: {
      accounts: Object.fromEntries(
        NAMES.map((n) => [n, { token: `sk-ant-oat01-e${n}-0000000000`, refreshToken: `sk-ant-ort01-e${n}-0000000000` }]),
      ),
    },
  });
  for (const n of NAMES) ids[n] = (await seedOAuthCredential(h, { tag: `e${n}`, name: n })).credential.id;
}, 180_000);

afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

const nameOf = (id: string | null) => NAMES.find((n) => ids[n] === id);
async function send(pool: string, opts: { session?: string; model?: string; key?: string; signal?: AbortSignal } = {}) {
  const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
    method: 'POST',
    signal: opts.signal,
    headers: {
      authorization: `Bearer ${opts.key ?? TEST_API_KEY}`,
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      'x-maestro-pool': pool,
      ...(opts.session && { 'x-claude-code-session-id': opts.session }),
    },
    body: JSON.stringify({ model: opts.model ?? 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const text = await res.text();
  return { status: res.status, member: nameOf(res.headers.get('x-maestro-credential-id')), text };
}
async function createPool(body: Record<string, unknown>) {
  const created = await h.call('POST', '/v1/pools', { body: { provider: 'anthropic', ...body } });
  expect(created.status, created.text).toBe(201);
  return created.json as { id: string };
}

it('benches only the model family whose weekly limit ran out; other families keep the member', async () => {
  await createPool({ name: 'family', strategy: 'priority-fill', members: [{ credential: 'alice' }, { credential: 'bob', priority: 1 }] });
  expect((await send('family', { model: 'claude-opus-4-1' })).member).toBe('alice');
  h.fake.accounts.exhaust('alice', { window: '7d_opus', resetInSeconds: 3 * 86_400 });
  const opus = await send('family', { model: 'claude-opus-4-1' });
  expect(opus.status, opus.text).toBe(200);
  expect(opus.member).toBe('bob');
  const sonnet = await send('family', { model: 'claude-sonnet-4-5' });
  expect(sonnet.member).toBe('alice'); // the family bench leaves sonnet on alice
  const member = (await h.call('GET', '/v1/pools/family')).json.members[0];
  expect(member.state).toBe('routable');
  expect(member.scope).toEqual([expect.objectContaining({ scope: 'opus' })]);
  expect(Date.parse(member.scope[0].until)).toBeGreaterThan(Date.now() + 3 * 86_400_000 - 60_000);
  expect((await send('family', { model: 'claude-opus-4-1' })).member).toBe('bob');
  await h.call('DELETE', '/v1/pools/family');
  h.fake.accounts.resetEarly('alice');
});

it('spreads thirty sessions that lose their member at once over the others, with no client error', async () => {
  await createPool({ name: 'herd', members: [{ credential: 'alice' }] });
  const sessions = Array.from({ length: 30 }, (_, i) => `herd-${i}`);
  for (const session of sessions) expect((await send('herd', { session })).member).toBe('alice');
  const patched = await h.call('PATCH', '/v1/pools/herd', { body: { members: NAMES.map((n) => ({ credential: n })) } });
  expect(patched.status, patched.text).toBe(200);
  h.fake.accounts.exhaust('alice', { window: '5h', resetInSeconds: 3600 });
  const before = { bob: h.fake.accounts.served('bob'), carol: h.fake.accounts.served('carol') };
  const answers = await Promise.all(sessions.map((session) => send('herd', { session })));
  expect(answers.map((a) => a.status)).toEqual(sessions.map(() => 200));
  const moved = { bob: h.fake.accounts.served('bob') - before.bob, carol: h.fake.accounts.served('carol') - before.carol };
  expect(moved.bob + moved.carol).toBe(30);
  // Not thirty at once onto one fresh member: each took a share (in-flight counts and the recency penalty spread them).
  expect(Math.max(moved.bob, moved.carol)).toBeLessThanOrEqual(20);
  await h.call('DELETE', '/v1/pools/herd');
  h.fake.accounts.resetEarly('alice');
});

it('ends a held request’s wait when its client leaves, and frees its slot', async () => {
  const pool = await createPool({ name: 'held', onExhausted: { mode: 'hold', holdSeconds: 60 }, members: [{ credential: 'carol' }] });
  const key = await h.call('POST', '/v1/keys', {
    body: { name: 'one-at-a-time', role: 'client', pools: ['held'], limits: { concurrentCalls: 1 } },
  });
  expect(key.status, key.text).toBe(201);
  h.fake.accounts.exhaust('carol', { window: '5h', resetInSeconds: 3600 });
  expect((await send('held', { key: key.json.key })).status).toBe(429); // carol's bench starts; nothing else to wait for
  const leaving = new AbortController();
  const held = send('held', { key: key.json.key, signal: leaving.signal }).catch((error: Error) => error);
  await until(
    async () =>
      ((await h.call('GET', `/v1/pools/${pool.id}/events`)).json.events as Array<{ type: string }>).some((e) => e.type === 'hold_started'),
    { what: 'the hold to start' },
  );
  leaving.abort();
  expect(await held).toBeInstanceOf(Error);
  // Its concurrency slot is free again at once: the next call is answered (429 pool_exhausted after its own hold), not refused as rate_limited.
  await sleep(200);
  await h.call('PATCH', '/v1/pools/held', { body: { onExhausted: { mode: 'reject' } } });
  const next = await send('held', { key: key.json.key });
  expect(next.status).toBe(429);
  expect(JSON.parse(next.text).error.type).toBe('pool_exhausted');
  await until(
    async () =>
      ((await h.call('GET', `/v1/pools/${pool.id}/events`)).json.events as Array<{ type: string }>).some((e) => e.type === 'hold_ended'),
    { what: 'the hold to end' },
  );
});
