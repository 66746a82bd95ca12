// refresh_answers: the write-ahead log of token answers. A refresh spends a single-use refresh
// token; the provider's answer is sealed and recorded here the moment it arrives, so a retried
// attempt on any worker stores it instead of spending the old token again. `unusable` answers
// (a 2xx without an access token) stay for an operator to inspect.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('refresh_answers')
    .addColumn('credential_id', 'uuid', (c) => c.notNull())
    .addColumn('expected_version', 'integer', (c) => c.notNull())
    .addColumn('sealed', 'bytea', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) =>
      c
        .notNull()
        .defaultTo('pending')
        .check(sql`state in ('pending', 'unusable')`),
    )
    .addColumn('received_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('refresh_answers_pkey', ['credential_id', 'expected_version'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('refresh_answers').execute();
}
