// FROZEN: the refresh workflow as it ran up to c999f06, kept so that workflows started by that
// code replay exactly (test/workflows/replay.test.ts). Do not change its commands. The one
// addition, behind patched(), moves a live run onto the current workflow with continue-as-new at
// its next loop turn where no refresh is pending (see credentialRefresh.ts).
// credentialRefreshWorkflow: one long-running workflow per OAuth credential (id `credential:<id>`).
// It sleeps on a durable timer until the token is due, refreshes it through one activity, and
// repeats; a dead refresh token parks it until new tokens arrive. It is the only writer of a
// credential's tokens, so refreshes never race.
import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities, CredentialView } from '../../activities/index.js';
import { FailureType } from '../../model/failures.js';
import {
  credentialUpdatedSignal,
  refreshNowUpdate,
  statusQuery,
  stopSignal,
  type CarriedState,
  type RefreshNowInput,
  type RefreshStatus,
  type RefreshWorkflowInput,
} from '../refreshMessages.js';
import { nextRefreshAt, sleepDuration } from '../../model/refreshSchedule.js';
import { AuthStatusKey, CredentialIdKey, ExpiresAtKey, ProviderKey } from '../searchAttributes.js';
import { MIGRATE_TO_V2_PATCH } from './patches.js';

const FailureTypes = FailureType;

const { describeCredential } = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

// Notifications are retried for about an hour, then given up; they never hold up a refresh.
const { notifyWebhook } = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 12 },
});
const notify = (event: Parameters<typeof notifyWebhook>[0]) => {
  notifyWebhook(event).catch((error: unknown) => log.warn('webhook notification given up', { event: event.event, error: String(error) }));
};

// Token endpoint calls: exponential backoff capped at 5 minutes, so an hour-long outage costs
// about 20 attempts, not a storm; Retry-After from the provider overrides the next delay.
const { refreshCredential } = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '45 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    nonRetryableErrorTypes: [FailureTypes.reauthRequired, FailureTypes.notFound, FailureTypes.misconfigured, FailureTypes.malformed],
  },
});

/** After a malformed token answer (bounded retries exhausted), try again this much later. */
const MALFORMED_BACKOFF_MS = 15 * 60_000;
const DEFAULT_MAX_HISTORY_EVENTS = 10_000;

