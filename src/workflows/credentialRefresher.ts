// CredentialRefresher: the state and the loop of one credential's refresh workflow. The workflow
// function (credentialRefresh.ts) only wires messages to these methods (samples-typescript
// message-passing/safe-message-handlers).
//
// The interleavings this class is written for:
// - A PATCH (credentialUpdated) and a refresh-now in one task: `changed` always makes the loop
//   re-read the credential before it refreshes, so the refresh spends the PATCHed token.
// - A refresh-now while a refresh is in flight shares it, unless the credential changed since that
//   refresh started (then it waits for the next one, which reads the change).
// - Every waiting caller is answered within its bound: fresh metadata, a failure, or StillRetrying
//   while the loop keeps retrying; stop answers everyone and always ends the run.
// - Continue-as-new waits for handlers to finish but keeps serving refresh requests meanwhile,
//   so a handler that waits on the loop can never block it.
import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities, CredentialView, QuotaReadResult } from '../activities/index.js';
import { FailureType, NON_RETRYABLE_REFRESH } from '../model/failures.js';
import {
  ANCHOR_AT_ASK_PATCH,
  QUOTA_ACTIVITY_READS_PATCH,
  QUOTA_LOCAL_READS_PATCH,
  QUOTA_READS_PATCH,
  QUOTA_RECHECK_UNSUPPORTED_PATCH,
  SHORT_RUNS_PATCH,
} from './legacy/patches.js';
import {
  DEFAULT_REFRESH_WAIT_MS,
  MAX_REFRESH_WAIT_MS,
  MIN_REFRESH_WAIT_MS,
  refreshTaskQueue,
  type CarriedState,
  type ReadQuotaInput,
  type RefreshNowInput,
  type RefreshStatus,
  type RefreshWorkflowInput,
} from './refreshMessages.js';
import { MAX_SLEEP_MS, nextRefreshAt, sleepDuration } from '../model/refreshSchedule.js';
import { AuthStatusKey, CredentialIdKey, ExpiresAtKey, ProviderKey } from './searchAttributes.js';
import { backoffAfter, DEFAULT_QUOTA_INTERVAL_MS, nextQuotaReadAt, type QuotaCarried } from './quotaSchedule.js';
import type { RateLimitState } from '../usage/rateLimits.js';

type Activities = ReturnType<typeof createActivities>;

const { describeCredential } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

// Notifications are retried for about an hour, then given up; they never hold up a refresh.
const { notifyWebhook } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 12 },
});

// Token endpoint calls: exponential backoff capped at 5 minutes (an hour-long outage costs about
// 20 attempts); Retry-After overrides the next delay. The activity waits for a sent request's
// answer as long as it lives and heartbeats meanwhile: a dead worker is noticed within the
// heartbeat timeout, and start-to-close covers a slow provider plus the database write.
const { refreshCredential } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '20 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    nonRetryableErrorTypes: NON_RETRYABLE_REFRESH,
  },
});

// Quota reads (issue 30): on the main task queue, beside durable calls, never on the refresh
// queue, so a fleet's reads cannot delay a refresh. Provider answers come back as outcomes (the
// schedule decides when to read again); only a worker or database failure is retried here.
const QUOTA_READ_RETRY = { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3 };
const { readQuota } = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: QUOTA_READ_RETRY });
// Runs that recorded QUOTA_LOCAL_READS_PATCH (main from 489a99b until QUOTA_ACTIVITY_READS_PATCH)
// read as local activities and replay so; every other run reads with the activity above. Local
// reads saved a workflow task and 5 events a read, but the time-skipping test server skips time
// while one runs (it cannot see it), which stalled the workflow tests; the saving was not measured.
const { readQuota: readQuotaLocally } = proxyLocalActivities<Activities>({ startToCloseTimeout: '1 minute', retry: QUOTA_READ_RETRY });

/** After a token answer without an access token, try again this much later (never at once). */
const MALFORMED_BACKOFF_MS = 15 * 60_000;
/**
 * Continue-as-new past this many history events (about 8 refresh cycles). A workflow outside the
 * worker's cache replays its whole run on its next wake, ~1.2 ms of worker CPU per event
 * (`npm run bench:replay`, docs/BENCHMARKS.md): short runs keep that near one refresh's own cost,
 * while a new run costs about one cycle's work every 8 cycles. Runs that began before this
 * (no SHORT_RUNS_PATCH marker) keep the old 10,000 until their next run.
 */
