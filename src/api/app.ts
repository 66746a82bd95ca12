// The Express app factory: tests and the CLI build it from real dependencies.
import express, { type Express } from 'express';
import { rateLimit } from 'express-rate-limit';
import { pinoHttp } from 'pino-http';
import type { Config } from '../config.js';
import type { CredentialStore } from '../db/credentials.js';
import type { OAuthSessionStore } from '../db/oauthSessions.js';
import type { Logger } from '../logger.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { CredentialWorkflows } from '../temporal/credentialWorkflows.js';
import { requireApiKey } from './auth.js';
import { errorHandler, notFoundHandler } from './errors.js';
import type { Metrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { createProxyHandler } from './proxy.js';
import { createCredentialRoutes } from './routes/credentials.js';
import { createOAuthRoutes } from './routes/oauth.js';
import type { TokenCache } from './tokenCache.js';

export interface AppDeps {
  config: Pick<Config, 'apiKeys' | 'bodyLimitBytes'>;
  log: Logger;
  store: CredentialStore;
  sessions: OAuthSessionStore;
  providers: ProviderRegistry;
  workflows: CredentialWorkflows;
  cache: TokenCache;
  metrics: Metrics;
  /** Readiness: resolves when Postgres and Temporal answer, rejects with what is down. */
  checkReady: () => Promise<void>;
  /** Login routes: requests per minute per client address. */
  loginRateLimit?: number;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(
    pinoHttp({
      logger: deps.log,
      quietReqLogger: true,
      // Only what an operator needs; headers (and so keys) are not logged at all.
      serializers: {
        req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url.split('?')[0] }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.checkReady();
      res.json({ status: 'ready' });
    } catch (error) {
      res.status(503).json({ error: { type: 'not_ready', message: (error as Error).message } });
    }
  });
  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  const openapi = openApiDocument();
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  const auth = requireApiKey(deps.config.apiKeys);
  // The proxy reads raw bytes itself (no body parser), so bodies stream through untouched.
  app.use('/proxy/:provider', auth, createProxyHandler({ ...deps, bodyLimitBytes: deps.config.bodyLimitBytes }));

  const v1 = express.Router();
  v1.use(auth);
  v1.use(express.json({ limit: Math.min(deps.config.bodyLimitBytes, 1024 * 1024), strict: true }));
  const loginLimiter = rateLimit({
    windowMs: 60_000,
    limit: deps.loginRateLimit ?? 20,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (_req, res) => {
      res.status(429).json({ error: { type: 'rate_limited', message: 'too many login attempts; wait a minute' } });
    },
  });
  v1.use('/oauth', loginLimiter, createOAuthRoutes(deps));
  v1.use('/credentials', createCredentialRoutes(deps));
  app.use('/v1', v1);

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
