import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

const insert = (values: Record<string, unknown>) => {
  const row = { provider: 'anthropic', auth_type: 'api_key', secret: Buffer.from('x'), key_id: 'k1', ...values };
  const cols = Object.keys(row);
  return t.query(
    `insert into saved_authentications (${cols.join(',')}) values (${cols.map((_, i) => `$${i + 1}`).join(',')}) returning *`,
    Object.values(row),
  );
};

describe('first migration', () => {
  it('creates the three tables with the designed columns', async () => {
    const rows = await t.query<{ table_name: string; column_name: string }>(
      `select table_name, column_name from information_schema.columns where table_schema = 'public' order by table_name, ordinal_position`,
    );
    const byTable = (name: string) => rows.filter((r) => r.table_name === name).map((r) => r.column_name);
    expect(byTable('saved_authentications')).toEqual(
      expect.arrayContaining([
        'id',
        'name',
        'provider',
        'auth_type',
        'secret',
        'key_id',
        'expires_at',
        'status',
        'version',
        'refresh_count',
        'last_refreshed_at',
        'last_error',
        'created_at',
        'updated_at',
      ]),
    );
    expect(byTable('oauth_sessions')).toEqual(expect.arrayContaining(['id', 'provider', 'sealed', 'redirect_uri', 'expires_at']));
    expect(byTable('credential_events')).toEqual(['id', 'credential_id', 'type', 'details', 'created_at']);
  });

  it('defaults name, status and version on insert', async () => {
    const [row] = await insert({});
    expect(row).toMatchObject({ name: 'default', status: 'active', version: 1, refresh_count: 0 });
    expect(row!.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('rejects a duplicate provider + auth type + name', async () => {
    await insert({ name: 'dup' });
    await expect(insert({ name: 'dup' })).rejects.toThrow(/saved_authentications_provider_auth_type_name_key/);
    // the same name under another auth type is a different credential
    await expect(insert({ name: 'dup', auth_type: 'oauth' })).resolves.toHaveLength(1);
  });

  it('checks provider, auth type, status, name and version', async () => {
    await expect(insert({ name: 'p', provider: 'cohere' })).rejects.toThrow(/provider_check/);
    await expect(insert({ name: 'a', auth_type: 'password' })).rejects.toThrow(/auth_type_check/);
    await expect(insert({ name: 's', status: 'paused' })).rejects.toThrow(/status_check/);
    await expect(insert({ name: '' })).rejects.toThrow(/name_check/);
    await expect(insert({ name: 'v', version: 0 })).rejects.toThrow(/version_check/);
    await expect(insert({ name: 'n', secret: null })).rejects.toThrow(/null value in column "secret"/);
  });

  it('is idempotent: a second run applies nothing', async () => {
    expect(await migrateToLatest(t.db)).toEqual([]);
  });
});
