// The one member-state predicate (src/pools/memberState.ts) that routing, GET /v1/pools, the
// exhausted answer and the metrics all read: pure inputs in, a state with its reason out.
import { describe, expect, it } from 'vitest';
import { memberStatus, type MemberInputs } from '../../src/pools/memberState.js';
import type { Cooldown } from '../../src/pools/routingState.js';
import type { RateLimitState } from '../../src/usage/rateLimits.js';

const NOW = Date.parse('2026-12-07T12:00:00.000Z');
const iso = (ms: number) => new Date(NOW + ms).toISOString();

function inputs(over: Partial<MemberInputs> = {}): MemberInputs {
  return {
    member: { paused: false, maxUtilization: 0.9 },
    credentialStatus: 'active',
    cooldowns: undefined,
    rateLimit: undefined,
    planLimitsOnly: true,
    now: NOW,
    ...over,
  };
}

const windows = (w: RateLimitState['windows']): RateLimitState => ({ observedAt: iso(-1000), windows: w });
const cooldown = (until: number | null, reason = 'benched'): Cooldown => ({ until, reason, evidence: reason, setAt: NOW - 5000, seq: 1 });

describe('memberStatus', () => {
  it('routable with nothing against it; paused, a login needed or disabled are said first', () => {
    expect(memberStatus(inputs())).toMatchObject({ state: 'routable', reason: null, until: null, recovering: false });
    expect(memberStatus(inputs({ member: { paused: true, maxUtilization: 1 } })).state).toBe('disabled');
    expect(memberStatus(inputs({ credentialStatus: 'reauth_required' })).state).toBe('reauth_required');
    expect(memberStatus(inputs({ credentialStatus: 'disabled' })).reason).toBe('the credential is disabled');
  });

  it('a family bench leaves the member routable for other families; a credential bench for none', () => {
    const cooldowns = new Map([['opus', cooldown(NOW + 3600_000, 'seven_day_opus exhausted')]]);
    expect(memberStatus(inputs({ cooldowns, family: 'opus' }))).toMatchObject({ state: 'cooling', until: NOW + 3600_000 });
    expect(memberStatus(inputs({ cooldowns, family: 'sonnet' })).state).toBe('routable');
    const credential = new Map([['credential', cooldown(NOW + 60_000)]]);
    expect(memberStatus(inputs({ cooldowns: credential, family: 'sonnet' })).state).toBe('cooling');
  });

  it('a bench that ran out makes the next call a recovery probe', () => {
    const cooldowns = new Map([['credential', cooldown(NOW - 1)]]);
    expect(memberStatus(inputs({ cooldowns }))).toMatchObject({ state: 'routable', recovering: true });
  });

  it('over maxUtilization: Anthropic five_hour / seven_day and Codex primary / secondary, until the reset', () => {
    for (const name of ['five_hour', 'seven_day', 'primary', 'secondary']) {
      const s = memberStatus(inputs({ rateLimit: windows({ [name]: { utilization: 0.95, reset: iso(3600_000) } }) }));
      expect(s, name).toMatchObject({ state: 'over_threshold', until: NOW + 3600_000 });
      expect(s.reason).toBe(`${name} at 95 % (limit 90 %)`);
    }
  });

  it('not over: a window under the limit, one whose reset passed (unknown), per-minute API windows, another family', () => {
    const rateLimit = windows({
      five_hour: { utilization: 0.5, reset: iso(3600_000) },
      seven_day: { utilization: 1, reset: iso(-1000) },
      requests: { utilization: 1, reset: iso(30_000) },
      one_day_pro: { utilization: 1, reset: iso(3600_000) },
    });
    expect(memberStatus(inputs({ rateLimit, family: 'flash' })).state).toBe('routable');
    expect(memberStatus(inputs({ rateLimit, family: 'pro' }))).toMatchObject({
      state: 'over_threshold',
      reason: 'one_day_pro at 100 % (limit 90 %)',
    });
  });

  it('billing blocks only while the pool takes plan limits only', () => {
    const cooldowns = new Map([['billing', cooldown(NOW + 600_000, 'extra usage in use')]]);
    expect(memberStatus(inputs({ cooldowns })).state).toBe('billing_blocked');
    expect(memberStatus(inputs({ cooldowns, planLimitsOnly: false })).state).toBe('routable');
  });
});