const DEFAULT_MAX_HISTORY_EVENTS = 100;
const LEGACY_MAX_HISTORY_EVENTS = 10_000;
/** A parked workflow re-reads its credential this often (about 100 history events a day). */
const PARKED_RECHECK_MS = 60 * 60_000;

interface Outcome {
  credential?: CredentialView;
  failure?: ApplicationFailure;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

function failureOf(error: unknown): ApplicationFailure | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) if (e instanceof ApplicationFailure) return e;
  return undefined;
}

export class CredentialRefresher {
  private readonly credentialId: string;
  private readonly state: CarriedState;
  private phase: RefreshStatus['phase'] = 'starting';
  /** The last view read (or returned by a refresh); null means "read it again before using it". */
  private view: CredentialView | null = null;
  /** Workflow time to anchor `view`'s figures at: when a describe was asked for (it runs at once), when a refresh's answer was handled. */
  private viewAskedAt = 0;
  private published: CredentialView | null = null;
  private nextDue: number | null = null;
  private changed = false;
  private stopping = false;
  /** A refresh activity is running; `changedDuringRefresh` says whether it started from a stale view. */
  private inFlight = false;
  private changedDuringRefresh = false;
  /** Finished refreshes (success or failure); callers wait for it to pass a target. */
  private generation = 0;
  private lastOutcome: Outcome = {};
  private refreshScope: CancellationScope | undefined;
  /** Quota reads: on once this run recorded QUOTA_READS_PATCH (asked each time the loop sleeps: a run upgraded mid-sleep starts at its next turn). */
  private quotaOn = false;
  private quotaRequested = false;
  /** A bench started or grew: the sleeping loop recomputes its next read. */
  private quotaRescheduled = false;
  private quotaInFlight = false;
  /** Finished reads; readQuota callers wait for it to pass a target. */
  private quotaGeneration = 0;
  private lastQuota: { state?: RateLimitState; failure?: ApplicationFailure; outcome?: QuotaReadResult['outcome'] } = {};

  constructor(private readonly input: RefreshWorkflowInput) {
    this.credentialId = input.credentialId;
    this.state = input.state ?? { refreshes: 0, refreshRequested: false };
  }

  // --- message handlers --------------------------------------------------------------------

  status(): RefreshStatus {
    // A run that continued-as-new carries its quota state before its loop's first turn sets quotaOn:
    // show it from the start (a query right after continue-as-new saw none). Read, never created, here.
    const q = this.quotaOn ? this.quota : this.state.quota;
    return {
      credentialId: this.credentialId,
      phase: this.phase,
      nextRefreshAt: this.nextDue === null ? null : new Date(this.nextDue).toISOString(),
      refreshes: this.state.refreshes,
      lastRefreshAt: this.state.lastRefreshAt === undefined ? null : new Date(this.state.lastRefreshAt).toISOString(),
      lastResult: this.state.lastResult ?? null,
      credentialStatus: this.published?.status ?? null,
      ...(q
        ? {
            quota: {
              nextReadAt: iso(q.nextReadAt),
              lastReadAt: iso(q.lastReadAt),
              benchedUntil: iso(q.benchedUntil),
              lastOutcome: q.lastOutcome ?? null,
            },
          }
        : {}),
    };
  }

  /** Histories recorded before the patch replay without reads (no marker there: false while replaying). */
  private quotaEnabled(): boolean {
    return this.quotaOn || patched(QUOTA_READS_PATCH);
  }

  private get quota(): QuotaCarried {
    return (this.state.quota ??= {});
  }

