// Hostile and malformed requests against every route of the real API (real PostgreSQL, real
// Temporal test server, a fake Anthropic): each is refused with the right 4xx and a JSON error,
// the database does not change (row counts, versions, sealed bytes), nothing reaches a host other
// than the configured provider, and the process stays up. Then, over everything this file did:
// no secret in any log line, response, error or event row, ciphertext only in the database, and
// nothing secret in /metrics or /openapi.json.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { rawRequest, rawSocket, type RawAnswer } from '../support/http.js';
import { createDevServerEnv, TEST_API_KEY } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;
let port: number;
let canary: http.Server;
let canaryPort: number;
const canaryHits: string[] = [];
/** Every response body this file received. */
const answers: string[] = [];
const secrets = new Set<string>();

const seeded = {
  oauthAccess: 'sk-ant-oat01-security-access-0123456789abcdef',
  oauthRefresh: 'sk-ant-ort01-security-refresh-0123456789abcdef',
  apiKey: 'sk-ant-api03-security-apikey-0123456789abcdef',
  openaiKey: 'sk-proj-security-openai-0123456789abcdef',
};
const ids = { oauth: '', apiKey: '', openai: '', login: '' };

async function send(opts: Parameters<typeof rawRequest>[1]): Promise<RawAnswer> {
  const res = await rawRequest(port, opts);
  answers.push(res.text, JSON.stringify(res.headers));
  return res;
}
/** A chunked body (no content-length) of `bytes` bytes of valid JSON. */
function sendChunked(path: string, bytes: number): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path, headers: { ...proxyHeaders, 'transfer-encoding': 'chunked' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          answers.push(text);
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: parsed });
        });
      },
    );
    req.on('error', reject);
    const body = JSON.stringify({ model: 'claude-test', max_tokens: 8, messages: [{ role: 'user', content: 'x'.repeat(bytes) }] });
    for (let i = 0; i < body.length && !req.destroyed; i += 64 * 1024) req.write(body.slice(i, i + 64 * 1024));
    req.end();
  });
}
const auth = { authorization: `Bearer ${TEST_API_KEY}` };
const json = (body: unknown, headers: Record<string, string> = {}) => ({
  headers: { ...auth, 'content-type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const message = JSON.stringify({ model: 'claude-test', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
const proxyHeaders = { ...auth, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' };

beforeAll(async () => {
  canary = http.createServer((req, res) => {
    canaryHits.push(`${req.method} ${req.url}`);
    res.end('canary');
  });
  await new Promise<void>((resolve) => canary.listen(0, '127.0.0.1', resolve));
  canaryPort = (canary.address() as AddressInfo).port;
  // Real time: a time-skipping server would jump to the next refresh timer whenever a request
  // waits on a workflow, and the refresh would change the rows under the test's feet.
  env = await createDevServerEnv();
  h = await startApiHarness(env, { fake: { accessTokenTtlSec: 3600 } });
  port = Number(new URL(h.url).port);
  for (const s of [TEST_API_KEY, h.fake.apiKey, ...Object.values(seeded)]) secrets.add(s);

  h.fake.seedTokens(seeded.oauthRefresh, seeded.oauthAccess);
  const oauth = await h.call('POST', '/v1/credentials', {
    body: {
      provider: 'anthropic',
      authType: 'oauth',
      name: 'default',
      accessToken: seeded.oauthAccess,
      refreshToken: seeded.oauthRefresh,
      expiresIn: 3600,
    },
  });
  const apiKey = await h.call('POST', '/v1/credentials', {
    body: { provider: 'anthropic', authType: 'api_key', name: 'key-a', apiKey: seeded.apiKey },
  });
  const openai = await h.call('POST', '/v1/credentials', {
    body: { provider: 'openai', authType: 'api_key', name: 'oa', apiKey: seeded.openaiKey },
  });
  // A completed login (an authorization code and a verifier went by) and a pending one (a sealed session row).
  const started = await h.call('POST', '/v1/oauth/anthropic/start', { body: { name: 'login' } });
  const consent = h.fake.authorize(started.json.authorizeUrl);
  const login = await h.call('POST', '/v1/oauth/anthropic/complete', { body: { sessionId: started.json.sessionId, code: consent.pasted } });
  const pending = await h.call('POST', '/v1/oauth/anthropic/start', { body: { name: 'pending' } });
  for (const r of [oauth, apiKey, openai, started, login, pending]) {
    expect(r.status, r.text).toBe(201);
    answers.push(r.text);
  }
  secrets.add(consent.code);
  ids.oauth = oauth.json.id;
  ids.apiKey = apiKey.json.id;
  ids.openai = openai.json.id;
  ids.login = login.json.id;
  // The proxy works before the attack (and has the default credential cached).
  const ok = await send({ method: 'POST', path: '/proxy/anthropic/v1/messages', headers: proxyHeaders, body: message });
  expect(ok.status, ok.text).toBe(200);
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
  await new Promise<void>((resolve) => canary?.close(() => resolve()));
});

/** Everything a request could change: rows, versions, statuses, sealed bytes, history. */
async function snapshot(): Promise<string> {
  const [credentials, sessions, events] = await Promise.all([
    h.db.query(
      `select id, name, provider, auth_type, status, version, key_id, encode(secret, 'hex') as secret, expires_at, last_error, refresh_count, updated_at
         from saved_authentications order by id`,
    ),
    h.db.query(
      `select id, provider, name, key_id, encode(sealed, 'hex') as sealed, redirect_uri, expires_at from oauth_sessions order by id`,
    ),
    h.db.query(`select count(*)::int as n, coalesce(max(id), 0)::text as last from credential_events`),
  ]);
  return JSON.stringify({ credentials, sessions, events });
}

interface Case {
  name: string;
  send: () => Promise<RawAnswer | string>;
  /** Expected status (or any of several). */
  status: number | number[];
  /** Expected error.type. */
  type?: string;
  /** Refused by Node's HTTP parser before Maestro sees it: a bare 4xx without a JSON body. */
  parser?: boolean;
  /** The provider may be called (the request is legitimate once its hostile parts are dropped). */
  reachesProvider?: boolean;
  /** The answer is the provider's own (passed through), not a Maestro error. */
  providerAnswer?: boolean;
  /** Extra checks on the answer. */
  check?: (res: RawAnswer) => void | Promise<void>;
}

const uuidUnknown = '4f9d6a52-1b7e-4c3a-9d2f-8e6b5a4c3d21';
const sqli = "x' OR '1'='1'; DROP TABLE saved_authentications; --";

const cases: Case[] = [
  // --- Maestro keys -------------------------------------------------------------------------
  { name: 'no key', send: () => send({ path: '/v1/credentials' }), status: 401, type: 'unauthorized' },
  {
    name: 'wrong bearer key',
    send: () => send({ path: '/v1/credentials', headers: { authorization: 'Bearer msk_wrong_0123456789abcdef' } }),
    status: 401,
    type: 'unauthorized',
  },
  {
    name: 'wrong x-api-key',
    send: () => send({ path: '/v1/credentials', headers: { 'x-api-key': 'msk_wrong_0123456789abcdef' } }),
    status: 401,
    type: 'unauthorized',
  },
  {
    name: 'Basic auth with the key as password',
    send: () =>
      send({ path: '/v1/credentials', headers: { authorization: `Basic ${Buffer.from(`u:${TEST_API_KEY}`).toString('base64')}` } }),
    status: 401,
  },
  {
    name: 'key with trailing junk',
    send: () => send({ path: '/v1/credentials', headers: { authorization: `Bearer ${TEST_API_KEY} extra` } }),
    status: 401,
  },
  { name: 'empty bearer', send: () => send({ path: '/v1/credentials', headers: { authorization: 'Bearer ' } }), status: 401 },
  {
    name: 'key in another case',
    send: () => send({ path: '/v1/credentials', headers: { authorization: `Bearer ${TEST_API_KEY.toUpperCase()}` } }),
    status: 401,
  },
  {
    name: 'key prefix',
    send: () => send({ path: '/v1/credentials', headers: { authorization: `Bearer ${TEST_API_KEY.slice(0, -1)}` } }),
    status: 401,
  },
  {
    name: 'a 10 KB key',
    send: () => send({ path: '/v1/credentials', headers: { authorization: `Bearer ${'k'.repeat(10_000)}` } }),
    status: 401,
  },
  {
    name: 'wrong bearer beside a right x-api-key',
    send: () =>
      send({ path: '/v1/credentials', headers: { authorization: 'Bearer msk_wrong_0123456789abcdef', 'x-api-key': TEST_API_KEY } }),
    status: 401,
  },
  { name: 'key in the query string', send: () => send({ path: `/v1/credentials?api_key=${TEST_API_KEY}` }), status: 401 },
  {
    name: 'proxy without a key',
    send: () =>
      send({ method: 'POST', path: '/proxy/anthropic/v1/messages', headers: { 'content-type': 'application/json' }, body: message }),
    status: 401,
  },
  {
    name: 'delete with a wrong key',
    send: () =>
      send({
        method: 'DELETE',
        path: `/v1/credentials/${`${ids.oauth}`}`,
        headers: { authorization: 'Bearer msk_wrong_0123456789abcdef' },
      }),
    status: 401,
  },
  {
    name: 'login start without a key',
    send: () => send({ method: 'POST', path: '/v1/oauth/anthropic/start', headers: { 'content-type': 'application/json' }, body: '{}' }),
    status: 401,
  },

  // --- bodies --------------------------------------------------------------------------------
  {
    name: 'malformed JSON',
    send: () => send({ method: 'POST', path: '/v1/credentials', ...json('{"provider": "anthropic",') }),
    status: 400,
    type: 'invalid_json',
  },
  {
    name: 'JSON with trailing garbage',
    send: () => send({ method: 'POST', path: '/v1/credentials', ...json('{"provider":"anthropic"} {"x":1}') }),
    status: 400,
    type: 'invalid_json',
  },
  { name: 'JSON null', send: () => send({ method: 'POST', path: '/v1/credentials', ...json('null') }), status: 400 },
  { name: 'JSON string', send: () => send({ method: 'POST', path: '/v1/credentials', ...json('"anthropic"') }), status: 400 },
  { name: 'JSON array', send: () => send({ method: 'POST', path: '/v1/credentials', ...json([{ provider: 'anthropic' }]) }), status: 400 },
  {
    name: 'JSON sent as text/plain',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/credentials',
        ...json({ provider: 'anthropic', authType: 'api_key', apiKey: 'sk-ant-api03-plain-0123456789' }, { 'content-type': 'text/plain' }),
      }),
    status: 400,
  },
  {
    name: 'operator object as provider',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/credentials',
        ...json({ provider: { $ne: null }, authType: 'api_key', apiKey: 'sk-ant-api03-0123456789' }),
      }),
    status: 400,
  },
  {
    name: 'SQL injection in provider',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/credentials',
        ...json({ provider: sqli, authType: 'api_key', apiKey: 'sk-ant-api03-0123456789' }),
      }),
    status: 400,
  },
  {
    name: 'SQL injection in name',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/credentials',
        ...json({ provider: 'anthropic', authType: 'api_key', name: sqli, apiKey: 'sk-ant-api03-0123456789' }),
      }),
    status: 400,
  },
  {
    name: 'name of 101 characters',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/credentials',
        ...json({ provider: 'anthropic', authType: 'api_key', name: 'n'.repeat(101), apiKey: 'sk-ant-api03-0123456789' }),
      }),
    status: 400,
  },
  {
    name: 'NUL in name',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/credentials',
        ...json({ provider: 'anthropic', authType: 'api_key', name: 'a\u0000b', apiKey: 'sk-ant-api03-0123456789' }),
      }),
    status: 400,
  },
  {
    name: 'number as apiKey',
    send: () => send({ method: 'POST', path: '/v1/credentials', ...json('{"provider":"anthropic","authType":"api_key","apiKey":1e309}') }),
    status: 400,
  },
  {
    name: 'string as expiresIn',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/credentials',
        ...json({ provider: 'anthropic', authType: 'oauth', accessToken: 'sk-ant-oat01-0123456789', expiresIn: '3600' }),
      }),
    status: 400,
  },
  {
    name: 'expiresIn of 30 000 years',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/credentials',
        ...json({ provider: 'anthropic', authType: 'oauth', accessToken: 'sk-ant-oat01-0123456789', expiresIn: 1e12 }),
      }),
    status: 400,
  },
  {
    name: '__proto__ pollution',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/credentials',
        ...json('{"provider":"anthropic","authType":"api_key","apiKey":"sk-ant-api03-0123456789","__proto__":{"polluted":true}}'),
      }),
    status: 400,
    check: () => expect(({} as Record<string, unknown>).polluted).toBeUndefined(),
  },
  {
    name: 'constructor.prototype pollution',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/credentials',
        ...json(
          '{"provider":"anthropic","authType":"api_key","apiKey":"sk-ant-api03-0123456789","constructor":{"prototype":{"polluted":true}}}',
        ),
      }),
    status: 400,
    check: () => expect(({} as Record<string, unknown>).polluted).toBeUndefined(),
  },
  {
    name: 'duplicate keys, the last one hostile',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/credentials',
        ...json('{"provider":"anthropic","authType":"api_key","apiKey":"sk-ant-api03-0123456789","provider":"cohere"}'),
      }),
    status: 400,
  },
  {
    name: 'status smuggled into a create',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/credentials',
        ...json({ provider: 'anthropic', authType: 'api_key', apiKey: 'sk-ant-api03-0123456789', status: 'disabled', version: 99 }),
      }),
    status: 400,
  },
  {
    name: 'body of 2 MB',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/credentials',
        ...json({ provider: 'anthropic', authType: 'api_key', apiKey: 'x'.repeat(2 * 1024 * 1024) }),
      }),
    status: 413,
    type: 'payload_too_large',
  },
  {
    name: 'JSON nested 100 000 deep',
    send: () => send({ method: 'POST', path: '/v1/credentials', ...json(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) }),
    status: [400, 413],
  },
  {
    name: 'gzip body that is not gzip',
    send: () => send({ method: 'POST', path: '/v1/credentials', ...json('not gzip at all', { 'content-encoding': 'gzip' }) }),
    status: 400,
  },
  {
    name: 'unknown content-encoding',
    send: () => send({ method: 'POST', path: '/v1/credentials', ...json('{}', { 'content-encoding': 'compress' }) }),
    status: 415,
  },
  {
    name: 'unsupported charset',
    send: () =>
      send({ method: 'POST', path: '/v1/credentials', ...json('{}', { 'content-type': 'application/json; charset=iso-8859-1' }) }),
    status: 415,
  },

  // --- ids and another credential's id -------------------------------------------------------------
  { name: 'SQL injection as id', send: () => send({ path: `/v1/credentials/${encodeURIComponent(sqli)}`, headers: auth }), status: 400 },
  { name: 'path traversal as id', send: () => send({ path: '/v1/credentials/..%2F..%2Fetc%2Fpasswd', headers: auth }), status: 400 },
  { name: 'NUL in id', send: () => send({ path: '/v1/credentials/%00', headers: auth }), status: 400 },
  { name: 'unknown id', send: () => send({ path: `/v1/credentials/${uuidUnknown}`, headers: auth }), status: 404, type: 'not_found' },
  {
    name: 'events of an injected id',
    send: () => send({ path: `/v1/credentials/${encodeURIComponent("1' or 1=1--")}/events`, headers: auth }),
    status: 400,
  },
  {
    name: 'delete an unknown id',
    send: () => send({ method: 'DELETE', path: `/v1/credentials/${uuidUnknown}`, headers: auth }),
    status: 404,
  },
  {
    name: 'refresh an API key',
    send: () => send({ method: 'POST', path: `/v1/credentials/${ids.apiKey}/refresh`, headers: auth }),
    status: 409,
    type: 'conflict',
  },
  {
    name: 'refresh an unknown id',
    send: () => send({ method: 'POST', path: `/v1/credentials/${uuidUnknown}/refresh`, headers: auth }),
    status: 404,
  },
  {
    name: 'PATCH an API key with OAuth tokens',
    send: () =>
      send({ method: 'PATCH', path: `/v1/credentials/${ids.apiKey}`, ...json({ accessToken: 'sk-ant-oat01-hijack-0123456789' }) }),
    status: 400,
  },
  {
    name: 'PATCH an OAuth credential with an API key',
    send: () => send({ method: 'PATCH', path: `/v1/credentials/${ids.oauth}`, ...json({ apiKey: 'sk-ant-api03-hijack-0123456789' }) }),
    status: 400,
  },
  {
    name: 'PATCH smuggling status and version',
    send: () =>
      send({
        method: 'PATCH',
        path: `/v1/credentials/${ids.oauth}`,
        ...json({ accessToken: 'sk-ant-oat01-hijack-0123456789', status: 'active', version: 1 }),
      }),
    status: 400,
  },
  {
    name: 'PATCH an unknown id',
    send: () => send({ method: 'PATCH', path: `/v1/credentials/${uuidUnknown}`, ...json({ apiKey: 'sk-ant-api03-hijack-0123456789' }) }),
    status: 404,
  },
  {
    name: 'method override header',
    send: () => send({ path: `/v1/credentials/${ids.apiKey}`, headers: { ...auth, 'x-http-method-override': 'DELETE' } }),
    status: 200,
  },
  {
    name: 'SQL injection in a query parameter',
    send: () => send({ path: `/v1/credentials?provider=${encodeURIComponent(sqli)}`, headers: auth }),
    status: 400,
  },
  { name: 'operator in a query parameter', send: () => send({ path: '/v1/credentials?status[$ne]=x', headers: auth }), status: 400 },
  {
    name: 'repeated query parameter',
    send: () => send({ path: '/v1/credentials?provider=anthropic&provider=openai', headers: auth }),
    status: 400,
  },
  { name: 'unknown query parameter', send: () => send({ path: '/v1/credentials?limit=1000000', headers: auth }), status: 400 },
  {
    name: 'message call to an absolute URL',
    send: () =>
      send({
        method: 'POST',
        path: `/v1/credentials/${ids.apiKey}/messages`,
        ...json({ path: `http://127.0.0.1:${canaryPort}/v1/messages` }),
      }),
    status: 400,
  },
  {
    name: 'message call with a header name in capitals',
    send: () => send({ method: 'POST', path: `/v1/credentials/${ids.apiKey}/messages`, ...json({ headers: { 'X-Evil': 'a' } }) }),
    status: 400,
  },
  {
    name: 'message call with CRLF in a header value',
    send: () =>
      send({ method: 'POST', path: `/v1/credentials/${ids.apiKey}/messages`, ...json({ headers: { 'x-evil': 'a\r\nx-injected: b' } }) }),
    status: 400,
  },
  {
    name: 'message call walking out of the provider path',
    send: () => send({ method: 'POST', path: `/v1/credentials/${ids.apiKey}/messages`, ...json({ path: '/v1/../../admin' }) }),
    status: 400,
  },

  // --- login -------------------------------------------------------------------------------------
  { name: 'login for an unknown provider', send: () => send({ method: 'POST', path: '/v1/oauth/cohere/start', ...json({}) }), status: 400 },
  {
    name: 'login name with path traversal',
    send: () => send({ method: 'POST', path: '/v1/oauth/anthropic/start', ...json({ name: '../../etc' }) }),
    status: 400,
  },
  {
    name: 'login completion with an injected session id',
    send: () => send({ method: 'POST', path: '/v1/oauth/anthropic/complete', ...json({ sessionId: sqli, code: 'abc' }) }),
    status: 400,
  },
  {
    name: 'login completion for an unknown session',
    send: () =>
      send({
        method: 'POST',
        path: '/v1/oauth/anthropic/complete',
        ...json({ sessionId: uuidUnknown, code: 'ac_0123456789abcdef#st_0123456789abcdef' }),
      }),
    status: 404,
  },
  {
    name: 'login completion with a 5000-character code',
    send: () => send({ method: 'POST', path: '/v1/oauth/anthropic/complete', ...json({ sessionId: uuidUnknown, code: 'c'.repeat(5000) }) }),
    status: 400,
  },

  // --- the proxy --------------------------------------------------------------------------------
  {
    name: 'proxy: encoded dot segments',
    send: () => send({ method: 'POST', path: '/proxy/anthropic/v1/%2e%2e/%2e%2e/admin', headers: proxyHeaders, body: message }),
    status: 400,
  },
  {
    name: 'proxy: dot segments',
    send: () => send({ method: 'POST', path: '/proxy/anthropic/v1/../../admin', headers: proxyHeaders, body: message }),
    status: 400,
  },
  {
    name: 'proxy: double-encoded dot segments',
    send: () => send({ method: 'POST', path: '/proxy/anthropic/v1/%252e%252e/%252e%252e/admin', headers: proxyHeaders, body: message }),
    status: 400,
  },
  {
    name: 'proxy: encoded slashes',
    send: () => send({ method: 'POST', path: '/proxy/anthropic/v1/..%2f..%2fadmin', headers: proxyHeaders, body: message }),
    status: 400,
  },
  {
    name: 'proxy: backslashes',
    send: () => send({ method: 'POST', path: '/proxy/anthropic/v1%5c..%5cadmin', headers: proxyHeaders, body: message }),
    status: 400,
  },
  {
    name: 'proxy: protocol-relative host in the path',
    send: () =>
      send({ method: 'POST', path: `/proxy/anthropic//127.0.0.1:${canaryPort}/v1/messages`, headers: proxyHeaders, body: message }),
    status: 400,
  },
  {
    name: 'proxy: absolute URL in the path',
    send: () =>
      send({ method: 'POST', path: `/proxy/anthropic/http://127.0.0.1:${canaryPort}/v1/messages`, headers: proxyHeaders, body: message }),
    status: 400,
  },
  {
    name: 'proxy: userinfo-looking path',
    send: () =>
      send({ method: 'POST', path: `/proxy/anthropic/@127.0.0.1:${canaryPort}/v1/messages`, headers: proxyHeaders, body: message }),
    status: [400, 404],
    reachesProvider: true,
    providerAnswer: true,
  },
  {
    name: 'proxy: absolute-form request target',
    send: () =>
      send({ method: 'POST', path: `http://127.0.0.1:${canaryPort}/proxy/anthropic/v1/messages`, headers: proxyHeaders, body: message }),
    status: 400,
  },
  {
    name: 'proxy: Host header naming another server',
    send: () =>
      send({
        method: 'POST',
        path: '/proxy/anthropic/v1/messages',
        headers: { ...proxyHeaders, host: `127.0.0.1:${canaryPort}` },
        body: message,
      }),
    status: 200,
    reachesProvider: true,
  },
  {
    name: 'proxy: X-Forwarded-Host naming another server',
    send: () =>
      send({
        method: 'POST',
        path: '/proxy/anthropic/v1/messages',
        headers: { ...proxyHeaders, 'x-forwarded-host': `127.0.0.1:${canaryPort}`, forwarded: `host=127.0.0.1:${canaryPort}` },
        body: message,
      }),
    status: 200,
    reachesProvider: true,
  },
  {
    name: 'proxy: cookie, proxy-authorization and x-maestro-* are not forwarded',
    send: () =>
      send({
        method: 'POST',
        path: '/proxy/anthropic/v1/messages',
        headers: { ...proxyHeaders, cookie: 'session=stolen', 'proxy-authorization': 'Basic eDp5', 'x-maestro-debug': '1' },
        body: message,
      }),
    status: 200,
    reachesProvider: true,
  },
  {
    name: 'proxy: credential of another provider',
    send: () =>
      send({
        method: 'POST',
        path: '/proxy/anthropic/v1/messages',
        headers: { ...proxyHeaders, 'x-maestro-credential': `${ids.openai}` },
        body: message,
      }),
    status: 404,
  },
  {
    name: 'proxy: an OAuth id on another provider',
    send: () =>
      send({
        method: 'POST',
        path: '/proxy/openai/v1/chat/completions',
        headers: { ...proxyHeaders, 'x-maestro-credential': `${ids.oauth}` },
        body: '{}',
      }),
    status: 404,
  },
  {
    name: 'proxy: SQL injection as credential selector',
    send: () =>
      send({
        method: 'POST',
        path: '/proxy/anthropic/v1/messages',
        headers: { ...proxyHeaders, 'x-maestro-credential': sqli },
        body: message,
      }),
    status: 404,
  },
  {
    name: 'proxy: unknown credential id',
    send: () =>
      send({
        method: 'POST',
        path: '/proxy/anthropic/v1/messages',
        headers: { ...proxyHeaders, 'x-maestro-credential': uuidUnknown },
        body: message,
      }),
    status: 404,
  },
  {
    name: 'proxy: 300-character selector',
    send: () =>
      send({
        method: 'POST',
        path: '/proxy/anthropic/v1/messages',
        headers: { ...proxyHeaders, 'x-maestro-credential': 's'.repeat(300) },
        body: message,
      }),
    status: 400,
  },
  {
    name: 'proxy: unknown provider',
    send: () => send({ method: 'POST', path: '/proxy/cohere/v1/messages', headers: proxyHeaders, body: message }),
    status: 404,
  },
  {
    name: 'proxy: dot-dot as provider',
    send: () => send({ method: 'POST', path: '/proxy/%2e%2e/v1/credentials', headers: proxyHeaders, body: message }),
    status: 404,
  },
  {
    name: 'proxy: chunked body over the limit (12 MB)',
    send: () => sendChunked('/proxy/anthropic/v1/messages', 12 * 1024 * 1024),
    status: 413,
    type: 'payload_too_large',
  },
  {
    name: 'proxy: declared body over the limit',
    send: () =>
      rawSocket(
        port,
        `POST /proxy/anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_API_KEY}\r\nContent-Type: application/json\r\nContent-Length: 20000000\r\n\r\n{"a":1}`,
      ),
    status: 413,
  },

  // --- HTTP-level tricks ----------------------------------------------------------------------
  {
    name: 'CR inside a header value',
    send: () =>
      rawSocket(port, `GET /v1/credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_API_KEY}\r\nX-Evil: a\rInjected: b\r\n\r\n`),
    status: 400,
    parser: true,
  },
  {
    name: 'a keyless request pipelined behind a public one',
    send: async () => {
      const raw = await rawSocket(
        port,
        `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/credentials HTTP/1.1\r\nHost: y\r\nConnection: close\r\n\r\n`,
        5_000,
        2,
      );
      const second = raw.indexOf('HTTP/1.1', 1);
      expect(raw.slice(0, 12)).toBe('HTTP/1.1 200');
      return second < 0 ? raw : raw.slice(second);
    },
    status: 401,
  },
  {
    name: 'CRLF inside the Host header',
    send: () =>
      rawSocket(
        port,
        `GET /v1/credentials HTTP/1.1\r\nHost: x\r\nInjected: y\r\nAuthorization: Bearer ${TEST_API_KEY}\r\n\r\n`.replace(
          'Host: x\r\nInjected',
          'Host: x\rInjected',
        ),
      ),
    status: 400,
    parser: true,
  },
  {
    name: 'headers over 16 KB',
    send: () =>
      rawSocket(
        port,
        `GET /v1/credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_API_KEY}\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
      ),
    status: 431,
    parser: true,
  },
  {
    name: 'Content-Length and Transfer-Encoding together (smuggling)',
    send: () =>
      rawSocket(
        port,
        `POST /v1/credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_API_KEY}\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/credentials HTTP/1.1\r\nHost: x\r\n\r\n`,
      ),
    status: 400,
    parser: true,
  },
  {
    name: 'two Content-Length headers',
    send: () =>
      rawSocket(
        port,
        `POST /v1/credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_API_KEY}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}`,
      ),
    status: 400,
    parser: true,
  },
  {
    name: 'unknown HTTP method',
    send: () => rawSocket(port, `FOO /v1/credentials HTTP/1.1\r\nHost: x\r\n\r\n`),
    status: 400,
    parser: true,
  },
  {
    name: 'space in the request target',
    send: () => rawSocket(port, `GET /v1/credentials /x HTTP/1.1\r\nHost: x\r\n\r\n`),
    status: 400,
    parser: true,
  },
  { name: 'no route', send: () => send({ path: '/v1/admin', headers: auth }), status: 404, type: 'not_found' },
  {
    name: 'around the key check: traversal from a public route',
    send: () => send({ path: '/healthz/../v1/credentials' }),
    status: [401, 404],
  },
  {
    name: 'around the key check: encoded traversal from a public route',
    send: () => send({ path: '/openapi.json/%2e%2e/v1/credentials' }),
    status: [401, 404],
  },
  { name: 'around the key check: double slash', send: () => send({ path: '//v1/credentials' }), status: [401, 404] },
  { name: 'around the key check: route in capitals', send: () => send({ path: '/V1/CREDENTIALS' }), status: [401, 404] },
  { name: 'around the key check: trailing dot segment', send: () => send({ path: '/v1/credentials/.' }), status: [401, 404] },
  {
    name: 'public metrics with a hostile query string',
    send: () => send({ path: `/metrics?name[]=${encodeURIComponent(sqli)}` }),
    status: 200,
    check: (res) => expect(res.text).toMatch(/maestro_/),
  },
];

function parseRaw(text: string): RawAnswer {
  const headEnd = text.indexOf('\r\n\r\n');
  const head = headEnd < 0 ? text : text.slice(0, headEnd);
  // Only the first answer: the server may add another (e.g. a 400 for the unread rest of a body).
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, headEnd))?.[1];
  const rest = headEnd < 0 ? '' : text.slice(headEnd + 4);
  const body = length === undefined ? rest : rest.slice(0, Number(length));
  const [statusLine, ...headerLines] = head.split('\r\n');
  const headers: http.IncomingHttpHeaders = {};
  for (const line of headerLines) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers, text: body, json: parsed };
}

describe('hostile and malformed requests', () => {
  it(`has at least 50 cases, each named once (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(50);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  for (const c of cases) {
    it(c.name, async () => {
      const before = await snapshot();
      const providerRequests = h.fake.requests.length;
      const canaryBefore = canaryHits.length;
      const raw = await c.send();
      const res = typeof raw === 'string' ? parseRaw(raw) : raw;
      if (typeof raw === 'string') answers.push(raw);
      const allowed = Array.isArray(c.status) ? c.status : [c.status];
      expect(allowed, `${res.status} ${res.text.slice(0, 300)}`).toContain(res.status);
      if (res.status >= 400 && !c.parser && !c.providerAnswer) {
        expect(String(res.headers['content-type'])).toMatch(/application\/json/);
        expect(typeof res.json?.error?.type, res.text.slice(0, 300)).toBe('string');
        expect(typeof res.json?.error?.message).toBe('string');
        expect(res.text).not.toMatch(/\bat .+\.(ts|js):\d+/); // no stack trace
        if (c.type) expect(res.json.error.type).toBe(c.type);
      }
      if (res.status === 401) expect(res.json?.error?.type).toBe('unauthorized');
      await c.check?.(res);
      expect(await snapshot()).toBe(before);
      expect(canaryHits.length).toBe(canaryBefore);
      if (!c.reachesProvider) expect(h.fake.requests.length, 'the provider was called').toBe(providerRequests);
      const health = await rawRequest(port, { path: '/healthz' });
      expect(health.status).toBe(200);
    });
  }

  it("never sent anything hostile to the provider: only its own paths, the credential's auth, no client secrets", () => {
    for (const r of h.fake.requests) {
      expect(r.path).not.toMatch(/\.\.|%2e|%2f|%5c|\\/i);
      expect(JSON.stringify(r.headers)).not.toContain(TEST_API_KEY);
      expect(r.headers.cookie).toBeUndefined();
      expect(r.headers['proxy-authorization']).toBeUndefined();
      expect(r.headers.host).toBe(new URL(h.fake.url).host);
      expect(Object.keys(r.headers).filter((k) => k.startsWith('x-maestro-') || k.startsWith('x-forwarded-') || k === 'forwarded')).toEqual(
        [],
      );
    }
    expect(canaryHits).toEqual([]);
  });

  it('a completion on the wrong provider is refused and only burns that single-use session', async () => {
    const started = await h.call('POST', '/v1/oauth/anthropic/start', { body: { name: 'burn' } });
    answers.push(started.text);
    const consent = h.fake.authorize(started.json.authorizeUrl);
    secrets.add(consent.code);
    const credentialsBefore = await h.db.query('select id, version from saved_authentications order by id');
    const wrong = await h.call('POST', '/v1/oauth/openai/complete', { body: { sessionId: started.json.sessionId, code: consent.pasted } });
    answers.push(wrong.text);
    expect(wrong.status).toBe(400);
    expect(wrong.json.error.message).toMatch(/belongs to anthropic/);
    expect(await h.db.query('select id, version from saved_authentications order by id')).toEqual(credentialsBefore);
    expect(await h.db.query('select 1 from oauth_sessions where id = $1', [started.json.sessionId])).toHaveLength(0);
  });
});

