// kysely's Migrator over the migrations in migrations/, applied at start and by `npm run migrate`.
// The list is imported statically (migrations/index.ts) so it works the same under tsx, vitest and bundlers.
import { Migrator } from 'kysely';
import { migrations } from '../../migrations/index.js';
import type { Db } from './pool.js';

/**
 * Safe to run from several processes at once (N API processes starting together): the Migrator
 * creates its tables tolerating a concurrent create, then holds a PostgreSQL advisory lock while it
 * reads what is applied and applies the rest, so each migration runs once.
 */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    const reason = error instanceof Error ? error.message : String(error ?? 'unknown error');
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${reason}`);
  }
  return (results ?? []).map((r) => r.migrationName);
}
