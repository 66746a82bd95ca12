// What both benchmarks stand on: a throwaway embedded PostgreSQL (temp dir, free port, migrated)
// and a throwaway Temporal server — the dev server (`temporal server start-dev`, the binary
// src/temporal/binaries.ts locates or installs) or the time-skipping test server — plus a
// Maestro Config pointing at them. Nothing touches the developer's .maestro/ state except the
// shared binary directory .maestro/bin.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig, parseEncryptionKeys, type Config } from '../../src/config.js';
import { dataConverterFor } from '../../src/temporal/payloadCodec.js';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createDb, type Db } from '../../src/db/pool.js';
import { locateTemporalCli, locateTestServer } from '../../src/temporal/binaries.js';
import { registerSearchAttributes } from '../../src/temporal/registerSearchAttributes.js';
import { MAESTRO_SEARCH_ATTRIBUTES } from '../../src/workflows/searchAttributes.js';

export const BENCH_API_KEY = 'msk_bench_0123456789abcdef0123';
export const BENCH_ENCRYPTION_KEYS = `bench1:${Buffer.alloc(32, 11).toString('base64')}`;
/** The fake provider's key and token (bench/upstream.ts checks them) and its stream shape, as child env. */
export const BENCH_UPSTREAM_KEY = 'sk-ant-api03-benchUpstreamKey0123456789';
export const BENCH_UPSTREAM_ENV = {
  BENCH_UPSTREAM_KEY,
  BENCH_UPSTREAM_TOKEN: 'sk-ant-oat01-benchUpstreamToken0123456789',
  BENCH_EVENTS: '64',
  BENCH_EVENT_INTERVAL_MS: '20',
};

export interface BenchStack {
  config: Config;
  db: Db;
  databaseUrl: string;
  env: TestWorkflowEnvironment;
  stop(): Promise<void>;
}

let runtimeInstalled = false;

export async function startBenchStack(opts: {
  temporal: 'dev' | 'time-skipping';
  env?: Record<string, string>;
  dbPoolSize?: number;
  log?: (line: string) => void;
}): Promise<BenchStack> {
  const log = opts.log ?? (() => {});
  if (!runtimeInstalled) {
    runtimeInstalled = true;
    Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
  }
  const dataDir = path.resolve('.maestro');
  // Clients and workers encrypt payloads as production does (the codec's cost is part of what is measured).
  const benchDataConverter = dataConverterFor({ payloadKeys: [], encryptionKeys: parseEncryptionKeys(BENCH_ENCRYPTION_KEYS) });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'maestro-bench-'));
  const [pg, env] = await Promise.all([
    startEmbeddedPostgres(path.join(dir, 'pg'), { port: 0 }),
    (async () => {
      if (opts.temporal === 'dev') {
        const executable = await locateTemporalCli({ dataDir, log, explicitPath: process.env.MAESTRO_TEMPORAL_CLI_PATH });
        return TestWorkflowEnvironment.createLocal({
          client: { dataConverter: benchDataConverter },
          server: {
            executable,
            ip: '127.0.0.1',
            ui: false,
            searchAttributes: MAESTRO_SEARCH_ATTRIBUTES,
            namespace: 'default',
          },
        });
      }
      const executable = await locateTestServer({ dataDir, log, explicitPath: process.env.MAESTRO_TEMPORAL_TEST_SERVER_PATH });
      const ts = await TestWorkflowEnvironment.createTimeSkipping({
        client: { dataConverter: benchDataConverter },
        server: { executable },
      });
      await registerSearchAttributes(ts.connection, ts.namespace ?? 'default');
      return ts;
    })(),
  ]);
  const databaseUrl = pg.url;
  const db = createDb(databaseUrl, opts.dbPoolSize);
  await migrateToLatest(db);
  const config: Config = loadConfig({
    MAESTRO_ENV: 'development',
    MAESTRO_DATA_DIR: dir,
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: '127.0.0.1:7233', // not used to connect: the bench passes env's client and connection
    MAESTRO_TASK_QUEUE: 'maestro-bench',
    MAESTRO_API_KEYS: BENCH_API_KEY,
    MAESTRO_ENCRYPTION_KEYS: BENCH_ENCRYPTION_KEYS,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    ...opts.env,
  });
  return {
    config,
    db,
    databaseUrl,
    env,
    stop: async () => {
      await db.destroy().catch(() => {});
      await env.teardown().catch(() => {});
      await pg.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