describe('secrets, over everything this file did', () => {
  /** Seeded, imported and issued tokens and keys, authorization codes and PKCE verifiers. */
  const allSecrets = () => {
    for (const t of [...h.fake.issued.accessTokens, ...h.fake.issued.refreshTokens]) secrets.add(t);
    for (const r of h.fake.tokenRequests()) {
      const body = (r.json ?? r.form ?? {}) as Record<string, unknown>;
      for (const key of ['code', 'code_verifier', 'refresh_token']) if (typeof body[key] === 'string') secrets.add(body[key] as string);
    }
    return [...secrets];
  };

  it('knows the secrets it is looking for (codes and verifiers of real logins included)', () => {
    const known = allSecrets();
    expect(h.fake.tokenRequests().filter((r) => (r.json as Record<string, unknown> | undefined)?.code_verifier)).toHaveLength(1);
    expect(known.length).toBeGreaterThanOrEqual(10);
    expect(known.every((s) => s.length >= 16)).toBe(true);
  });

  it('left no secret in a log line, a response or an event row', async () => {
    const known = allSecrets();
    expect(h.logLines.length).toBeGreaterThan(50);
    const logs = h.logLines.join('\n');
    const responses = answers.join('\n');
    const events = JSON.stringify(await h.db.query('select * from credential_events'));
    const metadata = JSON.stringify(
      await h.db.query('select id, name, provider, auth_type, status, last_error, key_id from saved_authentications'),
    );
    for (const secret of known) {
      const label = `${secret.slice(0, 14)}…`;
      expect(logs.includes(secret), `log lines contain ${label}`).toBe(false);
      expect(responses.includes(secret), `responses contain ${label}`).toBe(false);
      expect(events.includes(secret), `events contain ${label}`).toBe(false);
      expect(metadata.includes(secret), `metadata columns contain ${label}`).toBe(false);
    }
  });

  it('keeps ciphertext only in saved_authentications.secret and oauth_sessions.sealed', async () => {
    const known = allSecrets();
    const rows = [
      ...(await h.db.query<{ bytes: Buffer }>('select secret as bytes from saved_authentications')),
      ...(await h.db.query<{ bytes: Buffer }>('select sealed as bytes from oauth_sessions')),
    ];
    expect(rows.length).toBeGreaterThanOrEqual(5); // four credentials (one from a login) and a pending session
    for (const { bytes } of rows) {
      for (const secret of known) expect(bytes.includes(Buffer.from(secret)), `sealed bytes contain ${secret.slice(0, 14)}…`).toBe(false);
      const text = bytes.toString('latin1');
      expect(text).not.toMatch(/accessToken|refreshToken|apiKey|verifier|"state"/);
      // AES-GCM output is indistinguishable from random: no long printable runs (plaintext JSON would be one).
      expect(text).not.toMatch(/[\x20-\x7e]{24,}/);
    }
  });

  it('/metrics and /openapi.json leak none', async () => {
    const known = allSecrets();
    const metrics = await rawRequest(port, { path: '/metrics' });
    const openapi = await rawRequest(port, { path: '/openapi.json' });
    expect(metrics.status).toBe(200);
    expect(openapi.status).toBe(200);
    expect(metrics.text).toMatch(/maestro_proxy_requests_total/);
    for (const secret of known) {
      expect(metrics.text).not.toContain(secret);
      expect(openapi.text).not.toContain(secret);
    }
  });
});
