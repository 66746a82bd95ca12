// credentialRefreshWorkflow: one long-running workflow per OAuth credential (id `credential:<id>`).
// It sleeps on a durable timer until the token is due, refreshes it through one activity, and
// repeats; a dead refresh token parks it until new tokens arrive. It is the only writer of a
// credential's refreshed tokens, and every token write is version-guarded.
//
// Thin by design: the handlers are one-liners into CredentialRefresher, which owns the state.
// Runs started before the v2 marker existed replay on the frozen legacy code (and move over with
// continue-as-new at their next quiet loop turn).
import { patched, setHandler } from '@temporalio/workflow';
import { CredentialRefresher } from './credentialRefresher.js';
import { credentialRefreshWorkflowV1 } from './legacy/credentialRefreshV1.js';
import { REFRESH_V2_PATCH } from './legacy/patches.js';
import {
  credentialUpdatedSignal,
  quotaBenchedSignal,
  readQuotaUpdate,
  refreshNowUpdate,
  statusQuery,
  stopSignal,
  type RefreshStatus,
  type RefreshWorkflowInput,
} from './refreshMessages.js';

export * from './refreshMessages.js';
export { FailureType, FailureType as FailureTypes } from '../model/failures.js';

export async function credentialRefreshWorkflow(input: RefreshWorkflowInput): Promise<RefreshStatus> {
  if (!patched(REFRESH_V2_PATCH)) return credentialRefreshWorkflowV1(input);
  const refresher = new CredentialRefresher(input);
  setHandler(statusQuery, () => refresher.status());
  setHandler(credentialUpdatedSignal, () => refresher.credentialUpdated());
  setHandler(stopSignal, () => refresher.stop());
  setHandler(refreshNowUpdate, (update = {}) => refresher.refreshNow(update), {
    validator: (update = {}) => refresher.validateRefreshNow(update),
  });
  // Quota reads (issue 30): handlers only; the reads themselves are commands behind QUOTA_READS_PATCH.
  setHandler(quotaBenchedSignal, (untilIso) => refresher.quotaBenched(untilIso));
  setHandler(readQuotaUpdate, (input = {}) => refresher.readQuotaNow(input), {
    validator: (input = {}) => refresher.validateReadQuota(input),
  });
  return refresher.run();
}
