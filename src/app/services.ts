// The composition root: wires Maestro's parts from a Config: the store, providers, workflows client, token cache,
// the API app and the worker. Shared by `dev`, `api` and `worker` so each runs the same code.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Client } from '@temporalio/client';
import type { Registry } from 'prom-client';
import type { NativeConnection } from '@temporalio/worker';
import type { Config } from '../config.js';
import { errorEnvelope } from '../errors.js';
import { DURABLE_CALL_LIFETIME_MS, DurableCallSigner } from '../crypto/durableCalls.js';
import { DurableCallClaims } from '../db/durableCallClaims.js';
import { KeyRing } from '../crypto/keyRing.js';
import { CredentialStore } from '../db/credentials.js';
import { RefreshAnswerStore } from '../db/refreshAnswers.js';
import {
  API_KEY_CHANGES_CHANNEL,
  CREDENTIAL_CHANGES_CHANNEL,
  listenForChanges,
  ROUTING_CHANGES_CHANNEL,
  type ChangeListener,
} from '../db/changes.js';
import { ApiKeyStore } from '../db/apiKeys.js';
import { KeyRegistry } from '../clientKeys/registry.js';
import { KeyService } from '../clientKeys/service.js';
import { LastUsedRecorder } from '../clientKeys/lastUsed.js';
import { UsageStore } from '../db/usage.js';
import { UsageRecorder } from '../usage/recorder.js';
import { RateLimitBook } from '../usage/rateLimitBook.js';
import { registerQuotaMetrics, registerUsageMetrics } from '../usage/metrics.js';
import { OAuthSessionStore } from '../db/oauthSessions.js';
import type { Db } from '../db/pool.js';
import type { Logger } from '../logger.js';
import { ProviderRegistry } from '../providers/registry.js';
import { CredentialWorkflows } from '../temporal/credentialWorkflows.js';
import { dataConverterFor, payloadCodecFor } from '../temporal/payloadCodec.js';
import type { CodecDeps } from '../api/codec.js';
import { createMaestroWorker, type MaestroWorker } from '../temporal/worker.js';
import type { ActivityDeps, DurableCallGuard } from '../activities/index.js';
import { createApp } from '../api/app.js';
import { createMetrics } from '../api/metrics.js';
import { startMetricsServer, type MetricsServer } from '../api/metricsServer.js';
import { TokenCache } from '../credentials/tokenCache.js';
import { CredentialService } from '../credentials/service.js';
import { databaseStats } from '../db/stats.js';
import { PoolStore } from '../db/pools.js';
import { RoutingStore } from '../db/routing.js';
import { RoutingState } from '../pools/routingState.js';
import { PoolRouter } from '../pools/router.js';
import { PoolService } from '../pools/service.js';
import { registerPoolMetrics } from '../pools/metrics.js';
import { sendPoolMessage } from '../credentials/poolMessages.js';
import { releaseOnQuotaRead } from '../pools/quotaRelease.js';
import { postWebhook } from '../activities/webhook.js';
import { randomUUID } from 'node:crypto';
import { AdminSessionStore } from '../db/adminSessions.js';
import { createAdminRouter } from '../admin/router.js';
import { PROVIDER_IDS } from '../model/providers.js';
import type { PoolsReader } from '../model/pools.js';

export interface Core {
  store: CredentialStore;
  apiKeys: ApiKeyStore;
  answers: RefreshAnswerStore;
  sessions: OAuthSessionStore;
  providers: ProviderRegistry;
  workflows: CredentialWorkflows;
  durableCallClaims: DurableCallClaims;
  usage: UsageStore;
  pools: PoolStore;
  routing: RoutingStore;
}

