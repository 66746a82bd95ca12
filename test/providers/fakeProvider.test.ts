// The fake provider is shared by every suite, so its own strictness is tested here: a wrong wire
// format must be refused, or the suites that rely on it would pass against a broken client.
import { createHash } from 'node:crypto';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { ANTHROPIC_DEFAULTS, CLAUDE_CODE_SYSTEM_PROMPT } from '../../src/providers/anthropic.js';
import { GEMINI_DEFAULTS } from '../../src/providers/gemini.js';
import { OPENAI_DEFAULTS } from '../../src/providers/openai.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProvider.js';
import { httpRequest } from '../support/http.js';

const post = (url: string, body: string, headers: Record<string, string>) => httpRequest(url, { method: 'POST', body, headers });

const json = (o: unknown) => JSON.stringify(o);
const form = (o: Record<string, string>) => new URLSearchParams(o).toString();
const JSON_CT = { 'content-type': 'application/json' };
const FORM_CT = { 'content-type': 'application/x-www-form-urlencoded' };

describe('fake provider: token endpoint strictness', () => {
  let fake: FakeProvider | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it('anthropic: refresh must be JSON with exactly grant_type, refresh_token, client_id', async () => {
    fake = await startFakeProvider({ provider: 'anthropic', initialRefreshToken: 'rt-1' });
    const good = { grant_type: 'refresh_token', refresh_token: 'rt-1', client_id: ANTHROPIC_DEFAULTS.clientId };

    const asForm = await post(fake.tokenUrl, form(good), FORM_CT);
    expect(asForm.status).toBe(400);
    expect(asForm.json).toMatchObject({ error: 'invalid_request' });
    expect(String(asForm.json!.error_description)).toContain('expects application/json');

    const extra = await post(fake.tokenUrl, json({ ...good, scope: 'x' }), JSON_CT);
    expect(extra.status).toBe(400);
    expect(String(extra.json!.error_description)).toContain('unexpected scope');

    const missing = await post(fake.tokenUrl, json({ grant_type: 'refresh_token', refresh_token: 'rt-1' }), JSON_CT);
    expect(missing.status).toBe(400);
    expect(String(missing.json!.error_description)).toContain('missing client_id');

    const wrongClient = await post(fake.tokenUrl, json({ ...good, client_id: 'someone-else' }), JSON_CT);
    expect(wrongClient.status).toBe(401);
    expect(wrongClient.json).toMatchObject({ error: 'invalid_client' });

    const getMethod = await request(fake.tokenUrl, { method: 'GET' });
    expect(getMethod.statusCode).toBe(405);
    await getMethod.body.dump();

    // None of the refused requests spent the token.
    const ok = await post(fake.tokenUrl, json(good), JSON_CT);
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({
      token_type: 'Bearer',
      expires_in: 3600,
      access_token: fake.issued.accessTokens[0],
      refresh_token: fake.issued.refreshTokens[0],
    });
    expect(fake.tokenRequests()).toHaveLength(6);
  });

  it('openai: code exchange must be a form, refresh must be JSON', async () => {
    fake = await startFakeProvider({ provider: 'openai', initialRefreshToken: 'rt-o' });
    const refresh = { client_id: OPENAI_DEFAULTS.clientId, grant_type: 'refresh_token', refresh_token: 'rt-o' };
    expect((await post(fake.tokenUrl, form(refresh), FORM_CT)).status).toBe(400);

    const exchange = {
      grant_type: 'authorization_code',
      code: 'c',
      redirect_uri: OPENAI_DEFAULTS.redirectUri,
      client_id: OPENAI_DEFAULTS.clientId,
      code_verifier: 'v',
    };
    const asJson = await post(fake.tokenUrl, json(exchange), JSON_CT);
    expect(asJson.status).toBe(400);
    expect(String(asJson.json!.error_description)).toContain('expects application/x-www-form-urlencoded');

    const unknownCode = await post(fake.tokenUrl, form(exchange), FORM_CT);
    expect(unknownCode.status).toBe(400);
    expect(unknownCode.json).toMatchObject({ error: 'invalid_grant' });

    expect((await post(fake.tokenUrl, json(refresh), JSON_CT)).status).toBe(200);
  });

  it('gemini: the client secret is required and checked', async () => {
    fake = await startFakeProvider({ provider: 'gemini', initialRefreshToken: '1//g' });
    const base = { grant_type: 'refresh_token', refresh_token: '1//g', client_id: GEMINI_DEFAULTS.clientId };
    expect((await post(fake.tokenUrl, form(base), FORM_CT)).status).toBe(400);
    expect((await post(fake.tokenUrl, form({ ...base, client_secret: 'nope' }), FORM_CT)).status).toBe(401);
    const ok = await post(fake.tokenUrl, form({ ...base, client_secret: GEMINI_DEFAULTS.clientSecret }), FORM_CT);
    expect(ok.status).toBe(200);
    expect(ok.json!.refresh_token).toBeUndefined();
  });

  it('the code exchange checks the PKCE verifier against the challenge from the authorize step', async () => {
    fake = await startFakeProvider({ provider: 'anthropic' });
    const verifier = 'v'.repeat(43);
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const authorizeUrl = new URL(fake.authorizeUrl);
    for (const [k, v] of Object.entries({
      code: 'true',
      client_id: ANTHROPIC_DEFAULTS.clientId,
      response_type: 'code',
      redirect_uri: ANTHROPIC_DEFAULTS.redirectUri,
      scope: ANTHROPIC_DEFAULTS.scopes,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 'st',
    })) {
      authorizeUrl.searchParams.set(k, v);
    }

    // The browser-style path: GET authorize redirects to the redirect URI with code and state.
    const redirect = await request(authorizeUrl, { method: 'GET' });
    expect(redirect.statusCode).toBe(302);
    await redirect.body.dump();
    const location = new URL(String(redirect.headers.location));
    expect(location.origin + location.pathname).toBe(ANTHROPIC_DEFAULTS.redirectUri);
    expect(location.searchParams.get('state')).toBe('st');
    const code = location.searchParams.get('code')!;

    const body = {
      grant_type: 'authorization_code',
      code,
      state: 'st',
      client_id: ANTHROPIC_DEFAULTS.clientId,
      redirect_uri: ANTHROPIC_DEFAULTS.redirectUri,
    };
    const wrong = await post(fake.tokenUrl, json({ ...body, code_verifier: 'w'.repeat(43) }), JSON_CT);
    expect(wrong.status).toBe(400);
    expect(String(wrong.json!.error_description)).toContain('code_verifier');
    const right = await post(fake.tokenUrl, json({ ...body, code_verifier: verifier }), JSON_CT);
    expect(right.status).toBe(200);

    expect(() => fake!.authorize(authorizeUrl.toString().replace('code_challenge_method=S256', 'code_challenge_method=plain'))).toThrow(
      /code_challenge_method/,
    );
  });

  it('scripted failures are consumed in order, then normal service resumes', async () => {
    fake = await startFakeProvider({ provider: 'anthropic', initialRefreshToken: 'rt-s' });
    fake.failNextToken([{ status: 503 }, { status: 429, headers: { 'retry-after': '2' } }]);
    const body = json({ grant_type: 'refresh_token', refresh_token: 'rt-s', client_id: ANTHROPIC_DEFAULTS.clientId });
    expect((await post(fake.tokenUrl, body, JSON_CT)).status).toBe(503);
    const limited = await post(fake.tokenUrl, body, JSON_CT);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('2');
    expect((await post(fake.tokenUrl, body, JSON_CT)).status).toBe(200);
  });
});