/** Runs only for histories without the v2 marker; `continueAsNewToCurrent` starts the current code. */
export async function credentialRefreshWorkflowV1(input: RefreshWorkflowInput): Promise<RefreshStatus> {
  const { credentialId } = input;
  const state: CarriedState = input.state ?? { refreshes: 0, refreshRequested: false };
  let phase: RefreshStatus['phase'] = 'starting';
  let credential: CredentialView | null = null;
  let nextDue: number | null = null;
  let changed = false;
  let stopping = false;
  // Completed refresh attempts; update callers wait for it to move past the value they saw.
  let generation = 0;
  let lastOutcome: { credential?: CredentialView; failure?: ApplicationFailure } = {};
  let refreshScope: CancellationScope | undefined;

  const status = (): RefreshStatus => ({
    credentialId,
    phase,
    nextRefreshAt: nextDue === null ? null : new Date(nextDue).toISOString(),
    refreshes: state.refreshes,
    lastRefreshAt: state.lastRefreshAt === undefined ? null : new Date(state.lastRefreshAt).toISOString(),
    lastResult: state.lastResult ?? null,
    credentialStatus: credential?.status ?? null,
  });

  setHandler(statusQuery, status);
  setHandler(credentialUpdatedSignal, () => {
    changed = true;
  });
  setHandler(stopSignal, () => {
    stopping = true;
    refreshScope?.cancel();
  });
  // Concurrent callers share one refresh: whoever arrives while one is pending or running waits for it.
  setHandler(refreshNowUpdate, async (input: RefreshNowInput = {}) => {
    if (phase === 'parked') {
      throw ApplicationFailure.nonRetryable('credential needs a new login before it can be refreshed', FailureTypes.reauthRequired);
    }
    // The caller's token is already superseded: hand back the current one, no token call.
    if (phase !== 'refreshing' && credential && input.ifVersion !== undefined && credential.version > input.ifVersion) {
      return credential;
    }
    const seen = generation;
    if (phase !== 'refreshing') state.refreshRequested = true;
    await condition(() => generation > seen || stopping);
    if (lastOutcome.failure) throw lastOutcome.failure;
    if (!lastOutcome.credential) throw ApplicationFailure.nonRetryable('refresh workflow is stopping', FailureTypes.notFound);
    return lastOutcome.credential;
  });

  const publish = (view: CredentialView) => {
    credential = view;
    upsertSearchAttributes([
      { key: CredentialIdKey, value: view.id },
      { key: ProviderKey, value: view.provider },
      { key: AuthStatusKey, value: view.status },
      { key: ExpiresAtKey, value: view.expiresAt ? new Date(view.expiresAt) : null },
    ]);
  };

  const finishGeneration = (outcome: typeof lastOutcome) => {
    lastOutcome = outcome;
    generation++;
  };

  const park = async (reason: string) => {
    phase = 'parked';
    nextDue = null;
    setCurrentDetails(`Needs a new login (${reason}). Waiting for new tokens.`);
    await condition(() => changed || stopping);
  };

  while (!stopping) {
    // Live (not replaying) at a quiet loop turn: hand over to the current workflow code.
    if (!state.refreshRequested && allHandlersFinished() && patched(MIGRATE_TO_V2_PATCH)) {
      return continueAsNew<typeof credentialRefreshWorkflowV1>({ ...input, state });
    }
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > (input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS)) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof credentialRefreshWorkflowV1>({ ...input, state });
    }
    changed = false;
    const view = await describeCredential({ credentialId });
    if (!view) {
      log.info('credential no longer exists; ending its refresh workflow', { credentialId });
      finishGeneration({ failure: ApplicationFailure.nonRetryable('credential not found', FailureTypes.notFound) });
      break;
    }
    publish(view);
    if (view.status !== 'active') {
      await park(view.status);
      continue;
    }
    if (!view.refreshable || view.expiresInMs === null) {
      phase = 'sleeping';
      nextDue = null;
      setCurrentDetails('Token has no refresh token or no expiry; nothing to schedule until it is replaced.');
      if (state.refreshRequested) {
        state.refreshRequested = false;
        finishGeneration({ failure: ApplicationFailure.nonRetryable('credential has no refresh token', FailureTypes.notRefreshable) });
      }
      await condition(() => changed || stopping || state.refreshRequested, '24 hours');
      continue;
    }

    // Anchor each token version's lifetime on workflow time once (see CredentialView.expiresInMs).
    if (state.anchor?.version !== view.version) {
      const now = Date.now();
      state.anchor = { version: view.version, obtainedAt: now - Math.max(0, view.ageMs ?? 0), expiresAt: now + view.expiresInMs };
    }
    nextDue = nextRefreshAt({ obtainedAt: state.anchor.obtainedAt, expiresAt: state.anchor.expiresAt, lastRefreshAt: state.lastRefreshAt });
    if (state.lastResult?.outcome === 'failed' && state.lastResult.error === FailureTypes.malformed) {
      nextDue = Math.max(nextDue, Date.parse(state.lastResult.at) + MALFORMED_BACKOFF_MS);
    }
    phase = 'sleeping';
    setCurrentDetails(`Next refresh due ${new Date(nextDue).toISOString()} (token expires ${view.expiresAt}).`);
    const woke = await condition(() => state.refreshRequested || changed || stopping, sleepDuration(nextDue, Date.now()));
    if (stopping) break;
    if (changed && !state.refreshRequested) continue;
    if (!woke && Date.now() < nextDue) continue; // the 24-hour cap: re-read and sleep again

    phase = 'refreshing';
    state.refreshRequested = false;
    setCurrentDetails(`Refreshing (token expires ${view.expiresAt}).`);
    try {
      refreshScope = new CancellationScope();
      const result = await refreshScope.run(() =>
        refreshCredential.executeWithOptions(
          { summary: `refresh ${view.provider} credential "${view.name}"`, startToCloseTimeout: '45 seconds' },
          [{ credentialId, expectedVersion: view.version }],
        ),
      );
      const wasFailing = state.lastResult?.outcome === 'failed' || state.lastResult?.outcome === 'reauth_required';
      state.lastRefreshAt = Date.now();
      state.refreshes++;
      state.lastResult = { outcome: result.outcome, at: new Date().toISOString(), attempts: result.attempts };
      publish(result.credential);
      finishGeneration({ credential: result.credential });
      if (wasFailing && state.lastResult.outcome === 'refreshed') {
        notify({ event: 'credential.recovered', credentialId, provider: view.provider, name: view.name });
      }
    } catch (error) {
      if (stopping && isCancellation(error)) break;
      const failure =
        error instanceof ApplicationFailure
          ? error
          : error instanceof Error && error.cause instanceof ApplicationFailure
            ? error.cause
            : undefined;
      const type = failure?.type ?? 'Unknown';
      const at = new Date().toISOString();
      if (type === FailureTypes.reauthRequired) {
        state.lastResult = { outcome: 'reauth_required', at, attempts: 1, error: type };
        finishGeneration({ failure: ApplicationFailure.nonRetryable('credential needs a new login', FailureTypes.reauthRequired) });
        notify({ event: 'credential.reauth_required', credentialId, provider: view.provider, name: view.name });
        continue; // describe shows reauth_required → parked
      }
      if (type === FailureTypes.notFound) {
        finishGeneration({ failure: ApplicationFailure.nonRetryable('credential not found', FailureTypes.notFound) });
        break;
      }
      // Misconfigured or malformed: keep the workflow alive and try later, recording why.
      state.lastResult = { outcome: 'failed', at, attempts: 1, error: type === FailureTypes.misconfigured ? type : FailureTypes.malformed };
      finishGeneration({ failure: ApplicationFailure.nonRetryable(`refresh failed: ${type}`, type) });
      if (type === FailureTypes.misconfigured) await park('provider misconfigured');
    } finally {
      refreshScope = undefined;
    }
  }

  phase = 'stopped';
  nextDue = null;
  setCurrentDetails('Stopped.');
  finishGeneration({ failure: ApplicationFailure.nonRetryable('refresh workflow stopped', FailureTypes.notFound) });
  await condition(allHandlersFinished);
  return status();
}