export function createCore(
  config: Config,
  db: Db,
  client: Client,
  opts: { maxHistoryEvents?: number; log?: Pick<Logger, 'debug' | 'warn'> } = {},
): Core {
  const keys = new KeyRing(config.encryptionKeys);
  const store = new CredentialStore(db, keys);
  return {
    store,
    apiKeys: new ApiKeyStore(db),
    answers: new RefreshAnswerStore(db, keys),
    sessions: new OAuthSessionStore(db, keys),
    durableCallClaims: new DurableCallClaims(db),
    usage: new UsageStore(db),
    pools: new PoolStore(db),
    routing: new RoutingStore(db),
    providers: new ProviderRegistry(config),
    workflows: new CredentialWorkflows({
      client,
      taskQueue: config.temporal.taskQueue,
      maxHistoryEvents: opts.maxHistoryEvents,
      refreshWaitMs: config.refreshWaitMs,
      lastError: async (id) => (await store.get(id)).lastError,
      credential: (id) => store.get(id),
      signer: new DurableCallSigner(config.encryptionKeys),
      quotaIntervalMs: config.quotaIntervalMs,
      log: opts.log,
    }),
  };
}

/**
 * /codec: the payload codec, the Web UI origins allowed to call it, and in development (the
 * embedded dev server) that server's own UI, which calls from this machine without a key.
 */
function codecDeps(config: Config): CodecDeps {
  const devUi = config.mode === 'development' && !config.temporal.address ? `http://localhost:${config.temporal.devUiPort}` : undefined;
  return {
    codec: payloadCodecFor(config),
    corsOrigins: devUi ? [...config.codecCorsOrigins, devUi] : config.codecCorsOrigins,
    devUiOrigin: devUi,
  };
}

export function durableCallGuard(signer: DurableCallSigner, claims: DurableCallClaims): DurableCallGuard {
  return { verify: (...args) => signer.verify(...args), claim: (workflowId, runId) => claims.claim(workflowId, runId) };
}

export interface RunningApi {
  server: Server;
  url: string;
  /** Set with MAESTRO_METRICS_PORT: where /metrics is served instead of `url`. */
  metricsUrl?: string;
  cache: TokenCache;
  keys: KeyRegistry;
  lastUsed: LastUsedRecorder;
  usage: UsageRecorder;
  rateLimits: RateLimitBook;
  close(): Promise<void>;
}

/** /metrics on MAESTRO_METRICS_PORT when set (src/api/metricsServer.ts). */
function startMetricsPort(config: Config, log: Logger, registry: Registry): Promise<MetricsServer | undefined> {
  if (config.metricsPort === undefined) return Promise.resolve(undefined);
  return startMetricsServer(registry, { host: config.host, port: config.metricsPort, log });
}

/** A worker-only process (`maestro worker`) serves its own /metrics on MAESTRO_METRICS_PORT: process metrics and the stored counts. */
export function startWorkerMetrics(config: Config, log: Logger, db: Db): Promise<MetricsServer | undefined> {
  const { registry } = createMetrics(databaseStats(db));
  registerQuotaMetrics(registry, new UsageStore(db));
  return startMetricsPort(config, log, registry);
}

/**
 * The API server's own limits (README "Security"). Node checks its timeouts only every
 * connectionsCheckingInterval (30 s by default): every 5 s here. A request must arrive whole
 * within REQUEST_TIMEOUT_MS (its body may also not pause for 30 s: src/api/stalledBodies.ts),
 * its headers within HEADERS_TIMEOUT_MS; past MAX_CONNECTIONS open connections per API process
 * new ones are refused rather than buffered.
 */
export const SERVER_LIMITS = {
  headersTimeout: 30_000,
  requestTimeout: 120_000,
  connectionsCheckingInterval: 5_000,
  maxConnections: 4_096,
} as const;

/** Internal knobs (tests set them; operators have no need to). */
export interface ApiOptions {
  /** A request body that stops arriving for this long is answered 408 and its connection closed. Default 30 s. */
  bodyIdleTimeoutMs?: number;
  /** Pools for the admin page (src/pools serves them); without, its pools page says they are not configured. */
  pools?: PoolsReader;
}

