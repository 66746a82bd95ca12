// createActivities(deps): the only side effects workflows can reach. Dependencies come in from
// the factory (never globals), so tests build activities with a real database and a fake provider.
import { createHmac } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { request } from 'undici';
import type { ProviderId } from '../config.js';
import type { CredentialMetadata, CredentialSecret, CredentialStore } from '../db/credentials.js';
import {
  MisconfiguredError,
  NotFoundError,
  ProviderUnavailableError,
  ReauthRequiredError,
  ValidationError,
  VersionConflictError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { callAuth } from '../auth/credentialAuth.js';
import { buildProviderCall } from '../auth/clientBuilder.js';
import { readBody } from '../auth/http.js';
import { MalformedTokenResponseError, parseRetryAfter, parseTokenAnswer, requestRefresh } from '../auth/tokenClient.js';
import { sealedAnswerSchema, type RefreshAnswerStore, type SealedAnswer } from '../db/refreshAnswers.js';
import type { ProviderDefinition } from '../providers/types.js';
import { FailureType } from '../workflows/failures.js';
import { withOneRefresh } from '../credentials/withOneRefresh.js';

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
  log: Logger;
  /** Token writes tried this often before the attempt fails (its retry stores the recorded answer). */
  writeAttempts?: number;
}

export interface PurgeResult {
  loginSessions: number;
  events: number;
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

/** Heartbeat this often while a refresh runs (the workflow's heartbeat timeout is 20 s). */
const HEARTBEAT_EVERY_MS = 3_000;
/** Token writes tried this often (about 20 s with the pauses) before the attempt fails and a retry stores the answer. */
const WRITE_ATTEMPTS = 8;

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
  if (error instanceof ReauthRequiredError) return ApplicationFailure.nonRetryable(message, FailureType.reauthRequired);
  if (error instanceof NotFoundError) return ApplicationFailure.nonRetryable(message, FailureType.notFound);
  if (error instanceof MisconfiguredError) return ApplicationFailure.nonRetryable(message, FailureType.misconfigured);
  if (error instanceof ValidationError) return ApplicationFailure.nonRetryable(message, FailureType.invalidRequest);
  if (error instanceof ProviderUnavailableError) {
    return ApplicationFailure.create({ message, type: FailureType.providerUnavailable, nextRetryDelay: error.retryAfterMs });
  }
  return ApplicationFailure.retryable(message, FailureType.transient);
}

// undici's codes for a connection that never carried the request: safe to retry.
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** A provider call that failed without an answer: retryable only if the request never left. */
function callFailure(error: unknown): Error {
  if (error instanceof Error && error.name === 'InvalidArgumentError')
    return new ValidationError(`the request cannot be sent: ${error.message}`);
  const code = (error as { code?: unknown })?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string' && NOT_SENT.has(code)) return new ProviderUnavailableError(`provider unreachable (${code})`);
  // Sent, then cut off: the provider may have processed (and billed) it. Not sent again.
  return ApplicationFailure.nonRetryable(
    `provider call failed after it was sent (${typeof code === 'string' ? code : message}); not retried, since the provider may have processed it`,
    FailureType.providerUnavailable,
  );
}

/** Retries `fn` with growing pauses; a version conflict or a cancelled attempt stops at once. */
async function withRetries<T>(fn: () => Promise<T>, opts: { attempts: number; delayMs: number; signal: AbortSignal }): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= opts.attempts || error instanceof VersionConflictError || opts.signal.aborted) throw error;
      await new Promise((resolve) => setTimeout(resolve, opts.delayMs * attempt));
    }
  }
}

