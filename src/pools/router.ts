// The pools' routing policy for one request, over the shared routing state (./routingState.ts):
// which members to try and in what order (the strategy, sessions first), and what an answer does
// to the state — a classified failure benches its scope (./classify.ts decides the scope), a
// success clears what it proves wrong and binds the request's session. The attempt loop that
// sends is src/upstream/poolAttempt.ts; this module never sends.
import type { MemberState, PoolRecord } from '../model/pools.js';
import type { RateLimitState } from '../usage/rateLimits.js';
import type { Classified } from './classify.js';
import { BILLING_SCOPE, CREDENTIAL_SCOPE, memberStatus, type MemberStatus } from './memberState.js';
import type { PoolMetrics } from './metrics.js';
import type { RoutingState } from './routingState.js';
import { orderCandidates, type CandidateView } from './strategies.js';

/** A window or family bench lasts until the reset plus up to this much jitter (so members come back spread). */
const BENCH_JITTER_MS = 10_000;
/** A request-scoped 429 or an overload cools a member this long at most. */
const SHORT_COOLDOWN_MAX_MS = 60_000;
const SHORT_COOLDOWN_DEFAULT_MS = 30_000;
/** A billing refusal with no reset to go by blocks the member this long (a success or a quota read lifts it sooner). */
const BILLING_BLOCK_MS = 15 * 60_000;
/** Benches reaching further than this ask the credential's workflow to re-read its quota meanwhile. */
const QUOTA_REREAD_AFTER_MS = 15 * 60_000;

export interface RouterDeps {
  state: RoutingState;
  /** The credential's windows as this process last saw them (headers and quota reads). */
  rateLimit: (credentialId: string) => RateLimitState | undefined;
  /** The credential's stored status, when known here. */
  credentialStatus: (credentialId: string) => string | undefined;
  /** A bench started or grew: the credential's workflow re-reads its quota until it ends (issue 30). */
  noteBenched?: (credentialId: string, until: Date) => void;
  /** Extra usage seen or a billing refusal (plan limits only): the webhook. */
  onOverage?: (pool: PoolRecord, credentialId: string, details: Record<string, unknown>) => void;
  metrics?: PoolMetrics;
  random?: () => number;
}

export interface RouteRequest {
  pool: PoolRecord;
  /** The request's model family (a family bench concerns only it). */
  family?: string;
  /** The key-namespaced, hashed session key, when the request names a session. */
  sessionKey?: string;
}

export interface Picked {
  credentialId: string;
  /** The member's bench ran out without a success or read since: this call is its one recovery probe. */
  probe: boolean;
}

export interface MemberReport {
  credentialId: string;
  state: MemberState;
  reason: string | null;
  until: number | null;
}

export interface ExhaustedReport {
  nextAvailableAt: number | null;
  members: MemberReport[];
}

export class PoolRouter {
  /** Members this process is probing now: one probe per member here, as the lease makes it one across processes. */
  private readonly probing = new Set<string>();

  constructor(private readonly deps: RouterDeps) {}

  status(pool: PoolRecord, credentialId: string, family: string | undefined, now: number): MemberStatus {
    const member = pool.members.find((m) => m.credentialId === credentialId);
    return memberStatus({
      member: member ?? { paused: true, maxUtilization: 1 },
      credentialStatus: this.deps.credentialStatus(credentialId),
      cooldowns: this.deps.state.cooldownsOf(credentialId),
      rateLimit: this.deps.rateLimit(credentialId),
      planLimitsOnly: pool.planLimitsOnly,
      family,
      now,
    });
  }