export async function startApi(
  config: Config,
  log: Logger,
  db: Db,
  databaseUrl: string,
  client: Client,
  core: Core,
  options: ApiOptions = {},
): Promise<RunningApi> {
  const metrics = createMetrics(databaseStats(db));
  const cache = new TokenCache({
    store: core.store,
    refresh: (id, ifVersion) => core.workflows.refreshNow(id, ifVersion),
    apiKeyFallback: config.apiKeyFallback,
  });
  const keys = new KeyRegistry(core.apiKeys, config.apiKeys, { log });
  await keys.start();
  const usageStore = core.usage;
  const rateLimits = new RateLimitBook(usageStore, { log });
  const pools = startPools(config, log, core, cache, rateLimits, metrics.registry);
  await pools.state.start();
  const listener: ChangeListener = listenForChanges(
    databaseUrl,
    {
      [CREDENTIAL_CHANGES_CHANNEL]: (id) => cache.invalidate(id),
      [API_KEY_CHANGES_CHANNEL]: (id) => void keys.reload(id),
      [ROUTING_CHANGES_CHANNEL]: (table) => pools.state.changed(table),
    },
    {
      log,
      onReconnect: () => {
        cache.invalidate();
        keys.reloadAll().catch(() => {}); // the periodic re-check covers a failed reload
        pools.state.resync();
      },
    },
  );
  // The cache's re-check beside the registry's (its own timer): ~1 s bounds a change missed by the listener.
  const recheck = setInterval(() => cache.recheck().catch(() => {}), 1_000);
  recheck.unref();
  const lastUsed = new LastUsedRecorder(core.apiKeys, { log });
  const usage = new UsageRecorder(usageStore, { log, metrics: registerUsageMetrics(metrics.registry, rateLimits) });
  registerQuotaMetrics(metrics.registry, usageStore);
  const credentials = new CredentialService({ ...core, log });
  const keyService = new KeyService({
    keys: core.apiKeys,
    credentials: core.store,
    findPool: (ref) => pools.service.find(ref).catch(() => undefined),
    changed: (id) => keys.reload(id),
  });
  const app = createApp({
    config,
    log,
    credentials,
    pools: {
      ...pools,
      send: (pool, request, keyId, signal) =>
        sendPoolMessage({ credentials, router: pools.router, state: pools.state }, pool, request, keyId, signal),
    },
    providers: core.providers,
    cache,
    metrics,
    serveMetrics: config.metricsPort === undefined,
    usage,
    rateLimits,
    usageStore,
    bodyIdleTimeoutMs: options.bodyIdleTimeoutMs,
    codec: codecDeps(config),
    access: {
      registry: keys,
      service: keyService,
      lastUsed,
    },
    admin: config.adminUi
      ? (edge) =>
          createAdminRouter({
            ...edge,
            credentials,
            keys: keyService,
            usage: usageStore,
            rateLimits,
            pools: options.pools ?? pools.service,
            sessions: new AdminSessionStore(db),
            providers: PROVIDER_IDS,
            envKeyCount: config.apiKeys.length,
            temporal: { uiUrl: config.temporalUiUrl, namespace: config.temporal.namespace },
            log,
          })
      : undefined,
    checkReady: async () => {
      await db
        .selectNoFrom((eb) => eb.val(1).as('ok'))
        .execute()
        .catch(() => {
          throw new Error('PostgreSQL is unreachable');
        });
      await client.workflowService.getSystemInfo({}).catch(() => {
        throw new Error('Temporal is unreachable');
      });
    },
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const { headersTimeout, requestTimeout, connectionsCheckingInterval } = SERVER_LIMITS;
    const s = createServer({ headersTimeout, requestTimeout, connectionsCheckingInterval }, app).listen(config.port, config.host, () =>
      resolve(s),
    );
    s.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new Error(`PORT ${config.port} is already in use; set PORT to another port`) : error),
    );
  });
  server.keepAliveTimeout = 65_000; // longer than typical load-balancer idle timeouts
  const closeUnused = unusedConnections(server);
  server.maxConnections = SERVER_LIMITS.maxConnections;
  server.on('clientError', answerClientError);
  const metricsServer = await startMetricsPort(config, log, metrics.registry).catch(async (error: unknown) => {
    await listener.close();
    server.close();
    throw error;
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  return {
    server,
    url: `http://localhost:${port}`,
    metricsUrl: metricsServer?.url,
    cache,
    keys,
    lastUsed,
    usage,
    rateLimits,
    close: async () => {
      clearInterval(recheck);
      keys.stop();
      await listener.close();
      await metricsServer?.close();
      await closeWhenAnswered(server, closeUnused);
      // After the last request: its use, usage and limits are written too.
      await lastUsed.close();
      await usage.close().catch((error: Error) => log.warn({ error: error.message }, 'usage not written at shutdown'));
      await rateLimits.close();
      await pools.state.close();
    },
  };
}

/**
 * Pools in an API process: its copy of the routing state, the router over it (the credential
 * statuses the token cache has loaded, the windows the rate-limit book holds), the service the
 * routes and the admin page use, and a durable call through a pool.
 */
function startPools(config: Config, log: Logger, core: Core, cache: TokenCache, rateLimits: RateLimitBook, registry: Registry) {
  const state = new RoutingState({
    store: core.routing,
    pools: core.pools,
    processId: `${process.pid}-${randomUUID().slice(0, 8)}`,
    log,
    // A cleared bench: the windows believed before it are stale (the provider reset early).
    onCleared: (id) => rateLimits.forget(id),
  });
  const metrics = registerPoolMetrics(registry, () =>
    state.allPools().map((pool) => ({
      pool: pool.name,
      routable: pool.members.filter((m) => router.status(pool, m.credentialId, undefined, Date.now()).state === 'routable').length,
    })),
  );
  const router: PoolRouter = new PoolRouter({
    state,
    rateLimit: (id) => rateLimits.current(id),
    credentialStatus: (id) => cache.statusOf(id),
    noteBenched: (id, until) => void core.workflows.noteBenched(id, until.toISOString()),
    metrics,
    onOverage: (pool, credentialId, details) => {
      const poolIds = state
        .allPools()
        .filter((p) => p.members.some((m) => m.credentialId === credentialId))
        .map((p) => p.id);
      postWebhook(config.webhook, 'credential.overage', { type: 'credential.overage', credentialId, poolIds, details }).catch(
        (error: Error) => log.warn({ error: error.message, credentialId, pool: pool.name }, 'overage webhook not delivered'),
      );
    },
  });
  const service = new PoolService({
    pools: core.pools,
    routing: core.routing,
    credentials: core.store,
    state,
    router,
    rateLimit: (id) => rateLimits.current(id),
  });
  return { state, router, service };
}

/**
 * Requests Node's HTTP parser refuses (a CR in a header, oversized headers) and requests that did
 * not arrive in time still get the JSON error shape, unless an answer is already under way.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  const answering = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
  if (!socket.writable || answering?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, reason, type, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'invalid_request', 'request headers are too large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [
            408,
            'Request Timeout',
            'request_timeout',
            `the request did not arrive whole within ${SERVER_LIMITS.requestTimeout / 1000} s (headers: ${SERVER_LIMITS.headersTimeout / 1000} s); send it without pauses`,
          ]
        : [400, 'Bad Request', 'invalid_request', 'malformed HTTP request'];
  const body = JSON.stringify(errorEnvelope(type, message));
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/**
 * Stops taking connections and resolves once every request in flight is answered. A connection
 * whose answer ends during the stop would otherwise idle for keepAliveTimeout (65 s) and hold the
 * stop, and the usage it still has to write, that long: idle connections are closed as they appear.
 * So are connections that never sent a byte (a client's spare or pre-opened connection): Node
 * counts those as busy until headersTimeout (60 s), not as idle.
 */
async function closeWhenAnswered(server: Server, closeUnused: () => void): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const sweep = setInterval(() => {
    server.closeIdleConnections();
    closeUnused();
  }, 100);
  closeUnused();
  try {
    await closed;
  } finally {
    clearInterval(sweep);
  }
}

