// A provider call through a pool: the attempt step with "the next member on a classified failure"
// (DESIGN.md "Pools"). The router (src/pools/router.ts) orders the members; this loop sends to
// one at a time — each send is the single-credential attempt (refresh near expiry, one refresh on
// a refused token) — and reads what the answer is before anything reaches the client. It fails
// over only while nothing has been relayed, only for a body it holds, at most MAX_SWITCHES times
// and within one deadline. With no member left it holds (waits for one, up to holdSeconds, as long
// as the client stays) or rejects with pool_exhausted; it never passes a rate limit through.
import { CallerGoneError, ConflictError, PoolExhaustedError, ReauthRequiredError } from '../errors.js';
import type { Classified } from '../pools/classify.js';
import type { ExhaustedReport, Picked, PoolRouter, RouteRequest } from '../pools/router.js';

/** At most this many switches: 4 members tried. */
export const MAX_SWITCHES = 3;
/** A recovery probe's lease: other processes leave the member alone this long. */
const PROBE_LEASE_MS = 15_000;
/** A held request re-checks the state at least this often (changes usually wake it sooner). */
const HOLD_POLL_MS = 250;

export interface PooledSend<A> {
  answer: A;
  /** The credential that served (after any refresh: the same member). */
  credentialId: string;
  classified: Classified;
}

export interface PoolPlan<A> {
  router: PoolRouter;
  request: RouteRequest;
  /** False when the body streamed through and cannot be sent again: the first answer stands. */
  replayable: boolean;
  /** The overall time the loop may take before a last answer stands (ms epoch). */
  deadline: number;
  /** The client: `aborted` once it left; `signal` (made only when a hold waits on it). */
  client: { readonly aborted: boolean; readonly signal: AbortSignal };
  /** Waits until the routing state changes or `ms` pass. */
  changed(ms: number): Promise<void>;
  /**
   * One member's attempt and its classification. Errors from `usable` (a login needed…) mean this
   * member cannot serve. `answered`: the member's first answer, already in hand (`first` below).
   */
  send(credentialId: string, answered?: A): Promise<PooledSend<A>>;
  /**
   * The caller picked a member, started it on the router and sent to it already (the fast path),
   * and its answer needs more than relaying: the loop begins with that member and that answer.
   */
  first?: { credentialId: string; answered: A };
  /** The caller's pick a moment ago, not sent (a member whose token is not loaded yet, or a probe): the loop begins with it. */
  picked?: Picked;
  /** Frees a failed answer that is not relayed. */
  discard(answer: A): Promise<void>;
  /** Events and metrics for a held request. */
  held?(phase: 'started' | 'ended', waitedMs: number): void;
}

/**
 * The served answer (the caller relays it, then calls router.finished for its credential), or
 * PoolExhaustedError. A member whose answer fails over is finished here.
 */
export async function attemptPool<A>(plan: PoolPlan<A>): Promise<PooledSend<A>> {
  const { router, request } = plan;
  const tried = new Set<string>();
  const failures: string[] = [];
  const holdUntil = request.pool.onExhausted.mode === 'hold' ? Date.now() + request.pool.onExhausted.holdSeconds * 1000 : 0;
  let holdStarted: number | undefined;
  let first = plan.first;
  let prepicked = plan.picked;
  for (let switches = 0; ;) {
    const picked = first ? { credentialId: first.credentialId, probe: false } : (prepicked ?? router.pick(request, tried));
    prepicked = undefined;
    if (!picked) {
      // Members that failed this request are not tried again in it; a hold waits for one that has not.
      if (Date.now() < holdUntil && tried.size < request.pool.members.length) {
        if (holdStarted === undefined) {
          holdStarted = Date.now();
          plan.held?.('started', 0);
        }
        try {
          await waitForChange(plan, Math.min(HOLD_POLL_MS, holdUntil - Date.now()));
        } catch (error) {
          plan.held?.('ended', Date.now() - holdStarted); // the client left
          throw error;
        }
        continue;
      }
      if (holdStarted !== undefined) plan.held?.('ended', Date.now() - holdStarted);
      throw exhaustedError(request, router.exhausted(request), failures);
    }
    if (holdStarted !== undefined) {
      plan.held?.('ended', Date.now() - holdStarted);
      holdStarted = undefined;
    }
    const id = picked.credentialId;
    if (picked.probe && !(await plan.router.acquireProbe(id, PROBE_LEASE_MS))) {
      tried.add(id); // another process is probing it; this request goes elsewhere
      continue;
    }
    const answered = first?.answered;
    if (first) first = undefined;
    else router.started(id);
    let sent: PooledSend<A>;
    try {
      sent = await plan.send(id, answered);
    } catch (error) {
      router.finished(id);
      if (plan.client.aborted) throw new CallerGoneError('the caller went away');
      // This member cannot serve (needs a login, disabled): the next one may.
      if (error instanceof ReauthRequiredError || error instanceof ConflictError) {
        tried.add(id);
        failures.push(`${id}: ${error.message}`);
        continue;
      }
      throw error;
    }
    const c = sent.classified;
    if (c.scope === 'ok') {
      const binding = router.succeeded(request, id);
      if (binding) await binding; // a new session's binding is written before its first answer leaves
      return sent;
    }
    const mayFailOver = c.failover && plan.replayable && Date.now() < plan.deadline;
    const switching = mayFailOver && switches < MAX_SWITCHES;
    router.failed(request, id, c, switching);
    if (!c.failover || !plan.replayable) return sent; // the client's own error, a billing refusal, or an answer that cannot be sent again
    await plan.discard(sent.answer).catch(() => {});
    router.finished(id);
    tried.add(id);
    failures.push(`${id}: ${c.evidence}`);
    if (!switching) throw exhaustedError(request, router.exhausted(request), failures);
    switches++;
  }
}

async function waitForChange(plan: PoolPlan<unknown>, ms: number): Promise<void> {
  if (plan.client.aborted) throw new CallerGoneError('the caller went away');
  const signal = plan.client.signal;
  await new Promise<void>((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    plan.changed(ms).then(done, done);
  });
  if (plan.client.aborted) throw new CallerGoneError('the caller went away');
}

/** 429 pool_exhausted: each member's reason in the message, Retry-After ≤ 60 (Claude Code gives up on longer), the next-available time. */
export function exhaustedError(request: RouteRequest, report: ExhaustedReport, failures: string[]): PoolExhaustedError {
  const now = Date.now();
  const names = new Map(request.pool.members.map((m, i) => [m.credentialId, `member ${i + 1} (${m.credentialId})`]));
  const reasons = report.members.map((m) => {
    const until = m.until ? `, until ${new Date(m.until).toISOString()}` : '';
    return `${names.get(m.credentialId)}: ${m.state}${m.reason ? ` (${m.reason}${until})` : until}`;
  });
  const tried = failures.length > 0 ? `; this request tried ${failures.length}: ${failures.join('; ')}` : '';
  const next = report.nextAvailableAt ?? undefined;
  const retryAfter = next ? Math.min(60, Math.max(1, Math.ceil((next - now) / 1000))) : 60;
  return new PoolExhaustedError(
    `pool "${request.pool.name}" has no member that can take this request now: ${reasons.join('; ')}${tried}`,
    retryAfter,
    next !== undefined ? new Date(next) : undefined,
  );
}
