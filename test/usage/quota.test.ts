// The quota endpoints' answers in the one rate-limit shape, and the rules header and endpoint
// windows share (src/usage/quota.ts, src/workflows/quotaSchedule.ts).
import { describe, expect, it } from 'vitest';
import { asOf, hasRoom, mergeRateLimits, parseQuotaAnswer, stampWindows, withHeaderObservation } from '../../src/usage/quota.js';
import {
  BENCHED_READ_EVERY_MS,
  backoffAfter,
  MAX_QUOTA_BACKOFF_MS,
  nextQuotaReadAt,
  type QuotaCarried,
} from '../../src/workflows/quotaSchedule.js';
import type { RateLimitState } from '../../src/usage/rateLimits.js';

const now = new Date('2026-12-07T12:00:00.000Z');
const at = (ms: number) => new Date(now.getTime() + ms).toISOString();

describe('parseQuotaAnswer', () => {
  it('reads Anthropic /api/oauth/usage: percent becomes a fraction (26 → 0.26), null windows are left out', () => {
    const state = parseQuotaAnswer(
      'anthropic-oauth-usage',
      {
        five_hour: { utilization: 26, resets_at: '2026-12-07T14:59:59.600956+00:00' },
        seven_day: { utilization: 36.5, resets_at: '2026-12-10T06:59:59.600974+00:00' },
        seven_day_sonnet: { utilization: 1, resets_at: '2026-12-10T14:59:59.600981+00:00' },
        seven_day_opus: null,
        iguana_necktie: null,
        extra_usage: { is_enabled: false, monthly_limit: null, used_credits: null, utilization: null },
      },
      now,
    );
    expect(state).toEqual({
      observedAt: now.toISOString(),
      windows: {
        five_hour: { utilization: 0.26, reset: '2026-12-07T14:59:59.600Z', source: 'endpoint', observedAt: now.toISOString() },
        seven_day: { utilization: 0.365, reset: '2026-12-10T06:59:59.600Z', source: 'endpoint', observedAt: now.toISOString() },
        seven_day_sonnet: { utilization: 0.01, reset: '2026-12-10T14:59:59.600Z', source: 'endpoint', observedAt: now.toISOString() },
      },
      overage: { status: 'disabled' },
    });
  });

  it('reads an answer that has only the newer limits[] list', () => {
    const state = parseQuotaAnswer(
      'anthropic-oauth-usage',
      {
        limits: [
          { window: 'five_hour', utilization: 100, resets_at: at(3600_000) },
          { name: 'seven_day_opus', utilization: 12, resets_at: at(86_400_000) },
          { utilization: 50 }, // no name: ignored
          'nonsense',
        ],
      },
      now,
    );
    expect(state?.windows).toEqual({
      five_hour: { utilization: 1, reset: at(3600_000), source: 'endpoint', observedAt: now.toISOString() },
      seven_day_opus: { utilization: 0.12, reset: at(86_400_000), source: 'endpoint', observedAt: now.toISOString() },
    });
    expect(hasRoom(state!, now.getTime())).toBe(false);
  });

  it('a null resets_at is unknown capacity: no utilization, never exhausted', () => {
    const state = parseQuotaAnswer('anthropic-oauth-usage', { five_hour: { utilization: 100, resets_at: null } }, now)!;
    expect(state.windows.five_hour).toEqual({ source: 'endpoint', observedAt: now.toISOString() });
    expect(hasRoom(state, now.getTime())).toBe(true);
  });

  it('reads ChatGPT /wham/usage primary and secondary windows', () => {
    const resetAt = Math.floor(now.getTime() / 1000) + 600;
    const state = parseQuotaAnswer(
      'chatgpt-wham-usage',
      {
        plan_type: 'pro',
        rate_limit: {
          allowed: true,
          limit_reached: false,
          primary_window: { used_percent: 3, limit_window_seconds: 18_000, reset_at: resetAt },
          secondary_window: { used_percent: 40, limit_window_seconds: 604_800, reset_after_seconds: 7200 },
        },
      },
      now,
    );
    expect(state).toEqual({
      observedAt: now.toISOString(),
      status: 'allowed',
      windows: {
        primary: {
          utilization: 0.03,
          reset: new Date(resetAt * 1000).toISOString(),
          windowMinutes: 300,
          source: 'endpoint',
          observedAt: now.toISOString(),
        },
        secondary: { utilization: 0.4, reset: at(7200_000), windowMinutes: 10_080, source: 'endpoint', observedAt: now.toISOString() },
      },
    });
  });

  it('keeps ChatGPT credits (balance as text)', () => {
    const state = parseQuotaAnswer(
      'chatgpt-wham-usage',
      {
        rate_limit: { primary_window: { used_percent: 1, reset_after_seconds: 60 } },
        credits: { has_credits: true, unlimited: false, balance: 5.39 },
      },
      now,
    )!;
    expect(state.credits).toEqual({ hasCredits: true, unlimited: false, balance: '5.39' });
  });

  it('reads Code Assist buckets: fraction left → utilization, one daily window per model family, the most used standing for it', () => {
    const reset = at(3600_000);
    const state = parseQuotaAnswer(
      'code-assist-user-quota',
      {
        buckets: [
          { modelId: 'gemini-2.5-pro', tokenType: 'REQUESTS', remainingFraction: 0.87, resetTime: reset },
          { modelId: 'gemini-3-pro-preview', tokenType: 'REQUESTS', remainingFraction: 0.25, resetTime: reset },
          { modelId: 'gemini-2.5-flash-lite', tokenType: 'REQUESTS', remainingFraction: 1 },
          { modelId: 'gemini-embedding-001', remainingFraction: 0 },
          { modelId: '', remainingFraction: 0 },
          { tokenType: 'REQUESTS', remainingFraction: 0 },
        ],
      },
      now,
    )!;
    const stamp = { source: 'endpoint', observedAt: now.toISOString(), windowMinutes: 1440 };
    expect(state.windows).toEqual({
      one_day_pro: { ...stamp, utilization: 0.75, reset },
      one_day_flash_lite: { ...stamp, utilization: 0 },
      one_day_gemini_embedding_001: { ...stamp, utilization: 1 },
    });
    expect(hasRoom(state, now.getTime())).toBe(false);
    expect(parseQuotaAnswer('code-assist-user-quota', { buckets: [] }, now)).toBeUndefined();
  });

  it('an answer without any window is nothing', () => {
    expect(parseQuotaAnswer('anthropic-oauth-usage', { five_hour: null }, now)).toBeUndefined();
    expect(parseQuotaAnswer('anthropic-oauth-usage', 'text', now)).toBeUndefined();
    expect(parseQuotaAnswer('chatgpt-wham-usage', [], now)).toBeUndefined();
  });
});

