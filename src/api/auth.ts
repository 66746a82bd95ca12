// Clients present a Maestro key as `Authorization: Bearer <key>` or `x-api-key: <key>`.
// Keys are compared as SHA-256 digests with timingSafeEqual, so timing reveals neither content nor length.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import type { ClientAddress } from './clientAddress.js';
import { HttpError } from './errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  const apiKey = headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.length > 0 ? apiKey.trim() : undefined;
}

/** The key check on plain headers: undefined when a valid key is presented, else the 401 to answer. */
export function apiKeyCheck(keys: string[]): (headers: IncomingHttpHeaders) => HttpError | undefined {
  const digests = keys.map(digest);
  return (headers) => {
    const key = presentedKey(headers);
    if (key === undefined)
      return new HttpError(401, 'unauthorized', 'missing Maestro API key: send Authorization: Bearer <key> or x-api-key: <key>');
    const presented = digest(key);
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, presented) || ok; // check every key: no early exit
    return ok ? undefined : new HttpError(401, 'unauthorized', 'invalid Maestro API key');
  };
}

/**
 * The key check with the failed-check limit in front: the one gate for Express routes and the
 * proxy's fast path. Undefined when the caller may go on, else the 401 or 429 to answer.
 */
export function keyGate(
  check: ReturnType<typeof apiKeyCheck>,
  limiter: FailedAuthLimiter,
  addressOf: ClientAddress,
): (req: IncomingMessage) => HttpError | undefined {
  return (req) => {
    // The address is worked out only when it matters: some address is blocked, or this check failed.
    const limited = limiter.anyBlocked ? limiter.refused(addressOf(req)) : undefined;
    if (limited) return limited;
    const denied = check(req.headers);
    if (denied) limiter.failed(addressOf(req));
    return denied;
  };
}

/** The same gate as Express middleware. */
export function requireApiKey(gate: ReturnType<typeof keyGate>): RequestHandler {
  return (req, _res, next) => next(gate(req));
}

/**
 * Failed key checks counted per client address in fixed one-minute windows; an address over the
 * limit is refused (429) before its key is even looked at, so guessing keys does not scale. Kept
 * synchronous and in memory: the proxy's hot path pays one Map lookup only while some address is
 * blocked, and the table is bounded (the oldest windows go first).
 */
export class FailedAuthLimiter {
  private readonly windows = new Map<string, { failures: number; resetAt: number }>();
  private blocked = 0;

  /** False on the hot path almost always: then no request needs its address looked up. */
  get anyBlocked(): boolean {
    return this.blocked > 0;
  }

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly maxAddresses = 10_000,
  ) {}

  /** The 429 to answer when `address` is over its limit, else undefined. */
  refused(address: string, now = Date.now()): HttpError | undefined {
    if (this.blocked === 0) return undefined;
    const entry = this.windows.get(address);
    if (!entry || entry.failures < this.limit) return undefined;
    if (entry.resetAt <= now) {
      this.windows.delete(address);
      this.blocked--;
      return undefined;
    }
    const seconds = Math.ceil((entry.resetAt - now) / 1000);
    const error = new HttpError(429, 'rate_limited', `too many failed key checks from this address; try again in ${seconds} s`);
    error.retryAfterSeconds = seconds;
    return error;
  }

  /** Counts one failed key check for `address`. */
  failed(address: string, now = Date.now()): void {
    let entry = this.windows.get(address);
    if (entry && entry.resetAt <= now) {
      if (entry.failures >= this.limit) this.blocked--;
      this.windows.delete(address);
      entry = undefined;
    }
    if (!entry) {
      if (this.windows.size >= this.maxAddresses) this.evictOldest();
      if (this.windows.size >= this.maxAddresses) return;
      entry = { failures: 0, resetAt: now + this.windowMs };
      this.windows.set(address, entry);
    }
    entry.failures++;
    if (entry.failures === this.limit) this.blocked++;
  }

  /** Makes room: the oldest address that is not blocked goes (a flood of new addresses cannot free a blocked one). */
  private evictOldest(): void {
    for (const [address, entry] of this.windows) {
      if (entry.failures < this.limit) {
        this.windows.delete(address);
        return;
      }
    }
    // Every tracked address is blocked: refuse to forget any; this window is simply not counted.
  }
}
