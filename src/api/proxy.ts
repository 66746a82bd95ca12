// ANY /proxy/:provider/* — forwards to the provider with the credential's auth injected.
// Responses stream back as the provider sends them (server-sent events included) with
// back-pressure; a client that disconnects aborts the upstream call. An expired token or a 401
// from the provider triggers one shared refresh through the workflow and one retry.
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import { buildProviderCall, needsBody, type ProviderCall } from '../auth/clientBuilder.js';
import { createDecoder } from '../auth/decode.js';
import {
  CallerGoneError,
  ConflictError,
  MaestroError,
  ProviderUnavailableError,
  ReauthRequiredError,
  ServiceUnavailableError,
} from '../errors.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { ProviderId } from '../config.js';
import { HttpError } from './errors.js';
import type { Metrics } from './metrics.js';
import type { CachedCredential, TokenCache } from '../credentials/tokenCache.js';
import { withOneRefresh } from '../credentials/withOneRefresh.js';
import { ClientGone } from './clientGone.js';
import { bodyStalled, type StalledBodies } from './stalledBodies.js';
import { principalOf } from './auth.js';
import { defaultSelectorFor, pickRefusal, requireCredential, requireInferencePath, requireProvider } from '../clientKeys/access.js';
import type { UsageRecorder } from '../usage/recorder.js';
import type { RateLimitBook } from '../usage/rateLimitBook.js';
import type { ConcurrentCalls, ReleaseCall } from '../clientKeys/concurrentCalls.js';
import { watchUsage } from '../usage/tap.js';
import { parseRateLimitHeaders } from '../usage/rateLimits.js';
import { askStreamUsage, stripStreamUsage } from '../usage/streamUsage.js';
import { incompleteCharge } from '../usage/incomplete.js';
import { usageReporting } from '../providers/inferencePaths.js';

/** Request bodies up to this size are buffered so a 401 can be retried; larger ones stream through once. */
const REPLAYABLE_BODY_BYTES = 1024 * 1024;
/** Refresh before forwarding when the token expires within this window. */
const EXPIRY_SKEW_MS = 10_000;

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'set-cookie',
]);

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
}

/** Proxies one request whose `url` is the provider path (and query); typed on Node's own request and response. */
export type ProxyHandler = (req: IncomingMessage, res: ServerResponse, provider: string) => Promise<void>;

/**
 * The whole body. Always settles: a client that left (before this was called, e.g. during a
 * cache-miss read, or while its body arrives) rejects with CallerGoneError, and a body that stops
 * arriving with a 408.
 */
function readBody(req: IncomingMessage, limit: number, bodies: StalledBodies): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const gone = () => reject(new CallerGoneError('the client left before its request body arrived'));
    if (req.destroyed) return gone(); // no event will ever come
    const chunks: Buffer[] = [];
    let size = 0;
    const stopWatching = bodies.watch(req, () => reject(bodyStalled(bodies.idleMs)));
    req.once('close', () => {
      stopWatching();
      gone(); // after 'end' this changes nothing
    });
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, 'payload_too_large', `request body is larger than ${limit} bytes`));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      stopWatching();
      resolve(Buffer.concat(chunks));
    });
    req.on('error', gone); // the connection failed under it
  });
}

/** A body streamed through (chunked, or too big to replay) still stops at the limit: 413. `sent.bytes` counts what passed. */
function limited(req: IncomingMessage, limit: number, bodies: StalledBodies, sent: { bytes: number }): Readable {
  const stopWatching = bodies.watch(req, () => counter.destroy(bodyStalled(bodies.idleMs)));
  req.once('end', stopWatching);
  req.once('close', stopWatching);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sent.bytes += chunk.length;
      if (sent.bytes <= limit) return done(null, chunk);
      req.unpipe(counter);
      req.resume(); // drain the rest, as readBody does, so the connection can answer and close
      done(new HttpError(413, 'payload_too_large', `request body is larger than ${limit} bytes`));
    },
  });
  req.once('error', (error) => counter.destroy(error));
  return req.pipe(counter);
}

function responseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const connectionListed =
    headers.connection === undefined
      ? undefined
      : new Set(
          String(headers.connection)
            .split(',')
            .map((h) => h.trim().toLowerCase())
            .filter(Boolean),
        );
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || connectionListed?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * source → res with back-pressure, like stream.pipeline for this one pair but without the
 * AbortController (and the DOMException its clean-up abort creates) pipeline makes per call.
 * Resolves when res has finished; rejects when either side fails or the client goes away first,
 * and then the other side is destroyed too (the upstream request is aborted).
 */
function relay(source: Readable, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      source.destroy();
      res.destroy();
      reject(error);
    };
    source.once('error', fail);
    res.once('error', fail);
    res.once('close', () => {
      if (res.writableFinished) resolve();
      else fail(new Error('the client closed the connection before the answer was sent'));
    });
    source.pipe(res);
  });
}

function requestedModel(body: Buffer | undefined): string | undefined {
  if (!body || body.length > 64 * 1024) return undefined;
  try {
    const model = (JSON.parse(body.toString('utf8')) as { model?: unknown }).model;
    return typeof model === 'string' ? model : undefined;
  } catch {
    return undefined;
  }
}

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

function usable(entry: CachedCredential): void {
  if (entry.metadata.status === 'reauth_required') {
    throw new ReauthRequiredError(
      `${entry.metadata.provider} credential "${entry.metadata.name}" needs a new login (POST /v1/oauth/${entry.metadata.provider}/start)`,
    );
  }
  if (entry.metadata.status !== 'active') throw new ConflictError(`credential "${entry.metadata.name}" is ${entry.metadata.status}`);
}

