// Every failure gets one explicit scope before anything acts on it: a table of real-shaped header
// sets (test/pools/fixtures/) with the Classified each must get, then in-stream errors and the
// plan-limits-only overage signal.
import { describe, expect, it } from 'vitest';
import { classifyAnswer, classifyStreamError, errorBodyOf, overageOf } from '../../src/pools/classify.js';
import type { ProviderId } from '../../src/model/providers.js';
import { ANTHROPIC_EDGE_FIXTURES, ANTHROPIC_FIXTURES, NOW, RESET_5H, type AnswerFixture } from './fixtures/anthropicHeaders.js';
import { GEMINI_FIXTURES, OPENAI_FIXTURES } from './fixtures/otherHeaders.js';

function check(provider: ProviderId, f: AnswerFixture): void {
  const got = classifyAnswer({ provider, status: f.status, headers: f.headers, model: f.model, errorBody: f.errorBody, now: NOW });
  const { evidence, ...rest } = got;
  expect(rest).toEqual(f.expected);
  for (const words of f.evidence) expect(evidence).toContain(words);
  expect(evidence.length).toBeLessThan(400);
}

describe('classifyAnswer: Anthropic header sets', () => {
  it.each(ANTHROPIC_FIXTURES.map((f) => [f.name, f] as const))('%s', (_name, f) => check('anthropic', f));
});

describe('classifyAnswer: Anthropic edge cases', () => {
  it.each(ANTHROPIC_EDGE_FIXTURES.map((f) => [f.name, f] as const))('%s', (_name, f) => check('anthropic', f));
});

describe('classifyAnswer: OpenAI and Codex', () => {
  it.each(OPENAI_FIXTURES.map((f) => [f.name, f] as const))('%s', (_name, f) => check('openai', f));
});

describe('classifyAnswer: Gemini', () => {
  it.each(GEMINI_FIXTURES.map((f) => [f.name, f] as const))('%s', (_name, f) => check('gemini', f));
});

describe('classifyAnswer: general rules', () => {
  it('a request-scoped cool-down never passes 60 s and is at least 1 s', () => {
    for (const retryAfter of ['0', '1', '59', '60', '61', '86400', 'Sun, 01 Mar 2026 13:00:00 GMT']) {
      const c = classifyAnswer({ provider: 'anthropic', status: 429, headers: { 'retry-after': retryAfter }, now: NOW });
      expect(c.scope).toBe('request');
      expect(c.until! - NOW).toBeGreaterThanOrEqual(1_000);
      expect(c.until! - NOW).toBeLessThanOrEqual(60_000);
    }
  });

  it('retry-after-ms when retry-after is absent', () => {
    const c = classifyAnswer({ provider: 'anthropic', status: 429, headers: { 'retry-after-ms': '2500' }, now: NOW });
    expect(c).toMatchObject({ scope: 'request', until: NOW + 2_500 });
  });

  it('2xx of any kind is ok; 404 and 413 are no pool concern', () => {
    for (const status of [200, 201, 204]) expect(classifyAnswer({ provider: 'openai', status, headers: {}, now: NOW }).scope).toBe('ok');
    for (const status of [404, 413, 422]) {
      expect(classifyAnswer({ provider: 'anthropic', status, headers: {}, now: NOW })).toMatchObject({ scope: 'other', failover: false });
    }
  });

  it('402 is billing on every provider', () => {
    for (const provider of ['anthropic', 'openai', 'gemini'] as const)
      expect(classifyAnswer({ provider, status: 402, headers: {}, now: NOW })).toMatchObject({ scope: 'billing', failover: false });
  });

  it('evidence never carries header values it was not asked to show (no tokens, no org ids)', () => {
    const c = classifyAnswer({
      provider: 'anthropic',
      status: 429,
      headers: { authorization: 'Bearer sk-ant-oat01-secret', 'anthropic-organization-id': 'org-secret-id', 'retry-after': '5' },
      now: NOW,
    });
    expect(c.evidence).not.toMatch(/secret/);
  });
});

