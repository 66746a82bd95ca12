// Clients present a Maestro key as `Authorization: Bearer <key>`, `x-api-key: <key>` or `x-goog-api-key: <key>`. The gate
// checks it against the in-memory key registry (src/clientKeys/registry.ts: no database query),
// counts failures per client address, applies the key's request rate, notes its use, and leaves
// the caller's Principal on the request for the routes and the proxy to authorise against.
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import type { LastUsedRecorder } from '../clientKeys/lastUsed.js';
import type { KeyRegistry, Principal } from '../clientKeys/registry.js';
import type { RequestRateLimiter } from '../clientKeys/requestRate.js';
import { HttpError, MaestroError, UnauthorizedError } from '../errors.js';
import type { ClientAddress } from './clientAddress.js';

export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  // x-api-key: what Anthropic SDKs send; x-goog-api-key: what Gemini SDKs send (neither reaches a provider).
  const apiKey = headers['x-api-key'] ?? headers['x-goog-api-key'];
  return typeof apiKey === 'string' && apiKey.length > 0 ? apiKey.trim() : undefined;
}

const principals = new WeakMap<IncomingMessage, Principal>();

/** The caller of a request that passed the gate. */
export function principalOf(req: IncomingMessage): Principal {
  const p = principals.get(req);
  if (!p) throw new Error('no principal on this request: the route is not behind the key gate');
  return p;
}

/** The key id for the request log line (never the key), when the request passed the gate. */
export const keyIdOf = (req: IncomingMessage): string | undefined => principals.get(req)?.keyId;

export interface GateDeps {
  keys: Pick<KeyRegistry, 'authenticate'>;
  limiter: FailedAuthLimiter;
  addressOf: ClientAddress;
  rate: RequestRateLimiter;
  /** limits.tokensPerDay (src/usage/recorder.ts): throws 429 budget_exceeded. */
  budget: { admit(p: Principal): void };
  lastUsed: Pick<LastUsedRecorder, 'used'>;
}

/**
 * The one gate for Express routes and the proxy's fast path: undefined when the caller may go
 * on (its Principal is then on the request), else the 401, 429 or 403 to answer.
 */
export type Gate = (req: IncomingMessage) => MaestroError | undefined | Promise<MaestroError | undefined>;

export function keyGate(deps: GateDeps): Gate {
  const admit = (req: IncomingMessage, who: Principal | MaestroError): MaestroError | undefined => {
    if (who instanceof MaestroError) {
      if (who instanceof UnauthorizedError) deps.limiter.failed(deps.addressOf(req));
      return who;
    }
    try {
      deps.budget.admit(who); // read-only: a refused call does not use up the request rate
      deps.rate.admit(who);
    } catch (error) {
      return error as MaestroError;
    }
    deps.lastUsed.used(who.keyId);
    principals.set(req, who);
    return undefined;
  };
  return (req) => {
    // The address is worked out only when it matters: some address is blocked, or this check failed.
    const limited = deps.limiter.anyBlocked ? deps.limiter.refused(deps.addressOf(req)) : undefined;
    if (limited) return limited;
    const who = deps.keys.authenticate(presentedKey(req.headers));
    // A promise only for a key this process has not seen yet (one lookup); a database error is answered as such.
    if (who instanceof Promise)
      return who.then(
        (p) => admit(req, p),
        (error: unknown) => error as MaestroError,
      );
    return admit(req, who);
  };
}

/** The same gate as Express middleware. */
export function requireApiKey(gate: Gate): RequestHandler {
  return (req, _res, next) => {
    const denied = gate(req);
    if (denied instanceof Promise) void denied.then(next);
    else next(denied);
  };
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
      this.forget(address, entry);
      return undefined;
    }
    const seconds = Math.ceil((entry.resetAt - now) / 1000);
    return new HttpError(429, 'rate_limited', `too many failed key checks from this address; try again in ${seconds} s`, {
      retryAfterSeconds: seconds,
    });
  }

  /** Counts one failed key check for `address`. */
  failed(address: string, now = Date.now()): void {
    let entry = this.windows.get(address);
    if (entry && entry.resetAt <= now) {
      this.forget(address, entry);
      entry = undefined;
    }
    if (!entry) {
      if (this.windows.size >= this.maxAddresses) this.makeRoom(now);
      if (this.windows.size >= this.maxAddresses) return;
      entry = { failures: 0, resetAt: now + this.windowMs };
      this.windows.set(address, entry);
    }
    entry.failures++;
    if (entry.failures === this.limit) this.blocked++;
  }

  private forget(address: string, entry: { failures: number }): void {
    if (entry.failures >= this.limit) this.blocked--;
    this.windows.delete(address);
  }

  /**
   * Makes room: windows that have ended go first (else a table full of blocks that ended long ago,
   * which nobody asks about again, would switch the limiter off for good); failing that, the oldest
   * address that is not blocked (a flood of new addresses cannot free a blocked one).
   */
  private makeRoom(now: number): void {
    this.evictEnded(now);
    if (this.windows.size >= this.maxAddresses) this.evictOldestUnblocked();
  }

  /** Entries are inserted in the order their windows end, so the ended ones are at the front. */
  private evictEnded(now: number): void {
    for (const [address, entry] of this.windows) {
      if (entry.resetAt > now) return;
      this.forget(address, entry);
    }
  }

  private evictOldestUnblocked(): void {
    for (const [address, entry] of this.windows) {
      if (entry.failures < this.limit) {
        this.windows.delete(address);
        return;
      }
    }
    // Every tracked address is blocked: refuse to forget any; this window is simply not counted.
  }
}
