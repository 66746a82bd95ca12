// readQuota: one read of a sign-in credential's quota endpoint (issue 30), scheduled by the
// credential's own workflow, which makes it the single reader in the cluster. A read spends no
// request and never refreshes: it presents the stored access token as it is. An expired token,
// or one the endpoint refuses, marks the stored state `stale` and leaves the token to the
// workflow's normal refresh schedule. Provider answers are outcomes, never activity failures:
// the workflow decides when to read again (retry-after, backoff), not Temporal's retry policy.
import { Context } from '@temporalio/activity';
import { request } from 'undici';
import { readBody } from '../auth/http.js';
import { NotFoundError, parseRetryAfter } from '../errors.js';
import { baseUrlFor } from '../providers/registry.js';
import { fillTemplates, lacksBodyValues, quotaValues } from '../providers/quotaTemplates.js';
import type { ProviderDefinition, QuotaEndpoint } from '../providers/types.js';
import type { RateLimitState } from '../usage/rateLimits.js';
import { hasRoom, mergeRateLimits, parseQuotaAnswer } from '../usage/quota.js';
import type { ActivityDeps, QuotaReadInput, QuotaReadResult } from './types.js';

/** A token this close to its expiry is not presented (it would expire on the way). */
const EXPIRY_MARGIN_MS = 5_000;
/** The endpoint answers small JSON; anything bigger is not a quota answer. */
const QUOTA_BODY_LIMIT_BYTES = 256 * 1024;
const QUOTA_TIMEOUT_MS = 20_000;

/** The endpoint's URL for this provider's sign-in base URL (after overrides). */
export function quotaUrl(def: ProviderDefinition, endpoint: QuotaEndpoint): string {
  const base = baseUrlFor(def, 'oauth');
  const root = endpoint.fromParent ? base.replace(/\/[^/]*$/, '') : base;
  return root + endpoint.path;
}

export function quotaActivities(deps: ActivityDeps) {
  const { store, providers, log } = deps;

  const count = (outcome: QuotaReadResult['outcome']) =>
    deps.quota?.countQuotaRead(outcome).catch((error: unknown) => log.debug({ error: String(error) }, 'could not count a quota read'));

  /** Marks the stored endpoint state stale (the token was refused or expired); its windows stay, with their age. */
  async function markStale(credentialId: string, now: Date): Promise<RateLimitState> {
    const before = (await deps.quota?.quota(credentialId).catch(() => undefined))?.state as RateLimitState | undefined;
    const state: RateLimitState = { ...(before ?? { windows: {} }), observedAt: now.toISOString(), stale: true };
    await deps.quota?.saveQuota(credentialId, state as unknown as Record<string, unknown>, now);
    return state;
  }

  async function readQuota(input: QuotaReadInput): Promise<QuotaReadResult> {
    const { credentialId } = input;
    let loaded;
    try {
      loaded = await store.getWithSecret(credentialId);
    } catch (error) {
      if (error instanceof NotFoundError) return { outcome: 'not_found' };
      throw error; // the database: Temporal retries the activity
    }
    const { metadata, secret } = loaded;
    const def = providers.get(metadata.provider);
    if (metadata.authType !== 'oauth' || !def.quota) {
      void count('unsupported');
      return { outcome: 'unsupported' };
    }
    const now = new Date();
    const expiresAt = metadata.expiresAt ? Date.parse(metadata.expiresAt) : null;
    if (!secret.accessToken || metadata.status !== 'active' || (expiresAt !== null && expiresAt - now.getTime() < EXPIRY_MARGIN_MS)) {
      // Never refresh for a read: the refresh schedule owns the token.
      const state = await markStale(credentialId, now);
      void count('stale');
      return { outcome: 'stale', state, reason: secret.accessToken ? 'token expired' : 'no access token' };
    }

    const values = quotaValues(metadata.providerMetadata, secret);
    if (lacksBodyValues(def.quota, values)) {
      // A Gemini sign-in without its Code Assist project: there is nothing to read quota for.
      void count('unsupported');
      return { outcome: 'unsupported' };
    }
    const body = def.quota.body ? fillTemplates(def.quota.body, values).filled : undefined;

    const signal = Context.current().cancellationSignal;
    let status: number;
    let headers: Record<string, string | string[] | undefined>;
    let raw: Buffer;
    try {
      const res = await request(quotaUrl(def, def.quota), {
        method: def.quota.method ?? 'GET',
        headers: fillTemplates(def.quota.headers, values).filled,
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.any([signal, AbortSignal.timeout(QUOTA_TIMEOUT_MS)]),
        headersTimeout: QUOTA_TIMEOUT_MS,
        bodyTimeout: QUOTA_TIMEOUT_MS,
      });
      status = res.statusCode;
      headers = res.headers;
      raw = await readBody(res.body, res.headers['content-encoding'], QUOTA_BODY_LIMIT_BYTES);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      void count('failed');
      return { outcome: 'failed', reason: `quota endpoint unreachable (${typeof code === 'string' ? code : 'error'})` };
    }

    if (status === 401 || status === 403) {
      const state = await markStale(credentialId, now);
      void count('stale');
      return { outcome: 'stale', state, reason: `quota endpoint refused the token (${status})` };
    }
    if (status === 429) {
      const seconds = parseRetryAfter(headers['retry-after']);
      void count('rate_limited');
      return { outcome: 'rate_limited', ...(seconds === undefined ? {} : { retryAfterMs: Math.ceil(seconds * 1000) }) };
    }
    let answer: unknown;
    try {
      answer = status >= 200 && status < 300 ? JSON.parse(raw.toString('utf8')) : undefined;
    } catch {
      answer = undefined;
    }
    const read = status >= 200 && status < 300 ? parseQuotaAnswer(def.quota.format, answer, now) : undefined;
    if (!read) {
      void count('failed');
      return {
        outcome: 'failed',
        reason: status >= 200 && status < 300 ? 'quota answer held no window' : `quota endpoint answered ${status}`,
      };
    }
    const before = (await deps.quota?.quota(credentialId).catch(() => undefined))?.state as RateLimitState | undefined;
    const state = mergeRateLimits(before, read)!;
    await deps.quota?.saveQuota(credentialId, state as unknown as Record<string, unknown>, now);
    void count('ok');
    if (deps.onQuotaRead) {
      await deps
        .onQuotaRead(credentialId, state)
        .catch((error: unknown) => log.warn({ credentialId, error: String(error) }, 'onQuotaRead failed; the read is stored anyway'));
    }
    return { outcome: 'ok', state, room: hasRoom(read, now.getTime()) };
  }

  return { readQuota };
}
