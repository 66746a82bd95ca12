// The fake Anthropic's per-account mode, checked from the wire: each account's unified headers,
// window exhaustion, early resets, scripted failures, overage and the usage-endpoint shape, and
// that classifyAnswer reads what the fake sends the way the pools will.
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ANTHROPIC_DEFAULTS, ANTHROPIC_OAUTH_BETA, CLAUDE_CODE_SYSTEM_PROMPT } from '../../src/providers/anthropic.js';
import { classifyAnswer, classifyStreamError, overageOf } from '../../src/pools/classify.js';
import { parseRateLimitHeaders } from '../../src/usage/rateLimits.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProvider.js';

let fake: FakeProvider | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function start(accounts: Parameters<typeof startFakeProvider>[0]['accounts']): Promise<FakeProvider> {
  fake = await startFakeProvider({ provider: 'anthropic', accounts });
  return fake;
}

async function call(f: FakeProvider, token: string, opts: { model?: string; stream?: boolean } = {}) {
  const res = await request(`${f.url}/v1/messages`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'anthropic-version': '2023-06-01',
      'anthropic-beta': ANTHROPIC_OAUTH_BETA,
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      model: opts.model ?? 'claude-sonnet-4-5-20250929',
      max_tokens: 64,
      system: [{ type: 'text', text: CLAUDE_CODE_SYSTEM_PROMPT }],
      messages: [{ role: 'user', content: 'hi' }],
      ...(opts.stream ? { stream: true } : {}),
    }),
  });
  const text = await res.body.text();
  const headers = res.headers as Record<string, string | string[] | undefined>;
  return { status: res.statusCode, headers, text, json: text.startsWith('{') ? (JSON.parse(text) as unknown) : undefined };
}

const classify = (r: { status: number; headers: Record<string, string | string[] | undefined> }, model?: string) =>
  classifyAnswer({ provider: 'anthropic', status: r.status, headers: r.headers, model, now: Date.now() });

