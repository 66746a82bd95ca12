// The HTTP API against the running app: real PostgreSQL, real Temporal (the dev server),
// a fake Anthropic that checks every request it gets. The dev server (not the time-skipping one)
// because these tests exercise concurrent updates, which it handles as production does.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLAUDE_CODE_SYSTEM_PROMPT } from '../../src/providers/anthropic.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { createDevServerEnv, TEST_API_KEY } from '../support/temporal.js';
import { until } from '../support/wait.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;
const secretsSeen = new Set<string>();

beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startApiHarness(env, { fake: { accessTokenTtlSec: 3600, eventCount: 8 } });
  secretsSeen.add(TEST_API_KEY).add(h.fake.apiKey);
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

let seq = 0;
async function importOAuth(opts: { name?: string; expiresIn?: number; expiresAt?: string } = {}) {
  seq++;
  const accessToken = `sk-ant-oat01-imported-${seq}-abcdefgh`;
  const refreshToken = `sk-ant-ort01-imported-${seq}-abcdefgh`;
  h.fake.seedTokens(refreshToken, accessToken);
  secretsSeen.add(accessToken).add(refreshToken);
  const res = await h.call('POST', '/v1/credentials', {
    body: {
      provider: 'anthropic',
      authType: 'oauth',
      name: opts.name ?? `oauth-${seq}`,
      accessToken,
      refreshToken,
      ...(opts.expiresAt ? { expiresAt: opts.expiresAt } : { expiresIn: opts.expiresIn ?? 3600 }),
    },
  });
  expect(res.status).toBe(201);
  return { id: res.json.id as string, accessToken, refreshToken, name: res.json.name as string };
}

const rowCount = async () => Number((await h.db.query<{ n: string }>('select count(*) as n from saved_authentications'))[0]!.n);

