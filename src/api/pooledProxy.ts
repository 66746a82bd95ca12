// A proxied call through a pool (DESIGN.md "Pools"): the request's session and model family, the
// pool attempt (src/upstream/poolAttempt.ts) over the single-credential attempt, then the relay as
// for one credential — with `x-maestro-credential-id` naming the member that served, usage counted
// against that member and the pool, and answers that were failed over counted as errors against
// the members that gave them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { needsBody } from '../auth/clientBuilder.js';
import { MaestroError, ProviderUnavailableError, ServiceUnavailableError } from '../errors.js';
import type { PoolRecord } from '../model/pools.js';
import type { ProviderId } from '../model/providers.js';
import type { ProviderDefinition } from '../providers/types.js';
import type { Principal } from '../clientKeys/registry.js';
import type { CachedCredential, TokenCache } from '../credentials/tokenCache.js';
import { classifyAnswer, classifyStreamError, overageOf } from '../pools/classify.js';
import { modelFamily } from '../model/families.js';
import type { Picked, PoolRouter, RouteRequest } from '../pools/router.js';
import type { RoutingState } from '../pools/routingState.js';
import { sessionIdOf, sessionKeyOf } from '../pools/sessionKey.js';
import { findKey, KEY_MODEL, stringAt, valueAt } from '../usage/jsonBytes.js';
import { parseRateLimitHeaders } from '../usage/rateLimits.js';
import type { RateLimitBook } from '../usage/rateLimitBook.js';
import type { UsageRecorder } from '../usage/recorder.js';
import { attempt } from '../upstream/attempt.js';
import { callUsage } from '../upstream/account.js';
import type { RequestBody } from '../upstream/body.js';
import { meteringOf, outgoingCall, send, type ClientRequest, type Metering, type OutgoingCall } from '../upstream/call.js';
import type { ClientGone } from '../upstream/clientGone.js';
import { holdAnswer, needsHolding, type HeldAnswer } from '../upstream/holdAnswer.js';
import { attemptPool, type PooledSend } from '../upstream/poolAttempt.js';
import { relayAnswer } from '../upstream/relay.js';
import type { Metrics } from './metrics.js';

/** The pool loop's overall deadline: past it, the answer in hand stands (or the pool is exhausted). */
const POOL_DEADLINE_MS = 60_000;

export interface PooledDeps {
  cache: TokenCache;
  dispatcher: Dispatcher;
  metrics: Metrics;
  usage: Pick<UsageRecorder, 'record'>;
  rateLimits: Pick<RateLimitBook, 'observe' | 'observeStreamError'>;
  router: PoolRouter;
  state: RoutingState;
  usable(entry: CachedCredential): void;
  refreshFirst(entry: CachedCredential): boolean;
}

export interface PooledCall {
  who: Principal;
  provider: ProviderId;
  definition: ProviderDefinition;
  pool: PoolRecord;
  method: string;
  path: string;
  search: string;
  body: RequestBody;
  /** performance.now() when the request arrived. */
  started: number;
}

interface Served {
  entry: CachedCredential;
  out: OutgoingCall;
  metering: Metering;
}

