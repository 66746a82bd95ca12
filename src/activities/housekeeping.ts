// What the Schedules and notifications run: reconcile (start missing refresh workflows), purge
// (expired login sessions, events past retention) and signed webhooks.
import { ApplicationFailure } from '@temporalio/activity';
import { FailureType } from '../model/failures.js';
import type { ActivityDeps, PurgeResult, WebhookEvent } from './types.js';
import { postWebhook } from './webhook.js';

export function housekeepingActivities(deps: ActivityDeps) {
  const { log } = deps;
  return {
    async reconcileCredentials(): Promise<{ checked: number; started: number }> {
      if (!deps.reconcile)
        throw ApplicationFailure.nonRetryable('this worker cannot reconcile (no Temporal client)', FailureType.misconfigured);
      const result = await deps.reconcile();
      if (result.started > 0) log.info(result, 'reconcile started missing refresh workflows');
      return result;
    },

    async purgeExpired(): Promise<PurgeResult> {
      if (!deps.purge) throw ApplicationFailure.nonRetryable('this worker cannot purge (no database access)', FailureType.misconfigured);
      const result = await deps.purge();
      if (result.loginSessions || result.events) log.info(result, 'purged expired login sessions and events past retention');
      return result;
    },

    /** POSTs a signed JSON event (HMAC-SHA256 over timestamp.body); no secret in the payload. */
    async notifyWebhook(event: WebhookEvent): Promise<void> {
      const status = await postWebhook(deps.webhook, event.event, { ...event });
      if (status !== undefined && status >= 300) throw ApplicationFailure.retryable(`webhook answered ${status}`, 'WebhookFailed');
    },
  };
}
