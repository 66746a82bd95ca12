// ANY /proxy/:provider/* — the edge of the provider-call pipeline (src/upstream/): it parses the
// request, settles what the caller's key may reach, holds a concurrency slot, picks the credential,
// and hands the rest to the pipeline: body → attempt (refresh near expiry, send, one refresh and
// retry on a refused token) → relay (map, decode, watch usage) → account. A client that
// disconnects aborts the upstream call and releases any refresh wait.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import { needsBody } from '../auth/clientBuilder.js';
import {
  CallerGoneError,
  ConflictError,
  HttpError,
  MaestroError,
  ProviderUnavailableError,
  ReauthRequiredError,
  ServiceUnavailableError,
} from '../errors.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { ProviderId } from '../model/providers.js';
import type { Metrics } from './metrics.js';
import type { CachedCredential, TokenCache } from '../credentials/tokenCache.js';
import { principalOf } from './auth.js';
import { defaultSelectorFor, pickRefusal, requireCredential, requireInferencePath, requireProvider } from '../clientKeys/access.js';
import type { UsageRecorder } from '../usage/recorder.js';
import type { RateLimitBook } from '../usage/rateLimitBook.js';
import type { ConcurrentCalls, ReleaseCall } from '../clientKeys/concurrentCalls.js';
import { parseRateLimitHeaders } from '../usage/rateLimits.js';
import { attempt } from '../upstream/attempt.js';
import { readRequestBody } from '../upstream/body.js';
import { meteringOf, outgoingCall, send, type ClientRequest, type OutgoingCall } from '../upstream/call.js';
import { ClientGone } from '../upstream/clientGone.js';
import { relayAnswer } from '../upstream/relay.js';
import { callUsage } from '../upstream/account.js';
import type { StalledBodies } from '../upstream/stalledBodies.js';
import { choosePool } from '../upstream/poolChoice.js';
import type { PoolRouter } from '../pools/router.js';
import type { RoutingState } from '../pools/routingState.js';
import { servePooled } from './pooledProxy.js';

/** Refresh before forwarding when the token expires within this window. */
const EXPIRY_SKEW_MS = 10_000;

export interface ProxyDeps {
  providers: ProviderRegistry;
  cache: TokenCache;
  metrics: Metrics;
  bodyLimitBytes: number;
  /** Answers an error (the API's one error path, src/api/errors.ts sendError). */
  onError: (error: unknown, req: IncomingMessage, res: ServerResponse) => void;
  dispatcher?: Dispatcher;
  /** Usage and the provider's rate-limit state, from every answer (recorded in memory; flushed in batches). */
  usage: Pick<UsageRecorder, 'record'>;
  rateLimits: Pick<RateLimitBook, 'observe' | 'observeStreamError'>;
  /** limits.concurrentCalls: a slot from admission until the answer is relayed, the call fails or the client leaves. */
  calls: Pick<ConcurrentCalls, 'acquire'>;
  /** A request body that stops arriving is answered 408. */
  bodies: StalledBodies;
  /** Pools (DESIGN.md "Pools"): the routing state and router; without them every call uses one credential. */
  pools?: { router: PoolRouter; state: RoutingState };
}

/** Proxies one request whose `url` is the provider path (and query); typed on Node's own request and response. */
export type ProxyHandler = (req: IncomingMessage, res: ServerResponse, provider: string) => Promise<void>;

function usable(entry: CachedCredential): void {
  if (entry.metadata.status === 'reauth_required') {
    throw new ReauthRequiredError(
      `${entry.metadata.provider} credential "${entry.metadata.name}" needs a new login (POST /v1/oauth/${entry.metadata.provider}/start)`,
    );
  }
  if (entry.metadata.status !== 'active') throw new ConflictError(`credential "${entry.metadata.name}" is ${entry.metadata.status}`);
}

const refreshFirst = (c: CachedCredential) =>
  c.auth.type === 'oauth' && c.expiresAtMs !== null && c.expiresAtMs - Date.now() < EXPIRY_SKEW_MS;