  /** A pool benched this credential until `untilIso`: cheap and idempotent (an equal or shorter bench changes nothing). */
  quotaBenched(untilIso: string): void {
    const until = Date.parse(untilIso);
    if (!Number.isFinite(until) || until <= Date.now()) return;
    if (this.quota.benchedUntil !== undefined && until <= this.quota.benchedUntil) return;
    this.quota.benchedUntil = until;
    // Sooner, never later: a read already due within the benched cadence keeps its time. With no
    // read scheduled (one just ended), the loop schedules the next from the whole state: the
    // benched cadence or the idle interval, whichever comes first.
    const benched = nextQuotaReadAt({ benchedUntil: until }, Date.now(), 0, Math.random);
    if (benched !== null && this.quota.nextReadAt !== undefined && benched < this.quota.nextReadAt) {
      this.quota.nextReadAt = this.quota.notBefore !== undefined ? Math.max(benched, this.quota.notBefore) : benched;
    }
    this.quotaRescheduled = true;
  }

  validateReadQuota(_input: ReadQuotaInput = {}): void {
    if (this.stopping || this.phase === 'stopped') {
      throw ApplicationFailure.nonRetryable('refresh workflow is stopping', FailureType.stopped);
    }
    if (this.phase === 'parked') {
      throw ApplicationFailure.nonRetryable('credential needs a new login before its quota can be read', FailureType.reauthRequired);
    }
    if (!this.quotaOn && this.phase !== 'starting') {
      // A run that began before quota reads existed reads from its next loop turn.
      throw ApplicationFailure.nonRetryable(
        "quota reads start at this workflow's next loop turn; retry shortly",
        FailureType.stillRetrying,
      );
    }
    if (this.state.quota?.unsupported) {
      throw ApplicationFailure.nonRetryable(
        "this run found no quota read for the credential (no endpoint, or a sign-in without its project); its workflow's next run asks again",
        FailureType.invalidRequest,
      );
    }
  }

  /** Read now; a read in flight is shared (one read per credential at a time). Answered within `waitMs`. */
  async readQuotaNow(input: ReadQuotaInput = {}): Promise<RateLimitState> {
    const waitMs = Math.min(Math.max(input.waitMs ?? DEFAULT_REFRESH_WAIT_MS, MIN_REFRESH_WAIT_MS), MAX_REFRESH_WAIT_MS);
    const target = this.quotaGeneration;
    if (!this.quotaInFlight) this.quotaRequested = true;
    const answered = await condition(() => this.quotaGeneration > target || this.stopping, waitMs);
    if (this.quotaGeneration > target) {
      if (this.lastQuota.failure) throw this.lastQuota.failure;
      if (this.lastQuota.state) return this.lastQuota.state;
    }
    if (!answered) {
      throw ApplicationFailure.create({
        message: `quota read not finished within ${Math.round(waitMs / 1000)} s`,
        type: FailureType.stillRetrying,
        nonRetryable: true,
      });
    }
    throw ApplicationFailure.nonRetryable('refresh workflow stopped', FailureType.stopped);
  }

  credentialUpdated(): void {
    this.changed = true;
    if (this.inFlight) this.changedDuringRefresh = true;
  }

  stop(): void {
    this.stopping = true;
    this.refreshScope?.cancel();
  }

  /** Rejects, without writing history, what the loop cannot serve right now. */
  validateRefreshNow(_input: RefreshNowInput = {}): void {
    if (this.stopping || this.phase === 'stopped') {
      throw ApplicationFailure.nonRetryable('refresh workflow is stopping', FailureType.stopped);
    }
    if (this.changed) return; // the loop is about to re-read: judge the new state, not this one
    if (this.phase === 'parked') {
      throw ApplicationFailure.nonRetryable('credential needs a new login before it can be refreshed', FailureType.reauthRequired);
    }
    if (this.published && !this.published.refreshable) {
      throw ApplicationFailure.nonRetryable('credential has no refresh token', FailureType.notRefreshable);
    }
  }