/** A proxied /v1/messages call whose body goes out chunked (no content-length), in 64 KiB pieces. */
function chunkedCall(url: string, credential: string, body: unknown) {
  return fetch(`${url}/proxy/anthropic/v1/messages`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${TEST_API_KEY}`,
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      'x-maestro-credential': credential,
    },
    body: new ReadableStream({
      start(c) {
        const text = JSON.stringify(body);
        for (let i = 0; i < text.length; i += 65_536) c.enqueue(new TextEncoder().encode(text.slice(i, i + 65_536)));
        c.close();
      },
    }),
    duplex: 'half',
  } as RequestInit);
}

describe('health and auth', () => {
  it('answers /healthz and /readyz without a key', async () => {
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${h.url}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('refuses /v1 and /proxy without a key or with a wrong one, and accepts x-api-key', async () => {
    for (const path of ['/v1/credentials', '/proxy/anthropic/v1/messages']) {
      const none = await h.call('GET', path, { headers: { authorization: '' } });
      expect(none.status).toBe(401);
      expect(none.json.error.message).toMatch(/missing Maestro API key/);
      const wrong = await h.call('GET', path, { headers: { authorization: 'Bearer msk_wrong_key_0000000000' } });
      expect(wrong.status).toBe(401);
      expect(wrong.json.error.type).toBe('unauthorized');
    }
    const viaHeader = await h.call('GET', '/v1/credentials', { headers: { authorization: '', 'x-api-key': TEST_API_KEY } });
    expect(viaHeader.status).toBe(200);
  });
});

describe('credentials', () => {
  it('imports an API key and never returns it', async () => {
    const apiKey = 'sk-ant-api03-imported-key-abcdefgh';
    secretsSeen.add(apiKey);
    const res = await h.call('POST', '/v1/credentials', { body: { provider: 'anthropic', authType: 'api_key', name: 'key-1', apiKey } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ provider: 'anthropic', authType: 'api_key', name: 'key-1', status: 'active', version: 1 });
    expect(res.text).not.toContain(apiKey);
    const dup = await h.call('POST', '/v1/credentials', { body: { provider: 'anthropic', authType: 'api_key', name: 'key-1', apiKey } });
    expect(dup.status).toBe(409);
    expect(dup.json.error.message).toMatch(/already exists/);
  });

  it('imports OAuth tokens and starts the refresh workflow', async () => {
    const { id, accessToken } = await importOAuth();
    const res = await vi.waitFor(async () => {
      const r = await h.call('GET', `/v1/credentials/${id}`);
      expect(r.json.workflow).toMatchObject({ phase: 'sleeping', credentialStatus: 'active' });
      return r;
    });
    expect(res.text).not.toContain(accessToken);
    const list = await h.call('GET', '/v1/credentials?provider=anthropic&authType=oauth');
    expect(list.json.credentials.map((c: { id: string }) => c.id)).toContain(id);
  });

  it('answers bad input with a 400 that says what to fix, and changes nothing', async () => {
    const before = await rowCount();
    const cases: [unknown, RegExp][] = [
      [{ provider: 'cohere', authType: 'api_key', apiKey: 'sk-xxxxxxxxxxxx' }, /provider must be one of/],
      [{ provider: 'anthropic', authType: 'password', apiKey: 'sk-xxxxxxxxxxxx' }, /authType/],
      [{ provider: 'anthropic', authType: 'api_key' }, /apiKey/],
      [{ provider: 'anthropic', authType: 'api_key', apiKey: 12345678 }, /apiKey must be a string/],
      [{ provider: 'anthropic', authType: 'oauth', accessToken: 'sk-ant-oat01-xxxxxxxx', expiresIn: -5 }, /expiresIn must be positive/],
      [
        {
          provider: 'anthropic',
          authType: 'oauth',
          accessToken: 'sk-ant-oat01-xxxxxxxx',
          expiresIn: 60,
          expiresAt: '2030-01-01T00:00:00Z',
        },
        /not both/,
      ],
      [{ provider: 'anthropic', authType: 'oauth', accessToken: 'sk-ant-oat01-xxxxxxxx', expiresAt: 'tomorrow' }, /ISO 8601/],
      // Its UTC year is 10000: neither PostgreSQL nor Temporal can hold it.
      [
        { provider: 'anthropic', authType: 'oauth', accessToken: 'sk-ant-oat01-xxxxxxxx', expiresAt: '9999-12-31T23:00:00-14:00' },
        /between the years 0001 and 9999/,
      ],
      [{ provider: 'anthropic', authType: 'api_key', apiKey: 'sk-xxxxxxxxxxxx', name: '../etc' }, /name may contain/],
      [{ provider: 'anthropic', authType: 'api_key', apiKey: 'sk-xxxxxxxxxxxx', admin: true }, /unknown field/],
      [{ provider: 'anthropic', authType: 'api_key', apiKey: 'sk xxx\r\nx: y' }, /printable ASCII/],
      [[1, 2, 3], /authType/],
    ];
    for (const [body, message] of cases) {
      const res = await h.call('POST', '/v1/credentials', { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.error.message).toMatch(message);
    }
    const badJson = await h.call('POST', '/v1/credentials', { raw: '{"provider": "anthropic",' });
    expect(badJson.status).toBe(400);
    expect(badJson.json.error.type).toBe('invalid_json');
    const huge = await h.call('POST', '/v1/credentials', {
      raw: JSON.stringify({ provider: 'anthropic', authType: 'api_key', apiKey: 'x'.repeat(2 * 1024 * 1024) }),
    });
    expect(huge.status).toBe(413);
    expect(await rowCount()).toBe(before);
  });

  it('answers bad and unknown ids with 400 and 404', async () => {
    expect((await h.call('GET', '/v1/credentials/not-a-uuid')).status).toBe(400);
    expect((await h.call('GET', `/v1/credentials/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await h.call('DELETE', `/v1/credentials/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await h.call('GET', `/v1/credentials/00000000-0000-4000-8000-000000000000/events`)).status).toBe(404);
    expect((await h.call('GET', '/v1/nothing')).status).toBe(404);
  });

  it('replaces tokens with PATCH, refreshes on demand, and keeps history', async () => {
    const { id } = await importOAuth();
    const wrongKind = await h.call('PATCH', `/v1/credentials/${id}`, { body: { apiKey: 'sk-ant-api03-zzzzzzzzzzzz' } });
    expect(wrongKind.status).toBe(400);
    const newAccess = 'sk-ant-oat01-patched-abcdefghij';
    const newRefresh = 'sk-ant-ort01-patched-abcdefghij';
    h.fake.seedTokens(newRefresh, newAccess);
    secretsSeen.add(newAccess).add(newRefresh);
    const patched = await h.call('PATCH', `/v1/credentials/${id}`, {
      body: { accessToken: newAccess, refreshToken: newRefresh, expiresIn: 3600 },
    });
    expect(patched.status).toBe(200);
    expect(patched.json.version).toBe(2);
    const before = h.fake.tokenRequests().length;
    const refreshed = await h.call('POST', `/v1/credentials/${id}/refresh`);
    expect(refreshed.status).toBe(200);
    expect(refreshed.json).toMatchObject({ version: 3, refreshCount: 1, status: 'active' });
    expect(h.fake.tokenRequests()).toHaveLength(before + 1);
    expect(h.fake.tokenRequests().at(-1)!.json).toMatchObject({ grant_type: 'refresh_token', refresh_token: newRefresh });
    const events = await h.call('GET', `/v1/credentials/${id}/events`);
    expect(events.json.events.map((e: { type: string }) => e.type)).toEqual(['refreshed', 'tokens_replaced', 'created']);
    expect(events.text).not.toMatch(/sk-ant-o[ar]t01/);
  });

  it('refreshes on demand a credential whose refresh workflow never started, or ended, without waiting for the reconcile Schedule', async () => {
    // As an import whose workflow start failed: the row is stored, no workflow runs.
    seq++;
    const accessToken = `sk-ant-oat01-unstarted-${seq}-abcdefgh`;
    const refreshToken = `sk-ant-ort01-unstarted-${seq}-abcdefgh`;
    h.fake.seedTokens(refreshToken, accessToken);
    secretsSeen.add(accessToken).add(refreshToken);
    const unstarted = await h.core.store.create({
      provider: 'anthropic',
      authType: 'oauth',
      name: `unstarted-${seq}`,
      secret: { accessToken, refreshToken },
      expiresAt: new Date(Date.now() + 3600_000),
    });
    expect(await h.core.workflows.status(unstarted.id)).toBeNull();
    const first = await h.call('POST', `/v1/credentials/${unstarted.id}/refresh`);
    expect(first.status, first.text).toBe(200);
    expect(first.json).toMatchObject({ version: 2, refreshCount: 1, status: 'active' });
    // Its workflow runs from now on and keeps the credential fresh.
    expect(await h.core.workflows.status(unstarted.id)).not.toBeNull();

    // A workflow that was ended (terminated by an operator): the same.
    const { id } = await importOAuth();
    await env.client.workflow.getHandle(`credential:${id}`).terminate('test: the refresh workflow is gone');
    const again = await h.call('POST', `/v1/credentials/${id}/refresh`);
    expect(again.status, again.text).toBe(200);
    expect(again.json).toMatchObject({ version: 2, refreshCount: 1, status: 'active' });
  });

  it('refuses to refresh an API key', async () => {
    const res = await h.call('POST', '/v1/credentials', {
      body: { provider: 'anthropic', authType: 'api_key', name: 'key-refresh', apiKey: 'sk-ant-api03-refreshme-abcd' },
    });
    expect((await h.call('POST', `/v1/credentials/${res.json.id}/refresh`)).status).toBe(409);
  });

  it('deletes: the workflow stops, the secret is gone, the history stays', async () => {
    const { id } = await importOAuth();
    expect((await h.call('DELETE', `/v1/credentials/${id}`)).status).toBe(204);
    expect((await h.call('GET', `/v1/credentials/${id}`)).status).toBe(404);
    expect(await h.db.query('select 1 from saved_authentications where id = $1', [id])).toHaveLength(0);
    const events = await h.call('GET', `/v1/credentials/${id}/events`);
    expect(events.json.events.map((e: { type: string }) => e.type)).toEqual(['deleted', 'created']);
    await vi.waitFor(async () => {
      const description = await env.client.workflow.getHandle(`credential:${id}`).describe();
      expect(description.status.name).toBe('COMPLETED');
    });
  });
});

describe('OAuth login over HTTP', () => {
  it('starts a PKCE login, completes it with the pasted code, and starts the workflow', async () => {
    const started = await h.call('POST', '/v1/oauth/anthropic/start', { body: { name: 'login-1' } });
    expect(started.status).toBe(201);
    const authorize = new URL(started.json.authorizeUrl);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    const consent = h.fake.authorize(started.json.authorizeUrl);
    secretsSeen.add(consent.code);
    const done = await h.call('POST', '/v1/oauth/anthropic/complete', {
      body: { sessionId: started.json.sessionId, code: consent.pasted },
    });
    expect(done.status).toBe(201);
    expect(done.json).toMatchObject({ provider: 'anthropic', authType: 'oauth', name: 'login-1', status: 'active' });
    for (const t of [...h.fake.issued.accessTokens, ...h.fake.issued.refreshTokens]) secretsSeen.add(t);
    await vi.waitFor(async () => {
      const detail = await h.call('GET', `/v1/credentials/${done.json.id}`);
      expect(detail.json.workflow.phase).toBe('sleeping');
    });
    // Single use: the same session cannot complete twice.
    const again = await h.call('POST', '/v1/oauth/anthropic/complete', {
      body: { sessionId: started.json.sessionId, code: consent.pasted },
    });
    expect(again.status).toBe(404);
    expect(again.json.error.message).toMatch(/start a new login/);
  });

  it('refuses a code from another login and an unknown provider', async () => {
    const a = await h.call('POST', '/v1/oauth/anthropic/start', { body: {} });
    const b = await h.call('POST', '/v1/oauth/anthropic/start', { body: {} });
    const consentB = h.fake.authorize(b.json.authorizeUrl);
    const mismatch = await h.call('POST', '/v1/oauth/anthropic/complete', { body: { sessionId: a.json.sessionId, code: consentB.pasted } });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json.error.message).toMatch(/state mismatch/);
    expect((await h.call('POST', '/v1/oauth/cohere/start', { body: {} })).status).toBe(400);
    expect((await h.call('POST', '/v1/oauth/anthropic/complete', { body: { sessionId: 'x', code: 'y' } })).status).toBe(400);
  });
});

describe('proxy', () => {
  let credential: Awaited<ReturnType<typeof importOAuth>>;
  beforeAll(async () => {
    credential = await importOAuth({ name: 'default' });
  });
  const client = () => new Anthropic({ baseURL: `${h.url}/proxy/anthropic`, apiKey: TEST_API_KEY, maxRetries: 0 });

  it('serves a Claude-compatible client: plain message', async () => {
    const before = h.fake.apiRequests().length;
    const message = await client().messages.create({
      model: 'claude-maestro-test',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(message.type).toBe('message');
    const seen = h.fake.apiRequests().slice(before);
    expect(seen).toHaveLength(1);
    const req = seen[0]!;
    expect(req.headers.authorization).toBe(`Bearer ${credential.accessToken}`);
    expect(req.headers['x-api-key']).toBeUndefined();
    expect(String(req.headers['anthropic-beta'])).toContain('oauth-2025-04-20');
    expect((req.json as { system: { text: string }[] }).system[0]!.text).toBe(CLAUDE_CODE_SYSTEM_PROMPT);
    expect(JSON.stringify(req.headers)).not.toContain(TEST_API_KEY);
  });

  it('serves a Claude-compatible client: streamed message, event by event', async () => {
    const stream = client().messages.stream({ model: 'claude-maestro-test', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types[0]).toBe('message_start');
    expect(types.at(-1)).toBe('message_stop');
    expect(types.filter((t) => t === 'content_block_delta')).toHaveLength(8);
  });

  it('streams server-sent events through as they are sent, and cancels upstream when the client leaves', async () => {
    const body = JSON.stringify({ model: 'm', max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'x' }] });
    const headers = { 'x-api-key': TEST_API_KEY, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' };
    // Chunks arrive separately, as the provider sends them, not as one buffered answer.
    h.fake.setEventIntervalMs(30);
    const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, { method: 'POST', headers, body });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    let chunks = 0;
    let text = '';
    for await (const chunk of res.body!) {
      chunks++;
      text += Buffer.from(chunk).toString();
    }
    expect(text).toContain('event: message_stop');
    expect(chunks).toBeGreaterThan(3);

    // A client that disconnects mid-stream: the proxy closes the upstream call.
    h.fake.setEventIntervalMs(500);
    const abandonedBefore = h.fake.streamsAbandoned();
    const controller = new AbortController();
    const slow = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers,
      body,
      signal: controller.signal,
    });
    const reader = slow.body!.getReader();
    await reader.read();
    controller.abort();
    await vi.waitFor(() => expect(h.fake.streamsAbandoned()).toBe(abandonedBefore + 1), { timeout: 5_000 });
    h.fake.setEventIntervalMs(0);
  });

  it('picks a credential by name with x-maestro-credential', async () => {
    const other = await importOAuth({ name: 'other' });
    const before = h.fake.apiRequests().length;
    const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TEST_API_KEY}`,
        'content-type': 'application/json',
        'anthropic-version': '2023-06-01',
        'x-maestro-credential': 'other',
      },
      body: JSON.stringify({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(res.status).toBe(200);
    expect(h.fake.apiRequests()[before]!.headers.authorization).toBe(`Bearer ${other.accessToken}`);
    const unknown = await h.call('POST', '/proxy/anthropic/v1/messages', { body: {}, headers: { 'x-maestro-credential': 'nobody' } });
    expect(unknown.status).toBe(404);
  });

  it('never leaves the provider host, whatever the path says', async () => {
    const before = h.fake.requests.length;
    // Sent raw: fetch would normalise these paths before they ever left the client.
    const raw = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port: Number(new URL(h.url).port),
            path,
            method: 'POST',
            headers: { 'x-api-key': TEST_API_KEY, 'content-type': 'application/json' },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode!);
          },
        );
        req.on('error', reject);
        req.end('{}');
      });
    for (const path of [
      '/proxy/anthropic/v1/%2e%2e/%2e%2e/admin',
      '/proxy/anthropic/v1/../../admin',
      '/proxy/anthropic//evil.example.com/v1',
      '/proxy/anthropic/v1/..%2f..%2fadmin',
      '/proxy/anthropic/v1%5c..%5cadmin',
      '/proxy/anthropic/http://evil.example.com/v1',
    ]) {
      expect(await raw(path), path).toBe(400);
    }
    expect((await h.call('POST', '/proxy/nope/v1/messages', { body: {} })).status).toBe(404);
    expect(h.fake.requests.length).toBe(before);
  });

  it('rejects a header with CRLF before it reaches the app', async () => {
    const port = Number(new URL(h.url).port);
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(`GET /v1/credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_API_KEY}\r\nX-Evil: a\rInjected: b\r\n\r\n`);
      });
      let data = '';
      socket.on('data', (d) => (data += d));
      socket.on('close', () => resolve(data));
      socket.on('error', () => resolve(data));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
  });

  it('refreshes once for 50 concurrent requests on an expired token, then serves them all', async () => {
    const expired = await importOAuth({ name: 'expired', expiresAt: new Date(Date.now() - 60_000).toISOString() });
    const tokenCallsBefore = h.fake.tokenRequests().length;
    const responses = await Promise.all(
      Array.from({ length: 50 }, () =>
        fetch(`${h.url}/proxy/anthropic/v1/messages`, {
          method: 'POST',
          headers: {
            'x-api-key': TEST_API_KEY,
            'content-type': 'application/json',
            'anthropic-version': '2023-06-01',
            'x-maestro-credential': 'expired',
          },
          body: JSON.stringify({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
        }),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(h.fake.tokenRequests().length - tokenCallsBefore).toBe(1);
    expect(h.fake.tokenRequests().at(-1)!.json).toMatchObject({ refresh_token: expired.refreshToken });
    for (const t of h.fake.issued.accessTokens) secretsSeen.add(t);
  });

  it('on a 401 from the provider refreshes once and retries; a dead refresh token gives a clear 409', async () => {
    const revoked = await importOAuth({ name: 'revoked' });
    await h.call('POST', '/proxy/anthropic/v1/messages', {
      body: { model: 'm', max_tokens: 5, messages: [] },
      headers: { 'x-maestro-credential': 'revoked', 'anthropic-version': '2023-06-01' },
    });
    h.fake.revokeAccessToken(revoked.accessToken);
    const tokenCallsBefore = h.fake.tokenRequests().length;
    const ok = await h.call('POST', '/proxy/anthropic/v1/messages', {
      body: { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] },
      headers: { 'x-maestro-credential': 'revoked', 'anthropic-version': '2023-06-01' },
    });
    expect(ok.status).toBe(200);
    expect(h.fake.tokenRequests().length - tokenCallsBefore).toBe(1);
    for (const t of [...h.fake.issued.accessTokens, ...h.fake.issued.refreshTokens]) secretsSeen.add(t);

    h.fake.revokeAccessToken(h.fake.issued.accessTokens.at(-1)!);
    h.fake.revokeAllRefreshTokens();
    const dead = await h.call('POST', '/proxy/anthropic/v1/messages', {
      body: { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] },
      headers: { 'x-maestro-credential': 'revoked', 'anthropic-version': '2023-06-01' },
    });
    expect(dead.status).toBe(409);
    expect(dead.json.error.type).toBe('reauth_required');
    expect((await h.call('GET', `/v1/credentials/${revoked.id}`)).json.status).toBe('reauth_required');
  });

  it('a chunked request body up to 1 MiB is held like one with a content-length: it gets the Claude Code block and is replayed after a 401', async () => {
    // Chunked, without the Claude Code block: the proxy must add it.
    const heldCall = () =>
      chunkedCall(h.url, 'small-chunks', { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'y'.repeat(200_000) }] });
    const small = await importOAuth({ name: 'small-chunks' });
    const first = await heldCall();
    expect(first.status, await first.text()).toBe(200);
    const sent = h.fake.apiRequests().at(-1)!;
    expect(sent.headers['transfer-encoding']).toBeUndefined();
    expect(Number(sent.headers['content-length'])).toBe(sent.body.length);
    expect((sent.json as { system: Array<{ text: string }> }).system[0]!.text).toBe(CLAUDE_CODE_SYSTEM_PROMPT);
    h.fake.revokeAccessToken(small.accessToken);
    const tokenCallsBefore = h.fake.tokenRequests().length;
    const replayed = await heldCall();
    expect(replayed.status, await replayed.text()).toBe(200); // refreshed once and sent again, not a 503
    expect(h.fake.tokenRequests().length - tokenCallsBefore).toBe(1);
    expect(h.fake.apiRequests().at(-1)!.headers.authorization).toBe(`Bearer ${h.fake.issued.accessTokens.at(-1)}`);
    for (const t of [...h.fake.issued.accessTokens, ...h.fake.issued.refreshTokens]) secretsSeen.add(t);
  });

  it('a 401 on a streamed (chunked, over 1 MiB) request body: refreshed in the background, the client told to resend (503 + Retry-After), the next call works', async () => {
    // A chunked body over 1 MiB streams through: the proxy cannot replay it, nor rewrite it, so it
    // carries the Claude Code block itself.
    const system = [{ type: 'text', text: CLAUDE_CODE_SYSTEM_PROMPT }];
    const streamedCall = () =>
      chunkedCall(h.url, 'chunked', { model: 'm', max_tokens: 5, system, messages: [{ role: 'user', content: 'x'.repeat(1_100_000) }] });
    const chunked = await importOAuth({ name: 'chunked' });
    expect((await streamedCall()).status).toBe(200);
    h.fake.revokeAccessToken(chunked.accessToken);
    const tokenCallsBefore = h.fake.tokenRequests().length;
    const counted = async (status: string) =>
      Number(
        new RegExp(`maestro_proxy_requests_total\\{provider="anthropic",status="${status}"\\} (\\d+)`).exec(
          await (await fetch(`${h.url}/metrics`)).text(),
        )?.[1] ?? 0,
      );
    const [errorsBefore, refusalsBefore] = [await counted('error'), await counted('401')];
    const refused = await streamedCall();
    expect(refused.status).toBe(503);
    // Counted once, as the error the client got (not also as the provider's 401).
    expect([(await counted('error')) - errorsBefore, (await counted('401')) - refusalsBefore]).toEqual([1, 0]);
    expect(refused.headers.get('retry-after')).toBe('2');
    const body = (await refused.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('service_unavailable');
    expect(body.error.message).toMatch(/refused the access token of credential "chunked".*cannot be replayed.*send the request again/);
    await vi.waitFor(async () => expect((await h.call('GET', `/v1/credentials/${chunked.id}`)).json.version).toBe(2), { timeout: 20_000 });
    expect(h.fake.tokenRequests().length - tokenCallsBefore).toBe(1);
    const again = await streamedCall();
    expect(again.status).toBe(200);
    expect(h.fake.apiRequests().at(-1)!.headers.authorization).toBe(`Bearer ${h.fake.issued.accessTokens.at(-1)}`);
    expect(h.fake.tokenRequests().length - tokenCallsBefore).toBe(1);
    for (const t of [...h.fake.issued.accessTokens, ...h.fake.issued.refreshTokens]) secretsSeen.add(t);
  });

  it('runs a durable message call through sendMessageWorkflow', async () => {
    const res = await h.call('POST', `/v1/credentials/${credential.id}/messages`, {
      body: {
        body: { model: 'claude-maestro-test', max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] },
        headers: { 'anthropic-version': '2023-06-01' },
      },
    });
    expect(res.status).toBe(200);
    expect(res.json.type).toBe('message');
    const bad = await h.call('POST', `/v1/credentials/${credential.id}/messages`, { body: { path: 'http://evil.example.com/' } });
    expect(bad.status).toBe(400);
    // A header value the HTTP client would refuse is the caller's error, answered at once (not retried into a 502).
    const calls = h.fake.apiRequests().length;
    const badHeader = await h.call('POST', `/v1/credentials/${credential.id}/messages`, {
      body: { body: { model: 'claude-maestro-test', max_tokens: 16, messages: [] }, headers: { 'anthropic-beta': 'a\u0001b' } },
    });
    expect(badHeader.status).toBe(400);
    expect(badHeader.json.error.message).toMatch(/header values must be printable/);
    expect(h.fake.apiRequests().length).toBe(calls);
  });

  it('refuses a PATCH whose expiry leaves the years 0001..9999, and the workflow keeps running', async () => {
    const { id } = await importOAuth();
    const res = await h.call('PATCH', `/v1/credentials/${id}`, {
      body: { accessToken: 'sk-ant-oat01-later-abcdefgh', expiresAt: '9999-12-31T23:00:00-14:00' },
    });
    expect(res.status).toBe(400);
    let shown = (await h.call('GET', `/v1/credentials/${id}`)).json;
    for (let i = 0; i < 50 && shown.workflow?.phase !== 'sleeping'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      shown = (await h.call('GET', `/v1/credentials/${id}`)).json;
    }
    expect(shown).toMatchObject({ version: 1, workflow: { phase: 'sleeping' } });
    expect((await h.call('POST', `/v1/credentials/${id}/refresh`)).json).toMatchObject({ version: 2, refreshCount: 1 });
  });
});

