// The provider's rate-limit state read from real-shaped answer headers, and nothing invented from
// garbage.
import { describe, expect, it } from 'vitest';
import { durationSeconds, parseRateLimitHeaders, unifiedWindowName } from '../../src/usage/rateLimits.js';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const iso = (unixSeconds: number) => new Date(unixSeconds * 1000).toISOString();
const later = (ms: number) => new Date(NOW.getTime() + ms).toISOString();

describe('parseRateLimitHeaders: Anthropic API keys', () => {
  it('requests, tokens, input and output token windows with RFC 3339 resets', () => {
    const state = parseRateLimitHeaders(
      'anthropic',
      {
        'content-type': 'application/json',
        'request-id': 'req_011CSHoEeqs5C35K2UUqR7Fy',
        'anthropic-organization-id': '0d5a6b0c-5c57-4e2a-8a64-0c2f1d0e1a2b',
        'anthropic-ratelimit-requests-limit': '4000',
        'anthropic-ratelimit-requests-remaining': '3999',
        'anthropic-ratelimit-requests-reset': '2026-03-01T12:00:12Z',
        'anthropic-ratelimit-tokens-limit': '2400000',
        'anthropic-ratelimit-tokens-remaining': '2398000',
        'anthropic-ratelimit-tokens-reset': '2026-03-01T12:00:05Z',
        'anthropic-ratelimit-input-tokens-limit': '2000000',
        'anthropic-ratelimit-input-tokens-remaining': '1999000',
        'anthropic-ratelimit-input-tokens-reset': '2026-03-01T12:00:01Z',
        'anthropic-ratelimit-output-tokens-limit': '400000',
        'anthropic-ratelimit-output-tokens-remaining': '399000',
        'anthropic-ratelimit-output-tokens-reset': '2026-03-01T12:00:09+00:00',
        'anthropic-priority-input-tokens-limit': '10000',
        'anthropic-priority-input-tokens-remaining': '9618',
        'anthropic-priority-input-tokens-reset': '2026-03-01T12:00:30Z',
      },
      NOW,
    );
    expect(state).toEqual({
      observedAt: NOW.toISOString(),
      windows: {
        requests: { limit: 4000, remaining: 3999, reset: '2026-03-01T12:00:12.000Z' },
        tokens: { limit: 2400000, remaining: 2398000, reset: '2026-03-01T12:00:05.000Z' },
        input_tokens: { limit: 2000000, remaining: 1999000, reset: '2026-03-01T12:00:01.000Z' },
        output_tokens: { limit: 400000, remaining: 399000, reset: '2026-03-01T12:00:09.000Z' },
        priority_input_tokens: { limit: 10000, remaining: 9618, reset: '2026-03-01T12:00:30.000Z' },
      },
    });
  });

  it('a 429 with retry-after', () => {
    const state = parseRateLimitHeaders(
      'anthropic',
      { 'retry-after': '30', 'anthropic-ratelimit-requests-limit': '50', 'anthropic-ratelimit-requests-remaining': '0' },
      NOW,
    );
    expect(state).toEqual({ observedAt: NOW.toISOString(), retryAfter: 30, windows: { requests: { limit: 50, remaining: 0 } } });
  });
});