  async refreshNow(input: RefreshNowInput = {}): Promise<CredentialView> {
    const waitMs = Math.min(Math.max(input.waitMs ?? DEFAULT_REFRESH_WAIT_MS, MIN_REFRESH_WAIT_MS), MAX_REFRESH_WAIT_MS);
    // The caller's token is already superseded: hand back the current one, no token call.
    if (!this.inFlight && !this.changed && this.view && input.ifVersion !== undefined && this.view.version > input.ifVersion) {
      return this.view;
    }
    // Share a running refresh unless it started before a change this caller may depend on.
    const shareInFlight = this.inFlight && !this.changedDuringRefresh;
    const target = this.generation + (this.inFlight && !shareInFlight ? 1 : 0);
    if (!shareInFlight) this.state.refreshRequested = true;
    const answered = await condition(() => this.generation > target || this.stopping, waitMs);
    if (this.generation > target) {
      if (this.lastOutcome.failure) throw this.lastOutcome.failure;
      if (this.lastOutcome.credential) return this.lastOutcome.credential;
    }
    if (!answered) {
      const last = this.state.lastResult?.error ? ` (last error: ${this.state.lastResult.error})` : '';
      throw ApplicationFailure.create({
        message: `refresh not finished within ${Math.round(waitMs / 1000)} s; still retrying in the background${last}`,
        type: FailureType.stillRetrying,
        nonRetryable: true,
      });
    }
    throw ApplicationFailure.nonRetryable('refresh workflow stopped', FailureType.stopped);
  }

  /**
   * What the next run starts from. "This credential cannot be read" is not carried: a run that
   * found no quota endpoint (a provider that had none, a Gemini sign-in without its project) asks
   * once more in the next run, so an upgrade or a project set since takes effect without a restart.
   */
  private carriedState(): CarriedState {
    const quota = this.state.quota;
    if (!quota?.unsupported || !patched(QUOTA_RECHECK_UNSUPPORTED_PATCH)) return this.state;
    const { unsupported: _unsupported, ...rest } = quota;
    return { ...this.state, quota: rest };
  }

  // --- the loop ----------------------------------------------------------------------------

  async run(): Promise<RefreshStatus> {
    while (!this.stopping) {
      if (this.shouldContinueAsNew()) {
        // Serve refresh (and quota) requests while waiting: a handler that waits on the loop must not block it.
        await condition(() => allHandlersFinished() || this.state.refreshRequested || this.stopping || this.quotaRequested);
        if (this.stopping) break;
        if (allHandlersFinished())
          return continueAsNew<(input: RefreshWorkflowInput) => Promise<RefreshStatus>>({ ...this.input, state: this.carriedState() });
      }
      const view = await this.current();
      if (!view) {
        log.info('credential no longer exists; ending its refresh workflow', { credentialId: this.credentialId });
        this.answerWaiters({ failure: ApplicationFailure.nonRetryable('credential not found', FailureType.notFound) });
        break;
      }
      if (view.status !== 'active') {
        await this.park(view.status);
        continue;
      }
      if (!view.refreshable) {
        await this.idle('Token has no refresh token; nothing to refresh until it is replaced.', FailureType.notRefreshable);
        continue;
      }
      if (view.expiresInMs === null) {
        // No expiry: nothing to schedule, but a refresh-now can still refresh it.
        if (!(await this.sleepUntil(null, 'Token has no expiry; refreshed only on request.'))) continue;
      } else {
        this.anchor(view, view.expiresInMs);
        let due = nextRefreshAt({
          obtainedAt: this.state.anchor!.obtainedAt,
          expiresAt: this.state.anchor!.expiresAt,
          lastRefreshAt: this.state.lastRefreshAt,
        });
        if (this.state.lastResult?.outcome === 'failed' && this.state.lastResult.error === FailureType.malformed) {
          due = Math.max(due, Date.parse(this.state.lastResult.at) + MALFORMED_BACKOFF_MS);
        }
        if (!(await this.sleepUntil(due, `Next refresh due ${new Date(due).toISOString()} (token expires ${view.expiresAt}).`))) continue;
      }
      await this.refresh(view);
    }

    this.phase = 'stopped';
    this.nextDue = null;
    setCurrentDetails('Stopped.');
    this.answerWaiters({ failure: ApplicationFailure.nonRetryable('refresh workflow stopped', FailureType.stopped) });
    await condition(allHandlersFinished);
    return this.status();
  }

  private shouldContinueAsNew(): boolean {
    const info = workflowInfo();
    const max = this.input.maxHistoryEvents ?? (patched(SHORT_RUNS_PATCH) ? DEFAULT_MAX_HISTORY_EVENTS : LEGACY_MAX_HISTORY_EVENTS);
    return info.continueAsNewSuggested || info.historyLength > max;
  }

