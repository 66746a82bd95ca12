// When a credential's workflow reads its quota next (issue 30). Pure: the workflow passes its
// clock and its (replay-safe) random numbers in; tests call it directly.
//
// - Idle: every `intervalMs` (MAESTRO_QUOTA_INTERVAL), jittered ±10 %; the first read of a run
//   lands anywhere in the first interval, so a fleet started at once does not read at once.
//   `intervalMs` 0: only while benched or when asked.
// - Benched until a reset more than 15 minutes away: at least every 5 minutes (jittered 4–5 min),
//   until a read shows room or the bench ends. A shorter bench: one read at its end, before the
//   member takes a herd of requests.
// - The endpoint's own limits: a 429's retry-after is a floor; repeated 429s (or failures) back
//   off 1, 2, 4 … minutes up to an hour.

export const DEFAULT_QUOTA_INTERVAL_MS = 15 * 60_000;
export const BENCHED_READ_EVERY_MS = 5 * 60_000;
export const LONG_BENCH_MS = 15 * 60_000;
export const MAX_QUOTA_BACKOFF_MS = 60 * 60_000;
const FIRST_BACKOFF_MS = 60_000;

/** Plain-JSON quota schedule state carried across continue-as-new. */
export interface QuotaCarried {
  /** When the next read is due (ms since epoch); unset: compute it. */
  nextReadAt?: number;
  lastReadAt?: number;
  /** The last read's outcome (ok, stale, rate_limited, failed, unsupported, not_found). */
  lastOutcome?: string;
  /** A member benched until this time (from the quotaBenched signal); cleared by a read that shows room. */
  benchedUntil?: number;
  /** Consecutive reads that were refused with 429 or failed: the backoff's exponent. */
  backoffs?: number;
  /** No read before this (retry-after, backoff). */
  notBefore?: number;
  /** The credential could not be read (no endpoint, no project): not read again in this run; not carried to the next (patched). */
  unsupported?: boolean;
}

/** The next read for this state at `now`; null when none is scheduled. `random` is in [0, 1). */
export function nextQuotaReadAt(q: QuotaCarried, now: number, intervalMs: number, random: () => number): number | null {
  if (q.unsupported) return null;
  let next: number | null = null;
  if (q.benchedUntil !== undefined && q.benchedUntil > now) {
    next = q.benchedUntil - now > LONG_BENCH_MS ? now + BENCHED_READ_EVERY_MS * (0.8 + 0.2 * random()) : q.benchedUntil;
  }
  if (intervalMs > 0) {
    const idle = q.lastReadAt === undefined ? now + intervalMs * random() : q.lastReadAt + intervalMs * (0.9 + 0.2 * random());
    next = next === null ? idle : Math.min(next, idle);
  }
  if (next !== null && q.notBefore !== undefined) next = Math.max(next, q.notBefore);
  return next;
}

/** After a 429 (retry-after in ms, when it said) or a failed read: when the next may go. */
export function backoffAfter(q: QuotaCarried, now: number, retryAfterMs: number | undefined): number {
  const n = (q.backoffs ?? 0) + 1;
  q.backoffs = n;
  const backoff = Math.min(MAX_QUOTA_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.min(n - 1, 12));
  return now + Math.max(backoff, Math.min(retryAfterMs ?? 0, 24 * MAX_QUOTA_BACKOFF_MS));
}
