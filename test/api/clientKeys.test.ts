// Client keys end to end through the real API (real PostgreSQL, real Temporal, a fake Anthropic):
// a role × route × path matrix where every refusal has the right status and message, leaves the
// database as it was and sends nothing upstream; keys shown only at creation, never stored or
// logged; revocation, expiry, the per-key request rate and last-used batching.
import { randomBytes } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { seedOAuthCredential } from '../support/credentials.js';
import { createDevServerEnv } from '../support/temporal.js';
import { until } from '../support/wait.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;
let apiKeyCredential: { id: string; name: string };
let oauthCredential: { id: string; name: string };
const issued: string[] = []; // every whole key any answer carried: none may reach the database or a log

const message = { model: 'claude-test', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] };
const as = (key: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${key}`, ...extra });

async function createKey(body: Record<string, unknown>): Promise<{ id: string; key: string }> {
  const created = await h.call('POST', '/v1/keys', { body });
  expect(created.status, created.text).toBe(201);
  expect(created.headers.get('cache-control')).toBe('no-store');
  expect(created.json.key).toMatch(/^msk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  expect(created.json.key.startsWith(`msk_${created.json.id}_`)).toBe(true);
  issued.push(created.json.key);
  return { id: created.json.id, key: created.json.key };
}

/** Everything a refused call must leave alone: rows, versions, revocations, histories. */
async function fingerprint(): Promise<string> {
  const { rows } = await sql<{ f: string }>`
    select concat_ws('|',
      (select string_agg(id || ':' || version || ':' || status, ',' order by id) from saved_authentications),
      (select string_agg(id || ':' || version || ':' || coalesce(revoked_at::text, '-'), ',' order by id) from api_keys),
      (select count(*) from oauth_sessions),
      (select count(*) from credential_events),
      (select count(*) from api_key_events)) as f`.execute(h.db.db);
  return rows[0]!.f;
}

beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startApiHarness(env);
  const imported = await h.call('POST', '/v1/credentials', {
    body: { provider: 'anthropic', authType: 'api_key', name: 'team-a', apiKey: h.fake.apiKey },
  });
  expect(imported.status).toBe(201);
  apiKeyCredential = imported.json;
  const seeded = await seedOAuthCredential(h, { tag: `keys-${randomBytes(6).toString('hex')}`, name: 'team-b' });
  oauthCredential = seeded.credential;
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

describe('client keys', () => {
  it('refuses what a key may not do: the status and message say why, the database is unchanged, nothing goes upstream', async () => {
    const teamA = await createKey({ name: 'team a bot', role: 'client', credentials: ['team-a'] });
    const wholeProvider = await createKey({ name: 'anthropic bot', role: 'client', providers: ['anthropic'] });
    const revoked = await createKey({ name: 'gone', role: 'client', providers: ['anthropic'] });
    expect((await h.call('DELETE', `/v1/keys/${revoked.id}`)).status).toBe(204);
    const expired = await createKey({ name: 'old', role: 'client', providers: ['anthropic'] });
    await sql`update api_keys set expires_at = now() - interval '1 minute' where id = ${expired.id}`.execute(h.db.db);
    await until(async () => (await h.call('GET', '/v1/credentials', { headers: as(expired.key) })).status === 401, {
      what: 'the expiry reaching the registry',
    });
    const unknown = `msk_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`;
    const forgedSecret = `msk_${teamA.id}_${randomBytes(32).toString('base64url')}`;

    const A = apiKeyCredential.id;
    const B = oauthCredential.id;
    const refusals: Array<{
      who: string;
      key: string;
      method: string;
      path: string;
      body?: unknown;
      headers?: Record<string, string>;
      status: number;
      text: RegExp;
    }> = [];
    const clientOnly = /is a client key: .* needs an admin key/;
    for (const [method, path, body] of [
      ['POST', '/v1/credentials', { provider: 'anthropic', authType: 'api_key', name: 'sneaky', apiKey: 'sk-ant-api03-abcdefgh' }],
      ['GET', `/v1/credentials/${A}`],
      ['PATCH', `/v1/credentials/${A}`, { apiKey: 'sk-ant-api03-replaced1' }],
      ['DELETE', `/v1/credentials/${B}`],
      ['POST', `/v1/credentials/${B}/refresh`],
      ['GET', `/v1/credentials/${A}/events`],
      ['POST', '/v1/oauth/anthropic/start', {}],
      ['POST', '/v1/oauth/anthropic/complete', { sessionId: '00000000-0000-4000-8000-000000000000', code: 'abc' }],
      ['POST', '/v1/keys', { name: 'escalate', role: 'admin' }],
      ['GET', '/v1/keys'],
      ['GET', `/v1/keys/${teamA.id}`],
      ['DELETE', `/v1/keys/${wholeProvider.id}`],
      ['POST', '/codec/decode', { payloads: [] }],
    ] as const) {
      for (const [who, key] of [
        ['team-a', teamA.key],
        ['anthropic', wholeProvider.key],
      ] as const)
        refusals.push({ who, key, method, path, body, status: 403, text: clientOnly });
    }
    const proxied = { 'content-type': 'application/json' };
    refusals.push(
      // Another credential, by name and by id; the other provider; a path that is not inference.
      {
        who: 'team-a',
        key: teamA.key,
        method: 'POST',
        path: '/proxy/anthropic/v1/messages',
        body: message,
        headers: { ...proxied, 'x-maestro-credential': 'team-b' },
        status: 403,
        text: /without access to anthropic credential "team-b"/,
      },
      {
        who: 'team-a',
        key: teamA.key,
        method: 'POST',
        path: '/proxy/anthropic/v1/messages',
        body: message,
        headers: { ...proxied, 'x-maestro-credential': B },
        status: 403,
        text: /without access to anthropic credential/,
      },
      {
        who: 'team-a',
        key: teamA.key,
        method: 'POST',
        path: '/proxy/openai/v1/chat/completions',
        body: {},
        status: 403,
        text: /without access to openai/,
      },
      {
        who: 'anthropic',
        key: wholeProvider.key,
        method: 'GET',
        path: '/proxy/anthropic/v1/organizations/org-1/api_keys',
        status: 403,
        text: /GET \/v1\/organizations\/org-1\/api_keys is not a anthropic inference path/,
      },
      {
        who: 'anthropic',
        key: wholeProvider.key,
        method: 'POST',
        path: '/proxy/anthropic/v1/messages/batches',
        body: message,
        status: 403,
        text: /not a anthropic inference path/,
      },
      {
        who: 'anthropic',
        key: wholeProvider.key,
        method: 'DELETE',
        path: '/proxy/anthropic/v1/models/claude-x',
        status: 403,
        text: /not a anthropic inference path/,
      },
      {
        who: 'anthropic',
        key: wholeProvider.key,
        method: 'GET',
        path: '/proxy/anthropic/v1/models/%2e%2e/organizations',
        status: 403,
        text: /not a anthropic inference path/,
      },
      {
        who: 'anthropic',
        key: wholeProvider.key,
        method: 'GET',
        path: '/proxy/anthropic/v1/models/..%2forganizations',
        status: 403,
        text: /not a anthropic inference path/,
      },
      // Durable calls: another credential, or a path that is not inference.
      {
        who: 'team-a',
        key: teamA.key,
        method: 'POST',
        path: `/v1/credentials/${B}/messages`,
        body: { body: message },
        status: 403,
        // Only what the client sent (issue 27 item 8): not the credential's name or provider.
        text: new RegExp(`without access to credential "${B}": unknown, or not one this key may use`),
      },
      {
        who: 'anthropic',
        key: wholeProvider.key,
        method: 'POST',
        path: `/v1/credentials/${A}/messages`,
        body: { method: 'GET', path: '/v1/organizations/org-1/api_keys' },
        status: 403,
        text: /not a anthropic inference path/,
      },
    );
    for (const [who, key, text] of [
      ['revoked', revoked.key, new RegExp(`Maestro key ${revoked.id} was revoked`)],
      ['expired', expired.key, new RegExp(`Maestro key ${expired.id} expired at`)],
      ['unknown', unknown, /^invalid Maestro API key$/],
      ['forged secret', forgedSecret, /^invalid Maestro API key$/],
    ] as const) {
      refusals.push(
        { who, key, method: 'GET', path: '/v1/credentials', status: 401, text },
        { who, key, method: 'POST', path: '/proxy/anthropic/v1/messages', body: message, headers: proxied, status: 401, text },
        { who, key, method: 'DELETE', path: `/v1/credentials/${A}`, status: 401, text },
      );
    }

    const upstreamBefore = h.fake.apiRequests().length;
    const before = await fingerprint();
    for (const r of refusals) {
      const answer = await h.call(r.method, r.path, { body: r.body, headers: { ...as(r.key), ...r.headers } });
      const what = `${r.who}: ${r.method} ${r.path} → ${answer.status} ${answer.text}`;
      expect(answer.status, what).toBe(r.status);
      expect(answer.json?.error?.type, what).toBe(r.status === 401 ? 'unauthorized' : 'forbidden');
      expect(answer.json.error.message, what).toMatch(r.text);
    }
    expect(await fingerprint()).toBe(before);
    expect(h.fake.apiRequests().length).toBe(upstreamBefore);
  });

  it('lets a client key do what it lists: its credentials (its only one by default), inference paths, its part of the list', async () => {
    const teamA = await createKey({ name: 'team a', role: 'client', credentials: [apiKeyCredential.id] });
    const wholeProvider = await createKey({ name: 'all anthropic', role: 'client', providers: ['anthropic'] });

    // No x-maestro-credential: the one credential the key lists.
    const mine = await h.call('POST', '/proxy/anthropic/v1/messages', { body: message, headers: as(teamA.key) });
    expect(mine.status, mine.text).toBe(200);
    expect(h.fake.apiRequests().at(-1)!.headers['x-api-key']).toBe(h.fake.apiKey);
    expect(h.fake.apiRequests().at(-1)!.headers.authorization).toBeUndefined(); // the Maestro key never goes upstream

    const other = await h.call('POST', '/proxy/anthropic/v1/messages', {
      body: message,
      headers: as(wholeProvider.key, { 'x-maestro-credential': 'team-b' }),
    });
    expect(other.status, other.text).toBe(200);
    expect(h.fake.apiRequests().at(-1)!.headers.authorization).toMatch(/^Bearer sk-ant-oat01-/);
    const models = await h.call('GET', '/proxy/anthropic/v1/models?limit=5', {
      headers: as(wholeProvider.key, { 'x-maestro-credential': 'team-a' }),
    });
    expect(models.status).not.toBe(403);
    const counted = await h.call('POST', '/proxy/anthropic/v1/messages/count_tokens', { body: message, headers: as(teamA.key) });
    expect(counted.status).not.toBe(403);

    // A Gemini SDK sends its key as x-goog-api-key: the Maestro key works there too.
    const asGemini = await h.call('GET', '/v1/credentials', { headers: { authorization: '', 'x-goog-api-key': teamA.key } });
    expect(asGemini.status, asGemini.text).toBe(200);

    const listed = await h.call('GET', '/v1/credentials', { headers: as(teamA.key) });
    expect(listed.status).toBe(200);
    expect(listed.json.credentials.map((c: { id: string }) => c.id)).toEqual([apiKeyCredential.id]);
    const all = await h.call('GET', '/v1/credentials', { headers: as(wholeProvider.key) });
    expect(all.json.credentials.map((c: { name: string }) => c.name).sort()).toEqual(['team-a', 'team-b']);

    const durable = await h.call('POST', `/v1/credentials/${apiKeyCredential.id}/messages`, {
      body: { body: message },
      headers: as(teamA.key),
    });
    expect(durable.status, durable.text).toBe(200);

    // The request log names the key id, never the key.
    await until(() => h.logLines.some((l) => l.includes(`"keyId":"${teamA.id}"`)), { what: 'a request line naming the key id' });
  });

  it('validates key requests with messages that say what to fix', async () => {
    for (const [body, text] of [
      [{ name: 'x', role: 'client' }, /must list credentials .*, providers or pools/],
      [{ name: 'x', role: 'admin', providers: ['anthropic'] }, /apply to client keys only/],
      [{ name: 'x', role: 'client', credentials: ['nope'] }, /no credential with id or name "nope"/],
      [{ name: 'x', role: 'client', providers: ['acme'] }, /provider must be one of/],
      [{ name: 'x', role: 'owner', providers: ['anthropic'] }, /role must be "admin" or "client"/],
      [{ name: 'x', role: 'client', providers: ['anthropic'], expiresAt: '2001-01-01T00:00:00Z' }, /must be in the future/],
      [{ name: 'x', role: 'client', providers: ['anthropic'], limits: { requestsPerMinute: 0 } }, /requestsPerMinute must be positive/],
      [{ name: 'x', role: 'client', providers: ['anthropic'], extra: 1 }, /unknown field/],
    ] as const) {
      const answer = await h.call('POST', '/v1/keys', { body });
      expect(answer.status, answer.text).toBe(400);
      expect(answer.json.error.message).toMatch(text);
    }
    // A name shared by two credentials must be given by id.
    await h.call('POST', '/v1/credentials', {
      body: { provider: 'openai', authType: 'api_key', name: 'team-a', apiKey: 'sk-proj-abcdefghij' },
    });
    const ambiguous = await h.call('POST', '/v1/keys', { body: { name: 'x', role: 'client', credentials: ['team-a'] } });
    expect(ambiguous.status).toBe(400);
    expect(ambiguous.json.error.message).toMatch(/"team-a" names 2 credentials: list one by id/);
    expect((await h.call('GET', '/v1/keys/not-a-key-id')).status).toBe(400);
    expect((await h.call('GET', `/v1/keys/${'0'.repeat(16)}`)).status).toBe(404);
    expect((await h.call('DELETE', `/v1/keys/${'0'.repeat(16)}`)).status).toBe(404);
  });

  it('revokes at once (twice is fine), limits a key to its requests per minute, and records last use in batches', async () => {
    const limited = await createKey({ name: 'limited', role: 'client', providers: ['anthropic'], limits: { requestsPerMinute: 3 } });
    for (let i = 0; i < 3; i++) expect((await h.call('GET', '/v1/credentials', { headers: as(limited.key) })).status).toBe(200);
    const over = await h.call('POST', '/proxy/anthropic/v1/messages', { body: message, headers: as(limited.key) });
    expect(over.status).toBe(429);
    expect(over.json.error).toMatchObject({
      type: 'rate_limited',
      message: expect.stringMatching(/over its limit of 3 requests per minute/),
    });
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(over.headers.get('retry-after'))).toBeLessThanOrEqual(60);

    const used = await createKey({ name: 'used', role: 'client', providers: ['anthropic'] });
    expect((await h.call('GET', '/v1/credentials', { headers: as(used.key) })).status).toBe(200);
    expect((await h.call('GET', `/v1/keys/${used.id}`)).json.lastUsedAt).toBeNull(); // batched: not yet written
    await h.api.lastUsed.flush();
    const read = await h.call('GET', `/v1/keys/${used.id}`);
    expect(Date.parse(read.json.lastUsedAt)).toBeGreaterThan(Date.now() - 60_000);

    expect((await h.call('DELETE', `/v1/keys/${used.id}`)).status).toBe(204);
    expect((await h.call('GET', '/v1/credentials', { headers: as(used.key) })).status).toBe(401); // the same process: at once
    expect((await h.call('DELETE', `/v1/keys/${used.id}`)).status).toBe(204);
    const events = await sql<{ type: string }>`select type from api_key_events where key_id = ${used.id} order by id`.execute(h.db.db);
    expect(events.rows.map((r) => r.type)).toEqual(['key_created', 'key_revoked']);
    const shown = await h.call('GET', `/v1/keys/${used.id}`);
    expect(shown.json).toMatchObject({ id: used.id, role: 'client', providers: ['anthropic'], revokedAt: expect.any(String) });
  });

  it('shows a key only in its creation answer: never in a list, a read, a log line or any table', async () => {
    const listed = await h.call('GET', '/v1/keys');
    expect(listed.status).toBe(200);
    expect(listed.json.keys.length).toBeGreaterThanOrEqual(issued.length);
    const texts = [listed.text];
    for (const k of listed.json.keys) {
      expect(Object.keys(k).sort()).toEqual(
        [
          'createdAt',
          'createdBy',
          'credentials',
          'expiresAt',
          'id',
          'lastUsedAt',
          'limits',
          'name',
          'pools',
          'providers',
          'revokedAt',
          'role',
        ].sort(),
      );
      texts.push((await h.call('GET', `/v1/keys/${k.id}`)).text);
    }
    const { rows } = await sql<{ t: string }>`
      select string_agg(row_to_json(x)::text, ' ') as t from (
        select to_jsonb(k) - 'secret_hash' as j, encode(k.secret_hash, 'hex') as h, encode(k.secret_hash, 'base64') as b from api_keys k
        union all select to_jsonb(e), '', '' from api_key_events e
        union all select to_jsonb(e), '', '' from credential_events e
        union all select to_jsonb(s), encode(s.secret, 'escape'), '' from saved_authentications s) x`.execute(h.db.db);
    const everything = `${texts.join(' ')} ${rows[0]!.t} ${h.logLines.join('\n')}`;
    expect(issued.length).toBeGreaterThan(5);
    for (const key of issued) {
      const secret = key.split('_').slice(2).join('_');
      expect(everything).not.toContain(secret);
    }
  });
});

describe('list pagination', () => {
  /** Every page of a list at `limit` per page: the ids in order, and how many pages it took. */
  async function walk(path: string, field: 'keys' | 'credentials', limit: number): Promise<{ ids: string[]; pages: number }> {
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await h.call('GET', `${path}?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.status, page.text).toBe(200);
      expect(page.json[field].length).toBeLessThanOrEqual(limit);
      ids.push(...page.json[field].map((item: { id: string }) => item.id));
      cursor = page.json.nextCursor;
      pages++;
    } while (cursor);
    return { ids, pages };
  }

  it('pages through keys and credentials with limit and cursor, oldest first, each item once', async () => {
    for (const name of ['page-1', 'page-2', 'page-3']) await createKey({ name, role: 'client', providers: ['openai'] });
    for (const [path, field] of [
      ['/v1/keys', 'keys'],
      ['/v1/credentials', 'credentials'],
    ] as const) {
      const whole = (await h.call('GET', path)).json;
      expect(whole.nextCursor).toBeNull();
      const all = whole[field].map((item: { id: string }) => item.id);
      expect(all.length).toBeGreaterThanOrEqual(2);
      const walked = await walk(path, field, 1);
      expect(walked.ids).toEqual(all);
      expect(walked.pages).toBe(all.length);
      expect((await walk(path, field, 2)).ids).toEqual(all);
    }
    const first = await h.call('GET', '/v1/credentials?limit=1');
    expect(first.json.credentials.map((c: { name: string }) => c.name)).toEqual(['team-a']); // oldest first

    for (const bad of ['limit=0', 'limit=501', 'limit=two', 'cursor=not-ours']) {
      const refused = await h.call('GET', `/v1/keys?${bad}`);
      expect(refused.status, bad).toBe(400);
      expect(refused.json.error.message, bad).toMatch(/limit must be a whole number from 1 to 500|cursor is not one this API gave out/);
    }
  });
});