/** Tracks the server's open connections; the function returned closes those that have not sent a byte yet. */
function unusedConnections(server: Server): () => void {
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  return () => {
    for (const socket of open) if (socket.bytesRead === 0) socket.destroy();
  };
}

/** What the activities need, from the same core the API uses. */
export function activityDeps(
  config: Pick<Config, 'webhook' | 'encryptionKeys'> & Partial<Pick<Config, 'eventRetentionDays'>>,
  log: Logger,
  core: Core,
): ActivityDeps {
  const retentionDays = config.eventRetentionDays ?? 90;
  return {
    store: core.store,
    answers: core.answers,
    providers: core.providers,
    requestRefresh: async (id, ifVersion) => {
      await core.workflows.refreshNow(id, ifVersion);
    },
    reconcile: () => core.workflows.reconcile(core.store),
    purge: async () => ({
      loginSessions: await core.sessions.deleteExpired(),
      events: retentionDays > 0 ? await core.store.purgeEventsBefore(new Date(Date.now() - retentionDays * 86_400_000)) : 0,
      durableCallClaims: await core.durableCallClaims.deleteBefore(new Date(Date.now() - DURABLE_CALL_LIFETIME_MS)),
      durableCallUsage: await core.usage.deleteRecordedCallsBefore(new Date(Date.now() - DURABLE_CALL_LIFETIME_MS)),
      // Pool events are kept 30 days: enough to read what happened to an account over its weekly window.
      poolRouting: await core.routing.purge(new Date(Date.now() - 30 * 86_400_000)),
    }),
    webhook: config.webhook,
    durableCalls: durableCallGuard(new DurableCallSigner(config.encryptionKeys), core.durableCallClaims),
    usage: core.usage,
    quota: core.usage,
    // A read showing room releases the pool benches it proves wrong (every API process sees it within 1 s).
    onQuotaRead: async (credentialId, state) => {
      await releaseOnQuotaRead(core.routing, credentialId, state);
    },
    log,
  };
}