  /** The credential as the loop must see it: re-read after any change, else the last view. */
  private async current(): Promise<CredentialView | null> {
    if (this.view && !this.changed) return this.view;
    this.changed = false;
    const asked = Date.now();
    // On the refresh queue too: a loop that cannot read its credential cannot refresh it either.
    this.view = await describeCredential.executeWithOptions(
      { taskQueue: refreshTaskQueue(workflowInfo().taskQueue), startToCloseTimeout: '30 seconds' },
      [{ credentialId: this.credentialId }],
    );
    this.viewAskedAt = asked;
    if (this.view) this.publish(this.view);
    return this.view;
  }

  /**
   * Sleeps until `due` (null: no schedule), a request, a change or stop. True when a refresh
   * should run now; false when the loop should go round (re-read, or sleep again after 24 h).
   */
  private async sleepUntil(due: number | null, details: string): Promise<boolean> {
    this.phase = 'sleeping';
    this.nextDue = due;
    setCurrentDetails(details);
    this.quotaOn = this.quotaEnabled();
    const readAt = this.quotaOn ? this.nextQuotaAt() : null;
    if (this.quotaOn && readAt !== null && (due === null || readAt < due)) {
      // Wakes for the read first; a bench signal or a read request meanwhile wakes it at once.
      const quotaWake = () => this.state.refreshRequested || this.changed || this.stopping || this.quotaRequested || this.quotaRescheduled;
      await condition(quotaWake, sleepDuration(readAt, Date.now()));
      if (this.stopping || this.changed) return false;
      if (this.state.refreshRequested) return true;
      if (this.quotaRequested || Date.now() >= readAt) await this.readQuotaOnce();
      this.quotaRescheduled = false;
      return false; // go round: the refresh schedule is computed again from the same view
    }
    const wake = this.quotaOn
      ? () => this.state.refreshRequested || this.changed || this.stopping || this.quotaRequested || this.quotaRescheduled
      : () => this.state.refreshRequested || this.changed || this.stopping;
    const woke = await condition(wake, due === null ? MAX_SLEEP_MS : sleepDuration(due, Date.now()));
    if (this.stopping || this.changed) return false;
    if (this.state.refreshRequested) return true;
    if (this.quotaOn && (this.quotaRequested || this.quotaRescheduled)) {
      if (this.quotaRequested) await this.readQuotaOnce();
      this.quotaRescheduled = false;
      return false;
    }
    if (!woke && (due === null || Date.now() < due)) {
      this.view = null; // the 24-hour cap: re-read and sleep again
      return false;
    }
    return true;
  }

  /**
   * Anchors each token version's lifetime on workflow time once (see CredentialView.expiresInMs).
   * A describe's figures were measured while it ran, so they are anchored at the moment it was
   * asked for: never later than the truth (a refresh's answer, which may come after long retries,
   * is anchored when handled). Anchoring at the moment the result is handled (before
   * ANCHOR_AT_ASK_PATCH) moved the expiry later by however long the result waited for a workflow
   * task — minutes in a backlog — and the refresh then came after the token had expired.
   */
  private anchor(view: CredentialView, expiresInMs: number): void {
    if (this.state.anchor?.version === view.version) return;
    const now = patched(ANCHOR_AT_ASK_PATCH) && this.viewAskedAt > 0 ? this.viewAskedAt : Date.now();
    this.state.anchor = { version: view.version, obtainedAt: now - Math.max(0, view.ageMs ?? 0), expiresAt: now + expiresInMs };
  }

