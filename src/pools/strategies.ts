// How a pool orders its routable members for one request (DESIGN.md "Pools"). Pure functions of
// the members' states and the request: the router tries the answer in order, so the whole list
// is returned, best first, and failover simply moves down it.
//
// - affinity-least-loaded (default): the session's bound member first; then least load, where
//   load = (in flight + recency penalty + recovery ramp) / weight. The recency penalty makes a
//   member picked in the last 2 s (by any process) look busier, so simultaneous picks spread
//   instead of herding onto the same idle member; the ramp does the same for a member that just
//   came back from a bench. Ties by priority, then a weighted random draw.
// - drain-soonest: lowest priority group first; within it the member whose binding window (the
//   most used one) resets soonest, so capacity that is about to expire unused is spent first.
//   The bound member goes first.
// - priority-fill: strict priority order, members of one priority in the pool's order; the first
//   takes everything until it is not routable. The bound member goes first only within its
//   priority.
import type { PoolStrategy } from '../model/pools.js';

export interface CandidateView {
  credentialId: string;
  priority: number;
  weight: number;
  inFlight: number;
  windows: Array<{ name: string; utilization?: number; reset?: number /* ms */ }>;
  /** When any process last picked this member (ms). */
  lastPickedAt?: number;
  /** When this member last came back from a bench (ms). */
  recoveredAt?: number;
}

export interface OrderRequest {
  /** The member the request's session is bound to, if any. */
  boundTo?: string;
  now: number;
  /** Uniform in [0, 1); Math.random by default (tests pass a seeded one). */
  random?: () => number;
}

/** A pick this recent counts as this much extra load, fading linearly to nothing. */
export const RECENCY_WINDOW_MS = 2_000;
export const RECENCY_LOAD = 1;
/** A member back from a bench this recently counts as this much extra load, fading to nothing. */
export const RECOVERY_RAMP_MS = 10_000;
export const RECOVERY_LOAD = 2;

/** The pool's members (all routable) in the order the router should try them. */
export function orderCandidates(strategy: PoolStrategy, members: CandidateView[], request: OrderRequest): string[] {
  const random = request.random ?? Math.random;
  // One draw per member, drawn in the given order (stable for a seeded generator): u^(1/w) sorted
  // descending is a weighted random order (Efraimidis–Spirakis).
  const rows = members.map((m, index) => ({
    m,
    index,
    draw: Math.pow(random(), 1 / weightOf(m)),
    load: loadOf(m, request.now),
  }));
  type Row = (typeof rows)[number];
  const byPriority = (a: Row, b: Row) => a.m.priority - b.m.priority;
  const byLoad = (a: Row, b: Row) => roughly(a.load) - roughly(b.load);
  const byDraw = (a: Row, b: Row) => b.draw - a.draw;
  let sorted: Row[];
  switch (strategy) {
    case 'drain-soonest': {
      const soonest = new Map(rows.map((r) => [r, bindingReset(r.m, request.now)]));
      sorted = [...rows].sort((a, b) => byPriority(a, b) || soonest.get(a)! - soonest.get(b)! || byLoad(a, b) || byDraw(a, b));
      return boundFirst(sorted, request.boundTo).map((r) => r.m.credentialId);
    }
    case 'priority-fill': {
      sorted = [...rows].sort((a, b) => byPriority(a, b) || a.index - b.index);
      const bound = sorted.find((r) => r.m.credentialId === request.boundTo);
      if (bound) {
        // Ahead of its own priority group only.
        const rest = sorted.filter((r) => r !== bound);
        const at = rest.findIndex((r) => r.m.priority >= bound.m.priority);
        rest.splice(at === -1 ? rest.length : at, 0, bound);
        sorted = rest;
      }
      return sorted.map((r) => r.m.credentialId);
    }
    case 'affinity-least-loaded':
    default: {
      sorted = [...rows].sort((a, b) => byLoad(a, b) || byPriority(a, b) || byDraw(a, b));
      return boundFirst(sorted, request.boundTo).map((r) => r.m.credentialId);
    }
  }
}

/** In-flight calls plus the recency penalty and the recovery ramp, per unit of weight. */
export function loadOf(m: CandidateView, now: number): number {
  let load = Math.max(0, m.inFlight);
  load += fading(m.lastPickedAt, now, RECENCY_WINDOW_MS) * RECENCY_LOAD;
  load += fading(m.recoveredAt, now, RECOVERY_RAMP_MS) * RECOVERY_LOAD;
  return load / weightOf(m);
}

/** 1 right at `at`, falling linearly to 0 after `span` ms; 0 when unknown or in the future by more than span. */
function fading(at: number | undefined, now: number, span: number): number {
  if (at === undefined || !Number.isFinite(at)) return 0;
  const age = Math.max(0, now - at);
  return age >= span ? 0 : 1 - age / span;
}

function weightOf(m: CandidateView): number {
  return Number.isFinite(m.weight) && m.weight > 0 ? m.weight : 1;
}

/** Loads that differ only by float noise are a tie. */
function roughly(load: number): number {
  return Math.round(load * 1e6);
}

/**
 * When a member's binding window resets: the most used window (ties: the one resetting first)
 * among those with a reset still ahead. Members with no such window go last (Infinity).
 */
function bindingReset(m: CandidateView, now: number): number {
  let best: { utilization: number; reset: number } | undefined;
  for (const w of m.windows) {
    if (w.reset === undefined || !Number.isFinite(w.reset) || w.reset <= now) continue;
    const utilization = w.utilization !== undefined && Number.isFinite(w.utilization) ? w.utilization : 0;
    if (!best || utilization > best.utilization || (utilization === best.utilization && w.reset < best.reset))
      best = { utilization, reset: w.reset };
  }
  return best ? best.reset : Number.POSITIVE_INFINITY;
}

function boundFirst<T extends { m: CandidateView }>(sorted: T[], boundTo: string | undefined): T[] {
  if (boundTo === undefined) return sorted;
  const bound = sorted.find((r) => r.m.credentialId === boundTo);
  return bound ? [bound, ...sorted.filter((r) => r !== bound)] : sorted;
}
