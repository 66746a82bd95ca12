// One kysely instance over a pg pool. Connection failures become a one-line error naming DATABASE_URL.
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { ConfigError } from '../errors.js';
import type { Database } from './types.js';

// bigint (bigserial ids, counts) as string, never a lossy number.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => v);

export type Db = Kysely<Database>;

export function createDb(databaseUrl: string, max = 10): Db {
  const pool = new pg.Pool({ connectionString: databaseUrl, max, connectionTimeoutMillis: 5_000 });
  // An idle client that loses its server must not crash the process; the next query reports it.
  pool.on('error', () => {});
  // Nor may a client in use between two queries (pg-pool listens only while a client is idle): a
  // server that stops sends it "terminating connection", which pg emits as 'error' — unheard, an
  // uncaught exception. It killed an API process in test/faults/poolsOutage.test.ts (the routing
  // state queries every second); test/faults/dbClientError.test.ts pins it. The next query fails.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** Fails fast with one clear line when Postgres cannot be reached. */
export async function checkDatabase(db: Db, variable = 'DATABASE_URL'): Promise<void> {
  try {
    await db.selectNoFrom((eb) => eb.val(1).as('ok')).execute();
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new ConfigError(`cannot reach PostgreSQL at ${variable}: ${reason}`);
  }
}