describe('classifyStreamError', () => {
  const ALLOWED = {
    'anthropic-ratelimit-unified-status': 'allowed',
    'anthropic-ratelimit-unified-5h-status': 'allowed',
    'anthropic-ratelimit-unified-5h-utilization': '0.98',
    'anthropic-ratelimit-unified-5h-reset': String(RESET_5H / 1000),
  };

  it('overloaded_error before content → overload, fail over', () => {
    expect(classifyStreamError({ provider: 'anthropic', errorType: 'overloaded_error', headers: ALLOWED, now: NOW })).toMatchObject({
      scope: 'overload',
      until: NOW + 30_000,
      failover: true,
    });
  });

  it('rate_limit_error with allowed headers → request-scoped', () => {
    expect(classifyStreamError({ provider: 'anthropic', errorType: 'rate_limit_error', headers: ALLOWED, now: NOW })).toMatchObject({
      scope: 'request',
      failover: true,
    });
    expect(classifyStreamError({ provider: 'anthropic', errorType: 'rate_limit_error', now: NOW })).toMatchObject({ scope: 'request' });
  });

  it("rate_limit_error whose answer's headers say the window is rejected → that window", () => {
    const c = classifyStreamError({
      provider: 'anthropic',
      errorType: 'rate_limit_error',
      headers: { ...ALLOWED, 'anthropic-ratelimit-unified-status': 'rejected', 'anthropic-ratelimit-unified-5h-status': 'rejected' },
      now: NOW,
    });
    expect(c).toMatchObject({ scope: 'window', window: 'five_hour', until: RESET_5H, failover: true });
    expect(c.evidence).toContain('stream rate_limit_error');
  });

  it('rate_limit_error with an opus bucket rejected → the opus family', () => {
    const c = classifyStreamError({
      provider: 'anthropic',
      errorType: 'rate_limit_error',
      model: 'claude-opus-4-1',
      headers: {
        ...ALLOWED,
        'anthropic-ratelimit-unified-7d_opus-status': 'rejected',
        'anthropic-ratelimit-unified-7d_opus-reset': String(RESET_5H / 1000),
      },
      now: NOW,
    });
    expect(c).toMatchObject({ scope: 'family', family: 'opus', window: 'seven_day_opus' });
  });

  it('other stream errors: auth, billing, or no pool concern', () => {
    expect(classifyStreamError({ provider: 'anthropic', errorType: 'authentication_error', now: NOW }).scope).toBe('auth');
    expect(classifyStreamError({ provider: 'openai', errorType: 'insufficient_quota', now: NOW })).toMatchObject({
      scope: 'billing',
      failover: false,
    });
    expect(classifyStreamError({ provider: 'anthropic', errorType: 'api_error', now: NOW })).toMatchObject({
      scope: 'other',
      failover: false,
    });
  });

  it('codex usage_limit_reached in a stream with exhausted headers → the window', () => {
    const c = classifyStreamError({
      provider: 'openai',
      errorType: 'usage_limit_reached',
      headers: { 'x-codex-primary-used-percent': '100', 'x-codex-primary-reset-after-seconds': '600' },
      now: NOW,
    });
    expect(c).toMatchObject({ scope: 'window', window: 'primary', until: NOW + 600_000 });
  });
});