  private async refresh(view: CredentialView): Promise<void> {
    this.phase = 'refreshing';
    this.state.refreshRequested = false;
    this.inFlight = true;
    this.changedDuringRefresh = false;
    setCurrentDetails(`Refreshing (token expires ${view.expiresAt}).`);
    const wasFailing = this.state.lastResult?.outcome === 'failed' || this.state.lastResult?.outcome === 'reauth_required';
    try {
      this.refreshScope = new CancellationScope();
      const result = await this.refreshScope.run(() =>
        refreshCredential.executeWithOptions(
          {
            summary: `refresh ${view.provider} credential "${view.name}"`,
            taskQueue: refreshTaskQueue(workflowInfo().taskQueue),
            startToCloseTimeout: '5 minutes',
            heartbeatTimeout: '20 seconds',
          },
          [{ credentialId: this.credentialId, expectedVersion: view.version }],
        ),
      );
      this.state.lastRefreshAt = Date.now();
      this.state.refreshes++;
      this.state.lastResult = { outcome: result.outcome, at: new Date().toISOString(), attempts: result.attempts };
      // The activity's answer is the current view: no second read (one activity per cycle).
      this.view = result.credential;
      // A refresh may retry for an hour: its answer is anchored when handled (as before), not
      // when it was asked for, which would put the new token's expiry that hour early.
      this.viewAskedAt = Date.now();
      this.publish(result.credential);
      this.finish({ credential: result.credential });
      if (wasFailing && result.outcome === 'refreshed') this.notify('credential.recovered', view);
    } catch (error) {
      if (this.stopping && isCancellation(error)) return;
      const type = failureOf(error)?.type ?? 'Unknown';
      const at = new Date().toISOString();
      this.view = null; // whatever happened, read the credential again before the next step
      if (type === FailureType.reauthRequired) {
        this.state.lastResult = { outcome: 'reauth_required', at, attempts: 1, error: type };
        // Status says so from the moment callers hear it (the row already does), not only after
        // the re-read below: an operator reading both must not see reauth_required + "refreshing".
        // State only, no command: replays of earlier histories are unaffected.
        this.phase = 'parked';
        this.nextDue = null;
        this.finish({ failure: ApplicationFailure.nonRetryable('credential needs a new login', FailureType.reauthRequired) });
        this.notify('credential.reauth_required', view);
        return; // the re-read shows reauth_required → parked
      }
      if (type === FailureType.notFound) {
        this.finish({ failure: ApplicationFailure.nonRetryable('credential not found', FailureType.notFound) });
        return; // the re-read finds nothing → the loop ends
      }
      // Misconfigured or malformed: keep the workflow alive and try later, recording why.
      this.state.lastResult = {
        outcome: 'failed',
        at,
        attempts: 1,
        error: type === FailureType.misconfigured ? type : FailureType.malformed,
      };
      this.finish({ failure: ApplicationFailure.nonRetryable(`refresh failed: ${type}`, type) });
      if (type === FailureType.misconfigured) await this.park('provider misconfigured');
    } finally {
      this.refreshScope = undefined;
      this.inFlight = false;
    }
  }

  /** Waits for new tokens (or stop); refresh requests meanwhile are answered "needs a new login". */
  private async park(reason: string): Promise<void> {
    this.phase = 'parked';
    this.nextDue = null;
    setCurrentDetails(`Needs a new login (${reason}). Waiting for new tokens.`);
    const failure = ApplicationFailure.nonRetryable('credential needs a new login before it can be refreshed', FailureType.reauthRequired);
    while (!this.changed && !this.stopping) {
      this.answerWaiters({ failure });
      if (this.quotaRequested) {
        this.quotaRequested = false;
        this.lastQuota = { failure, outcome: this.lastQuota.outcome };
        this.quotaGeneration++;
      }
      const woke = await condition(
        () => this.changed || this.stopping || this.state.refreshRequested || (this.quotaOn && this.quotaRequested),
        PARKED_RECHECK_MS,
      );
      if (this.quotaRequested) continue; // answered at the top of the loop
      if (!woke) {
        // Re-read now and then: new tokens whose credentialUpdated signal was lost still wake it.
        this.view = null;
        return;
      }
    }
  }

  /** Nothing to schedule: sleep until a change (re-reading daily); requests get `failureType`. */
  private async idle(details: string, failureType: FailureType): Promise<void> {
    this.phase = 'sleeping';
    this.nextDue = null;
    setCurrentDetails(details);
    this.quotaOn = this.quotaEnabled();
    const failure = ApplicationFailure.nonRetryable('credential has no refresh token', failureType);
    this.answerWaiters({ failure });
    const woke = await condition(
      () => this.changed || this.stopping || this.state.refreshRequested || (this.quotaOn && this.quotaRequested),
      MAX_SLEEP_MS,
    );
    if (!woke) this.view = null;
    else if (this.quotaRequested && !this.changed && !this.stopping) await this.readQuotaOnce();
  }