  /** The best member not yet tried for this request, or undefined when none is routable. */
  pick(req: RouteRequest, tried: ReadonlySet<string>, now = Date.now()): Picked | undefined {
    const { pool } = req;
    // A session on a member that can take it stays there (every strategy puts it first, but
    // priority-fill only within its priority): no scan of the others. Most calls of a session.
    const bound = req.sessionKey ? this.deps.state.session(pool.id, req.sessionKey, now)?.credentialId : undefined;
    if (
      bound !== undefined &&
      pool.strategy !== 'priority-fill' &&
      !tried.has(bound) &&
      pool.members.some((m) => m.credentialId === bound)
    ) {
      const s = this.status(pool, bound, req.family, now);
      if (s.state === 'routable') return { credentialId: bound, probe: s.recovering };
    }
    const views: CandidateView[] = [];
    const recovering = new Set<string>();
    for (const m of pool.members) {
      if (tried.has(m.credentialId)) continue;
      const s = this.status(pool, m.credentialId, req.family, now);
      if (s.state !== 'routable') continue;
      if (s.recovering) recovering.add(m.credentialId);
      const inflight = this.deps.state.inflight(m.credentialId);
      views.push({
        credentialId: m.credentialId,
        priority: m.priority,
        weight: m.weight,
        inFlight: inflight.count,
        lastPickedAt: inflight.pickedAt || undefined,
        windows: windowsOf(this.deps.rateLimit(m.credentialId)),
      });
    }
    if (views.length === 0) return undefined;
    const [first] = orderCandidates(pool.strategy, views, { boundTo: bound, now, random: this.deps.random });
    return first ? { credentialId: first, probe: recovering.has(first) } : undefined;
  }

  /** Why no member can take this request, and when the first is expected back (counted in maestro_pool_exhausted_total). */
  exhausted(req: RouteRequest, now = Date.now()): ExhaustedReport {
    const members = req.pool.members.map((m) => {
      const s = this.status(req.pool, m.credentialId, req.family, now);
      return { credentialId: m.credentialId, state: s.state, reason: s.reason, until: s.until };
    });
    const backs = members.map((m) => m.until).filter((u): u is number => u !== null && u > now);
    this.deps.metrics?.exhausted.inc({ pool: req.pool.name });
    return { nextAvailableAt: backs.length > 0 ? Math.min(...backs) : null, members };
  }

  /** The one recovery probe of a member across every process: true when this request may be it. */
  async acquireProbe(credentialId: string, leaseMs: number): Promise<boolean> {
    if (this.probing.has(credentialId)) return false;
    this.probing.add(credentialId);
    const held = await this.deps.state.acquireProbe(credentialId, leaseMs).catch(() => false);
    if (!held) this.probing.delete(credentialId);
    return held;
  }

  started(credentialId: string, now = Date.now()): void {
    this.deps.state.started(credentialId, now);
  }

  finished(credentialId: string): void {
    this.probing.delete(credentialId);
    this.deps.state.finished(credentialId);
  }

  /**
   * A member answered well: its standing benches (the whole credential, the request's family) are
   * over, and the session is bound — a new binding resolves once written (answer the client after).
   */
  succeeded(req: RouteRequest, credentialId: string, now = Date.now()): Promise<void> | undefined {
    // Most members have no cooldown at all: nothing to clear, and no scope list made for it.
    const cleared = this.deps.state.cooldownsOf(credentialId)
      ? this.deps.state.clear(credentialId, now, req.family ? [CREDENTIAL_SCOPE, req.family] : [CREDENTIAL_SCOPE])
      : [];
    for (const scope of cleared) {
      this.deps.state.event({ poolId: null, credentialId, type: 'cooldown_cleared', reason: 'a call succeeded', details: { scope } });
    }
    return req.sessionKey ? this.bindSession(req, req.sessionKey, credentialId, now) : undefined;
  }

  /** Extra usage in use on a member while the pool takes plan limits only: it takes no new work. */
  overageSeen(req: RouteRequest, credentialId: string, evidence: string, until: number | undefined, now = Date.now()): void {
    if (!req.pool.planLimitsOnly) return;
    const end = until && until > now ? until : now + BILLING_BLOCK_MS;
    if (!this.deps.state.bench({ credentialId, scope: BILLING_SCOPE, until: end, reason: 'extra usage in use', evidence, now })) return;
    this.deps.state.event({ poolId: req.pool.id, credentialId, type: 'overage_seen', reason: evidence, until: new Date(end), details: {} });
    this.deps.onOverage?.(req.pool, credentialId, { evidence, until: new Date(end).toISOString() });
  }

