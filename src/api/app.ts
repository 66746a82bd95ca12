// The Express app factory: tests and the CLI build it from real dependencies.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import type { Config } from '../config.js';
import type { CredentialService } from '../credentials/service.js';
import type { TokenCache } from '../credentials/tokenCache.js';
import { REQUEST_HEADER_PATHS, type Logger } from '../logger.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { FailedAuthLimiter, keyGate, keyIdOf, principalOf, requireApiKey } from './auth.js';
import { requireAdmin } from '../clientKeys/access.js';
import type { KeyRegistry } from '../clientKeys/registry.js';
import type { KeyService } from '../clientKeys/service.js';
import type { LastUsedRecorder } from '../clientKeys/lastUsed.js';
import { RequestRateLimiter } from '../clientKeys/requestRate.js';
import { ConcurrentCalls } from '../clientKeys/concurrentCalls.js';
import { clientAddress } from './clientAddress.js';
import { bodyStalled, StalledBodies } from '../upstream/stalledBodies.js';
import { errorEnvelope } from '../errors.js';
import { errorHandler, notFoundHandler, sendError } from './errors.js';
import type { Metrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { createCodecRoutes, type CodecDeps } from './codec.js';
import { createProxyHandler } from './proxy.js';
import { healthSchema, readySchema, shaped } from './schemas.js';
import { mountRoutes, requireRole } from './routes/express.js';
import { V1_ROUTES } from './routes/v1.js';
import type { UsageRecorder } from '../usage/recorder.js';
import type { RateLimitBook } from '../usage/rateLimitBook.js';
import type { UsageReports } from '../model/usage.js';
import type { PoolRouter } from '../pools/router.js';
import type { RoutingState } from '../pools/routingState.js';
import type { RouteDeps } from './routes/route.js';

export interface AppDeps {
  config: Pick<Config, 'apiKeys' | 'bodyLimitBytes' | 'trustProxy' | 'authFailuresPerMinute'>;
  log: Logger;
  credentials: CredentialService;
  providers: ProviderRegistry;
  cache: TokenCache;
  metrics: Metrics;
  /** False when MAESTRO_METRICS_PORT serves /metrics on its own listener: then this one answers 404. */
  serveMetrics?: boolean;
  /** Readiness: resolves when Postgres and Temporal answer, rejects with what is down. */
  checkReady: () => Promise<void>;
  /** Login routes: requests per minute per client address. */
  loginRateLimit?: number;
  /** The Temporal payload codec, served at /codec for the Web UI and the CLI. */
  codec: CodecDeps;
  /** Client keys: the in-memory registry every request is checked against, the admin routes' service, last-used batching. */
  access: { registry: Pick<KeyRegistry, 'authenticate'>; service: KeyService; lastUsed: Pick<LastUsedRecorder, 'used'> };
  /** Usage accounting and budgets, the provider rate-limit state per credential, and the usage query. */
  usage: Pick<UsageRecorder, 'record' | 'admit' | 'chargeRecordedElsewhere'>;
  rateLimits: Pick<RateLimitBook, 'observe' | 'observeStreamError' | 'get'>;
  usageStore: UsageReports;
  /** A request body that stops arriving this long is answered 408 (default 30 s; tests shorten it). */
  bodyIdleTimeoutMs?: number;
  /** Pools: the proxy routes through them, /v1/pools serves them. */
  pools?: { router: PoolRouter; state: RoutingState } & NonNullable<RouteDeps['pools']>;
  /** The admin page (src/admin), mounted at /admin when given (MAESTRO_ADMIN_UI); it signs in with the API's own key check and limiter. */
  admin?: (edge: AdminEdge) => express.RequestHandler;
}

/** What the admin page shares with the API: the same key check and the same failed-key limiter. */
export interface AdminEdge {
  authenticate: KeyRegistry['authenticate'];
  limiter: FailedAuthLimiter;
  addressOf: (req: IncomingMessage) => string;
}

/** One line per finished request: method, path without the query, status, time, the key's id. Never headers or the key. */
function requestLogger(log: Logger) {
  // The line holds only the fields below, so the root logger's wildcard redaction paths (`*.accessToken`
  // and the like: ~11 µs a line, 6 % of a proxied call's CPU) have nothing to find; the header paths
  // stay, and so does the pattern pass over every written line (src/logger.ts).
  const lines = log.child({}, { redact: { paths: REQUEST_HEADER_PATHS, censor: '[REDACTED]' } });
  return (req: IncomingMessage, res: ServerResponse, url: string) => {
    if (!lines.isLevelEnabled('info')) return;
    const started = performance.now();
    res.once('finish', () => {
      lines.info(
        {
          req: { method: req.method, url: url.split('?')[0] },
          res: { statusCode: res.statusCode },
          keyId: keyIdOf(req),
          responseTime: Math.round(performance.now() - started),
        },
        'request completed',
      );
    });
  };
}

/**
 * The HTTP request listener: Express for every route, except that `/proxy/<provider>/<path>`
 * goes straight to the same key check and proxy handler on Node's own request and response,
 * skipping Express's per-request machinery on the hot path (docs/BENCHMARKS.md measures why).
 * Errors there take the same sendError() the Express error handler uses.
 */
export function createApp(deps: AppDeps): RequestListener {
  const app = express();
  app.disable('x-powered-by');
  // The same setting decides req.ip (the login limit) and the fast path's address (the key limit).
  app.set('trust proxy', deps.config.trustProxy);
  const logRequest = requestLogger(deps.log);
  app.use((req, res, next) => {
    logRequest(req, res, req.originalUrl);
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json(shaped(healthSchema, { status: 'ok' }));
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.checkReady();
      res.json(shaped(readySchema, { status: 'ready' }));
    } catch (error) {
      res.status(503).json(errorEnvelope('not_ready', (error as Error).message));
    }
  });
  if (deps.serveMetrics !== false) {
    app.get('/metrics', async (_req, res) => {
      res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
    });
  }
  const openapi = openApiDocument();
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  const limiter = new FailedAuthLimiter(deps.config.authFailuresPerMinute);
  const addressOf = clientAddress(deps.config.trustProxy);
  const gate = keyGate({
    keys: deps.access.registry,
    limiter,
    addressOf,
    rate: new RequestRateLimiter(),
    lastUsed: deps.access.lastUsed,
    budget: deps.usage,
  });
  const auth = requireApiKey(gate);
  const adminOnly =
    (what: string): express.RequestHandler =>
    (req, _res, next) => {
      requireAdmin(principalOf(req), what);
      next();
    };
  const onError = (error: unknown, req: IncomingMessage, res: ServerResponse) => sendError(deps.log, error, req, res);
  const calls = new ConcurrentCalls(deps.metrics.registry);
  const bodies = new StalledBodies(deps.bodyIdleTimeoutMs);
  // The proxy reads raw bytes itself (no body parser), so bodies stream through untouched.
  const proxy = createProxyHandler({ ...deps, bodyLimitBytes: deps.config.bodyLimitBytes, onError, calls, bodies });
  app.use('/proxy/:provider', auth, (req, res) => void proxy(req, res, String(req.params.provider)));

  const v1 = express.Router();
  v1.use(auth);
  // What a client key may call is the table's `role` column; the rest needs an admin key.
  v1.use(requireRole(V1_ROUTES, '/v1'));
  // The JSON parser waits for the whole body: one that stops arriving is answered here (408, connection closed).
  v1.use((req, res, next) => {
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
      const stopWatching = bodies.watch(req, () => onError(bodyStalled(bodies.idleMs), req, res));
      res.once('close', stopWatching);
    }
    next();
  });
  v1.use(express.json({ limit: Math.min(deps.config.bodyLimitBytes, 1024 * 1024), strict: true }));
  const loginLimiter = rateLimit({
    windowMs: 60_000,
    limit: deps.loginRateLimit ?? 20,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (_req, res) => {
      res.status(429).json(errorEnvelope('rate_limited', 'too many login attempts; wait a minute'));
    },
  });
  v1.use('/oauth', loginLimiter);
  mountRoutes(v1, V1_ROUTES, { ...deps, calls, keys: deps.access.service });
  app.use('/v1', v1);

  const codecAdmin = adminOnly('the payload codec');
  app.use(
    '/codec',
    createCodecRoutes(deps.codec, (req, res, next) =>
      auth(req, res, (error?: unknown) => (error ? next(error) : codecAdmin(req, res, next))),
    ),
  );

  if (deps.admin) {
    const registry = deps.access.registry;
    app.use('/admin', deps.admin({ authenticate: (key) => registry.authenticate(key), limiter, addressOf }));
  }

  app.use(notFoundHandler);
  const handleError = errorHandler(deps.log);
  app.use(handleError);

  return (req, res) => {
    const url = req.url ?? '';
    // "/proxy/" is 7 characters; the provider name runs to the next slash.
    const slash = url.startsWith('/proxy/') ? url.indexOf('/', 7) : -1;
    if (slash < 8) {
      app(req, res);
      return;
    }
    logRequest(req, res, url);
    const provider = url.slice(7, slash);
    const go = (denied: unknown) => {
      if (denied) return onError(denied, req, res);
      req.url = url.slice(slash);
      void proxy(req, res, provider);
    };
    const denied = gate(req);
    if (denied instanceof Promise) void denied.then(go);
    else go(denied);
  };
}
