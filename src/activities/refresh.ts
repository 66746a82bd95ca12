// describeCredential and refreshCredential: what the refresh workflow reads and does, on its own
// task queue. The refresh is crash-safe: a rotated refresh token is never spent twice.
import { Context } from '@temporalio/activity';
import type { CredentialMetadata, CredentialSecret } from '../db/credentials.js';
import {
  MalformedTokenResponseError,
  MisconfiguredError,
  NotFoundError,
  ProviderUnavailableError,
  ReauthRequiredError,
  VersionConflictError,
} from '../errors.js';
import { parseTokenAnswer, requestRefresh } from '../auth/tokenClient.js';
import { sealedAnswerSchema, type SealedAnswer } from '../db/refreshAnswers.js';
import type { ProviderDefinition } from '../providers/types.js';
import { HEARTBEAT_EVERY_MS, toFailure, toView, WRITE_ATTEMPTS } from './failures.js';
import type { ActivityDeps, CredentialView, RefreshResult } from './types.js';

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

export function refreshActivities(deps: ActivityDeps) {
  const { store, providers, log, answers } = deps;

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
      /** The credential as read at expectedVersion (its provider and auth type): the write is then one statement. */
      readAs: Pick<CredentialMetadata, 'provider' | 'authType'>;
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
      throw toFailure(error);
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
        () =>
          store.updateTokens(credentialId, expectedVersion, {
            secret: next,
            expiresAt: tokens.expiresAt,
            reason: 'refreshed',
            readAs: a.readAs,
          }),
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
      // No beat at the start: Temporal core sends a beat at once only if none went out within the
      // worker's throttle (1 s), holds it otherwise, and drops a held one when the attempt
      // completes. A start beat would hold back (and, on a quick refresh, lose) the beat carrying
      // the token answer; without it a quick answer leaves at once, a later one within 1 s.
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
          return await storeAnswer(ctx, { credentialId, expectedVersion, secret, readAs: metadata, provider, sealed: recorded, attempts });
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
              return await storeAnswer(ctx, { credentialId, expectedVersion, secret, readAs: metadata, provider, sealed: late, attempts });
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
            throw toFailure(error);
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
        return await storeAnswer(ctx, { credentialId, expectedVersion, secret, readAs: metadata, provider, sealed, attempts });
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
  };
}