describe('parseRateLimitHeaders: Anthropic subscriptions (unified)', () => {
  it('status, five_hour and seven_day windows, representative claim, overage, fallback', () => {
    const state = parseRateLimitHeaders(
      'anthropic',
      {
        'anthropic-ratelimit-unified-status': 'allowed_warning',
        'anthropic-ratelimit-unified-reset': '1772380800',
        'anthropic-ratelimit-unified-5h-status': 'allowed_warning',
        'anthropic-ratelimit-unified-5h-utilization': '0.92',
        'anthropic-ratelimit-unified-5h-reset': '1772380800',
        'anthropic-ratelimit-unified-5h-surpassed-threshold': '0.9',
        'anthropic-ratelimit-unified-7d-status': 'allowed',
        'anthropic-ratelimit-unified-7d-utilization': '0.42',
        'anthropic-ratelimit-unified-7d-reset': '1772812800',
        'anthropic-ratelimit-unified-7d_sonnet-utilization': '0.2',
        'anthropic-ratelimit-unified-7d_sonnet-reset': '1772812800',
        'anthropic-ratelimit-unified-7d_opus-status': 'rejected',
        'anthropic-ratelimit-unified-representative-claim': 'five_hour',
        'anthropic-ratelimit-unified-fallback-percentage': '0.5',
        'anthropic-ratelimit-unified-overage-status': 'rejected',
        'anthropic-ratelimit-unified-overage-reset': '1775001600',
        'anthropic-ratelimit-unified-overage-disabled-reason': 'org_level_disabled',
        'anthropic-ratelimit-unified-upgrade-paths': 'overage',
      },
      NOW,
    );
    expect(state).toEqual({
      observedAt: NOW.toISOString(),
      status: 'allowed_warning',
      reset: iso(1772380800),
      windows: {
        five_hour: { status: 'allowed_warning', utilization: 0.92, reset: iso(1772380800) },
        seven_day: { status: 'allowed', utilization: 0.42, reset: iso(1772812800) },
        seven_day_sonnet: { utilization: 0.2, reset: iso(1772812800) },
        seven_day_opus: { status: 'rejected' },
      },
      representativeClaim: 'five_hour',
      fallbackPercentage: 0.5,
      overage: { status: 'rejected', reset: iso(1775001600), disabledReason: 'org_level_disabled' },
    });
  });

  it('a rejected subscription answer (429): status, claim, reset, retry-after as an HTTP date', () => {
    const state = parseRateLimitHeaders(
      'anthropic',
      {
        'anthropic-ratelimit-unified-status': 'rejected',
        'anthropic-ratelimit-unified-representative-claim': 'seven_day',
        'anthropic-ratelimit-unified-reset': '1772384400',
        'retry-after': 'Sun, 01 Mar 2026 13:00:00 GMT',
      },
      NOW,
    );
    expect(state).toEqual({
      observedAt: NOW.toISOString(),
      status: 'rejected',
      reset: iso(1772384400),
      representativeClaim: 'seven_day',
      retryAfter: 3600,
      windows: {},
    });
  });

  it('names other unified families generically', () => {
    expect(unifiedWindowName('5h')).toBe('five_hour');
    expect(unifiedWindowName('7d')).toBe('seven_day');
    expect(unifiedWindowName('7d_opus')).toBe('seven_day_opus');
    expect(unifiedWindowName('7d_oi')).toBe('seven_day_oi');
    expect(unifiedWindowName('1h')).toBe('one_hour');
    expect(unifiedWindowName('30d')).toBe('30_day');
    expect(unifiedWindowName('slow-budget')).toBe('slow_budget');
  });
});

describe('parseRateLimitHeaders: OpenAI and Codex', () => {
  it('x-ratelimit-* with duration resets', () => {
    const state = parseRateLimitHeaders(
      'openai',
      {
        'x-ratelimit-limit-requests': '10000',
        'x-ratelimit-limit-tokens': '30000000',
        'x-ratelimit-remaining-requests': '9999',
        'x-ratelimit-remaining-tokens': '29999986',
        'x-ratelimit-reset-requests': '6ms',
        'x-ratelimit-reset-tokens': '6m0s',
        'openai-processing-ms': '344',
        'x-request-id': 'req_1',
      },
      NOW,
    );
    expect(state).toEqual({
      observedAt: NOW.toISOString(),
      windows: {
        requests: { limit: 10000, remaining: 9999, reset: later(6) },
        tokens: { limit: 30000000, remaining: 29999986, reset: later(360_000) },
      },
    });
  });

  it('Codex primary and secondary windows: used percent, window, reset-after-seconds or reset-at', () => {
    const state = parseRateLimitHeaders(
      'openai',
      {
        'x-codex-plan-type': 'plus',
        'x-codex-active-limit': 'codex',
        'x-codex-primary-used-percent': '42.5',
        'x-codex-primary-window-minutes': '300',
        'x-codex-primary-reset-after-seconds': '1200',
        'x-codex-secondary-used-percent': '13',
        'x-codex-secondary-window-minutes': '10080',
        'x-codex-secondary-reset-at': '1772812800',
        'x-codex-secondary-reset-after-seconds': '5',
        'x-codex-credits-has-credits': 'False',
        'x-codex-bengalfox-primary-used-percent': '100',
        'x-codex-bengalfox-primary-reset-at': '1772384400',
      },
      NOW,
    );
    expect(state).toEqual({
      observedAt: NOW.toISOString(),
      windows: {
        primary: { utilization: 0.425, windowMinutes: 300, reset: later(1_200_000) },
        secondary: { utilization: 0.13, windowMinutes: 10080, reset: iso(1772812800) },
        bengalfox_primary: { utilization: 1, reset: iso(1772384400) },
      },
    });
  });

  it('a Codex 429: retry-after and a full window', () => {
    expect(
      parseRateLimitHeaders(
        'openai',
        { 'retry-after': '7200', 'x-codex-primary-used-percent': '100', 'x-codex-primary-reset-at': '1772388000' },
        NOW,
      ),
    ).toEqual({ observedAt: NOW.toISOString(), retryAfter: 7200, windows: { primary: { utilization: 1, reset: iso(1772388000) } } });
  });

  it('retry-after-ms when retry-after is absent', () => {
    expect(parseRateLimitHeaders('openai', { 'retry-after-ms': '1500' }, NOW)).toEqual({
      observedAt: NOW.toISOString(),
      retryAfter: 2,
      windows: {},
    });
    expect(parseRateLimitHeaders('openai', { 'retry-after-ms': '1500', 'retry-after': '9' }, NOW)?.retryAfter).toBe(9);
  });

  it('durations', () => {
    expect(durationSeconds('1s')).toBe(1);
    expect(durationSeconds('20ms')).toBeCloseTo(0.02);
    expect(durationSeconds('6m0s')).toBe(360);
    expect(durationSeconds('1h2m3.5s')).toBe(3723.5);
    expect(durationSeconds('17')).toBe(17);
    expect(durationSeconds('soon')).toBeUndefined();
    expect(durationSeconds('5x')).toBeUndefined();
    expect(durationSeconds('')).toBeUndefined();
  });
});

