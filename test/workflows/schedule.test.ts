import { describe, expect, it } from 'vitest';
import { MAX_SLEEP_MS, nextRefreshAt, refreshDelayForLifetime, sleepDuration } from '../../src/model/refreshSchedule.js';

const H = 3600_000;
const M = 60_000;

describe('refresh schedule', () => {
  it('refreshes at 80 % of a long lifetime', () => {
    expect(refreshDelayForLifetime(8 * H)).toBe(6.4 * H);
  });
  it('refreshes 5 minutes before expiry when that comes sooner than 80 %', () => {
    expect(refreshDelayForLifetime(20 * M)).toBe(15 * M);
  });
  it('refreshes halfway through a very short lifetime (never after expiry, never in a loop)', () => {
    expect(refreshDelayForLifetime(2 * M)).toBe(1 * M);
    expect(refreshDelayForLifetime(10 * M)).toBe(5 * M);
  });
  it('refreshes at once when the token is already expired', () => {
    expect(refreshDelayForLifetime(-5 * M)).toBe(0);
    expect(nextRefreshAt({ obtainedAt: 1_000, expiresAt: 1_000 })).toBe(1_000);
  });
  it('never refreshes sooner than 10 s after the previous refresh', () => {
    expect(nextRefreshAt({ obtainedAt: 0, expiresAt: 2_000, lastRefreshAt: 500 })).toBe(10_500);
    expect(nextRefreshAt({ obtainedAt: 0, expiresAt: 8 * H, lastRefreshAt: 0 })).toBe(6.4 * H);
  });
  it('never sleeps more than 24 hours at once, and never a negative time', () => {
    expect(sleepDuration(30 * 24 * H, 0)).toBe(MAX_SLEEP_MS);
    expect(sleepDuration(5, 10)).toBe(0);
    expect(sleepDuration(10 * H, 4 * H)).toBe(6 * H);
  });
});
