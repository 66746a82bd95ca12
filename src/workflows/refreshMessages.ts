// The refresh workflow's messages and the types they carry. The API and the worker import these
// without pulling in workflow code (the samples' safe-message-handlers layout).
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CredentialView } from '../activities/index.js';
import type { RateLimitState } from '../usage/rateLimits.js';
import type { QuotaCarried } from './quotaSchedule.js';

export const credentialWorkflowId = (credentialId: string) => `credential:${credentialId}`;

/** Token refreshes run on their own task queue (see src/temporal/worker.ts: no self-starvation). */
export const refreshTaskQueue = (taskQueue: string) => `${taskQueue}-refresh`;

export interface RefreshNowInput {
  /** The token version the caller saw fail; a newer stored version is returned without a refresh. */
  ifVersion?: number;
  /** How long this caller waits for the refresh before it is told "still retrying" (ms). */
  waitMs?: number;
}

/** Refresh now; concurrent callers share one refresh; every caller is answered within `waitMs`. */
export const refreshNowUpdate = defineUpdate<CredentialView, [RefreshNowInput]>('refreshNow');
/** The credential's tokens or status changed outside the workflow (a PATCH or a new login). */
export const credentialUpdatedSignal = defineSignal('credentialUpdated');
/** End the workflow (the credential was deleted). */
export const stopSignal = defineSignal('stop');
export const statusQuery = defineQuery<RefreshStatus>('status');

export interface ReadQuotaInput {
  /** How long this caller waits for the read (ms); bounded like a refresh-now. */
  waitMs?: number;
}
/** Read the quota endpoint now (one read in flight per credential: concurrent callers share it). */
export const readQuotaUpdate = defineUpdate<RateLimitState, [ReadQuotaInput]>('readQuota');
/** A pool benched this credential until `untilIso` (a bench starts or grows): read on the benched schedule. */
export const quotaBenchedSignal = defineSignal<[untilIso: string]>('quotaBenched');

export { DEFAULT_REFRESH_WAIT_MS, MAX_REFRESH_WAIT_MS, MIN_REFRESH_WAIT_MS } from '../model/refreshWait.js';

export interface LastResult {
  outcome: 'refreshed' | 'already_current' | 'reauth_required' | 'failed';
  at: string;
  /** Activity attempts the last refresh took (retries included). */
  attempts: number;
  error?: string;
}

/** Plain-JSON state carried across continue-as-new. */
export interface CarriedState {
  lastRefreshAt?: number;
  refreshes: number;
  lastResult?: LastResult;
  refreshRequested: boolean;
  /** The current token version's lifetime on workflow time (ms since epoch). */
  anchor?: { version: number; obtainedAt: number; expiresAt: number };
  /** Quota reads' schedule (runs with the quota-reads patch). */
  quota?: QuotaCarried;
}

export interface RefreshWorkflowInput {
  credentialId: string;
  state?: CarriedState;
  /** Continue-as-new once history passes this many events (the server's suggestion also counts). */
  maxHistoryEvents?: number;
  /** Idle quota reads this often (ms; MAESTRO_QUOTA_INTERVAL); 0: only when benched or asked. Unset: 15 min. */
  quotaIntervalMs?: number;
}

export interface RefreshStatus {
  credentialId: string;
  phase: 'starting' | 'sleeping' | 'refreshing' | 'parked' | 'stopped';
  nextRefreshAt: string | null;
  refreshes: number;
  lastRefreshAt: string | null;
  lastResult: LastResult | null;
  credentialStatus: string | null;
  /** Quota reads (runs with the quota-reads patch). */
  quota?: { nextReadAt: string | null; lastReadAt: string | null; benchedUntil: string | null; lastOutcome: string | null };
}
