// A fresh, migrated database per test file on the run's real PostgreSQL server.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { createDb, type Db } from '../../src/db/pool.js';
import { migrateToLatest } from '../../src/db/migrate.js';

export interface TestDatabase {
  db: Db;
  url: string;
  name: string;
  /** A raw pg client for inspecting bytes the repository would never show. */
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const adminUrl = inject('postgresAdminUrl');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = createDb(url.toString());
  if (options.migrate !== false) await migrateToLatest(db);
  const raw = new pg.Pool({ connectionString: url.toString(), max: 2 });
  return {
    db,
    url: url.toString(),
    name,
    query: async (text, values) => (await raw.query(text, values)).rows,
    close: async () => {
      await db.destroy();
      await raw.end();
    },
  };
}