describe('parseRateLimitHeaders: robustness', () => {
  it('undefined when there is no rate-limit header at all', () => {
    expect(parseRateLimitHeaders('anthropic', {}, NOW)).toBeUndefined();
    expect(parseRateLimitHeaders('openai', { 'content-type': 'application/json', 'x-request-id': 'r' }, NOW)).toBeUndefined();
    expect(parseRateLimitHeaders('gemini', { 'content-type': 'application/json', 'x-goog-api-client': 'x' }, NOW)).toBeUndefined();
  });

  it('gemini: only retry-after', () => {
    expect(parseRateLimitHeaders('gemini', { 'retry-after': '17', 'x-ratelimit-limit-requests': '5' }, NOW)).toEqual({
      observedAt: NOW.toISOString(),
      retryAfter: 17,
      windows: {},
    });
  });

  it("another provider's headers are not read", () => {
    expect(parseRateLimitHeaders('openai', { 'anthropic-ratelimit-unified-status': 'allowed' }, NOW)).toBeUndefined();
    expect(
      parseRateLimitHeaders('anthropic', { 'x-ratelimit-limit-requests': '5', 'x-codex-primary-used-percent': '5' }, NOW),
    ).toBeUndefined();
  });

  it('header names in any case, array values (first one), surrounding spaces', () => {
    expect(
      parseRateLimitHeaders(
        'anthropic',
        { 'Anthropic-Ratelimit-Unified-5h-Utilization': [' 0.25 ', '0.9'], 'ANTHROPIC-RATELIMIT-UNIFIED-STATUS': 'allowed' },
        NOW,
      ),
    ).toEqual({ observedAt: NOW.toISOString(), status: 'allowed', windows: { five_hour: { utilization: 0.25 } } });
  });

  it('ignores unparsable values one by one, and leaves no empty window behind', () => {
    const state = parseRateLimitHeaders(
      'anthropic',
      {
        'anthropic-ratelimit-requests-limit': 'lots',
        'anthropic-ratelimit-requests-remaining': '-1',
        'anthropic-ratelimit-requests-reset': 'tomorrow',
        'anthropic-ratelimit-tokens-limit': '1e309',
        'anthropic-ratelimit-tokens-remaining': '12',
        'anthropic-ratelimit-tokens-reset': '99999-99-99T00:00:00Z',
        'anthropic-ratelimit-unified-5h-utilization': 'NaN',
        'anthropic-ratelimit-unified-5h-reset': '0',
        'anthropic-ratelimit-unified-7d-reset': '1e99',
        'anthropic-ratelimit-unified-overage-reset': 'never',
        'anthropic-ratelimit-unified-reset': '',
        'anthropic-ratelimit-unified-fallback-percentage': 'half',
        'retry-after': 'whenever',
        'anthropic-ratelimit-': '3',
        'anthropic-ratelimit-unified-': 'x',
      },
      NOW,
    );
    expect(state).toEqual({ observedAt: NOW.toISOString(), windows: { tokens: { remaining: 12 } } });
    expect(
      parseRateLimitHeaders('anthropic', { 'anthropic-ratelimit-requests-limit': 'lots', 'retry-after': undefined }, NOW),
    ).toBeUndefined();
    expect(
      parseRateLimitHeaders(
        'openai',
        { 'x-ratelimit-reset-tokens': 'soon', 'x-codex-primary-used-percent': 'most', 'x-codex-primary-reset-at': '-5' },
        NOW,
      ),
    ).toBeUndefined();
    expect(parseRateLimitHeaders('openai', { 'x-ratelimit-remaining-requests': [] }, NOW)).toBeUndefined();
  });

  it('a retry-after date in the past is 0; fractional seconds round up', () => {
    expect(parseRateLimitHeaders('gemini', { 'retry-after': 'Sun, 01 Mar 2026 11:00:00 GMT' }, NOW)?.retryAfter).toBe(0);
    expect(parseRateLimitHeaders('gemini', { 'retry-after': '1.2' }, NOW)?.retryAfter).toBe(2);
  });

  it('observedAt defaults to now', () => {
    const state = parseRateLimitHeaders('gemini', { 'retry-after': '1' });
    expect(Math.abs(Date.parse(state!.observedAt) - Date.now())).toBeLessThan(5000);
  });
});