export function createProxyHandler(deps: ProxyDeps): ProxyHandler {
  const dispatcher = deps.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: 256 });
  const pooled = deps.pools && { ...deps, ...deps.pools, dispatcher, usable, refreshFirst };

  return async (req, res, providerId) => {
    const started = performance.now();
    const url = req.url ?? '/';
    const method = req.method ?? 'GET';
    let release: ReleaseCall | undefined;
    try {
      if (!deps.providers.has(providerId)) {
        throw new HttpError(404, 'not_found', `unknown provider "${providerId.slice(0, 40)}"; use anthropic, openai or gemini`);
      }
      const provider: ProviderId = providerId;
      const definition = deps.providers.get(provider);
      const queryAt = url.indexOf('?');
      const path = queryAt < 0 ? url : url.slice(0, queryAt);
      // What the key may reach is settled before any credential is read or byte sent.
      const who = principalOf(req);
      requireProvider(who, provider);
      requireInferencePath(who, definition, method, path);
      const pool = deps.pools && choosePool(who, provider, req.headers, deps.pools.state);
      if (pool && pooled) {
        release = deps.calls.acquire(who);
        const mapped = needsBody(definition, 'oauth')
          ? { notPlain: `${provider} pools take plain (not content-encoded) request bodies` }
          : undefined;
        const body = await readRequestBody(req, { limit: deps.bodyLimitBytes, bodies: deps.bodies, mapped });
        const search = queryAt < 0 ? '' : url.slice(queryAt);
        await servePooled(pooled, { who, provider, definition, pool, method, path, search, body, started }, req, res, new ClientGone(res));
        return;
      }
      const selectorHeader = req.headers['x-maestro-credential'];
      const selector =
        typeof selectorHeader === 'string' && selectorHeader.trim() ? selectorHeader.trim() : defaultSelectorFor(who, provider);
      if (selector && selector.length > 200) throw new HttpError(400, 'invalid_request', 'x-maestro-credential is too long');
      release = deps.calls.acquire(who);
      const clientGone = new ClientGone(res);

      // Access first: a client key hears one refusal for a credential that is not there, not its, or needs a login.
      const asked = selector ? `${provider} credential "${selector}"` : `the default ${provider} credential`;
      const entry = await deps.cache.resolve(provider, selector).catch((error: unknown) => {
        throw pickRefusal(who, provider, selector, error, asked);
      });
      requireCredential(who, entry.metadata, asked);
      usable(entry); // before the body is read: nothing to read for a credential that cannot serve

      // A sign-in backend that maps calls (Codex, Code Assist) rewrites the body: it is read whole, and must be plain.
      const mapped = needsBody(definition, entry.auth.type)
        ? { notPlain: `${provider} sign-in credentials take plain (not content-encoded) request bodies` }
        : undefined;
      const body = await readRequestBody(req, { limit: deps.bodyLimitBytes, bodies: deps.bodies, mapped });
      const request: ClientRequest = { method, path, search: queryAt < 0 ? '' : url.slice(queryAt), headers: req.headers, body };
      const metering = meteringOf(definition, entry.auth.type, request);

      let out: OutgoingCall | undefined;
      let attempted;
      try {
        attempted = await attempt({
          candidate: entry,
          usable,
          refreshFirst,
          refresh: (c) => deps.cache.refresh(c.metadata.id, c.metadata.version, clientGone.signal),
          send: (c) => {
            out = outgoingCall(definition, c.auth, request, metering);
            const added = (performance.now() - started) / 1000;
            const answer = send(dispatcher, out, method, { signal: clientGone, headersTimeout: 600_000, bodyTimeout: 600_000 });
            deps.metrics.addedLatency.observe({ provider }, added); // after the request is on its way
            return answer;
          },
          refused: (answer, c) => answer.statusCode === 401 && c.auth.type === 'oauth' && body.replayable,
          discard: (answer) => answer.body.dump(),
        });
      } catch (error) {
        if (clientGone.aborted) return; // the client went away
        if (error instanceof MaestroError) throw error;
        deps.usage.record({ keyId: who.keyId, credentialId: entry.metadata.id, provider, error: true });
        throw new ProviderUnavailableError(`${provider} is unreachable: ${(error as Error).message}`);
      }
      const { answer: upstream } = attempted;
      const credentialId = entry.metadata.id;
      const recordLimits = () => {
        const limits = parseRateLimitHeaders(provider, upstream.headers);
        if (limits) deps.rateLimits.observe(credentialId, limits);
      };

      if (upstream.statusCode === 401 && entry.auth.type === 'oauth' && !body.replayable) {
        recordLimits(); // the request is counted once, as the error below
        // The token was refused but this body streamed through and cannot be sent again: refresh
        // in the background (single-flight, bounded by the workflows client) so the next call
        // works, and say so, rather than pass on a 401 that reads as "your key is wrong".
        await upstream.body.dump().catch(() => {});
        deps.usage.record({ keyId: who.keyId, credentialId, provider, error: true });
        const { id, version, name } = entry.metadata;
        deps.cache.refresh(id, version).catch(() => {}); // its outcome is the next call's concern
        throw new ServiceUnavailableError(
          `${provider} refused the access token of credential "${name}" and the streamed request body cannot be replayed; ` +
            'Maestro is refreshing the token: send the request again after Retry-After',
          { retryAfterSeconds: 2 },
        );
      }
      // The rate-limit state and the request count, once: after the first chunk left (relayAnswer
      // schedules it), and at the end whatever happened (a stream that ended at once must not have
      // its error event overwritten by the headers' "allowed").
      let accounted = false;
      const account = () => {
        if (accounted) return;
        accounted = true;
        recordLimits();
        // res.statusCode: a mapped answer's status may differ from the backend's.
        deps.metrics.proxyRequests.inc({ provider, status: String(res.statusCode) });
      };
      await relayAnswer(upstream, out!, metering, res, provider, {
        firstChunkOut: account,
        settled: ({ status, observation: seen }) => {
          account();
          if (seen.streamError) deps.rateLimits.observeStreamError(credentialId, seen.streamError);
          deps.usage.record({
            keyId: who.keyId,
            credentialId,
            provider,
            ...callUsage(seen, status, metering.reporting, { plain: body.plain, bytes: body.bytes() }),
          });
        },
      });
    } catch (error) {
      if (error instanceof CallerGoneError) return; // nobody is left to answer
      deps.metrics.proxyRequests.inc({ provider: deps.providers.has(providerId) ? providerId : 'unknown', status: 'error' });
      deps.onError(error, req, res);
    } finally {
      release?.();
    }
  };
}