  /** When the next quota read is due (kept in the carried state, so its jitter is drawn once). */
  private nextQuotaAt(): number | null {
    const q = this.quota;
    if (q.benchedUntil !== undefined && q.benchedUntil <= Date.now()) delete q.benchedUntil; // the bench is over
    if (q.nextReadAt === undefined) {
      const next = nextQuotaReadAt(q, Date.now(), this.input.quotaIntervalMs ?? DEFAULT_QUOTA_INTERVAL_MS, Math.random);
      if (next === null) return null;
      q.nextReadAt = next;
    }
    return q.nextReadAt;
  }

  /**
   * One read through the readQuota activity (one activity in the history: scheduled, started,
   * completed), then the next one scheduled from its outcome. Never refreshes.
   */
  private async readQuotaOnce(): Promise<void> {
    this.quotaRequested = false;
    this.quotaInFlight = true;
    const q = this.quota;
    let result: QuotaReadResult;
    try {
      const summary = `read quota of ${this.view?.provider ?? ''} credential "${this.view?.name ?? this.credentialId}"`;
      const read = !patched(QUOTA_ACTIVITY_READS_PATCH) && patched(QUOTA_LOCAL_READS_PATCH) ? readQuotaLocally : readQuota;
      result = await read.executeWithOptions({ summary, startToCloseTimeout: '1 minute' }, [{ credentialId: this.credentialId }]);
    } catch (error) {
      result = { outcome: 'failed', reason: failureOf(error)?.message ?? 'quota read activity failed' };
    } finally {
      this.quotaInFlight = false;
    }
    const now = Date.now();
    q.lastReadAt = now;
    q.lastOutcome = result.outcome;
    delete q.nextReadAt;
    delete q.notBefore;
    let failure: ApplicationFailure | undefined;
    switch (result.outcome) {
      case 'ok':
        q.backoffs = 0;
        if (result.room) delete q.benchedUntil; // released the moment a read shows room
        break;
      case 'stale':
        q.backoffs = 0;
        break;
      case 'rate_limited':
      case 'failed':
        q.notBefore = backoffAfter(q, now, result.retryAfterMs);
        failure = ApplicationFailure.nonRetryable(
          result.outcome === 'rate_limited'
            ? 'the quota endpoint is rate limiting reads; try later'
            : `quota read failed: ${result.reason ?? 'unknown'}`,
          FailureType.providerUnavailable,
        );
        break;
      case 'unsupported':
        q.unsupported = true;
        failure = ApplicationFailure.nonRetryable('credential has no quota endpoint', FailureType.invalidRequest);
        break;
      case 'not_found':
        this.view = null; // the loop re-reads, finds nothing and ends
        failure = ApplicationFailure.nonRetryable('credential not found', FailureType.notFound);
        break;
    }
    this.lastQuota = { state: result.state, failure, outcome: result.outcome };
    this.quotaGeneration++;
  }

  /** Ends the wait of every caller that asked for a refresh the loop will not run. */
  private answerWaiters(outcome: Outcome): void {
    if (!this.state.refreshRequested) return;
    this.state.refreshRequested = false;
    this.finish(outcome);
  }

  private finish(outcome: Outcome): void {
    this.lastOutcome = outcome;
    this.generation++;
  }

  private publish(view: CredentialView): void {
    const before = this.published;
    this.published = view;
    if (before && before.status === view.status && before.expiresAt === view.expiresAt && before.id === view.id) return;
    upsertSearchAttributes([
      { key: CredentialIdKey, value: view.id },
      { key: ProviderKey, value: view.provider },
      { key: AuthStatusKey, value: view.status },
      { key: ExpiresAtKey, value: view.expiresAt ? new Date(view.expiresAt) : null },
    ]);
  }

  private notify(event: 'credential.reauth_required' | 'credential.recovered', view: CredentialView): void {
    notifyWebhook({ event, credentialId: this.credentialId, provider: view.provider, name: view.name }).catch((error: unknown) =>
      log.warn('webhook notification given up', { event, error: String(error) }),
    );
  }
}
