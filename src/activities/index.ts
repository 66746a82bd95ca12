// createActivities(deps): the only side effects workflows can reach. Dependencies come in from
// the factory (never globals), so tests build activities with a real database and a fake provider.
import { createHmac } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { request } from 'undici';
import type { ProviderId } from '../config.js';
import type { CredentialMetadata, CredentialSecret, CredentialStore } from '../db/credentials.js';
import { MisconfiguredError, NotFoundError, ProviderUnavailableError, ReauthRequiredError, ValidationError, VersionConflictError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { callAuth } from '../auth/credentialAuth.js';
import { buildProviderCall } from '../auth/clientBuilder.js';
import { readBody } from '../auth/http.js';
import { MalformedTokenResponseError, refreshAccessToken } from '../auth/tokenClient.js';

export interface ActivityDeps {
  store: CredentialStore;
  providers: ProviderRegistry;
  /** Asks the credential's refresh workflow to refresh now (the refreshNow update) and waits for it; ifVersion = the version whose token failed. */
  requestRefresh(credentialId: string, ifVersion: number): Promise<void>;
  webhook: { url?: string; secret?: string };
  log: Logger;
  /** Timeout for one provider HTTP call. */
  httpTimeoutMs?: number;
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
}

export interface WebhookEvent {
  event: 'credential.reauth_required' | 'credential.recovered';
  credentialId: string;
  provider: ProviderId;
  name: string;
}

/** A malformed token answer is retried this many times before the workflow backs off for longer. */
const MALFORMED_ATTEMPTS = 5;

const msFromNow = (iso: string | null, sign: 1 | -1) => (iso === null ? null : sign * (Date.parse(iso) - Date.now()));

const toView = (metadata: CredentialMetadata, secret: CredentialSecret): CredentialView => ({
  id: metadata.id,
  name: metadata.name,
  provider: metadata.provider,
  authType: metadata.authType,
  status: metadata.status,
  expiresAt: metadata.expiresAt,
  tokenObtainedAt: metadata.tokenObtainedAt,
  version: metadata.version,
  refreshable: metadata.authType === 'oauth' && Boolean(secret.refreshToken),
  expiresInMs: msFromNow(metadata.expiresAt, 1),
  ageMs: msFromNow(metadata.tokenObtainedAt, -1),
});

/** Maps Maestro's errors onto Temporal failures: what a retry cannot fix is non-retryable. */
function toFailure(error: unknown): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ReauthRequiredError) return ApplicationFailure.nonRetryable(message, 'ReauthRequired');
  if (error instanceof NotFoundError) return ApplicationFailure.nonRetryable(message, 'NotFound');
  if (error instanceof MisconfiguredError) return ApplicationFailure.nonRetryable(message, 'Misconfigured');
  if (error instanceof ValidationError) return ApplicationFailure.nonRetryable(message, 'InvalidRequest');
  if (error instanceof ProviderUnavailableError) {
    return ApplicationFailure.create({ message, type: 'ProviderUnavailable', nextRetryDelay: error.retryAfterMs });
  }
  return ApplicationFailure.retryable(message, 'Transient');
}

function retryAfterMs(value: string | string[] | undefined): number | undefined {
  const header = Array.isArray(value) ? value[0] : value;
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

async function withRetries<T>(fn: () => Promise<T>, attempts: number, delayMs: number): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || error instanceof VersionConflictError) throw error;
      await new Promise((resolve) => setTimeout(resolve, delayMs * attempt));
    }
  }
}