export function createProxyHandler(deps: ProxyDeps): ProxyHandler {
  const dispatcher = deps.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: 256 });

  return async (req, res, providerId) => {
    const started = performance.now();
    const url = req.url ?? '/';
    let release: ReleaseCall | undefined;
    try {
      if (!deps.providers.has(providerId)) {
        throw new HttpError(404, 'not_found', `unknown provider "${providerId.slice(0, 40)}"; use anthropic, openai or gemini`);
      }
      const provider: ProviderId = providerId;
      const definition = deps.providers.get(provider);
      const queryAt = url.indexOf('?');
      const path = queryAt < 0 ? url : url.slice(0, queryAt);
      const search = queryAt < 0 ? '' : url.slice(queryAt);
      // What the key may reach is settled before any credential is read or byte sent.
      const who = principalOf(req);
      requireProvider(who, provider);
      requireInferencePath(who, definition, req.method ?? 'GET', path);
      const selectorHeader = req.headers['x-maestro-credential'];
      const selector =
        typeof selectorHeader === 'string' && selectorHeader.trim() ? selectorHeader.trim() : defaultSelectorFor(who, provider);
      if (selector && selector.length > 200) throw new HttpError(400, 'invalid_request', 'x-maestro-credential is too long');
      release = deps.calls.acquire(who);

      // A client that disconnects aborts the upstream call and releases any refresh wait.
      const clientGone = new ClientGone(res);

      // Access first: a client key hears one refusal for a credential that is not there, not its, or needs a login.
      const asked = selector ? `${provider} credential "${selector}"` : `the default ${provider} credential`;
      let entry = await deps.cache.resolve(provider, selector).catch((error: unknown) => {
        throw pickRefusal(who, provider, selector, error, asked);
      });
      requireCredential(who, entry.metadata, asked);
      usable(entry);
      if (entry.auth.type === 'oauth' && entry.expiresAtMs !== null && entry.expiresAtMs - Date.now() < EXPIRY_SKEW_MS) {
        entry = await deps.cache.refresh(entry.metadata.id, entry.metadata.version, clientGone.signal);
        usable(entry);
      }

      const declaredLength = Number(req.headers['content-length'] ?? 0);
      if (declaredLength > deps.bodyLimitBytes) {
        throw new HttpError(413, 'payload_too_large', `request body is larger than ${deps.bodyLimitBytes} bytes`);
      }
      const hasBody = req.headers['transfer-encoding'] !== undefined || declaredLength > 0;
      // A sign-in backend that maps calls (Codex, Code Assist) rewrites the body: it is read whole, and must be plain.
      const mapped = needsBody(definition, entry.auth.type);
      if (mapped && hasBody && req.headers['content-encoding']) {
        throw new HttpError(
          415,
          'unsupported_media_type',
          `${provider} sign-in credentials take plain (not content-encoded) request bodies`,
        );
      }
      const replayable = !hasBody || mapped || (declaredLength > 0 && declaredLength <= REPLAYABLE_BODY_BYTES);
      const rawBody = hasBody && replayable ? await readBody(req, deps.bodyLimitBytes, deps.bodies) : undefined;
      const plainBody = req.headers['content-encoding'] ? undefined : rawBody;
      const streamed = { bytes: 0 };
      // How this call's tokens are reported (provider data); a stream that reports them only when
      // asked is asked (and its answer stripped of what the client did not ask for).
      const metering = usageReporting(definition, req.method ?? 'GET', path);
      let askedUsage: Buffer | undefined;
      if (metering === 'asked' && plainBody && !mapped) askedUsage = askStreamUsage(plainBody);

      let call: ProviderCall | undefined;
      const send = (credential: CachedCredential) => {
        call = buildProviderCall(definition, {
          auth: credential.auth,
          method: req.method ?? 'GET',
          path,
          search,
          clientHeaders: req.headers,
          body: rawBody,
        });
        let body: Buffer | Readable | undefined =
          call.body ?? (hasBody ? (rawBody ?? limited(req, deps.bodyLimitBytes, deps.bodies, streamed)) : undefined);
        // Bodies are rewritten only when plain (an encoded request body passes through untouched).
        if (plainBody && call.transformBody) body = call.transformBody(askedUsage ?? plainBody);
        else if (askedUsage) body = askedUsage;
        const headers = { ...call.headers };
        // The stripped answer is edited as it streams: it must come plain.
        if (askedUsage) headers['accept-encoding'] = 'identity';
        if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length);
        const added = (performance.now() - started) / 1000;
        // The dispatcher takes origin and path as they are (the top-level request() parses the URL again).
        const answer = dispatcher.request({
          origin: call.url.origin,
          path: call.url.pathname + call.url.search,
          method: req.method as Dispatcher.HttpMethod,
          headers,
          body,
          signal: clientGone,
          headersTimeout: 600_000,
          bodyTimeout: 600_000,
        });
        deps.metrics.addedLatency.observe({ provider }, added); // after the request is on its way
        return answer;
      };

      let upstream: Dispatcher.ResponseData;
      try {
        upstream = await withOneRefresh(entry, send, {
          refused: (answer, credential) => answer.statusCode === 401 && credential.auth.type === 'oauth' && replayable,
          discard: (answer) => answer.body.dump(),
          refresh: async (credential) => {
            const refreshed = await deps.cache.refresh(credential.metadata.id, credential.metadata.version, clientGone.signal);
            usable(refreshed);
            return refreshed;
          },
        });
      } catch (error) {
        if (clientGone.aborted) return; // the client went away
        if (error instanceof MaestroError) throw error;
        deps.usage.record({ keyId: who.keyId, credentialId: entry.metadata.id, provider, error: true });
        throw new ProviderUnavailableError(`${provider} is unreachable: ${(error as Error).message}`);
      }
      const credentialId = entry.metadata.id;
      const answered = upstream;
      const recordLimits = () => {
        const limits = parseRateLimitHeaders(provider, answered.headers);
        if (limits) deps.rateLimits.observe(credentialId, limits);
      };

      if (upstream.statusCode === 401 && entry.auth.type === 'oauth' && !replayable) {
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
      // The rate-limit state and the request count wait until the first chunk is on its way (the
      // pipe below writes it on the next tick, and nothing until `await piped` yields): between a
      // stream's events the process goes cold, and this bookkeeping then costs more than the relay
      // itself (docs/BENCHMARKS.md 5.4). Scheduled here, before anything below can throw, so an
      // answer that fails to relay is still recorded (and then counted as an error too, as before).
      // The client's next request is read in a later turn of the event loop than this one.
      let accounted = false;
      const account = () => {
        if (accounted) return;
        accounted = true;
        recordLimits();
        // res.statusCode: a mapped answer's status may differ from the backend's (see below).
        deps.metrics.proxyRequests.inc({ provider, status: String(res.statusCode) });
      };
      // A sign-in backend's 2xx answer is mapped back to the public API's (errors pass as they come).
      const ok = upstream.statusCode >= 200 && upstream.statusCode < 300;
      const answer = ok ? call?.answer : undefined;
      // Neither part throws (parseRateLimitHeaders ignores what it cannot read; the metric's labels
      // are fixed); a throw here would no longer reach the handler's catch: hence the guard.
      // A mapped answer is counted once its status is final, at the end.
      if (!answer) {
        setImmediate(() => {
          try {
            account();
          } catch {
            /* bookkeeping never takes the process down */
          }
        });
      }
      const outHeaders = responseHeaders(upstream.headers);
      // A stream whose usage Maestro asked for: what the client did not ask for is taken out.
      const strip =
        askedUsage &&
        ok &&
        !answer &&
        !upstream.headers['content-encoding'] &&
        /^text\/event-stream/i.test(header(upstream.headers['content-type']) ?? '')
          ? stripStreamUsage()
          : undefined;
      if (strip) delete outHeaders['content-length'];
      if (answer) {
        delete outHeaders['content-length'];
        delete outHeaders['content-encoding'];
        outHeaders['content-type'] = answer.contentType;
        // The mapping may still find the answer failed (a Codex stream with a failure event: 502):
        // the head is only set here and leaves with the mapping's first bytes, status as it decided.
        res.statusCode = upstream.statusCode;
        for (const name in outHeaders) res.setHeader(name, outHeaders[name]!);
      } else {
        // Headers leave with the first body chunk (one write, not two); an SSE stream's first event
        // follows its headers at once, so nothing waits.
        res.writeHead(upstream.statusCode, outHeaders);
      }
      // Usage is watched beside the pipeline (a 'data' listener: every chunk passes on as it came,
      // back-pressure untouched): the usage, the model, an error event inside a 200 stream. On a
      // mapped answer it watches what the client gets, the public API's shape.
      const watch = watchUsage(provider, {
        statusCode: upstream.statusCode,
        contentType: answer ? answer.contentType : header(upstream.headers['content-type']),
        contentEncoding: answer ? undefined : header(upstream.headers['content-encoding']),
      });
      const mapper = answer?.transform((status) => (res.statusCode = status)) ?? strip;
      // The usage is read from what the client gets, except that a stripped stream is watched before its stripping.
      const seenBody: Readable = strip ? upstream.body : (mapper ?? upstream.body);
      // Mapped answers were asked uncompressed; one compressed anyway is decoded before the mapping.
      const decoder = mapper ? createDecoder(upstream.headers['content-encoding']) : undefined;
      // The pipe is in place before the listener, so no chunk can flow past it unseen by res.
      const piped = mapper
        ? decoder
          ? pipeline(upstream.body, decoder, mapper, res)
          : pipeline(upstream.body, mapper, res)
        : relay(upstream.body, res);
      seenBody.on('data', (chunk: Buffer | string) => watch.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
      try {
        await piped;
        await watch.end();
      } catch {
        // Client disconnect or upstream reset mid-stream: the response is already under way.
        watch.abandon(); // what was seen before the cut still counts
        res.destroy();
      }
      const seen = watch.observation();
      // The headers' state first, whether or not its turn came yet: a stream that ended at once
      // (an error event right after the headers) must not be overwritten by the headers' "allowed".
      account();
      if (seen.streamError) deps.rateLimits.observeStreamError(credentialId, seen.streamError);
      // A metered answer that ended without its final counts: incomplete, its budget charged the stated upper bound.
      const incomplete = metering !== undefined && res.statusCode >= 200 && res.statusCode < 300 && !seen.complete;
      deps.usage.record({
        keyId: who.keyId,
        credentialId,
        provider,
        // An error answer names no model: the request's, read only then (the hot path parses nothing).
        model: seen.model ?? (res.statusCode >= 400 || incomplete ? requestedModel(rawBody) : undefined),
        usage: seen.usage,
        error: res.statusCode >= 400 || seen.streamError !== undefined,
        incomplete,
        incompleteCharge: incomplete ? incompleteCharge(seen.usage, plainBody, rawBody?.length ?? streamed.bytes) : undefined,
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
