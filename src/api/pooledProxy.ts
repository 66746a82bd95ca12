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
import { classifyAnswer, classifyStreamError, overageOf, type Classified } from '../pools/classify.js';
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

/** One pooled call's context, made once per call: the steps below are module functions over it (no closures per call). */
interface PoolCall {
  deps: PooledDeps;
  call: PooledCall;
  route: RouteRequest;
  request: ClientRequest;
  model: string | undefined;
  clientGone: ClientGone;
  /** Anthropic streams are read up to their first content event before they are relayed: they must come plain. */
  peekStreams: boolean;
  /** Maestro's added latency is observed once: until the first attempt is on its way. */
  latencyObserved: boolean;
  /** The answer's rate-limit state was noted (a judged answer); else it is noted after the first chunk left. */
  limitsNoted: boolean;
  /** Each member sent to: its entry, call and metering (the relay needs the served one's). */
  served: Map<string, Served>;
}

export async function servePooled(
  deps: PooledDeps,
  call: PooledCall,
  req: IncomingMessage,
  res: ServerResponse,
  clientGone: ClientGone,
): Promise<void> {
  const { who, provider, pool, body } = call;
  const plain = body.plain;
  const model = plain ? modelOf(plain) : undefined;
  const sessionId = sessionIdOf(req.headers, plain);
  const route: RouteRequest = {
    pool,
    family: modelFamily(model),
    sessionKey: sessionId ? sessionKeyOf(who.keyId, sessionId) : undefined,
  };
  const ctx: PoolCall = {
    deps,
    call,
    route,
    request: { method: call.method, path: call.path, search: call.search, headers: req.headers, body },
    model,
    clientGone,
    peekStreams: provider === 'anthropic',
    latencyObserved: false,
    limitsNoted: false,
    served: new Map(),
  };

  // A session another process bound: routed where its earlier calls went.
  if (route.sessionKey && !deps.state.knowsSession(pool.id, route.sessionKey)) await deps.state.learnSession(pool.id, route.sessionKey);

  let result: PooledSend<Dispatcher.ResponseData>;
  try {
    const fast = await sendFast(ctx);
    result = 'classified' in fast ? fast : await poolLoop(ctx, fast);
  } catch (error) {
    if (clientGone.aborted) return;
    throw error;
  }

  const { answer: upstream, credentialId } = result;
  const { entry, out, metering } = ctx.served.get(credentialId)!;
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
    let counted = false;
    const count = () => {
      if (counted) return;
      counted = true;
      if (!ctx.limitsNoted) noteLimits(ctx, credentialId, upstream.headers);
      deps.metrics.proxyRequests.inc({ provider, status: String(res.statusCode) });
    };
    await relayAnswer(upstream, out, metering, res, provider, {
      own: ['x-maestro-credential-id', credentialId],
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
    if (!ctx.limitsNoted) noteLimits(ctx, credentialId, upstream.headers); // the relay failed before its first chunk
    deps.router.finished(credentialId);
  }
}

/** What the fast path hands the pool loop: the member it sent to and that answer, or the member it picked and did not send to. */
type Handover = { first?: { credentialId: string; answered: Dispatcher.ResponseData }; picked?: Picked };

/**
 * The fast path, most calls: the member picked needs no probe and its token is loaded, usable and
 * not about to expire; a 2xx answer with nothing to read ahead is the answer (bound to the
 * session before it leaves). Any other answer goes on in the pool loop from this member (no
 * second send of the same call); a member that cannot go this way is handed over unsent.
 */
async function sendFast(ctx: PoolCall): Promise<PooledSend<Dispatcher.ResponseData> | Handover> {
  const { deps, route } = ctx;
  const { definition } = ctx.call;
  const picked = deps.router.pick(route, NOBODY_TRIED);
  if (!picked || picked.probe) return { picked };
  const { credentialId } = picked;
  const entry = deps.cache.loaded(credentialId);
  if (!entry || entry.metadata.status !== 'active' || deps.refreshFirst(entry)) return { picked };
  if (needsBody(definition, entry.auth.type) && !ctx.call.body.plain) return { picked };

  const metering = meteringOf(definition, entry.auth.type, ctx.request);
  const out = outgoingCall(definition, entry.auth, ctx.request, metering);
  ctx.served.set(credentialId, { entry, out, metering });
  deps.router.started(credentialId);
  let answer: Dispatcher.ResponseData;
  try {
    answer = await sendOut(ctx, out);
  } catch (error) {
    deps.router.finished(credentialId);
    throw unreachable(ctx, error);
  }
  if (answer.statusCode < 200 || answer.statusCode >= 300 || needsHolding(answer, ctx.peekStreams)) {
    return { first: { credentialId, answered: answer } };
  }
  // 2xx: ok (classifyAnswer's first line); only a sign-in member's extra usage is read now, and a
  // mapped answer's rate-limit state (a sign-in backend's: relayAnswer has no first-chunk hook for
  // it, and routing must not wait for a long stream's end to see its member's windows).
  checkOverage(ctx, credentialId, answer.headers, Date.now());
  if (out.call.answer) noteLimits(ctx, credentialId, answer.headers);
  const binding = deps.router.succeeded(route, credentialId);
  if (binding) await binding; // a new session's binding is written before its first answer leaves
  return { answer, credentialId, classified: OK };
}

/** The pool loop (src/upstream/poolAttempt.ts): only now are its member attempts made up (most calls never get here). */
function poolLoop(ctx: PoolCall, handover: Handover): Promise<PooledSend<Dispatcher.ResponseData>> {
  const { deps, route, clientGone } = ctx;
  const { pool } = ctx.call;
  return attemptPool({
    router: deps.router,
    request: route,
    replayable: ctx.call.body.replayable,
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
    send: (credentialId, answered) => sendTo(ctx, credentialId, answered),
    first: handover.first,
    picked: handover.first ? undefined : handover.picked,
    discard: (answer) => answer.body.dump(),
  });
}

/** One member's attempt in the pool loop (the single-credential one: refresh near expiry, once more after a refused token), judged. */
async function sendTo(
  ctx: PoolCall,
  credentialId: string,
  answered?: Dispatcher.ResponseData,
): Promise<PooledSend<Dispatcher.ResponseData>> {
  const { deps, request, clientGone } = ctx;
  const { provider, definition, body } = ctx.call;
  const before = answered && ctx.served.get(credentialId);
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
    send: (c) => sendOut(ctx, (out = outgoingCall(definition, c.auth, request, metering))),
    refused: (answer, c) => answer.statusCode === 401 && c.auth.type === 'oauth' && body.replayable,
    discard: (answer) => answer.body.dump(),
  }).catch((error: unknown) => {
    throw unreachable(ctx, error);
  });
  ctx.served.set(credentialId, { entry: attempted.credential, out: out!, metering });
  // Most answers (a 200 JSON body) need nothing read ahead: no hop through holdAnswer.
  const answer = attempted.answer;
  return judge(ctx, credentialId, needsHolding(answer, ctx.peekStreams) ? await holdAnswer(answer, ctx.peekStreams) : { answer });
}