describe('fake anthropic accounts', () => {
  it('each account has its own windows; answers carry the unified headers', async () => {
    const f = await start({ alice: { token: 'tok-a' }, bob: { token: 'tok-b', utilization: { '5h': 0.5 } } });
    const a = await call(f, 'tok-a');
    expect(a.status).toBe(200);
    expect(a.headers['anthropic-ratelimit-unified-status']).toBe('allowed');
    expect(a.headers['anthropic-ratelimit-unified-representative-claim']).toBe('five_hour');
    expect(a.headers['anthropic-ratelimit-unified-overage-status']).toBe('rejected');
    const state = parseRateLimitHeaders('anthropic', a.headers)!;
    expect(Object.keys(state.windows).sort()).toEqual(['five_hour', 'seven_day']);
    expect(state.windows.five_hour!.status).toBe('allowed');
    expect(classify(a).scope).toBe('ok');

    const b = await call(f, 'tok-b');
    expect(Number(b.headers['anthropic-ratelimit-unified-5h-utilization'])).toBeGreaterThanOrEqual(0.5);
    expect(f.accounts.get('alice')).toMatchObject({ requests: 1, served: 1 });
    expect(f.accounts.get('alice').utilization5h).toBeGreaterThan(0);
    expect(f.accounts.get('alice').utilization5h).toBeLessThan(0.01);
    expect(f.accounts.served('bob')).toBe(1);
  });

  it('an exhausted 5h window refuses with 429 rejected until an early reset; the other account serves', async () => {
    const f = await start({ alice: { token: 'tok-a' }, bob: { token: 'tok-b' } });
    f.accounts.exhaust('alice', { window: '5h', resetInSeconds: 3600 });
    const refused = await call(f, 'tok-a');
    expect(refused.status).toBe(429);
    expect(refused.json).toEqual({
      type: 'error',
      error: { type: 'rate_limit_error', message: "This request would exceed your account's rate limit. Please try again later." },
    });
    expect(refused.headers['anthropic-ratelimit-unified-status']).toBe('rejected');
    expect(refused.headers['anthropic-ratelimit-unified-5h-status']).toBe('rejected');
    const c = classify(refused);
    expect(c).toMatchObject({ scope: 'window', window: 'five_hour', until: f.accounts.get('alice').reset5h, failover: true });
    expect(c.until! - Date.now()).toBeGreaterThan(3500_000);

    expect((await call(f, 'tok-b')).status).toBe(200);
    f.accounts.resetEarly('alice');
    expect((await call(f, 'tok-a')).status).toBe(200);
    expect(f.accounts.get('alice')).toMatchObject({ requests: 2, served: 1, refused: 1 });
  });

  it('utilization grows with the tokens served, until the window refuses', async () => {
    // 30 tokens of 5h capacity: two JSON calls (10 in + 5 out each) fill it.
    const f = await start({ alice: { token: 'tok-a', capacity: { '5h': 30 } } });
    expect((await call(f, 'tok-a')).status).toBe(200);
    const second = await call(f, 'tok-a');
    expect(second.status).toBe(200);
    expect(second.headers['anthropic-ratelimit-unified-5h-utilization']).toBe('0.5');
    expect(f.accounts.get('alice').utilization5h).toBeCloseTo(1);
    expect((await call(f, 'tok-a')).status).toBe(429);
  });

  it('an exhausted weekly Opus bucket refuses Opus calls only (family scope)', async () => {
    const f = await start({ alice: { token: 'tok-a' } });
    f.accounts.exhaust('alice', { window: '7d_opus', resetInSeconds: 86400 });
    const opus = await call(f, 'tok-a', { model: 'claude-opus-4-1-20250805' });
    expect(opus.status).toBe(429);
    expect(opus.headers['anthropic-ratelimit-unified-7d_opus-status']).toBe('rejected');
    expect(classify(opus, 'claude-opus-4-1-20250805')).toMatchObject({ scope: 'family', family: 'opus', window: 'seven_day_opus' });
    const sonnet = await call(f, 'tok-a');
    expect(sonnet.status).toBe(200);
    // The bucket's own status shows on every answer; the call itself is allowed.
    expect(sonnet.headers['anthropic-ratelimit-unified-7d_opus-status']).toBe('rejected');
    expect(sonnet.headers['anthropic-ratelimit-unified-status']).toBe('allowed');
    expect(classify(sonnet, 'claude-sonnet-4-5-20250929').scope).toBe('ok');
  });

  it('a refresh keeps the account: tokens issued from its refresh token are its own', async () => {
    const f = await start({ alice: { refreshToken: 'rt-a' }, bob: { token: 'tok-b' } });
    const refresh = async (refreshToken: string) => {
      const res = await request(f.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: ANTHROPIC_DEFAULTS.clientId }),
      });
      return (await res.body.json()) as { access_token: string; refresh_token: string };
    };
    const first = await refresh('rt-a');
    const second = await refresh(first.refresh_token);
    f.accounts.exhaust('alice', { window: '7d', resetInSeconds: 600 });
    expect((await call(f, first.access_token)).status).toBe(429);
    expect((await call(f, second.access_token)).status).toBe(429);
    expect(f.accounts.get('alice').requests).toBe(2);
    expect(f.accounts.get('bob').requests).toBe(0);
  });

  it('scripted failures: bare 429, 529, then normal again', async () => {
    const f = await start({ alice: { token: 'tok-a' } });
    f.accounts.fail('alice', 'bare-429', 1, { retryAfterSeconds: 2 });
    f.accounts.fail('alice', 'overloaded-529', 1);
    const bare = await call(f, 'tok-a');
    expect(bare.status).toBe(429);
    expect(Object.keys(bare.headers).filter((h) => h.startsWith('anthropic-ratelimit'))).toEqual([]);
    expect(classify(bare)).toMatchObject({ scope: 'request', failover: true });
    const overloaded = await call(f, 'tok-a');
    expect(overloaded.status).toBe(529);
    expect(overloaded.json).toEqual({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    expect(classify(overloaded).scope).toBe('overload');
    expect((await call(f, 'tok-a')).status).toBe(200);
    expect(f.accounts.get('alice')).toMatchObject({ requests: 3, served: 1, pendingFailures: 0 });
  });

  it('stream failures: message_start, then an error event before any content', async () => {
    const f = await start({ alice: { token: 'tok-a' } });
    f.accounts.fail('alice', 'stream-overloaded', 1);
    f.accounts.fail('alice', 'stream-rate-limit', 1);
    const over = await call(f, 'tok-a', { stream: true });
    expect(over.status).toBe(200);
    expect(over.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(over.headers['anthropic-ratelimit-unified-status']).toBe('allowed');
    const events = over.text.split('\n\n').filter(Boolean);
    expect(events.map((e) => /^event: (\S+)/.exec(e)?.[1])).toEqual(['message_start', 'error']);
    expect(over.text).not.toContain('content_block_start');
    const error = JSON.parse(events[1]!.split('data: ')[1]!) as { error: { type: string } };
    expect(classifyStreamError({ provider: 'anthropic', errorType: error.error.type, headers: over.headers, now: Date.now() }).scope).toBe(
      'overload',
    );
    const limited = await call(f, 'tok-a', { stream: true });
    expect(limited.text).toContain('"type":"rate_limit_error"');
    expect(limited.text).not.toContain('content_block_start');
    const served = await call(f, 'tok-a', { stream: true });
    expect(served.text).toContain('content_block_start');
    expect(f.accounts.served('alice')).toBe(1);
  });

  it('a stream failure met by a call that does not stream is the matching JSON error', async () => {
    const f = await start({ alice: { token: 'tok-a' } });
    f.accounts.fail('alice', 'stream-overloaded', 1);
    expect((await call(f, 'tok-a')).status).toBe(529);
  });

  it('overage: in use shows on every answer; allowed lets an exhausted account spill into extra usage', async () => {
    const f = await start({ alice: { token: 'tok-a' }, bob: { token: 'tok-b', overage: 'allowed' } });
    f.accounts.setOverage('alice', 'in-use');
    const a = await call(f, 'tok-a');
    expect(a.headers['anthropic-ratelimit-unified-overage-in-use']).toBe('true');
    expect(overageOf('anthropic', a.headers).inUse).toBe(true);

    const before = await call(f, 'tok-b');
    expect(overageOf('anthropic', before.headers)).toMatchObject({ inUse: false, status: 'allowed' });
    f.accounts.exhaust('bob', { window: '5h', resetInSeconds: 600 });
    const spilled = await call(f, 'tok-b');
    expect(spilled.status).toBe(200);
    expect(spilled.headers['anthropic-ratelimit-unified-representative-claim']).toBe('overage');
    expect(overageOf('anthropic', spilled.headers).inUse).toBe(true);
    f.accounts.setOverage('bob', 'rejected');
    expect((await call(f, 'tok-b')).status).toBe(429);
  });

  it('quota(): the /api/oauth/usage shape, utilization in percent', async () => {
    const f = await start({ alice: { token: 'tok-a' } });
    f.accounts.setUtilization('alice', '5h', 0.37);
    f.accounts.exhaust('alice', { window: '7d', resetInSeconds: 7200 });
    const q = f.accounts.quota('alice');
    expect(q.five_hour).toEqual({ utilization: 37, resets_at: new Date(f.accounts.get('alice').reset5h).toISOString() });
    expect(q.seven_day!.utilization).toBe(100);
    expect(Date.parse(q.seven_day!.resets_at!) - Date.now()).toBeGreaterThan(7000_000);
    expect(q.seven_day_opus).toEqual({ utilization: 0, resets_at: null });
    expect(q.seven_day_oauth_apps).toBeNull();
    expect(q.extra_usage.is_enabled).toBe(false);
  });

  it('a token of no account is served as without accounts (no unified headers)', async () => {
    const f = await start({ alice: { token: 'tok-a' } });
    f.seedTokens('rt-other', 'tok-other');
    const other = await call(f, 'tok-other');
    expect(other.status).toBe(200);
    expect(other.headers['anthropic-ratelimit-unified-status']).toBeUndefined();
    expect(() => f.accounts.get('nobody')).toThrow(/no account nobody/);
  });
});