export function createActivities(deps: ActivityDeps) {
  const { store, providers, log } = deps;
  const timeoutMs = deps.httpTimeoutMs ?? 30_000;
  // Tokens the provider issued that could not be stored yet (database down longer than the write
  // retries). The old refresh token is already spent: a retried attempt stores these instead of
  // calling the token endpoint again. Per worker process; dropped once written or superseded.
  const unwritten = new Map<string, { expectedVersion: number; secret: CredentialSecret; expiresAt: Date | null }>();

  return {
    async describeCredential({ credentialId }: { credentialId: string }): Promise<CredentialView | null> {
      try {
        const { metadata, secret } = await store.getWithSecret(credentialId);
        return toView(metadata, secret);
      } catch (error) {
        if (error instanceof NotFoundError) return null;
        throw toFailure(error);
      }
    },

    /**
     * Refreshes once, crash-safely: if the row's version moved on, someone already refreshed and
     * the (possibly retried) activity returns the current state instead of spending the new
     * single-use refresh token again. The new tokens are written immediately, guarded by version.
     */
    async refreshCredential({ credentialId, expectedVersion }: { credentialId: string; expectedVersion: number }): Promise<RefreshResult> {
      const attempts = Context.current().info.attempt;
      try {
        const { metadata, secret } = await store.getWithSecret(credentialId);
        if (metadata.version !== expectedVersion) {
          unwritten.delete(credentialId);
          return { outcome: 'already_current', credential: toView(metadata, secret), attempts };
        }
        const pending = unwritten.get(credentialId);
        if (pending?.expectedVersion === expectedVersion) {
          const updated = await store.updateTokens(credentialId, expectedVersion, { secret: pending.secret, expiresAt: pending.expiresAt, reason: 'refreshed' });
          unwritten.delete(credentialId);
          log.info({ credentialId, version: updated.version, expiresAt: updated.expiresAt }, 'credential refreshed (stored after a database outage)');
          return { outcome: 'refreshed', credential: toView(updated, pending.secret), attempts };
        }
        if (metadata.status === 'reauth_required') throw new ReauthRequiredError('credential needs a new login');
        if (!secret.refreshToken) throw new MisconfiguredError('credential has no refresh token');
        const provider = providers.get(metadata.provider);
        let tokens;
        try {
          tokens = await refreshAccessToken(provider, secret.refreshToken, { timeoutMs });
        } catch (error) {
          if (error instanceof ReauthRequiredError) {
            await store.markReauthRequired(credentialId, error.message);
            throw error;
          }
          if (error instanceof MalformedTokenResponseError && attempts >= MALFORMED_ATTEMPTS) {
            await store.recordRefreshFailure(credentialId, error.message);
            throw ApplicationFailure.nonRetryable(error.message, 'MalformedTokenResponse');
          }
          if (error instanceof ProviderUnavailableError) await store.recordRefreshFailure(credentialId, error.message).catch(() => {});
          throw error;
        }
        const next: CredentialSecret = {
          ...secret,
          accessToken: tokens.accessToken,
          // A provider that does not rotate refresh tokens keeps the old one valid.
          refreshToken: tokens.refreshToken ?? secret.refreshToken,
          idToken: tokens.idToken ?? secret.idToken,
          accountId: tokens.accountId ?? secret.accountId,
        };
        // The old refresh token is spent now: a brief database hiccup must not lose the new one.
        unwritten.set(credentialId, { expectedVersion, secret: next, expiresAt: tokens.expiresAt });
        const updated = await withRetries(
          () => store.updateTokens(credentialId, expectedVersion, { secret: next, expiresAt: tokens.expiresAt, reason: 'refreshed' }),
          10,
          500,
        );
        unwritten.delete(credentialId);
        log.info({ credentialId, version: updated.version, expiresAt: updated.expiresAt }, 'credential refreshed');
        return { outcome: 'refreshed', credential: toView(updated, next), attempts };
      } catch (error) {
        if (error instanceof VersionConflictError || error instanceof NotFoundError) unwritten.delete(credentialId);
        if (error instanceof VersionConflictError) {
          const { metadata, secret } = await store.getWithSecret(credentialId);
          return { outcome: 'already_current', credential: toView(metadata, secret), attempts };
        }
        log.warn({ credentialId, attempt: attempts, error: error instanceof Error ? error.message : String(error) }, 'credential refresh failed');
        throw toFailure(error);
      }
    },

    /** One provider call through the shared client builder; a 401 on OAuth asks for one refresh. */
    async sendMessage({ credentialId, request: call }: { credentialId: string; request: MessageRequest }): Promise<MessageResponse> {
      try {
        for (let refreshed = false; ; refreshed = true) {
          const { metadata, secret } = await store.getWithSecret(credentialId);
          if (metadata.status === 'reauth_required') throw new ReauthRequiredError('credential needs a new login');
          const method = call.method ?? 'POST';
          const built = buildProviderCall(providers.get(metadata.provider), {
            auth: callAuth(metadata, secret),
            method,
            path: call.path,
            search: '',
            clientHeaders: { ...call.headers, 'content-type': 'application/json', accept: 'application/json' },
          });
          let body: Buffer | undefined = method === 'GET' ? undefined : Buffer.from(JSON.stringify(call.body ?? {}));
          if (body && built.transformBody) body = built.transformBody(body);
          let res;
          try {
            res = await request(built.url, { method, headers: built.headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
          } catch (error) {
            throw new ProviderUnavailableError(`provider unreachable: ${(error as Error).message}`);
          }
          const raw = await readBody(res.body, res.headers['content-encoding'] as string | undefined);
          if (res.statusCode === 401 && metadata.authType === 'oauth' && !refreshed) {
            await deps.requestRefresh(credentialId, metadata.version);
            continue;
          }
          if (res.statusCode === 429 || res.statusCode >= 500) {
            throw new ProviderUnavailableError(`provider answered ${res.statusCode}`, retryAfterMs(res.headers['retry-after']));
          }
          const contentType = (res.headers['content-type'] as string | undefined) ?? null;
          const text = raw.toString('utf8');
          let parsed: unknown = text;
          if (contentType?.includes('json')) {
            try {
              parsed = JSON.parse(text);
            } catch {
              // leave as text
            }
          }
          return { status: res.statusCode, contentType, body: parsed };
        }
      } catch (error) {
        throw toFailure(error);
      }
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

export type MaestroActivities = ReturnType<typeof createActivities>;