describe('one quota model for headers and endpoints', () => {
  const header: RateLimitState = stampWindows(
    {
      observedAt: at(-60_000),
      status: 'allowed',
      windows: { five_hour: { utilization: 0.9, reset: at(3600_000) }, requests: { remaining: 5 } },
    },
    'header',
  );

  it('merges window by window, the newer observation winning, each with its source and age', () => {
    const read = parseQuotaAnswer('anthropic-oauth-usage', { five_hour: { utilization: 20, resets_at: at(7200_000) } }, now)!;
    const merged = mergeRateLimits(header, read)!;
    expect(merged.windows.five_hour).toEqual({ utilization: 0.2, reset: at(7200_000), source: 'endpoint', observedAt: now.toISOString() });
    expect(merged.windows.requests).toEqual({ remaining: 5, source: 'header', observedAt: at(-60_000) });
    expect(merged.status).toBe('allowed');
    // The other way round gives the same windows.
    expect(mergeRateLimits(read, header)!.windows).toEqual(merged.windows);
  });

  it('a reset that moves by under 60 s is jitter: the known reset stays', () => {
    const read = parseQuotaAnswer('anthropic-oauth-usage', { five_hour: { utilization: 95, resets_at: at(3600_000 + 30_000) } }, now)!;
    expect(mergeRateLimits(header, read)!.windows.five_hour).toMatchObject({ utilization: 0.95, reset: at(3600_000), source: 'endpoint' });
    const moved = parseQuotaAnswer('anthropic-oauth-usage', { five_hour: { utilization: 5, resets_at: at(3600_000 + 120_000) } }, now)!;
    expect(mergeRateLimits(header, moved)!.windows.five_hour!.reset).toBe(at(3600_000 + 120_000));
  });

  it('a window whose reset has passed is unknown, never exhausted', () => {
    const used = parseQuotaAnswer('anthropic-oauth-usage', { five_hour: { utilization: 100, resets_at: at(60_000) } }, now)!;
    expect(hasRoom(used, now.getTime())).toBe(false);
    const later = now.getTime() + 61_000;
    expect(asOf(used, later).windows.five_hour).toEqual({ reset: at(60_000), source: 'endpoint', observedAt: now.toISOString() });
    expect(hasRoom(used, later)).toBe(true);
  });

  it('stale holds only while the newest read was refused', () => {
    const refused: RateLimitState = { observedAt: now.toISOString(), windows: {}, stale: true };
    expect(mergeRateLimits(header, refused)!.stale).toBe(true);
    expect(mergeRateLimits(refused, { ...header, observedAt: at(1000) })!.stale).toBeUndefined();
  });
  it('the book’s one-pass merge of a header observation equals the general merge of the stamped observation', () => {
    const at = (s: number) => new Date(Date.UTC(2026, 11, 7, 12, 0, s)).toISOString();
    const reset = (s: number) => new Date(Date.UTC(2026, 11, 7, 17, 0, s)).toISOString();
    const fresh = (t: number, windows: RateLimitState['windows']): RateLimitState => ({
      observedAt: at(t),
      windows: structuredClone(windows),
    });
    const before: RateLimitState = mergeRateLimits(
      stampWindows(fresh(10, { five_hour: { utilization: 0.5, reset: reset(0) }, seven_day: { utilization: 0.2 } }), 'header'),
      stampWindows({ observedAt: at(20), windows: { opus: { utilization: 0.9, reset: reset(0) } }, stale: true }, 'endpoint'),
    )!;
    const cases: RateLimitState['windows'][] = [
      { five_hour: { utilization: 0.6, reset: reset(30) } }, // jitter: the known reset stays
      { five_hour: { utilization: 0.1, reset: reset(600) } }, // a new window
      { opus: { utilization: 0.1 }, tokens: { remaining: 5 } }, // newer than the endpoint's opus
      {},
    ];
    for (const windows of cases) {
      for (const t of [30, 15, 5]) {
        // later than everything, between the two, older than both
        const expected = mergeRateLimits(before, stampWindows(fresh(t, windows), 'header'));
        expect(withHeaderObservation(structuredClone(before), fresh(t, windows))).toEqual(expected);
      }
    }
    expect(withHeaderObservation(undefined, fresh(1, { tokens: { remaining: 5 } }))).toEqual(
      stampWindows(fresh(1, { tokens: { remaining: 5 } }), 'header'),
    );
  });
});