export async function servePooled(
  deps: PooledDeps,
  call: PooledCall,
  req: IncomingMessage,
  res: ServerResponse,
  clientGone: ClientGone,
): Promise<void> {
  const { who, provider, definition, pool, body } = call;
  const plain = body.plain;
  const model = plain ? modelOf(plain) : undefined;
  const sessionId = sessionIdOf(req.headers, plain);
  const route: RouteRequest = {
    pool,
    family: modelFamily(model),
    sessionKey: sessionId ? sessionKeyOf(who.keyId, sessionId) : undefined,
  };
  const request: ClientRequest = { method: call.method, path: call.path, search: call.search, headers: req.headers, body };
  const served = new Map<string, Served>();
  // Anthropic streams are read up to their first content event before they are relayed: they must come plain.
  const peekStreams = provider === 'anthropic';
  let latencyObserved = false; // Maestro's added latency: until the first attempt is on its way

  // A session another process bound: routed where its earlier calls went.
  if (route.sessionKey && !deps.state.knowsSession(pool.id, route.sessionKey)) await deps.state.learnSession(pool.id, route.sessionKey);

  const observeLatency = () => {
    if (!latencyObserved) deps.metrics.addedLatency.observe({ provider }, (performance.now() - call.started) / 1000);
    latencyObserved = true;
  };
  const sendOut = (out: OutgoingCall) => {
    if (peekStreams) out.headers['accept-encoding'] = 'identity';
    const answer = send(deps.dispatcher, out, call.method, { signal: clientGone, headersTimeout: 600_000, bodyTimeout: 600_000 });
    observeLatency();
    return answer;
  };
  const unreachable = (error: unknown) => {
    if (error instanceof MaestroError || clientGone.aborted) return error;
    return new ProviderUnavailableError(`${provider} is unreachable: ${(error as Error).message}`);
  };
  /** What an answer means for the pool: its rate-limit state noted, classified, overage and failed-over answers counted. */
  const judge = (credentialId: string, held: HeldAnswer): PooledSend<Dispatcher.ResponseData> => {
    const answer = held.answer;
    const limits = parseRateLimitHeaders(provider, answer.headers);
    if (limits) deps.rateLimits.observe(credentialId, limits);
    const now = Date.now();
    const classified = held.streamError
      ? classifyStreamError({ provider, errorType: held.streamError, model, headers: answer.headers, now })
      : classifyAnswer({ provider, status: answer.statusCode, headers: answer.headers, model, now, errorBody: held.errorBody });
    if (classified.scope === 'ok') {
      // Extra usage is a subscription's (sign-in) matter: an API key's answers carry none of it.
      if (served.get(credentialId)?.entry.auth.type === 'oauth') {
        const overage = overageOf(provider, answer.headers);
        if (overage.inUse) deps.router.overageSeen(route, credentialId, overage.evidence ?? 'extra usage in use', undefined, now);
      }
    } else if (classified.failover && body.replayable) {
      // Failed over: counted as an error against the member that gave it.
      deps.usage.record({ keyId: who.keyId, credentialId, provider, poolId: pool.id, model, error: true });
    }
    return { answer, credentialId, classified };
  };
  let result: PooledSend<Dispatcher.ResponseData> | undefined;
  try {
    // The fast path, most calls: the member picked needs no probe and its token is loaded, usable
    // and not about to expire; a 2xx answer with nothing to read ahead is relayed at once. Any
    // other answer goes on in the pool loop from this member (no second send of the same call).
    const { picked, fast } = fastMember(deps, route, definition, plain !== undefined);
    let first: { credentialId: string; answered: Dispatcher.ResponseData } | undefined;
    if (fast) {
      const { credentialId, entry } = fast;
      const metering = meteringOf(definition, entry.auth.type, request);
      const out = outgoingCall(definition, entry.auth, request, metering);
      served.set(credentialId, { entry, out, metering });
      deps.router.started(credentialId);
      let answer: Dispatcher.ResponseData;
      try {
        answer = await sendOut(out);
      } catch (error) {
        deps.router.finished(credentialId);
        throw unreachable(error);
      }
      if (answer.statusCode >= 200 && answer.statusCode < 300 && !needsHolding(answer, peekStreams)) {
        result = judge(credentialId, { answer }); // 2xx: ok
        const binding = deps.router.succeeded(route, credentialId);
        if (binding) await binding; // a new session's binding is written before its first answer leaves
      } else first = { credentialId, answered: answer };
    }
    if (!fast || first) {
      // The pool loop: only now are its member attempts made up (most calls never get here).
      /** One member's attempt (the single-credential one: refresh near expiry, once more after a refused token), judged. */
      const sendTo = async (credentialId: string, answered?: Dispatcher.ResponseData): Promise<PooledSend<Dispatcher.ResponseData>> => {
        const before = answered && served.get(credentialId);
        const entry = before ? before.entry : await deps.cache.resolve(provider, credentialId);
        if (needsBody(definition, entry.auth.type) && !body.plain) {
          throw new ServiceUnavailableError(`${provider} sign-in pool members take plain request bodies`);
        }
        const metering = meteringOf(definition, entry.auth.type, request);
        let out: OutgoingCall | undefined = before ? before.out : undefined;
        const attempted = await attempt({
          candidate: entry,
          answered: before ? answered : undefined,
          usable: deps.usable,
          refreshFirst: deps.refreshFirst,
          refresh: (c) => deps.cache.refresh(c.metadata.id, c.metadata.version, clientGone.signal),
          send: (c) => sendOut((out = outgoingCall(definition, c.auth, request, metering))),
          refused: (answer, c) => answer.statusCode === 401 && c.auth.type === 'oauth' && body.replayable,
          discard: (answer) => answer.body.dump(),
        }).catch((error: unknown) => {
          throw unreachable(error);
        });
        served.set(credentialId, { entry: attempted.credential, out: out!, metering });
        // Most answers (a 200 JSON body) need nothing read ahead: no hop through holdAnswer.
        const answer = attempted.answer;
        return judge(credentialId, needsHolding(answer, peekStreams) ? await holdAnswer(answer, peekStreams) : { answer });
      };
      result = await attemptPool({
        router: deps.router,
        request: route,
        replayable: body.replayable,
        deadline: Date.now() + POOL_DEADLINE_MS,
        client: clientGone,
        changed: (ms) => deps.state.nextChange(ms),
        held: (phase, waitedMs) =>
          deps.state.event({
            poolId: pool.id,
            type: phase === 'started' ? 'hold_started' : 'hold_ended',
            sessionKey: route.sessionKey,
            details: phase === 'ended' ? { waitedMs } : {},
          }),
        send: sendTo,
        first,
        picked: fast ? undefined : picked,
        discard: (answer) => answer.body.dump(),
      });
    }
  } catch (error) {
    if (clientGone.aborted) return;
    throw error;
  }

  const { answer: upstream, credentialId } = result!;
  const { entry, out, metering } = served.get(credentialId)!;
  try {
    if (upstream.statusCode === 401 && entry.auth.type === 'oauth' && !body.replayable) {
      await upstream.body.dump().catch(() => {});
      deps.usage.record({ keyId: who.keyId, credentialId, provider, poolId: pool.id, error: true });
      deps.cache.refresh(entry.metadata.id, entry.metadata.version).catch(() => {});
      throw new ServiceUnavailableError(
        `${provider} refused the access token of pool "${pool.name}"'s member and the streamed request body cannot be replayed; ` +
          'Maestro is refreshing the token: send the request again after Retry-After',
        { retryAfterSeconds: 2 },
      );
    }
    res.setHeader('x-maestro-credential-id', credentialId);
    let counted = false;
    const count = () => {
      if (counted) return;
      counted = true;
      deps.metrics.proxyRequests.inc({ provider, status: String(res.statusCode) });
    };
    await relayAnswer(upstream, out, metering, res, provider, {
      firstChunkOut: count,
      settled: ({ status, observation: seen }) => {
        count();
        if (seen.streamError) deps.rateLimits.observeStreamError(credentialId, seen.streamError);
        deps.usage.record({
          keyId: who.keyId,
          credentialId,
          provider,
          poolId: pool.id,
          ...callUsage(seen, status, metering.reporting, { plain: body.plain, bytes: body.bytes() }),
        });
      },
    });
  } finally {
    deps.router.finished(credentialId);
  }
}

const NOBODY_TRIED: ReadonlySet<string> = new Set();

/**
 * The member picked for this call, and whether it can go the fast way: picked without a probe,
 * loaded, active, not near expiry, able to take this body. A pick that cannot is handed to the
 * pool loop, which begins with it (no second pick).
 */
function fastMember(
  deps: PooledDeps,
  route: RouteRequest,
  definition: ProviderDefinition,
  plain: boolean,
): { picked: Picked | undefined; fast?: { credentialId: string; entry: CachedCredential } } {
  const picked = deps.router.pick(route, NOBODY_TRIED);
  if (!picked || picked.probe) return { picked };
  const entry = deps.cache.loaded(picked.credentialId);
  if (!entry || entry.metadata.status !== 'active' || deps.refreshFirst(entry)) return { picked };
  if (needsBody(definition, entry.auth.type) && !plain) return { picked };
  return { picked, fast: { credentialId: picked.credentialId, entry } };
}

/** The request's model, found without parsing the whole body (the first `"model":` key; requests name it at the top). */
function modelOf(body: Buffer): string | undefined {
  const at = findKey(body, KEY_MODEL, 0);
  return at < 0 ? undefined : stringAt(body, valueAt(body, at + KEY_MODEL.length));
}