  /** A classified failure: bench what it concerns; `switching` when the request goes on to another member. */
  failed(req: RouteRequest, credentialId: string, c: Classified, switching: boolean, now = Date.now()): void {
    const bench = benchOf(c, now, this.deps.random ?? Math.random);
    if (bench) {
      if (c.scope === 'billing') {
        this.overageSeen(req, credentialId, c.evidence, bench.until, now);
      } else if (this.deps.state.bench({ credentialId, ...bench, reason: c.evidence, evidence: c.evidence, now })) {
        this.deps.state.event({
          poolId: null,
          credentialId,
          type: 'cooldown_set',
          reason: c.evidence,
          until: new Date(bench.until),
          details: { scope: bench.scope, cause: c.scope },
        });
        if ((c.scope === 'window' || c.scope === 'family') && bench.until - now > QUOTA_REREAD_AFTER_MS) {
          this.deps.noteBenched?.(credentialId, new Date(bench.until));
        }
      }
    }
    if (switching) {
      this.deps.metrics?.failovers.inc({ pool: req.pool.name, reason: c.scope });
      this.deps.state.event({ poolId: req.pool.id, credentialId, type: 'failover', reason: c.evidence, details: { cause: c.scope } });
    }
  }

  /**
   * Sessions: bind an unbound one; slide a bound one's expiry (written once half its TTL has
   * passed, not per call); move it only when its member can no longer serve at all (removed,
   * needs a login, disabled) — a passing failure leaves the binding, and the session goes back.
   */
  private bindSession(req: RouteRequest, sessionKey: string, served: string, now: number): Promise<void> | undefined {
    const { pool } = req;
    const ttl = pool.sessionTtlSeconds * 1000;
    const bound = this.deps.state.session(pool.id, sessionKey, now);
    if (bound?.credentialId === served) {
      if (bound.expiresAt - now < ttl / 2) this.deps.state.bind(pool.id, sessionKey, served, now + ttl);
      return;
    }
    if (bound) {
      const s = this.status(pool, bound.credentialId, req.family, now);
      const terminal =
        !pool.members.some((m) => m.credentialId === bound.credentialId) || s.state === 'reauth_required' || s.state === 'disabled';
      if (!terminal) return;
      this.deps.state.bind(pool.id, sessionKey, served, now + ttl);
      this.deps.state.event({
        poolId: pool.id,
        credentialId: served,
        type: 'session_moved',
        sessionKey,
        reason: s.reason ?? 'removed',
        details: { from: bound.credentialId },
      });
      return;
    }
    this.deps.state.event({ poolId: pool.id, credentialId: served, type: 'session_bound', sessionKey, details: {} });
    return this.deps.state.bindNew(pool.id, sessionKey, served, now + ttl);
  }
}

/** What a classified failure benches: window and family until the reset (+ jitter); request and overload ≤ 60 s; auth 60 s; billing until its reset. */
export function benchOf(c: Classified, now: number, random: () => number): { scope: string; until: number } | undefined {
  switch (c.scope) {
    case 'window':
    case 'family': {
      const scope = c.scope === 'family' && c.family ? c.family : CREDENTIAL_SCOPE;
      // A window whose reset is unknown or already passed cannot hold a member long: a short cooldown.
      if (c.until === undefined || c.until <= now) return { scope, until: now + SHORT_COOLDOWN_DEFAULT_MS };
      return { scope, until: c.until + Math.floor(random() * BENCH_JITTER_MS) };
    }
    case 'request':
    case 'overload': {
      const wanted = c.until !== undefined && c.until > now ? c.until : now + SHORT_COOLDOWN_DEFAULT_MS;
      return { scope: CREDENTIAL_SCOPE, until: Math.min(wanted, now + SHORT_COOLDOWN_MAX_MS) };
    }
    case 'auth':
      return { scope: CREDENTIAL_SCOPE, until: now + SHORT_COOLDOWN_MAX_MS };
    case 'billing':
      return { scope: BILLING_SCOPE, until: c.until !== undefined && c.until > now ? c.until : now + BILLING_BLOCK_MS };
    default:
      return undefined;
  }
}

function windowsOf(state: RateLimitState | undefined): CandidateView['windows'] {
  if (!state) return [];
  return Object.entries(state.windows).map(([name, w]) => ({
    name,
    utilization: w.utilization,
    reset: w.reset ? Date.parse(w.reset) : undefined,
  }));
}