describe('quota read schedule', () => {
  const t = now.getTime();
  const half = () => 0.5;

  it('idle: the first read anywhere in the first interval, then every interval ±10 %', () => {
    expect(nextQuotaReadAt({}, t, 900_000, half)).toBe(t + 450_000);
    expect(nextQuotaReadAt({ lastReadAt: t }, t, 900_000, () => 0)).toBe(t + 810_000);
    expect(nextQuotaReadAt({ lastReadAt: t }, t, 900_000, () => 0.999)).toBeLessThan(t + 990_001);
  });

  it('interval 0: only while benched', () => {
    expect(nextQuotaReadAt({ lastReadAt: t }, t, 0, half)).toBeNull();
    expect(nextQuotaReadAt({ benchedUntil: t + 3 * 3600_000 }, t, 0, () => 0.999)).toBeLessThanOrEqual(t + BENCHED_READ_EVERY_MS);
  });

  it('benched until a reset more than 15 minutes away: at least every 5 minutes; a short bench: at its end', () => {
    const long = nextQuotaReadAt({ benchedUntil: t + 3600_000, lastReadAt: t }, t, 900_000, half)!;
    expect(long - t).toBeGreaterThanOrEqual(0.8 * BENCHED_READ_EVERY_MS);
    expect(long - t).toBeLessThanOrEqual(BENCHED_READ_EVERY_MS);
    expect(nextQuotaReadAt({ benchedUntil: t + 600_000, lastReadAt: t }, t, 900_000, half)).toBe(t + 600_000);
  });

  it('repeated 429s back off to an hour; retry-after is a floor', () => {
    const q: QuotaCarried = {};
    const delays = Array.from({ length: 10 }, () => backoffAfter(q, t, 0) - t);
    expect(delays.slice(0, 4)).toEqual([60_000, 120_000, 240_000, 480_000]);
    expect(Math.max(...delays)).toBe(MAX_QUOTA_BACKOFF_MS);
    expect(backoffAfter({}, t, 300_000) - t).toBe(300_000);
    expect(nextQuotaReadAt({ lastReadAt: t, notBefore: t + 3600_000 }, t, 900_000, half)).toBe(t + 3600_000);
    expect(nextQuotaReadAt({ unsupported: true }, t, 900_000, half)).toBeNull();
  });
});
