// limits.requestsPerMinute, per key, in fixed one-minute windows held in this process's memory
// (no query per request). With several API processes behind one port each counts its own share:
// the README says so (a key can make up to N × its limit per minute across N processes).
import { LimitExceededError } from '../errors.js';
import type { Principal } from './registry.js';

export class RequestRateLimiter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  /** Counts one request for the key; throws 429 `rate_limited` past its limit. */
  admit(p: Principal, now = Date.now()): void {
    const limit = p.limits.requestsPerMinute;
    if (limit === undefined) return;
    let w = this.windows.get(p.keyId);
    if (!w || w.resetAt <= now) {
      // Expired windows are dropped as they are met; a sweep keeps the map from growing with idle keys.
      if (this.windows.size > 10_000) for (const [id, old] of this.windows) if (old.resetAt <= now) this.windows.delete(id);
      w = { count: 0, resetAt: now + 60_000 };
      this.windows.set(p.keyId, w);
    }
    if (w.count >= limit) {
      const seconds = Math.max(1, Math.ceil((w.resetAt - now) / 1000));
      throw new LimitExceededError(
        'rate_limited',
        `Maestro key ${p.keyId} is over its limit of ${limit} requests per minute; try again in ${seconds} s`,
        seconds,
      );
    }
    w.count++;
  }
}
