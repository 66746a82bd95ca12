// A Maestro deployment made of real processes for the fault tests: the Temporal dev server, a
// PostgreSQL database, workers and APIs as child processes of the real CLI, a fake Anthropic and
// a gate in front of its token endpoint. The test process keeps a CredentialStore and a
// Temporal client of its own to seed credentials and inspect the database.
import { randomBytes } from 'node:crypto';
import { createCore, type Core } from '../../src/app/services.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createDb, type Db } from '../../src/db/pool.js';
import { startFakeProvider, type FakeProvider, type FakeProviderOptions } from '../support/fakeProvider.js';
import { apiReady, spawnMaestro, workerReady, type ChildHandle } from '../support/children.js';
import { callApi, type ApiAnswer } from '../support/http.js';
import { freePort, startTokenGate, type DevServer, type TokenGate } from '../support/processes.js';
import { TEST_API_KEY, TEST_ENCRYPTION_KEYS, testConfig } from '../support/temporal.js';
import { seedOAuthCredential } from '../support/credentials.js';

export interface ApiChild {
  child: ChildHandle;
  port: number;
  url: string;
  call(method: string, path: string, opts?: { body?: unknown; headers?: Record<string, string> }): Promise<ApiAnswer>;
}

export interface Rig {
  dev: DevServer;
  dbUrl: string;
  db: Db;
  fake: FakeProvider;
  gate: TokenGate;
  core: Core;
  taskQueue: string;
  env: Record<string, string>;
  workers: ChildHandle[];
  apis: ApiChild[];
  startWorker(): Promise<ChildHandle>;
  /** An API child; `extraEnv` overrides the rig's environment (another DATABASE_URL, say). */
  startApi(extraEnv?: Record<string, string>): Promise<ApiChild>;
  /** An OAuth credential the fake accepts, written by the test process, its workflow started. */
  importOAuth(opts: {
    name?: string;
    lifetimeMs: number;
  }): Promise<{ id: string; name: string; accessToken: string; refreshToken: string }>;
  /** Every line any child of this rig wrote. */
  logLines(): string[];
  close(): Promise<void>;
}

export async function startRig(opts: {
  dev: DevServer;
  dbUrl: string;
  fake?: Omit<FakeProviderOptions, 'provider'>;
  /** Run the workers and APIs from a built dist/src/cli/main.js instead of the sources. */
  compiled?: string;
}): Promise<Rig> {
  const { dev, dbUrl } = opts;
  const db = createDb(dbUrl, 4);
  await migrateToLatest(db);
  const fake = await startFakeProvider({ provider: 'anthropic', ...opts.fake });
  const gate = await startTokenGate(fake.tokenUrl);
  const taskQueue = `faults-${randomBytes(4).toString('hex')}`;
  const base = testConfig();
  const config = {
    ...base,
    temporal: { ...base.temporal, taskQueue },
    providers: { ...base.providers, anthropic: { ...fake.overrides, oauthTokenUrl: gate.url } },
  };
  const core = createCore(config, db, dev.client);
  const env = {
    MAESTRO_ENV: 'production',
    DATABASE_URL: dbUrl,
    TEMPORAL_ADDRESS: dev.address,
    MAESTRO_TASK_QUEUE: taskQueue,
    MAESTRO_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
    MAESTRO_API_KEYS: TEST_API_KEY,
    MAESTRO_ANTHROPIC_BASE_URL: fake.url,
    MAESTRO_ANTHROPIC_OAUTH_TOKEN_URL: gate.url,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
  };
  const workers: ChildHandle[] = [];
  const apis: ApiChild[] = [];
  let seq = 0;
  const rig: Rig = {
    dev,
    dbUrl,
    db,
    fake,
    gate,
    core,
    taskQueue,
    env,
    workers,
    apis,
    async startWorker() {
      const w = spawnMaestro('worker', env, `worker-${workers.length + 1}`, opts.compiled);
      workers.push(w);
      await workerReady(w);
      return w;
    },
    async startApi(extraEnv = {}) {
      const port = await freePort();
      const child = spawnMaestro('api', { ...env, ...extraEnv, PORT: String(port) }, `api-${apis.length + 1}`, opts.compiled);
      await apiReady(child);
      const url = `http://127.0.0.1:${port}`;
      const api: ApiChild = {
        child,
        port,
        url,
        call: (method, path, opts) => callApi(url, method, path, opts),
      };
      apis.push(api);
      return api;
    },
    async importOAuth({ name, lifetimeMs }) {
      seq++;
      const tag = `fault-${seq}-${randomBytes(10).toString('hex')}`;
      const { credential, accessToken, refreshToken } = await seedOAuthCredential(
        { core, fake },
        { tag, name: name ?? `fault-${seq}`, lifetimeMs },
      );
      return { id: credential.id, name: credential.name, accessToken, refreshToken };
    },
    logLines: () => [...workers, ...apis.map((a) => a.child)].flatMap((c) => c.lines),
    async close() {
      for (const c of [...workers, ...apis.map((a) => a.child)]) await c.kill('SIGKILL');
      for (const c of await core.store.list().catch(() => [])) {
        await dev.client.workflow
          .getHandle(`credential:${c.id}`)
          .terminate('test finished')
          .catch(() => {});
      }
      await gate.close();
      await fake.close();
      await db.destroy().catch(() => {});
    },
  };
  return rig;
}

/** Every known secret of a rig: seeded and issued tokens, the fake's API key, the Maestro key. */
export function knownSecrets(rig: Rig, extra: Iterable<string> = []): string[] {
  return [...rig.fake.issued.accessTokens, ...rig.fake.issued.refreshTokens, rig.fake.apiKey, TEST_API_KEY, ...extra];
}

/** A proxied Messages call through an API child (as a Claude client would send it). */
export function proxiedMessage(api: Pick<ApiChild, 'call'>, credential?: string) {
  return api.call('POST', '/proxy/anthropic/v1/messages', {
    body: { model: 'claude-test', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] },
    headers: { 'anthropic-version': '2023-06-01', ...(credential ? { 'x-maestro-credential': credential } : {}) },
  });
}
