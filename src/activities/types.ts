// What workflows and activities exchange (plain JSON), and what the activities are built from.
import type { ProviderId } from '../model/providers.js';
import type { DurableCallSigner } from '../crypto/durableCalls.js';
import type { CredentialMetadata, CredentialStore } from '../db/credentials.js';
import type { RefreshAnswerStore } from '../db/refreshAnswers.js';
import type { UsageStore } from '../db/usage.js';
import type { RateLimitState } from '../usage/rateLimits.js';
import type { Logger } from '../logger.js';
import type { ProviderRegistry } from '../providers/registry.js';

export interface ActivityDeps {
  store: CredentialStore;
  /** The write-ahead log of token answers (sealed). */
  answers: RefreshAnswerStore;
  providers: ProviderRegistry;
  /** Asks the credential's refresh workflow to refresh now (the refreshNow update) and waits for it; ifVersion = the version whose token failed. */
  requestRefresh(credentialId: string, ifVersion: number): Promise<void>;
  /** Starts the refresh workflow of every OAuth credential that has none (the reconcile Schedule). */
  reconcile?: () => Promise<{ checked: number; started: number }>;
  /** Housekeeping (the maintenance Schedule): expired login sessions and events past retention. */
  purge?: () => Promise<PurgeResult>;
  webhook: { url?: string; secret?: string };
  /** Checks that a durable call was accepted (and signed) by a Maestro API, and claims it for one workflow run. */
  durableCalls: DurableCallGuard;
  /** Usage of durable calls, recorded by the worker that made them: once per attempt (the attempt's key). Unset: the accepting API records it. */
  usage?: Pick<UsageStore, 'addOnce'>;
  /** Where quota reads are stored and counted (src/db/usage.ts). Unset: reads are returned, not stored. */
  quota?: Pick<UsageStore, 'saveQuota' | 'quota' | 'countQuotaRead'>;
  /** Called after each successful quota read with the credential's endpoint state (pools release a bench that shows room). */
  onQuotaRead?: (credentialId: string, state: RateLimitState) => Promise<void>;
  log: Logger;
  /** Token writes tried this often before the attempt fails (its retry stores the recorded answer). */
  writeAttempts?: number;
}

export interface PurgeResult {
  loginSessions: number;
  events: number;
  durableCallClaims: number;
  durableCallUsage: number;
  /** Pool events past retention, expired sessions and leases (migration 0010). */
  poolRouting?: number;
}

export interface DurableCallGuard {
  verify: DurableCallSigner['verify'];
  /** True when this run may send the call: the first run to present it, or a retry of that run. */
  claim(workflowId: string, runId: string): Promise<boolean>;
}

/** What workflows see of a credential: metadata only, plus whether it can be refreshed. */
export interface CredentialView {
  id: string;
  name: string;
  provider: ProviderId;
  authType: CredentialMetadata['authType'];
  status: CredentialMetadata['status'];
  expiresAt: string | null;
  tokenObtainedAt: string | null;
  version: number;
  refreshable: boolean;
  /**
   * Remaining lifetime and age of the token, measured when this view was made. The workflow
   * anchors them on its own clock, so a skew between worker hosts and the Temporal server (or
   * a time-skipping test server) never shifts the schedule.
   */
  expiresInMs: number | null;
  ageMs: number | null;
}

export interface RefreshResult {
  outcome: 'refreshed' | 'already_current';
  credential: CredentialView;
  attempts: number;
}

export interface MessageRequest {
  /** Provider API path, e.g. /v1/messages. */
  path: string;
  method?: 'POST' | 'GET';
  body?: unknown;
  headers?: Record<string, string>;
}

export interface MessageResponse {
  status: number;
  contentType: string | null;
  body: unknown;
  /**
   * Set when the worker recorded this call's usage (a call that named its key): the tokens it
   * charged the key's budget, so the accepting API counts them at once. Unset: the API records it.
   */
  recordedTokens?: number;
}

export interface WebhookEvent {
  event: 'credential.reauth_required' | 'credential.recovered';
  credentialId: string;
  provider: ProviderId;
  name: string;
}

export interface QuotaReadInput {
  credentialId: string;
}

/**
 * One quota read's outcome: `ok` (state read and stored), `stale` (token expired or refused:
 * state marked stale, no refresh), `rate_limited` (the endpoint's 429; `retryAfterMs` when it
 * said), `failed` (unreachable or unreadable), `unsupported` (no quota endpoint: API keys,
 * Gemini), `not_found` (the credential is gone).
 */
export interface QuotaReadResult {
  outcome: 'ok' | 'stale' | 'rate_limited' | 'failed' | 'unsupported' | 'not_found';
  state?: RateLimitState;
  /** ok: no window of this read is used up. */
  room?: boolean;
  retryAfterMs?: number;
  /** Why a read did not succeed (no secret in it). */
  reason?: string;
}
