// When to refresh a token. Pure and deterministic: used inside the workflow and tested directly.
//
// With L = the token's lifetime as Maestro saw it (obtained → expires), refresh at
// min(0.8·L, max(0.5·L, L − 5 min)) after it was obtained: an 8-hour token at 6.4 h, a 20-minute
// one 5 minutes before expiry, a very short one halfway through its life. Never sooner than
// 10 s after the previous refresh (no refresh loop), and never sleep more than 24 h at once.

export const REFRESH_MARGIN_MS = 5 * 60_000;
export const MIN_REFRESH_SPACING_MS = 10_000;
export const MAX_SLEEP_MS = 24 * 60 * 60_000;

export interface ScheduleInput {
  /** When Maestro got or imported the current token (ms since epoch). */
  obtainedAt: number;
  /** When the current token expires (ms since epoch). */
  expiresAt: number;
  /** When this credential was last refreshed, if ever (ms since epoch). */
  lastRefreshAt?: number;
}

export function refreshDelayForLifetime(lifetimeMs: number): number {
  if (lifetimeMs <= 0) return 0;
  return Math.min(0.8 * lifetimeMs, Math.max(0.5 * lifetimeMs, lifetimeMs - REFRESH_MARGIN_MS));
}

export function nextRefreshAt({ obtainedAt, expiresAt, lastRefreshAt }: ScheduleInput): number {
  const due = obtainedAt + refreshDelayForLifetime(expiresAt - obtainedAt);
  return lastRefreshAt === undefined ? due : Math.max(due, lastRefreshAt + MIN_REFRESH_SPACING_MS);
}

/** How long to sleep now: until the refresh is due, capped at 24 h (wake, re-read, sleep again). */
export function sleepDuration(refreshAt: number, now: number): number {
  return Math.min(Math.max(0, refreshAt - now), MAX_SLEEP_MS);
}

/**
 * `expired` when now >= expiresAt; `expiring_soon` when now >= expiresAt - margin; else `valid`.
 * No expiry (API keys, tokens without a lifetime) is `valid`. An unparseable expiry is treated as
 * `expired`: forcing a refresh is safer than trusting a token whose lifetime we cannot read.
 */
export function validateTokenExpiry(
  expiresAt: Date | string | null,
  now: Date,
  marginMs = REFRESH_MARGIN_MS,
): 'valid' | 'expiring_soon' | 'expired' {
  if (expiresAt === null) return 'valid';
  const expiry = (typeof expiresAt === 'string' ? new Date(expiresAt) : expiresAt).getTime();
  if (Number.isNaN(expiry)) return 'expired';
  const t = now.getTime();
  if (t >= expiry) return 'expired';
  if (t >= expiry - marginMs) return 'expiring_soon';
  return 'valid';
}