describe('overageOf (plan limits only)', () => {
  it('overage-in-use: true → in use', () => {
    expect(
      overageOf('anthropic', {
        'anthropic-ratelimit-unified-status': 'allowed',
        'anthropic-ratelimit-unified-representative-claim': 'overage',
        'anthropic-ratelimit-unified-overage-in-use': 'true',
        'anthropic-ratelimit-unified-overage-status': 'allowed',
      }),
    ).toMatchObject({ inUse: true, status: 'allowed', evidence: 'overage-in-use: true' });
  });

  it('overage allowed while the unified status is past the plan → in use', () => {
    expect(
      overageOf('anthropic', { 'anthropic-ratelimit-unified-status': 'rejected', 'anthropic-ratelimit-unified-overage-status': 'allowed' }),
    ).toMatchObject({ inUse: true, status: 'allowed' });
  });

  it('representative claim overage → in use', () => {
    expect(overageOf('anthropic', { 'anthropic-ratelimit-unified-representative-claim': 'overage' }).inUse).toBe(true);
  });

  it('a healthy account without extra usage (overage rejected, org_level_disabled) → not in use', () => {
    expect(
      overageOf('anthropic', {
        'anthropic-ratelimit-unified-status': 'allowed',
        'anthropic-ratelimit-unified-representative-claim': 'five_hour',
        'anthropic-ratelimit-unified-overage-status': 'rejected',
        'anthropic-ratelimit-unified-overage-disabled-reason': 'org_level_disabled',
        'anthropic-ratelimit-unified-overage-in-use': 'false',
      }),
    ).toEqual({ inUse: false, status: 'rejected' });
  });

  it('overage allowed but unused and the plan not passed → not in use', () => {
    expect(
      overageOf('anthropic', { 'anthropic-ratelimit-unified-status': 'allowed', 'anthropic-ratelimit-unified-overage-status': 'allowed' })
        .inUse,
    ).toBe(false);
  });

  it('included overage credit (seven_day_overage_included) is plan, not billing', () => {
    expect(
      overageOf('anthropic', {
        'anthropic-ratelimit-unified-status': 'allowed_warning',
        'anthropic-ratelimit-unified-representative-claim': 'seven_day_overage_included',
        'anthropic-ratelimit-unified-overage-status': 'rejected',
      }).inUse,
    ).toBe(false);
  });

  it('odd values fail closed', () => {
    expect(overageOf('anthropic', { 'anthropic-ratelimit-unified-overage-in-use': 'yes?' }).inUse).toBe(true);
    expect(
      overageOf('anthropic', { 'anthropic-ratelimit-unified-status': 'rejected', 'anthropic-ratelimit-unified-overage-status': 'maybe' })
        .inUse,
    ).toBe(true);
    expect(
      overageOf('anthropic', { 'anthropic-ratelimit-unified-status': 'weird', 'anthropic-ratelimit-unified-overage-status': 'allowed' })
        .inUse,
    ).toBe(true);
  });

  it('no overage headers, or another provider → not in use', () => {
    expect(overageOf('anthropic', {})).toEqual({ inUse: false });
    expect(overageOf('openai', { 'x-codex-credits-has-credits': 'true' })).toEqual({ inUse: false });
  });

  it('header names in any case', () => {
    expect(overageOf('anthropic', { 'Anthropic-Ratelimit-Unified-Overage-In-Use': 'TRUE' }).inUse).toBe(true);
  });
});

describe('errorBodyOf', () => {
  it('Anthropic, OpenAI, Codex and Gemini error bodies', () => {
    expect(
      errorBodyOf(Buffer.from('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}')),
    ).toEqual({ type: 'overloaded_error', message: 'Overloaded' });
    expect(
      errorBodyOf(
        '{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}',
      ),
    ).toMatchObject({ type: 'insufficient_quota' });
    expect(
      errorBodyOf('{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}'),
    ).toMatchObject({
      type: 'rate_limit_exceeded',
    });
    expect(
      errorBodyOf(
        '{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus","resets_at":1772373600,"resets_in_seconds":7200}}',
      ),
    ).toEqual({ type: 'usage_limit_reached', message: 'The usage limit has been reached', resetsAt: 1772373600, resetsInSeconds: 7200 });
    expect(
      errorBodyOf('[{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}]'),
    ).toEqual({
      type: 'RESOURCE_EXHAUSTED',
      message: 'Resource has been exhausted (e.g. check quota).',
    });
  });

  it('anything else → undefined', () => {
    for (const body of [undefined, '', 'not json', '{"ok":true}', '{"error":"invalid_grant"}', '{"error":{}}', 'x'.repeat(70_000)])
      expect(errorBodyOf(body)).toBeUndefined();
  });

  it('feeds classifyAnswer', () => {
    const errorBody = errorBodyOf('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}');
    expect(classifyAnswer({ provider: 'anthropic', status: 503, headers: {}, errorBody, now: NOW }).scope).toBe('overload');
  });
});