function sendOut(ctx: PoolCall, out: OutgoingCall): Promise<Dispatcher.ResponseData> {
  if (ctx.peekStreams) out.headers['accept-encoding'] = 'identity';
  const { method, started, provider } = ctx.call;
  const answer = send(ctx.deps.dispatcher, out, method, { signal: ctx.clientGone, headersTimeout: 600_000, bodyTimeout: 600_000 });
  if (!ctx.latencyObserved) {
    ctx.latencyObserved = true;
    ctx.deps.metrics.addedLatency.observe({ provider }, (performance.now() - started) / 1000);
  }
  return answer;
}

function unreachable(ctx: PoolCall, error: unknown): unknown {
  if (error instanceof MaestroError || ctx.clientGone.aborted) return error;
  return new ProviderUnavailableError(`${ctx.call.provider} is unreachable: ${(error as Error).message}`);
}

function noteLimits(ctx: PoolCall, credentialId: string, headers: Dispatcher.ResponseData['headers']): void {
  ctx.limitsNoted = true;
  const limits = parseRateLimitHeaders(ctx.call.provider, headers);
  if (limits) ctx.deps.rateLimits.observe(credentialId, limits);
}

/** Extra usage is a subscription's (sign-in) matter: an API key's answers carry none of it. */
function checkOverage(ctx: PoolCall, credentialId: string, headers: Dispatcher.ResponseData['headers'], now: number): void {
  if (ctx.served.get(credentialId)?.entry.auth.type !== 'oauth') return;
  const overage = overageOf(ctx.call.provider, headers);
  if (overage.inUse) ctx.deps.router.overageSeen(ctx.route, credentialId, overage.evidence ?? 'extra usage in use', undefined, now);
}

/** What an answer means for the pool: its rate-limit state noted, classified, overage and failed-over answers counted. */
function judge(ctx: PoolCall, credentialId: string, held: HeldAnswer): PooledSend<Dispatcher.ResponseData> {
  const { provider, who, pool, body } = ctx.call;
  const { model } = ctx;
  const answer = held.answer;
  noteLimits(ctx, credentialId, answer.headers);
  const now = Date.now();
  const classified = held.streamError
    ? classifyStreamError({ provider, errorType: held.streamError, model, headers: answer.headers, now })
    : classifyAnswer({ provider, status: answer.statusCode, headers: answer.headers, model, now, errorBody: held.errorBody });
  if (classified.scope === 'ok') {
    checkOverage(ctx, credentialId, answer.headers, now);
  } else if (classified.failover && body.replayable) {
    // Failed over: counted as an error against the member that gave it.
    ctx.deps.usage.record({ keyId: who.keyId, credentialId, provider, poolId: pool.id, model, error: true });
  }
  return { answer, credentialId, classified };
}

const NOBODY_TRIED: ReadonlySet<string> = new Set();
const OK: Classified = { scope: 'ok', evidence: '2xx', failover: false };

/** The request's model, found without parsing the whole body (the first `"model":` key; requests name it at the top). */
function modelOf(body: Buffer): string | undefined {
  const at = findKey(body, KEY_MODEL, 0);
  return at < 0 ? undefined : stringAt(body, valueAt(body, at + KEY_MODEL.length));
}