export async function startWorker(
  config: Config,
  log: Logger,
  connection: NativeConnection,
  core: Core,
): Promise<{ worker: MaestroWorker; done: Promise<void> }> {
  const worker = await createMaestroWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    deps: activityDeps(config, log, core),
    dataConverter: dataConverterFor(config),
    maxCachedWorkflows: config.workflowCacheSize,
  });
  const done = worker.run();
  // Every OAuth credential gets its workflow now (after a restore, say), and from then on the
  // reconcile Schedule keeps it so (a start that failed at import time is repaired within minutes).
  const { checked } = await core.workflows.reconcile(core.store);
  await core.workflows.ensureReconcileSchedule().catch((error: Error) =>
    // Without the right to create schedules the worker still runs; only the periodic repair is missing.
    log.warn(
      { error: error.message },
      'could not create the reconcile schedule; credentials whose workflow start failed are repaired at the next worker start',
    ),
  );
  await core.workflows
    .ensureMaintenanceSchedule()
    .catch((error: Error) =>
      log.warn({ error: error.message }, 'could not create the maintenance schedule; expired login sessions and old events are kept'),
    );
  log.info(
    { taskQueue: config.temporal.taskQueue, credentials: checked, workflowCode: worker.workflowCode },
    'worker polling; refresh workflows reconciled; reconcile schedule in place',
  );
  return { worker, done };
}
