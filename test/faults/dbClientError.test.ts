// PostgreSQL stops while a pooled client is checked out between two queries: the process lives on
// and the next query fails. pg-pool listens for errors only on idle clients, and pg emits the
// server's "terminating connection" as an 'error' event on the client: unheard, an uncaught
// exception (it killed an API process in test/faults/poolsOutage.test.ts; src/db/pool.ts listens).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createDb, type Db } from '../../src/db/pool.js';
import { startOwnPostgres, type OwnPostgres } from '../support/processes.js';
import { sleep } from '../support/wait.js';

let pgServer: OwnPostgres;
let db: Db;

beforeAll(async () => {
  pgServer = await startOwnPostgres();
  db = createDb(pgServer.url, 4);
}, 120_000);
afterAll(async () => {
  await db?.destroy().catch(() => {});
  await pgServer?.close();
});

it('survives the server stopping under a client in use between queries, and fails the next query', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => void uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  try {
    const next = await db.connection().execute(async (conn) => {
      await sql`select 1`.execute(conn);
      await pgServer.stop(); // the checked-out client gets "terminating connection" with no query running
      await sleep(500);
      return sql`select 1`.execute(conn).then(
        () => 'answered',
        (error: Error) => error.message,
      );
    });
    expect(next).not.toBe('answered');
    expect(uncaught).toEqual([]);
  } finally {
    process.off('uncaughtException', onUncaught);
  }
}, 60_000);