export function createActivities(deps: ActivityDeps) {
  const { store, providers, log } = deps;
  const { answers } = deps;

  /** Someone else wrote the credential (a PATCH, a new login, an earlier attempt): its state now. */
  async function alreadyCurrent(credentialId: string, attempts: number): Promise<RefreshResult> {
    const { metadata, secret } = await store.getWithSecret(credentialId);
    return { outcome: 'already_current', credential: toView(metadata, secret), attempts };
  }

  /** Writes a recorded 2xx answer's tokens (guarded by version); see refreshCredential. */
  async function storeAnswer(
    ctx: Context,
    a: {
      credentialId: string;
      expectedVersion: number;
      secret: CredentialSecret;
      provider: ProviderDefinition;
      sealed: SealedAnswer;
      attempts: number;
    },
  ): Promise<RefreshResult> {
    const { credentialId, expectedVersion, secret, attempts } = a;
    let parsed;
    try {
      parsed = parseTokenAnswer(a.provider, answers.open(credentialId, expectedVersion, a.sealed));
    } catch (error) {
      if (!(error instanceof MalformedTokenResponseError)) throw error;
      // A 2xx without an access token: kept sealed for an operator; retrying would spend again.
      await answers.record(credentialId, expectedVersion, a.sealed, 'unusable').catch(() => {});
      await store.recordRefreshFailure(credentialId, `${error.message} (answer kept for an operator)`, expectedVersion).catch(() => {});
      throw ApplicationFailure.nonRetryable(error.message, FailureType.malformed);
    }
    if (parsed.oddFields.length > 0) {
      log.warn({ credentialId, fields: parsed.oddFields }, 'token answer had fields of an unexpected shape; kept the usable ones');
    }
    const { tokens } = parsed;
    const next: CredentialSecret = {
      ...secret,
      accessToken: tokens.accessToken,
      // A provider that does not rotate refresh tokens keeps the old one valid.
      refreshToken: tokens.refreshToken ?? secret.refreshToken,
      idToken: tokens.idToken ?? secret.idToken,
      accountId: tokens.accountId ?? secret.accountId,
    };
    let updated;
    try {
      // A brief database hiccup must not lose the new tokens; a long outage fails this attempt
      // and the next one stores the answer from the heartbeat details.
      updated = await withRetries(
        () => store.updateTokens(credentialId, expectedVersion, { secret: next, expiresAt: tokens.expiresAt, reason: 'refreshed' }),
        { attempts: deps.writeAttempts ?? WRITE_ATTEMPTS, delayMs: 500, signal: ctx.cancellationSignal },
      );
    } catch (error) {
      if (!(error instanceof VersionConflictError)) throw error;
      // Replaced while the request was out. If the replacement kept the refresh token this answer
      // just spent, move the row to the new one; the replaced access token stays.
      if (tokens.refreshToken && secret.refreshToken && tokens.refreshToken !== secret.refreshToken) {
        const adopted = await store.adoptRotatedRefreshToken(credentialId, secret.refreshToken, tokens.refreshToken);
        if (adopted)
          log.info(
            { credentialId, version: adopted.version },
            'kept the rotated refresh token over a replacement that still held the spent one',
          );
      }
      await answers.settle(credentialId, expectedVersion).catch(() => {});
      return alreadyCurrent(credentialId, attempts);
    }
    await answers.settle(credentialId, expectedVersion).catch(() => {});
    log.info({ credentialId, version: updated.version, expiresAt: updated.expiresAt }, 'credential refreshed');
    return { outcome: 'refreshed', credential: toView(updated, next), attempts };
  }

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
     * Refreshes once, crash-safely (see DESIGN "Why the refresh activity reads the version"):
     * - the row moved past `expectedVersion`: someone already refreshed; return the current state;
     * - an answer for this version is already recorded (heartbeat details from an earlier attempt
     *   on any worker, or the write-ahead row): store it, never spend the old token again;
     * - else call the token endpoint, wait for its answer as long as this attempt lives
     *   (heartbeating), record it sealed the moment it arrives, then write the tokens.
     * Every write is guarded by `expectedVersion`: a PATCH or a new login in between wins.
     */
    async refreshCredential({ credentialId, expectedVersion }: { credentialId: string; expectedVersion: number }): Promise<RefreshResult> {
      const ctx = Context.current();
      const attempts = ctx.info.attempt;
      const carried = sealedAnswerSchema.safeParse((ctx.info.heartbeatDetails as { answer?: unknown } | undefined)?.answer);
      // What this attempt heartbeats: once an answer exists, it rides along on every beat.
      let details: { answer?: SealedAnswer } = carried.success ? { answer: carried.data } : {};
      const beat = () => ctx.heartbeat(details);
      beat();
      const beating = setInterval(beat, HEARTBEAT_EVERY_MS);
      try {
        const { metadata, secret } = await store.getWithSecret(credentialId);
        if (metadata.version !== expectedVersion) {
          await answers.settle(credentialId, expectedVersion).catch(() => {});
          return { outcome: 'already_current', credential: toView(metadata, secret), attempts };
        }
        const provider = providers.get(metadata.provider);
        const recorded = details.answer ?? (await answers.findPending(credentialId, expectedVersion));
        if (recorded) {
          details = { answer: recorded };
          beat();
          log.info({ credentialId, attempt: attempts }, 'storing a token answer recorded by an earlier attempt');
          return await storeAnswer(ctx, { credentialId, expectedVersion, secret, provider, sealed: recorded, attempts });
        }
        if (metadata.status === 'reauth_required') throw new ReauthRequiredError('credential needs a new login');
        if (!secret.refreshToken) throw new MisconfiguredError('credential has no refresh token');
        let answer;
        try {
          // No timer once the request is sent: only this attempt's cancellation ends the wait.
          answer = await requestRefresh(provider, secret.refreshToken, { signal: ctx.cancellationSignal });
        } catch (error) {
          if (error instanceof ReauthRequiredError) {
            // An earlier attempt of this refresh may have got (and recorded) the answer late, after
            // this one started: that answer is good, and is why the provider now refuses the token.
            const late = await answers.findPending(credentialId, expectedVersion).catch(() => undefined);
            if (late) {
              details = { answer: late };
              beat();
              return await storeAnswer(ctx, { credentialId, expectedVersion, secret, provider, sealed: late, attempts });
            }
            try {
              await store.markReauthRequired(credentialId, error.message, expectedVersion);
            } catch (markError) {
              if (!(markError instanceof VersionConflictError)) throw markError;
              // New tokens arrived while the dead one was out: they are good, nothing to mark.
              return alreadyCurrent(credentialId, attempts);
            }
            throw error;
          }
          if (error instanceof MalformedTokenResponseError) {
            // A 2xx whose body could not be read (bad compression, say): the token may be spent;
            // presenting it again at once would likely kill the login. The workflow backs off.
            await store.recordRefreshFailure(credentialId, error.message, expectedVersion).catch(() => {});
            throw ApplicationFailure.nonRetryable(error.message, FailureType.malformed);
          }
          if (error instanceof ProviderUnavailableError)
            await store.recordRefreshFailure(credentialId, error.message, expectedVersion).catch(() => {});
          throw error;
        }
        // The old refresh token is spent now: make the answer durable before anything can lose it.
        const sealed = answers.seal(credentialId, expectedVersion, answer);
        details = { answer: sealed };
        beat();
        await answers
          .record(credentialId, expectedVersion, sealed)
          .catch((error: unknown) =>
            log.warn(
              { credentialId, error: error instanceof Error ? error.message : String(error) },
              'token answer kept in heartbeat details only (database unavailable)',
            ),
          );
        return await storeAnswer(ctx, { credentialId, expectedVersion, secret, provider, sealed, attempts });
      } catch (error) {
        if (error instanceof VersionConflictError) return alreadyCurrent(credentialId, attempts);
        log.warn(
          { credentialId, attempt: attempts, error: error instanceof Error ? error.message : String(error) },
          'credential refresh failed',
        );
        throw toFailure(error);
      } finally {
        clearInterval(beating);
      }
    },

    /**
     * One provider call through the shared client builder; a 401 on OAuth asks for one refresh.
     * It waits for the answer as long as the attempt lives (a long generation is not cut short by
     * a timer and re-sent), heartbeating so a dead worker is noticed. Retried only when the
     * provider says so (429, 5xx, 529) or when nothing reached it (the connection failed):
     * a call that may have been processed is never sent twice.
     */
    async sendMessage({ credentialId, request: call }: { credentialId: string; request: MessageRequest }): Promise<MessageResponse> {
      const ctx = Context.current();
      const beating = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
      try {
        const load = async () => {
          const loaded = await store.getWithSecret(credentialId);
          if (loaded.metadata.status === 'reauth_required') throw new ReauthRequiredError('credential needs a new login');
          // As the proxy refuses it: a disabled credential sends nothing, durable call or not.
          if (loaded.metadata.status === 'disabled') {
            throw ApplicationFailure.nonRetryable(`credential "${loaded.metadata.name}" is disabled`, FailureType.disabled);
          }
          return loaded;
        };
        const send = async ({ metadata, secret }: Awaited<ReturnType<typeof load>>) => {
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
            res = await request(built.url, {
              method,
              headers: built.headers,
              body,
              headersTimeout: 0,
              bodyTimeout: 0,
              signal: ctx.cancellationSignal,
            });
          } catch (error) {
            throw callFailure(error);
          }
          try {
            return { res, raw: await readBody(res.body, res.headers['content-encoding'] as string | undefined) };
          } catch (error) {
            // The provider answered (and may have billed it): an answer cut short is not re-sent.
            throw ApplicationFailure.nonRetryable(
              `the provider's answer could not be read (${(error as Error).message})`,
              FailureType.providerUnavailable,
            );
          }
        };
        const { res, raw } = await withOneRefresh(await load(), send, {
          refused: (answer, { metadata }) => answer.res.statusCode === 401 && metadata.authType === 'oauth',
          refresh: async ({ metadata }) => {
            await deps.requestRefresh(credentialId, metadata.version);
            return load();
          },
        });
        if (res.statusCode === 429 || res.statusCode >= 500) {
          throw new ProviderUnavailableError(`provider answered ${res.statusCode}`, parseRetryAfter(res.headers['retry-after']));
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
      } catch (error) {
        throw toFailure(error);
      } finally {
        clearInterval(beating);
      }
    },

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

export type MaestroActivities = ReturnType<typeof createActivities>;
