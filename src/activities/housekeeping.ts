// What the Schedules and notifications run: reconcile (start missing refresh workflows), purge
// (expired login sessions, events past retention) and signed webhooks.
import { createHmac } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import { request } from 'undici';
import { FailureType } from '../model/failures.js';
import type { ActivityDeps, PurgeResult, WebhookEvent } from './types.js';

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
      const { url, secret } = deps.webhook;
      if (!url || !secret) return;
      const timestamp = Math.floor(Date.now() / 1000).toString();
      const body = JSON.stringify({ ...event, at: new Date().toISOString() });
      const signature = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
      const res = await request(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-maestro-event': event.event,
          'x-maestro-timestamp': timestamp,
          'x-maestro-signature': `sha256=${signature}`,
        },
        body,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      await res.body.dump();
      if (res.statusCode >= 300) throw ApplicationFailure.retryable(`webhook answered ${res.statusCode}`, 'WebhookFailed');
    },
  };
}
