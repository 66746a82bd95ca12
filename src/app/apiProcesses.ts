// `maestro api` with MAESTRO_API_PROCESSES > 1: this process (the cluster primary) forks that many
// API processes and supervises them. Each one re-runs the same command and, being a cluster
// worker, serves as usual; their listen() shares the primary's socket, which hands connections
// out round-robin. The primary itself opens no database or Temporal connection.
// Migrations: every API process runs migrateToLatest at start; kysely's Migrator holds a
// PostgreSQL advisory lock while it reads and applies them, so concurrent starts are safe.
import cluster, { type Worker } from 'node:cluster';
import { type Config } from '../config.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';

/** Wait before replacing a process that died, so a crash loop does not spin. */
const RESTART_DELAY_MS = 1_000;
/** More unexpected exits than this within the window: something is wrong that restarting will not fix. */
const MAX_UNEXPECTED_EXITS = 5;
const EXIT_WINDOW_MS = 60_000;
/** How long a graceful stop may take (requests finishing, usage written) before SIGKILL. */
const STOP_TIMEOUT_MS = 30_000;

/**
 * The signals that stop Maestro gracefully: Ctrl-C, a process manager's stop, and a closed
 * terminal (SIGHUP, which reaches every process of the terminal's group, API processes included).
 */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** True when this process should supervise API processes rather than serve the API itself. */
export function supervisesApiProcesses(config: Pick<Config, 'apiProcesses'>): boolean {
  return config.apiProcesses > 1 && cluster.isPrimary;
}

/** The address to print: a wildcard host is reached through localhost. */
function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Forks config.apiProcesses API processes, calls onListening once every one of them listens,
 * replaces any that exits unexpectedly, and on SIGTERM/SIGINT/SIGHUP stops them all (SIGTERM, then
 * SIGKILL after 30 s). Resolves after such a stop; rejects when processes keep dying.
 */
export function superviseApiProcesses(
  config: Config,
  log: Logger,
  onListening: (info: { url: string; processes: number }) => void,
): Promise<void> {
  // The embedded servers of development belong to one process; N processes would each start their own.
  if (!config.databaseUrl || !config.temporal.address) {
    throw new ConfigError(
      `MAESTRO_API_PROCESSES=${config.apiProcesses} needs DATABASE_URL and TEMPORAL_ADDRESS (the embedded PostgreSQL and Temporal serve one process); set both, or unset MAESTRO_API_PROCESSES`,
    );
  }
  const wanted = config.apiProcesses;
  const exited = new Map<Worker, Promise<void>>();
  const listening = new Set<Worker>();
  const restarts = new Set<NodeJS.Timeout>();
  const unexpectedExits: number[] = [];
  let announced = false;
  let stopping = false;

  const fork = () => {
    const worker = cluster.fork();
    exited.set(worker, new Promise((resolve) => worker.once('exit', () => resolve())));
    worker.on('error', (error: Error) => log.warn({ apiPid: worker.process.pid, error: error.message }, 'API process error'));
  };

  const stopAll = async () => {
    stopping = true;
    for (const timer of restarts) clearTimeout(timer);
    restarts.clear();
    const all = () => Promise.all(exited.values()).then(() => true);
    const within = (ms: number) => Promise.race([all(), new Promise<false>((resolve) => setTimeout(() => resolve(false), ms).unref())]);
    for (const worker of exited.keys()) worker.process.kill('SIGTERM');
    if (await within(STOP_TIMEOUT_MS)) return;
    const pids = [...exited.keys()].map((w) => w.process.pid);
    log.warn({ apiPids: pids }, `API processes did not stop within ${STOP_TIMEOUT_MS / 1000} s; killing them`);
    for (const worker of exited.keys()) worker.process.kill('SIGKILL');
    await within(5_000);
  };

  return new Promise<void>((resolve, reject) => {
    cluster.on('listening', (worker, address) => {
      if (config.metricsPort !== undefined && address.port === config.metricsPort) return; // its /metrics listener
      listening.add(worker);
      log.info({ apiPid: worker.process.pid, port: address.port }, 'API process listening');
      if (!announced && listening.size === wanted) {
        announced = true;
        onListening({ url: `http://${displayHost(config.host)}:${address.port}`, processes: wanted });
      }
    });

    cluster.on('exit', (worker, code, signal) => {
      exited.delete(worker);
      listening.delete(worker);
      if (stopping) return;
      const now = Date.now();
      unexpectedExits.push(now);
      while (unexpectedExits[0]! <= now - EXIT_WINDOW_MS) unexpectedExits.shift();
      const how = signal ? `signal ${signal}` : `exit code ${code}`;
      if (unexpectedExits.length > MAX_UNEXPECTED_EXITS) {
        const message = `API processes exited unexpectedly ${unexpectedExits.length} times within ${EXIT_WINDOW_MS / 1000} s (the last with ${how}); stopping them all (their log lines above say why)`;
        log.error({ apiPid: worker.process.pid, code, signal }, 'too many API process exits; stopping');
        void stopAll().then(() => reject(new Error(message)));
        return;
      }
      log.warn({ apiPid: worker.process.pid, code, signal }, `API process exited unexpectedly (${how}); starting another in 1 s`);
      const timer = setTimeout(() => {
        restarts.delete(timer);
        if (!stopping) fork();
      }, RESTART_DELAY_MS);
      restarts.add(timer);
    });

    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return; // already stopping: bounded by STOP_TIMEOUT_MS
      log.info({ signal, apiProcesses: exited.size }, 'stopping API processes');
      void stopAll().then(resolve);
    };
    for (const signal of STOP_SIGNALS) process.on(signal, onSignal);

    for (let i = 0; i < wanted; i++) fork();
  });
}

/**
 * In an API process: calls `stop` (the graceful stop of SIGTERM) once its primary is gone (SIGKILL,
 * OOM). Node's cluster would otherwise exit this process at once, dropping the requests in flight
 * and the usage not yet written. Nobody is left to SIGKILL a stop that hangs, so it is bounded here.
 */
export function stopWhenPrimaryLost(log: Logger, stop: () => void): void {
  const worker = cluster.worker;
  if (!worker) return;
  worker.once('disconnect', () => {
    if (worker.exitedAfterDisconnect) return; // a disconnect the primary asked for
    // Node's own handler, which runs next, exits at once unless this is set.
    worker.exitedAfterDisconnect = true;
    log.warn(`the supervising process is gone; stopping (at most ${STOP_TIMEOUT_MS / 1000} s)`);
    setTimeout(() => {
      log.error(`API process did not stop within ${STOP_TIMEOUT_MS / 1000} s of losing its supervisor; exiting`);
      process.exit(1);
    }, STOP_TIMEOUT_MS).unref();
    stop();
  });
}