describe('fake provider: API endpoints', () => {
  let fake: FakeProvider | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it('anthropic: 401 without valid auth; expired and revoked access tokens refused; oauth needs the beta', async () => {
    fake = await startFakeProvider({ provider: 'anthropic', accessTokenTtlSec: 3600 });
    fake.seedTokens('rt', 'at-valid');
    const url = `${fake.url}/v1/messages`;
    const body = json({ system: [{ type: 'text', text: CLAUDE_CODE_SYSTEM_PROMPT }], messages: [] });
    const v = { 'anthropic-version': '2023-06-01', ...JSON_CT };

    expect((await post(url, body, v)).status).toBe(401);
    expect((await post(url, body, { ...v, 'x-api-key': 'wrong' })).status).toBe(401);
    const noBeta = await post(url, body, { ...v, authorization: 'Bearer at-valid' });
    expect(noBeta.status).toBe(401);
    expect(noBeta.json).toEqual({
      type: 'error',
      error: { type: 'authentication_error', message: 'OAuth authentication is currently not supported.' },
    });
    const ok = await post(url, body, { ...v, authorization: 'Bearer at-valid', 'anthropic-beta': 'oauth-2025-04-20' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-fake-auth')).toBe('oauth');

    fake.revokeAccessToken('at-valid');
    expect(fake.isAccessTokenValid('at-valid')).toBe(false);
    expect((await post(url, body, { ...v, authorization: 'Bearer at-valid', 'anthropic-beta': 'oauth-2025-04-20' })).status).toBe(401);

    const noVersion = await post(url, body, { ...JSON_CT, 'x-api-key': fake.apiKey });
    expect(noVersion.status).toBe(400);
    const both = await post(url, body, { ...v, 'x-api-key': fake.apiKey, authorization: 'Bearer x' });
    expect(both.status).toBe(400);
  });

  it('short-lived tokens expire', async () => {
    fake = await startFakeProvider({ provider: 'gemini', accessTokenTtlSec: 0 });
    fake.seedTokens('1//x', 'ya29.short');
    expect(fake.isAccessTokenValid('ya29.short')).toBe(false);
  });

  it('refuses headers that must never reach a provider', async () => {
    fake = await startFakeProvider({ provider: 'openai' });
    for (const header of ['x-maestro-credential', 'cookie', 'proxy-authorization']) {
      const res = await post(`${fake.url}/v1/chat/completions`, '{}', {
        ...JSON_CT,
        authorization: `Bearer ${fake.apiKey}`,
        [header]: 'x',
      });
      expect(res.status).toBe(400);
      expect(String(res.json!.error_description)).toContain(header);
    }
  });

  it('openai streams N chunks then [DONE]; gemini streams N SSE chunks with alt=sse', async () => {
    fake = await startFakeProvider({ provider: 'openai', eventCount: 3 });
    const o = await request(`${fake.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...JSON_CT, authorization: `Bearer ${fake.apiKey}` },
      body: json({ stream: true, messages: [] }),
    });
    const oEvents = (await o.body.text()).split('\n\n').filter(Boolean);
    expect(oEvents).toHaveLength(4);
    expect(oEvents.at(-1)).toBe('data: [DONE]');
    await fake.close();

    fake = await startFakeProvider({ provider: 'gemini', eventCount: 3 });
    const g = await request(`${fake.url}/v1beta/models/gemini-x:streamGenerateContent?alt=sse`, {
      method: 'POST',
      headers: { ...JSON_CT, 'x-goog-api-key': fake.apiKey },
      body: '{}',
    });
    expect(g.headers['content-type']).toMatch(/^text\/event-stream/);
    const gEvents = (await g.body.text()).split('\n\n').filter(Boolean);
    expect(gEvents).toHaveLength(3);
    expect(gEvents.every((e) => e.startsWith('data: {'))).toBe(true);
    const keyInQuery = await post(`${fake.url}/v1beta/models/gemini-x:generateContent?key=${fake.apiKey}`, '{}', JSON_CT);
    expect(keyInQuery.status).toBe(400);
  });

  it('scripted API failures come first (for retry tests)', async () => {
    fake = await startFakeProvider({ provider: 'anthropic' });
    fake.failNextApi([{ status: 529, body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } }]);
    const h = { ...JSON_CT, 'x-api-key': fake.apiKey, 'anthropic-version': '2023-06-01' };
    expect((await post(`${fake.url}/v1/messages`, '{}', h)).status).toBe(529);
    expect((await post(`${fake.url}/v1/messages`, '{}', h)).status).toBe(200);
  });

  it('close() does not hang on a delayed request', async () => {
    fake = await startFakeProvider({ provider: 'anthropic' });
    fake.setTokenDelayMs(60_000);
    const pending = request(fake.tokenUrl, { method: 'POST', body: '{}', headers: JSON_CT }).catch((err: unknown) => err);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await fake.close();
    fake = undefined;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await pending).toBeInstanceOf(Error);
  });
});
