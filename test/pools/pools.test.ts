// Pools end to end (DESIGN.md "Pools"): the real API (two processes), real PostgreSQL and Temporal,
// a fake Anthropic with three subscription accounts, each with its own windows. Sessions stay on
// their member; an exhausted window, a bare 429, an overload and a stream that fails before its
// content all fail over with no error reaching the client; a bench one process sets is honoured by
// the other; an exhausted pool is rejected (or held) as the contract says; bad requests are 4xx.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../../src/app/services.js';
import { createLogger } from '../../src/logger.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { seedOAuthCredential } from '../support/credentials.js';
import { createDevServerEnv } from '../support/temporal.js';
import { until } from '../support/wait.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;
let second: RunningApi;
let secondUrl: string;
const ids: Record<string, string> = {};
const byId: Record<string, string> = {};
let clientKey: string;
let clientKeyId: string;

const NAMES = ['alice', 'bob', 'carol'] as const;
const tokenOf = (name: string) => `sk-ant-oat01-${name}-0000000000`;
const message = (extra: Record<string, unknown> = {}) => ({
  model: 'claude-sonnet-4-5',
  max_tokens: 8,
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

interface Sent {
  status: number;
  member: string | undefined;
  text: string;
  headers: Headers;
}

async function send(
  opts: { session?: string; pool?: string; url?: string; stream?: boolean; key?: string; headers?: Record<string, string> } = {},
): Promise<Sent> {
  const res = await fetch(`${opts.url ?? h.url}/proxy/anthropic/v1/messages`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${opts.key ?? clientKey}`,
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      ...(opts.session && { 'x-claude-code-session-id': opts.session }),
      ...(opts.pool && { 'x-maestro-pool': opts.pool }),
      ...opts.headers,
    },
    body: JSON.stringify(message(opts.stream ? { stream: true } : {})),
  });
  const text = await res.text();
  const id = res.headers.get('x-maestro-credential-id') ?? undefined;
  return { status: res.status, member: id ? byId[id] : undefined, text, headers: res.headers };
}

async function pool(name = 'team') {
  const answer = await h.call('GET', `/v1/pools/${name}`);
  expect(answer.status, answer.text).toBe(200);
  return answer.json as {
    members: Array<{ credentialName: string; state: string; reason: string | null; until: string | null }>;
    routable: number;
  };
}
const memberOf = async (name: string) => (await pool()).members.find((m) => m.credentialName === name)!;

/** What the webhook receiver got (plan limits only: `credential.overage`). */
const hooks: Array<{ event: string; type?: string; credentialId?: string; poolIds?: string[] }> = [];
const hookServer = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    hooks.push({ ...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as object), event: String(req.headers['x-maestro-event']) });
    res.end('ok');
  });
});

beforeAll(async () => {
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
  env = await createDevServerEnv();
  h = await startApiHarness(env, {
    fake: { accounts: Object.fromEntries(NAMES.map((n) => [n, { token: tokenOf(n), refreshToken: `sk-ant-ort01-${n}-0000000000` }])) },
    webhook: { url: `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`, secret: 'whsec-pools-test-0123456789' },
  });
  second = await startApi({ ...h.config, port: 0, host: '127.0.0.1' }, createLogger('silent'), h.db.db, h.db.url, env.client, h.core);
  secondUrl = `http://127.0.0.1:${(second.server.address() as { port: number }).port}`;
  for (const name of NAMES) {
    const seeded = await seedOAuthCredential(h, { tag: name, name });
    ids[name] = seeded.credential.id;
    byId[seeded.credential.id] = name;
  }
  const created = await h.call('POST', '/v1/pools', {
    body: { name: 'team', provider: 'anthropic', members: NAMES.map((n) => ({ credential: n })) },
  });
  expect(created.status, created.text).toBe(201);
  expect(created.json.members.map((m: { state: string }) => m.state)).toEqual(['routable', 'routable', 'routable']);
  const key = await h.call('POST', '/v1/keys', { body: { name: 'team-user', role: 'client', pools: ['team'] } });
  expect(key.status, key.text).toBe(201);
  expect(key.json.pools).toEqual([created.json.id]);
  clientKey = key.json.key;
  clientKeyId = key.json.id;
}, 180_000);

afterAll(async () => {
  await second?.close();
  await h?.close();
  await env?.teardown();
  hookServer.close();
});

beforeEach(async () => {
  // Every test starts with three routable members: benches from the last one cleared by an operator.
  for (const name of NAMES) {
    const cleared = await h.call('POST', '/v1/pools/team/members', { body: { credential: ids[name], action: 'clear-cooldown' } });
    expect(cleared.status, cleared.text).toBe(200);
    h.fake.accounts.resetEarly(name);
  }
  await until(async () => (await pool()).routable === 3, { what: 'three routable members' });
});

describe('pools', () => {
  it('keeps a session on its member and spreads sessions over the members', async () => {
    const firsts: string[] = [];
    for (let s = 0; s < 12; s++) {
      const session = `spread-${s}`;
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const sent = await send({ session, url: i % 2 ? secondUrl : h.url });
        expect(sent.status, sent.text).toBe(200);
        seen.add(sent.member!);
      }
      expect([...seen], `session ${session} stayed on one member across both API processes`).toHaveLength(1);
      firsts.push([...seen][0]!);
    }
    // Sessions picked one after another spread (least loaded with a recency penalty): every member got some.
    expect(new Set(firsts).size).toBe(3);
  });

  it('fails over when a member’s 5-hour window is exhausted, benches it until the reset, and brings the session back after it', async () => {
    const session = 'exhaust-1';
    const home = (await send({ session })).member!;
    h.fake.accounts.exhaust(home, { window: '5h', resetInSeconds: 4 });
    const during = await send({ session });
    expect(during.status, during.text).toBe(200); // the client never sees the 429
    expect(during.member).not.toBe(home);
    const benched = await memberOf(home);
    expect(benched.state).toBe('cooling');
    expect(Date.parse(benched.until!)).toBeGreaterThan(Date.now());
    expect(Date.parse(benched.until!)).toBeLessThanOrEqual(Date.now() + 4_000 + 10_000 + 1_000); // reset + ≤ 10 s jitter
    // The other process honours the bench within a second: it sends nothing to that member.
    const refusedBefore = h.fake.accounts.get(home).refused;
    await new Promise((r) => setTimeout(r, 1_100));
    for (let i = 0; i < 3; i++) expect((await send({ session, url: secondUrl })).status).toBe(200);
    expect(h.fake.accounts.get(home).refused).toBe(refusedBefore);
    // After the reset (and its jitter) the binding, never moved, brings the session home.
    await until(async () => (await send({ session })).member === home, {
      timeoutMs: 25_000,
      intervalMs: 500,
      what: 'the session back on its member',
    });
    const events = await h.call('GET', '/v1/pools/team/events');
    const types = events.json.events.map((e: { type: string }) => e.type);
    expect(types).toContain('cooldown_set');
    expect(types).toContain('failover');
    expect(types).toContain('cooldown_cleared');
    expect(types).not.toContain('session_moved');
  }, 60_000);

  it('plan limits only: a member whose answer shows extra usage in use takes no new work, on either process, with an event and a webhook', async () => {
    const session = 'overage-1';
    const home = (await send({ session })).member!;
    h.fake.accounts.setOverage(home, 'in-use');
    try {
      const spent = await send({ session });
      expect(spent.status, spent.text).toBe(200); // the answer that showed it was already served: it stands
      expect(spent.member).toBe(home);
      const blocked = await memberOf(home);
      expect(blocked.state).toBe('billing_blocked');
      expect(blocked.reason).toBe('extra usage in use');
      const servedBefore = h.fake.accounts.served(home);
      await new Promise((r) => setTimeout(r, 1_100)); // the other process sees the block within a second
      for (const url of [h.url, secondUrl]) {
        for (const s of [session, 'overage-new']) {
          const next = await send({ session: s, url });
          expect(next.status, next.text).toBe(200);
          expect(next.member).not.toBe(home);
        }
      }
      expect(h.fake.accounts.served(home)).toBe(servedBefore);
      await until(
        async () =>
          ((await h.call('GET', '/v1/pools/team/events')).json.events as Array<{ type: string; credentialId?: string }>).some(
            (e) => e.type === 'overage_seen' && e.credentialId === ids[home],
          ),
        { what: 'the overage_seen event', timeoutMs: 10_000 },
      );
      const hook = await until(() => hooks.find((b) => b.event === 'credential.overage' && b.credentialId === ids[home]), {
        what: 'the credential.overage webhook',
        timeoutMs: 10_000,
      });
      expect(hook).toMatchObject({ type: 'credential.overage' });
      expect(hook.poolIds).toHaveLength(1);
    } finally {
      h.fake.accounts.setOverage(home, 'rejected');
    }
  }, 30_000);

  it('fails over on a bare 429 and on an overload, cooling the member a minute at most', async () => {
    const session = 'bare-1';
    const home = (await send({ session })).member!;
    h.fake.accounts.fail(home, 'bare-429', 1);
    const after429 = await send({ session });
    expect(after429.status, after429.text).toBe(200);
    expect(after429.member).not.toBe(home);
    const cooled = await memberOf(home);
    expect(cooled.state).toBe('cooling');
    expect(Date.parse(cooled.until!) - Date.now()).toBeLessThanOrEqual(60_000);

    const other = after429.member!;
    h.fake.accounts.fail(other, 'overloaded-529', 1);
    const after529 = await send({ session: 'overload-1', pool: 'team', headers: {} });
    expect(after529.status, after529.text).toBe(200);
  });

  it('fails a stream over when an overload comes before its first content event', async () => {
    const session = 'stream-1';
    const home = (await send({ session })).member!;
    h.fake.accounts.fail(home, 'stream-overloaded', 1);
    const sent = await send({ session, stream: true });
    expect(sent.status).toBe(200);
    expect(sent.member).not.toBe(home);
    expect(sent.text).toContain('event: content_block_start');
    expect(sent.text).not.toContain('overloaded_error');
  });

  it('rejects an exhausted pool with pool_exhausted, Retry-After ≤ 60 and the next-available time; hold waits for a reset', async () => {
    for (const name of NAMES) h.fake.accounts.exhaust(name, { window: '5h', resetInSeconds: 3 * 3600 });
    // Each member fails over once, then the pool has nobody left.
    let last: Sent | undefined;
    for (let i = 0; i < 2; i++) last = await send({ session: `ex-${i}` });
    expect(last!.status, last!.text).toBe(429);
    expect(JSON.parse(last!.text).error.type).toBe('pool_exhausted');
    expect(Number(last!.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(Date.parse(last!.headers.get('x-maestro-pool-next-available')!)).toBeGreaterThan(Date.now() + 3 * 3600_000 - 60_000);
    for (const name of NAMES) expect(JSON.parse(last!.text).error.message).toContain(ids[name]);
    const metrics = (await h.call('GET', '/metrics')).text;
    expect(metrics).toMatch(/maestro_pool_exhausted_total\{pool="team"\} [1-9]/);
    expect(metrics).toMatch(/maestro_pool_failovers_total\{pool="team",reason="window"\} [1-9]/);
    expect(metrics).toMatch(/maestro_pool_routable\{pool="team"\} 0/);

    // Hold: a short bench, a held request that goes on once it is over.
    const patched = await h.call('PATCH', '/v1/pools/team', { body: { onExhausted: { mode: 'hold', holdSeconds: 30 } } });
    expect(patched.status, patched.text).toBe(200);
    for (const name of NAMES) {
      await h.call('POST', '/v1/pools/team/members', { body: { credential: ids[name], action: 'clear-cooldown' } });
      h.fake.accounts.resetEarly(name);
      h.fake.accounts.exhaust(name, { window: '5h', resetInSeconds: 2 });
    }
    for (let i = 0; i < 3; i++) await send({ session: `hold-warm-${i}` }).catch(() => undefined);
    const held = await send({ session: 'hold-1' });
    expect(held.status, held.text).toBe(200);
    await h.call('PATCH', '/v1/pools/team', { body: { onExhausted: { mode: 'reject' } } });
  }, 90_000);

  it('answers bad requests with a 4xx that says what to fix', async () => {
    const both = await send({ pool: 'team', headers: { 'x-maestro-credential': 'alice' } });
    expect(both.status).toBe(400);
    expect(JSON.parse(both.text).error.message).toMatch(/x-maestro-pool or x-maestro-credential/);
    const unknown = await send({ pool: 'nope' });
    expect(unknown.status).toBe(403); // a client key: the same refusal for unknown and another's
    const admin = await h.call('POST', '/v1/pools', { body: { name: 'x', provider: 'openai', members: [{ credential: 'alice' }] } });
    expect(admin.status).toBe(400);
    expect(admin.json.error.message).toMatch(/no openai credential/);
    const dup = await h.call('POST', '/v1/pools', { body: { name: 'team', provider: 'anthropic', members: [{ credential: 'alice' }] } });
    expect(dup.status).toBe(409);
    const badWeight = await h.call('POST', '/v1/pools', {
      body: { name: 'w', provider: 'anthropic', members: [{ credential: 'alice', weight: 0 }] },
    });
    expect(badWeight.status).toBe(400);
    const clientCreate = await h.call('POST', '/v1/pools', {
      body: { name: 'y', provider: 'anthropic', members: [{ credential: 'alice' }] },
      headers: { authorization: `Bearer ${clientKey}` },
    });
    expect(clientCreate.status).toBe(403);
  });

  it('counts usage against the member that served, by pool', async () => {
    await send({ session: 'usage-1' });
    await Promise.all([h.api.usage.flush(), second.usage.flush()]);
    const usage = await h.call('GET', '/v1/usage?groupBy=key,pool,credential');
    expect(usage.status, usage.text).toBe(200);
    const mine = usage.json.usage.filter((r: { key: string }) => r.key === clientKeyId);
    expect(mine.length).toBeGreaterThan(0);
    const poolId = (await h.call('GET', '/v1/pools/team')).json.id;
    for (const row of mine) {
      expect(row.pool).toBe(poolId);
      expect(Object.values(ids)).toContain(row.credential);
    }
  });
});
