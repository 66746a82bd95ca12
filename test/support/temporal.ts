// Real Temporal for tests: the time-skipping test server (or the dev server), a worker running
// Maestro's bundled workflows and activities, a real database and a fake provider.
import { randomBytes } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { DataConverter } from '@temporalio/common';
import { DefaultLogger, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { inject } from 'vitest';
import { loadConfig, parseEncryptionKeys, type Config, type ProviderId } from '../../src/config.js';
import { dataConverterFor } from '../../src/temporal/payloadCodec.js';
import { DurableCallSigner } from '../../src/crypto/durableCalls.js';
import { activityDeps, createCore, type Core } from '../../src/app/services.js';
import { createMaestroWorker, bundleWorkflows, type MaestroWorker } from '../../src/temporal/worker.js';
import type { ActivityDeps } from '../../src/activities/index.js';
import { createLogger } from '../../src/logger.js';
import { registerSearchAttributes } from '../../src/temporal/registerSearchAttributes.js';
import { MAESTRO_SEARCH_ATTRIBUTES } from '../../src/workflows/searchAttributes.js';
import { createTestDatabase, type TestDatabase } from './db.js';
import { startFakeProvider, type FakeProvider, type FakeProviderOptions } from './fakeProvider.js';

let runtimeInstalled = false;
function quietRuntime() {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
  } catch {
    // already installed by another helper in this process
  }
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** Bundle the workflows once per test file. */
export const workflowBundle = () => (bundle ??= bundleWorkflows());

export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    client: { dataConverter: testDataConverter() },
    server: { executable: { type: 'existing-path', path: inject('temporalTestServerPath') } },
  });
  await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  return env;
}

/** The real dev server (what `npm run dev` runs): full update and visibility support, real time. */
export async function createDevServerEnv(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  return TestWorkflowEnvironment.createLocal({
    client: { dataConverter: testDataConverter() },
    server: { executable: { type: 'existing-path', path: inject('temporalCliPath') }, searchAttributes: MAESTRO_SEARCH_ATTRIBUTES },
  });
}

export const TEST_ENCRYPTION_KEYS = `test1:${Buffer.alloc(32, 7).toString('base64')}`;

/** Signs and verifies durable calls as the API and a worker with the test keys do (for activities built by hand). */
export const testDurableCalls = () => {
  const signer = new DurableCallSigner(parseEncryptionKeys(TEST_ENCRYPTION_KEYS));
  return { sign: signer.sign.bind(signer), verify: signer.verify.bind(signer), claim: async () => true };
};

/** The payload codec every test client, worker and replayer uses: the one production builds from TEST_ENCRYPTION_KEYS. */
export const testDataConverter = () => dataConverterFor({ payloadKeys: [], encryptionKeys: parseEncryptionKeys(TEST_ENCRYPTION_KEYS) });
export const TEST_API_KEY = 'msk_test_0123456789abcdef';

export function testConfig(overrides: Partial<Config> = {}, env: NodeJS.ProcessEnv = {}): Config {
  return {
    ...loadConfig({ MAESTRO_ENV: 'test', MAESTRO_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS, MAESTRO_API_KEYS: TEST_API_KEY, ...env }),
    ...overrides,
  };
}

export interface Harness {
  env: TestWorkflowEnvironment;
  db: TestDatabase;
  fake: FakeProvider;
  config: Config;
  core: Core;
  worker: MaestroWorker;
  taskQueue: string;
  /** Shuts the worker down and waits until it has fully stopped polling. */
  stopWorker(): Promise<void>;
  /** A new worker on the same task queue (after stopWorker: a restart), optionally running another bundle. */
  startWorker(opts?: { bundle?: WorkflowBundleWithSourceMap; dataConverter?: DataConverter }): Promise<void>;
  close(): Promise<void>;
}

/** A running worker on a fresh task queue, wired to a fresh database and one fake provider. */
export async function startHarness(
  env: TestWorkflowEnvironment,
  opts: {
    provider?: ProviderId;
    fake?: Omit<FakeProviderOptions, 'provider'>;
    maxHistoryEvents?: number;
    webhook?: Config['webhook'];
    maxCachedWorkflows?: number;
    refreshWaitMs?: number;
    /** The first worker runs this bundle instead of today's workflows (older code, say). */
    bundle?: WorkflowBundleWithSourceMap;
    /** The first worker's data converter instead of today's codec (`{}`: plain payloads, as before the codec). */
    dataConverter?: DataConverter;
    maxConcurrentActivityTaskExecutions?: number;
    /** Idle quota reads (ms). Default 0 here: refresh tests see reads only when they bench or ask (quota tests set it). */
    quotaIntervalMs?: number;
    /** Called after each successful quota read (what pools wire). */
    onQuotaRead?: ActivityDeps['onQuotaRead'];
  } = {},
): Promise<Harness> {
  const provider = opts.provider ?? 'anthropic';
  const [db, fake, workflowBundleCode] = await Promise.all([
    createTestDatabase(),
    startFakeProvider({ provider, ...opts.fake }),
    workflowBundle(),
  ]);
  const taskQueue = `test-${randomBytes(4).toString('hex')}`;
  const base = testConfig();
  const config: Config = {
    ...base,
    temporal: { ...base.temporal, taskQueue },
    providers: { ...base.providers, [provider]: fake.overrides },
    webhook: opts.webhook ?? {},
    refreshWaitMs: opts.refreshWaitMs ?? base.refreshWaitMs,
    quotaIntervalMs: opts.quotaIntervalMs ?? 0,
  };
  const core = createCore(config, db.db, env.client, { maxHistoryEvents: opts.maxHistoryEvents });
  const newWorker = (bundleCode = workflowBundleCode, dataConverter = testDataConverter()) =>
    createMaestroWorker({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      taskQueue,
      workflowBundle: bundleCode,
      maxCachedWorkflows: opts.maxCachedWorkflows,
      maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions,
      deps: { ...activityDeps(config, createLogger('silent'), core), ...(opts.onQuotaRead ? { onQuotaRead: opts.onQuotaRead } : {}) },
      dataConverter,
    });
  let worker = await newWorker(opts.bundle, opts.dataConverter);
  let running = worker.run();
  const stopWorker = async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
  };
  const harness: Harness = {
    env,
    db,
    fake,
    config,
    core,
    worker,
    taskQueue,
    stopWorker,
    startWorker: async (restart = {}) => {
      await stopWorker();
      worker = await newWorker(restart.bundle, restart.dataConverter);
      harness.worker = worker;
      running = worker.run();
    },
    close: async () => {
      // End this harness's workflows: on the time-skipping server a workflow task nobody polls
      // would hold the clock for every later test.
      for (const c of await core.store.list().catch(() => [])) {
        await env.client.workflow
          .getHandle(`credential:${c.id}`)
          .terminate('test finished')
          .catch(() => {});
      }
      await stopWorker();
      await fake.close();
      await db.close();
    },
  };
  return harness;
}
