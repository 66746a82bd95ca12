// Brings up what Maestro depends on: PostgreSQL (embedded unless DATABASE_URL) with migrations
// applied, and Temporal (an embedded dev server unless TEMPORAL_ADDRESS). Each returns a stop().
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { type Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { migrateToLatest } from '../db/migrate.js';
import { checkDatabase, createDb, type Db } from '../db/pool.js';
import type { Logger } from '../logger.js';
import { locateTemporalCli } from '../temporal/binaries.js';
import { connectClient, connectWorker } from '../temporal/connection.js';
import { quietCallContext } from '../temporal/callContext.js';
import { registerSearchAttributes } from '../temporal/registerSearchAttributes.js';
import { MAESTRO_SEARCH_ATTRIBUTES } from '../workflows/searchAttributes.js';
import { dataConverterFor } from '../temporal/payloadCodec.js';

export interface DatabaseHandle {
  db: Db;
  url: string;
  stop(): Promise<void>;
}

export async function openDatabase(config: Config, log: Logger, opts: { migrate?: boolean } = {}): Promise<DatabaseHandle> {
  let url = config.databaseUrl;
  let stopServer = async () => {};
  if (!url) {
    if (config.mode === 'production') throw new ConfigError('DATABASE_URL is required in production');
    const dir = path.join(config.dataDir, 'postgres');
    // Development only, and a development dependency: loaded here so production never needs it.
    const { startEmbeddedPostgres } = await import('../db/embedded.js');
    const server = await startEmbeddedPostgres(dir, { port: 5433 });
    url = server.url;
    stopServer = () => server.stop();
    log.info({ dataDir: dir }, 'embedded PostgreSQL started');
  }
  const db = createDb(url);
  try {
    await checkDatabase(db);
    if (opts.migrate !== false) {
      const applied = await migrateToLatest(db);
      if (applied.length) log.info({ applied }, 'migrations applied');
    }
  } catch (error) {
    await db.destroy().catch(() => {});
    await stopServer();
    throw error;
  }
  return {
    db,
    url,
    stop: async () => {
      await db.destroy();
      await stopServer();
    },
  };
}

export interface TemporalHandle {
  client: Client;
  workerConnection: NativeConnection;
  address: string;
  uiUrl?: string;
  stop(): Promise<void>;
}

export async function openTemporal(config: Config, log: Logger): Promise<TemporalHandle> {
  const { address, namespace } = config.temporal;
  if (address) {
    const client = await connectClient(address, namespace, config.temporal.connection, dataConverterFor(config));
    const workerConnection = await connectWorker(address, config.temporal.connection);
    // Best effort: without operator rights the operator registers them (see README).
    await registerSearchAttributes(client.connection as Connection, namespace)
      .then((added) => added.length && log.info({ added }, 'search attributes registered'))
      .catch((error: Error) => log.warn({ error: error.message }, 'could not register search attributes; see README'));
    return {
      client,
      workerConnection,
      address,
      stop: async () => {
        await workerConnection.close();
        await client.connection.close();
      },
    };
  }
  if (config.mode === 'production') throw new ConfigError('TEMPORAL_ADDRESS is required in production');
  const executable = await locateTemporalCli({
    explicitPath: config.temporal.cliPath,
    dataDir: config.dataDir,
    log: (message) => log.info(message),
  });
  // The dev server keeps its state in a file so workflows survive a restart, and registers
  // Maestro's search attributes so the Web UI can filter on them.
  // The dev server comes with @temporalio/testing, a development dependency: loaded only here.
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const env = await TestWorkflowEnvironment.createLocal({
    client: { dataConverter: dataConverterFor(config) },
    server: {
      executable,
      namespace,
      ip: '127.0.0.1',
      port: config.temporal.devPort,
      ui: true,
      uiPort: config.temporal.devUiPort,
      dbFilename: path.join(config.dataDir, 'temporal.db'),
      searchAttributes: MAESTRO_SEARCH_ATTRIBUTES,
      // The Web UI decodes Maestro's encrypted payloads through the API's /codec.
      extraArgs: ['--ui-codec-endpoint', `http://localhost:${config.port}/codec`],
    },
  }).catch((error: unknown) => {
    throw new ConfigError(
      `the embedded Temporal dev server did not start on port ${config.temporal.devPort} (is another one running? set MAESTRO_DEV_TEMPORAL_PORT): ${error instanceof Error ? error.message.split('\n')[0] : String(error)}; or set TEMPORAL_ADDRESS`,
    );
  });
  quietCallContext(env.client.connection); // as connectClient does (temporal/callContext.ts)
  return {
    client: env.client,
    workerConnection: env.nativeConnection,
    address: `127.0.0.1:${config.temporal.devPort}`,
    uiUrl: `http://localhost:${config.temporal.devUiPort}`,
    stop: () => env.teardown(),
  };
}