describe('login rate limit', () => {
  it('answers 429 with a clear message after too many login attempts from one address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) statuses.push((await h.call('POST', '/v1/oauth/anthropic/start', { body: {} })).status);
    expect(statuses).toContain(429);
    const limited = await h.call('POST', '/v1/oauth/anthropic/start', { body: {} });
    expect(limited.status).toBe(429);
    expect(limited.json.error).toEqual({ type: 'rate_limited', message: 'too many login attempts; wait a minute' });
    // Other routes are not limited.
    expect((await h.call('GET', '/v1/credentials')).status).toBe(200);
  });
});

describe('observability', () => {
  it('exposes Prometheus metrics and an OpenAPI document, without secrets', async () => {
    const metrics = await fetch(`${h.url}/metrics`);
    const text = await metrics.text();
    expect(text).toMatch(/maestro_proxy_requests_total\{provider="anthropic",status="200"\} \d+/);
    expect(text).toMatch(/maestro_credentials\{provider="anthropic",auth_type="oauth",status="active"\} \d+/);
    expect(text).toMatch(/maestro_proxy_added_latency_seconds_bucket/);
    const openapi = await fetch(`${h.url}/openapi.json`);
    const doc = (await openapi.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/credentials', '/v1/oauth/{provider}/complete', '/proxy/{provider}/{path}']),
    );
    for (const secret of secretsSeen) {
      expect(text).not.toContain(secret);
      expect(JSON.stringify(doc)).not.toContain(secret);
    }
  });

  it('documents every field a credential response carries, and serves the committed document', async () => {
    const { id } = await importOAuth();
    const doc = (await (await fetch(`${h.url}/openapi.json`)).json()) as {
      components: { schemas: Record<string, { properties: object }> };
    };
    const stored = await h.core.store.get(id); // what the service hands the route, before shaping
    const answer = await h.call('GET', `/v1/credentials/${id}`);
    expect(Object.keys(answer.json).sort()).toEqual([...Object.keys(stored), 'workflow', 'rateLimit'].sort());
    expect(Object.keys(doc.components.schemas.CredentialWithWorkflow!.properties).sort()).toEqual(Object.keys(answer.json).sort());
    expect(Object.keys(doc.components.schemas.Credential!.properties).sort()).toEqual(Object.keys(stored).sort());
    expect(doc).toEqual(JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8')));
  });

  it('logs one line per request: method, path without the query, status, key id; a token in the path is redacted', async () => {
    const token = `sk-ant-oat01-${randomBytes(24).toString('base64url')}`;
    secretsSeen.add(token);
    const answer = await h.call('GET', `/v1/credentials/${token}?refresh_token=${token}`);
    expect(answer.status).toBeGreaterThanOrEqual(400);
    const mine = (l: string) => l.includes('"request completed"') && l.includes('/v1/credentials/sk-ant-oat01-[REDACTED]"');
    await until(() => h.logLines.some(mine), { what: 'the request line' });
    const line = JSON.parse(h.logLines.filter(mine).at(-1)!);
    expect(line).toMatchObject({
      level: 30,
      req: { method: 'GET', url: '/v1/credentials/sk-ant-oat01-[REDACTED]' },
      res: { statusCode: answer.status },
    });
    expect(typeof line.keyId).toBe('string');
    expect(JSON.stringify(line)).not.toContain(token);
  });

  it('wrote no secret to any log line during this file', () => {
    expect(h.logLines.length).toBeGreaterThan(10);
    const all = h.logLines.join('\n');
    for (const t of [...h.fake.issued.accessTokens, ...h.fake.issued.refreshTokens]) secretsSeen.add(t);
    for (const secret of secretsSeen) expect(all).not.toContain(secret);
  });
});
