import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLogin } from '../../src/auth/pkce.js';
import { exchangeCode, refreshAccessToken } from '../../src/auth/tokenClient.js';
import { MalformedTokenResponseError, MisconfiguredError, ProviderUnavailableError, ReauthRequiredError } from '../../src/errors.js';
import { ANTHROPIC_DEFAULTS } from '../../src/providers/anthropic.js';
import { GEMINI_DEFAULTS } from '../../src/providers/gemini.js';
import { OPENAI_AUTH_CLAIM, OPENAI_DEFAULTS } from '../../src/providers/openai.js';
import { defineProvider } from '../../src/providers/registry.js';
import type { ProviderDefinition } from '../../src/providers/types.js';
import { fakeJwt, startFakeProvider, type FakeProvider } from '../support/fakeProvider.js';

/** Every error message and stack produced in this file, checked for secrets at the end. */
const thrown: Error[] = [];
/** Every secret the code under test handled in this file. */
const secrets = new Set<string>();

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    thrown.push(err as Error);
    return err as Error;
  }
  throw new Error('expected a failure');
}

async function login(fake: FakeProvider, def: ProviderDefinition) {
  const start = startLogin(def);
  const consent = fake.authorize(start.authorizeUrl);
  secrets.add(start.verifier).add(consent.code);
  return { start, consent };
}

describe('code exchange: exact wire format per provider', () => {
  let fake: FakeProvider | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it('Anthropic: JSON body with code, state, client id, redirect and verifier', async () => {
    fake = await startFakeProvider({ provider: 'anthropic' });
    const def = defineProvider('anthropic', fake.overrides);
    const { start, consent } = await login(fake, def);
    const before = Date.now();
    const tokens = await exchangeCode(def, {
      code: consent.code,
      verifier: start.verifier,
      state: start.state,
      redirectUri: start.redirectUri,
    });

    const [req] = fake.tokenRequests();
    expect(fake.tokenRequests()).toHaveLength(1);
    expect(req!.method).toBe('POST');
    expect(req!.path).toBe('/v1/oauth/token');
    expect(req!.search).toBe('');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.headers.accept).toBe('application/json');
    expect(req!.headers['user-agent']).toBe(ANTHROPIC_DEFAULTS.userAgent);
    expect(req!.json).toEqual({
      grant_type: 'authorization_code',
      code: consent.code,
      state: start.state,
      client_id: ANTHROPIC_DEFAULTS.clientId,
      redirect_uri: ANTHROPIC_DEFAULTS.redirectUri,
      code_verifier: start.verifier,
    });
    expect(Object.keys(req!.json as object)).toEqual(['grant_type', 'code', 'state', 'client_id', 'redirect_uri', 'code_verifier']);

    expect(tokens.accessToken).toBe(fake.issued.accessTokens[0]);
    expect(tokens.refreshToken).toBe(fake.issued.refreshTokens[0]);
    expect(tokens.accountId).toBe('account-fake');
    expect(tokens.expiresAt!.getTime()).toBeGreaterThanOrEqual(before + 3600_000);
    expect(tokens.expiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + 3600_000);
  });

  it('OpenAI: form body; ChatGPT account id taken from the id token claims', async () => {
    fake = await startFakeProvider({ provider: 'openai', accountId: 'acct_123' });
    const def = defineProvider('openai', fake.overrides);
    const { start, consent } = await login(fake, def);
    const tokens = await exchangeCode(def, {
      code: consent.code,
      verifier: start.verifier,
      state: start.state,
      redirectUri: start.redirectUri,
    });

    const [req] = fake.tokenRequests();
    expect(req!.method).toBe('POST');
    expect(req!.path).toBe('/oauth/token');
    expect(req!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req!.body.toString()).toBe(
      new URLSearchParams({
        grant_type: 'authorization_code',
        code: consent.code,
        redirect_uri: OPENAI_DEFAULTS.redirectUri,
        client_id: OPENAI_DEFAULTS.clientId,
        code_verifier: start.verifier,
      }).toString(),
    );
    expect(tokens.accountId).toBe('acct_123');
    expect(tokens.idToken).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(tokens.refreshToken).toBe(fake.issued.refreshTokens[0]);
  });

  it('Gemini: form body including the client secret', async () => {
    fake = await startFakeProvider({ provider: 'gemini' });
    const def = defineProvider('gemini', fake.overrides);
    const { start, consent } = await login(fake, def);
    const tokens = await exchangeCode(def, {
      code: consent.code,
      verifier: start.verifier,
      state: start.state,
      redirectUri: start.redirectUri,
    });

    const [req] = fake.tokenRequests();
    expect(req!.path).toBe('/token');
    expect(req!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req!.form).toEqual({
      grant_type: 'authorization_code',
      code: consent.code,
      redirect_uri: GEMINI_DEFAULTS.redirectUri,
      client_id: GEMINI_DEFAULTS.clientId,
      client_secret: GEMINI_DEFAULTS.clientSecret,
      code_verifier: start.verifier,
    });
    expect(tokens.refreshToken).toBe(fake.issued.refreshTokens[0]);
    expect(tokens.accountId).toBeUndefined();
  });

  it('a wrong verifier, a reused code or a wrong state is a reauth (the login must start again)', async () => {
    fake = await startFakeProvider({ provider: 'anthropic' });
    const def = defineProvider('anthropic', fake.overrides);
    const { start, consent } = await login(fake, def);
    const input = { code: consent.code, verifier: start.verifier, state: start.state, redirectUri: start.redirectUri };
    const wrongVerifier = startLogin(def).verifier;
    secrets.add(wrongVerifier);
    expect(await failure(exchangeCode(def, { ...input, verifier: wrongVerifier }))).toBeInstanceOf(ReauthRequiredError);
    await exchangeCode(def, input);
    expect(await failure(exchangeCode(def, input))).toBeInstanceOf(ReauthRequiredError);

    const second = await login(fake, def);
    expect(
      await failure(
        exchangeCode(def, {
          code: second.consent.code,
          verifier: second.start.verifier,
          state: 'other-state',
          redirectUri: second.start.redirectUri,
        }),
      ),
    ).toBeInstanceOf(ReauthRequiredError);
  });
});

describe('refresh: exact wire format, rotation and non-rotation', () => {
  let fake: FakeProvider | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it('Anthropic: JSON {grant_type, refresh_token, client_id}; rotates; the spent token is refused as reused', async () => {
    fake = await startFakeProvider({ provider: 'anthropic', initialRefreshToken: 'sk-ant-ort01-initial' });
    secrets.add('sk-ant-ort01-initial');
    const def = defineProvider('anthropic', fake.overrides);

    const first = await refreshAccessToken(def, 'sk-ant-ort01-initial');
    const [req] = fake.tokenRequests();
    expect(req!.method).toBe('POST');
    expect(req!.path).toBe('/v1/oauth/token');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.json).toEqual({
      grant_type: 'refresh_token',
      refresh_token: 'sk-ant-ort01-initial',
      client_id: ANTHROPIC_DEFAULTS.clientId,
    });
    expect(Object.keys(req!.json as object)).toEqual(['grant_type', 'refresh_token', 'client_id']);
    expect(first.accessToken).toBe(fake.issued.accessTokens[0]);
    expect(first.refreshToken).toBe(fake.issued.refreshTokens[0]);
    expect(first.refreshToken).not.toBe('sk-ant-ort01-initial');

    const second = await refreshAccessToken(def, first.refreshToken!);
    expect(second.refreshToken).toBe(fake.issued.refreshTokens[1]);
    expect(second.accessToken).not.toBe(first.accessToken);
    secrets.add(first.refreshToken!).add(second.refreshToken!).add(first.accessToken).add(second.accessToken);

    const reused = await failure(refreshAccessToken(def, first.refreshToken!));
    expect(reused).toBeInstanceOf(ReauthRequiredError);
    expect(reused.message).toContain('invalid_grant');
    expect(fake.reusedRefreshTokens).toEqual([first.refreshToken]);
  });

  it('OpenAI: JSON {client_id, grant_type, refresh_token}; rotates; reuse answers refresh_token_reused → reauth', async () => {
    fake = await startFakeProvider({ provider: 'openai', initialRefreshToken: 'rt_initial_openai', accountId: 'acct_xyz' });
    secrets.add('rt_initial_openai');
    const def = defineProvider('openai', fake.overrides);

    const first = await refreshAccessToken(def, 'rt_initial_openai');
    const [req] = fake.tokenRequests();
    expect(req!.path).toBe('/oauth/token');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.json).toEqual({ client_id: OPENAI_DEFAULTS.clientId, grant_type: 'refresh_token', refresh_token: 'rt_initial_openai' });
    expect(first.refreshToken).toBe(fake.issued.refreshTokens[0]);
    expect(first.accountId).toBe('acct_xyz');
    secrets.add(first.refreshToken!).add(first.accessToken);

    const reused = await failure(refreshAccessToken(def, 'rt_initial_openai'));
    expect(reused).toBeInstanceOf(ReauthRequiredError);
    expect(reused.message).toContain('refresh_token_reused');
    expect(fake.reusedRefreshTokens).toEqual(['rt_initial_openai']);
  });

  it('Gemini: form with the client secret; no new refresh token → refreshToken undefined and the old one keeps working', async () => {
    fake = await startFakeProvider({ provider: 'gemini', initialRefreshToken: '1//gemini-initial' });
    secrets.add('1//gemini-initial');
    const def = defineProvider('gemini', fake.overrides);

    const first = await refreshAccessToken(def, '1//gemini-initial');
    const [req] = fake.tokenRequests();
    expect(req!.path).toBe('/token');
    expect(req!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req!.body.toString()).toBe(
      new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: '1//gemini-initial',
        client_id: GEMINI_DEFAULTS.clientId,
        client_secret: GEMINI_DEFAULTS.clientSecret,
      }).toString(),
    );
    expect(first.refreshToken).toBeUndefined();
    expect(first.accessToken).toBe(fake.issued.accessTokens[0]);

    const second = await refreshAccessToken(def, '1//gemini-initial');
    expect(second.refreshToken).toBeUndefined();
    expect(second.accessToken).not.toBe(first.accessToken);
    expect(fake.reusedRefreshTokens).toEqual([]);
    expect(fake.issued.refreshTokens).toEqual([]);
  });

  it('a rotating fake told not to rotate behaves like Gemini', async () => {
    fake = await startFakeProvider({ provider: 'anthropic', rotateRefreshTokens: false, initialRefreshToken: 'sk-ant-ort01-keep' });
    const def = defineProvider('anthropic', fake.overrides);
    expect((await refreshAccessToken(def, 'sk-ant-ort01-keep')).refreshToken).toBeUndefined();
    expect((await refreshAccessToken(def, 'sk-ant-ort01-keep')).refreshToken).toBeUndefined();
  });

  it('expiry from expires_in, else from the JWT exp claim, else null', async () => {
    fake = await startFakeProvider({ provider: 'openai' });
    const def = defineProvider('openai', fake.overrides);
    const exp = Math.floor(Date.now() / 1000) + 7200;
    fake.failNextToken([
      { status: 200, body: { access_token: 'opaque-token', expires_in: '120' } },
      { status: 200, body: { access_token: fakeJwt({ exp, [OPENAI_AUTH_CLAIM]: { chatgpt_account_id: 'acct_from_access' } }) } },
      { status: 200, body: { access_token: 'opaque-token' } },
    ]);
    const before = Date.now();
    const a = await refreshAccessToken(def, 'rt_x');
    expect(a.expiresAt!.getTime()).toBeGreaterThanOrEqual(before + 120_000);
    expect(a.expiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + 120_000);
    const b = await refreshAccessToken(def, 'rt_x');
    expect(b.expiresAt!.getTime()).toBe(exp * 1000);
    expect(b.accountId).toBe('acct_from_access');
    const c = await refreshAccessToken(def, 'rt_x');
    expect(c.expiresAt).toBeNull();
    expect(c.refreshToken).toBeUndefined();
  });
});

describe('token endpoint failures, classified', () => {
  let fake: FakeProvider;
  let def: ProviderDefinition;
  const rt = 'sk-ant-ort01-SECRETrefreshTOKEN0123456789';
  beforeAll(async () => {
    fake = await startFakeProvider({ provider: 'anthropic' });
    def = defineProvider('anthropic', fake.overrides);
    secrets.add(rt);
  });
  afterAll(() => fake.close());
  afterEach(() => fake.setTokenDelayMs(0));

  it('invalid_grant (unknown refresh token) → ReauthRequiredError', async () => {
    const err = await failure(refreshAccessToken(def, rt));
    expect(err).toBeInstanceOf(ReauthRequiredError);
    expect(err.message).toMatch(/400 invalid_grant/);
  });

  it('revoked refresh token → ReauthRequiredError', async () => {
    fake.seedTokens('sk-ant-ort01-to-revoke');
    fake.revokeAllRefreshTokens();
    expect(await failure(refreshAccessToken(def, 'sk-ant-ort01-to-revoke'))).toBeInstanceOf(ReauthRequiredError);
  });

  it('401 saying the grant is bad (no OAuth error code) → ReauthRequiredError', async () => {
    fake.failNextToken([
      { status: 401, body: { type: 'error', error: { type: 'authentication_error', message: 'Invalid refresh token' } } },
      { status: 400, body: { error: 'invalid_request', error_description: 'Refresh token not found or invalid' } },
    ]);
    expect(await failure(refreshAccessToken(def, rt))).toBeInstanceOf(ReauthRequiredError);
    expect(await failure(refreshAccessToken(def, rt))).toBeInstanceOf(ReauthRequiredError);
  });

  it('invalid_client → MisconfiguredError; an unexplained 400 → MisconfiguredError', async () => {
    fake.failNextToken([
      { status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed' } },
      { status: 400, body: { error: 'invalid_request', error_description: 'Missing parameter' } },
    ]);
    expect(await failure(refreshAccessToken(def, rt))).toBeInstanceOf(MisconfiguredError);
    expect(await failure(refreshAccessToken(def, rt))).toBeInstanceOf(MisconfiguredError);
  });

  it('429 with Retry-After seconds → ProviderUnavailableError with retryAfterSeconds', async () => {
    fake.failNextToken([
      { status: 429, body: { error: { type: 'rate_limit_error', message: 'slow down' } }, headers: { 'retry-after': '17' } },
    ]);
    const err = await failure(refreshAccessToken(def, rt));
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect(err).not.toBeInstanceOf(ReauthRequiredError);
    expect((err as ProviderUnavailableError).retryAfterSeconds).toBe(17);
    expect(err.message).toContain('429');
  });

  it('429 with Retry-After as an HTTP date', async () => {
    const at = new Date(Date.now() + 30_000);
    fake.failNextToken([{ status: 429, headers: { 'retry-after': at.toUTCString() } }]);
    const err = (await failure(refreshAccessToken(def, rt))) as ProviderUnavailableError;
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect(err.retryAfterSeconds).toBeGreaterThan(27);
    expect(err.retryAfterSeconds).toBeLessThanOrEqual(30);
  });

  it('500 → ProviderUnavailableError without a retry hint; 503 with Retry-After carries it; 529 too', async () => {
    fake.failNextToken([
      { status: 500, body: '<html>Internal error</html>', headers: { 'content-type': 'text/html' } },
      { status: 503, body: { error: 'temporarily_unavailable' }, headers: { 'retry-after': '5' } },
      { status: 529, body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } },
    ]);
    const e500 = (await failure(refreshAccessToken(def, rt))) as ProviderUnavailableError;
    expect(e500).toBeInstanceOf(ProviderUnavailableError);
    expect(e500).not.toBeInstanceOf(MalformedTokenResponseError);
    expect(e500.retryAfterSeconds).toBeUndefined();
    const e503 = (await failure(refreshAccessToken(def, rt))) as ProviderUnavailableError;
    expect(e503).toBeInstanceOf(ProviderUnavailableError);
    expect(e503.retryAfterSeconds).toBe(5);
    expect(await failure(refreshAccessToken(def, rt))).toBeInstanceOf(ProviderUnavailableError);
  });

  it('timeout → ProviderUnavailableError, promptly', async () => {
    fake.setTokenDelayMs(5_000);
    const started = Date.now();
    const err = await failure(refreshAccessToken(def, rt, { timeoutMs: 200 }));
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect(err.message).toContain('timed out');
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("a caller's abort is passed through, not turned into a retryable error", async () => {
    fake.setTokenDelayMs(5_000);
    const controller = new AbortController();
    const reason = new Error('activity cancelled');
    setTimeout(() => controller.abort(reason), 50);
    await expect(refreshAccessToken(def, rt, { signal: controller.signal })).rejects.toBe(reason);
  });

  it('malformed answers → MalformedTokenResponseError (a retryable ProviderUnavailableError)', async () => {
    fake.failNextToken([
      { status: 200, body: '{"access_token": "abc", ', headers: { 'content-type': 'application/json' } },
      { status: 200, body: { token_type: 'Bearer', expires_in: 3600 } },
      { status: 200, body: '<html>login</html>', headers: { 'content-type': 'text/html' } },
      { status: 200, body: { access_token: 42 } },
      {
        status: 200,
        body: Buffer.from('definitely not gzip'),
        headers: { 'content-encoding': 'gzip', 'content-type': 'application/json' },
      },
    ]);
    for (let i = 0; i < 5; i++) {
      const err = await failure(refreshAccessToken(def, rt));
      expect(err).toBeInstanceOf(MalformedTokenResponseError);
      expect(err).toBeInstanceOf(ProviderUnavailableError);
    }
  });

  it.each(['gzip', 'deflate', 'br'] as const)('reads a %s-compressed token answer', async (encoding) => {
    const answer = Buffer.from(
      JSON.stringify({ access_token: `sk-ant-oat01-${encoding}`, refresh_token: 'sk-ant-ort01-next', expires_in: 60 }),
    );
    const compressed =
      encoding === 'gzip' ? zlib.gzipSync(answer) : encoding === 'deflate' ? zlib.deflateSync(answer) : zlib.brotliCompressSync(answer);
    fake.failNextToken([{ status: 200, body: compressed, headers: { 'content-encoding': encoding, 'content-type': 'application/json' } }]);
    const tokens = await refreshAccessToken(def, rt);
    expect(tokens.accessToken).toBe(`sk-ant-oat01-${encoding}`);
    expect(tokens.refreshToken).toBe('sk-ant-ort01-next');
    expect(fake.tokenRequests().at(-1)!.headers['accept-encoding']).toBe('gzip, deflate, br');
  });

  it('an error answer that echoes the refresh token, the code or a verifier never puts it in the message', async () => {
    fake.failNextToken([
      { status: 400, body: { error: 'invalid_grant', error_description: `Refresh token ${rt} is invalid` } },
      {
        status: 401,
        body: { error: { type: 'authentication_error', message: `bad token sk-ant-oat01-AbCdEf0123456789xyzXYZ and ${rt}` } },
      },
      { status: 500, body: `upstream said: refresh_token=${rt}`, headers: { 'content-type': 'text/plain' } },
      { status: 429, body: { error: { message: `quota for ${rt}`, code: rt } } },
    ]);
    for (let i = 0; i < 4; i++) {
      const err = await failure(refreshAccessToken(def, rt));
      expect(`${err.message}\n${err.stack}`).not.toContain(rt);
      expect(err.message).not.toContain('AbCdEf0123456789xyzXYZ');
    }
  });

  it('refreshing with an empty refresh token needs a new login, and never calls the provider', async () => {
    const calls = fake.tokenRequests().length;
    expect(await failure(refreshAccessToken(def, ''))).toBeInstanceOf(ReauthRequiredError);
    expect(fake.tokenRequests()).toHaveLength(calls);
  });
});

describe('token endpoint failures: other providers and the network', () => {
  it('OpenAI: refresh_token_expired / refresh_token_invalidated → reauth', async () => {
    const fake = await startFakeProvider({ provider: 'openai', initialRefreshToken: 'rt_will_be_revoked' });
    try {
      const def = defineProvider('openai', fake.overrides);
      fake.failNextToken([{ status: 401, body: { error: { code: 'refresh_token_expired', message: 'Your refresh token has expired.' } } }]);
      const expired = await failure(refreshAccessToken(def, 'rt_will_be_revoked'));
      expect(expired).toBeInstanceOf(ReauthRequiredError);
      expect(expired.message).toContain('refresh_token_expired');
      fake.revokeAllRefreshTokens();
      const revoked = await failure(refreshAccessToken(def, 'rt_will_be_revoked'));
      expect(revoked).toBeInstanceOf(ReauthRequiredError);
      expect(revoked.message).toContain('refresh_token_invalidated');
    } finally {
      await fake.close();
    }
  });

  it('Gemini: "Token has been expired or revoked." → reauth; wrong client secret → misconfigured', async () => {
    const fake = await startFakeProvider({ provider: 'gemini', initialRefreshToken: '1//g-revoked', clientSecret: 'right-secret' });
    try {
      fake.revokeAllRefreshTokens();
      const good = defineProvider('gemini', fake.overrides);
      expect(await failure(refreshAccessToken(good, '1//g-revoked'))).toBeInstanceOf(ReauthRequiredError);
      const wrong = defineProvider('gemini', { ...fake.overrides, oauthClientSecret: 'wrong-secret-value' });
      secrets.add('wrong-secret-value').add('right-secret');
      const err = await failure(refreshAccessToken(wrong, '1//g-revoked'));
      expect(err).toBeInstanceOf(MisconfiguredError);
      expect(err.message).toContain('invalid_client');
    } finally {
      await fake.close();
    }
  });

  it('Gemini with a custom client id and no secret → MisconfiguredError before any request', async () => {
    const fake = await startFakeProvider({ provider: 'gemini' });
    try {
      const def = defineProvider('gemini', { ...fake.overrides, oauthClientId: 'custom.apps.googleusercontent.com' });
      expect(await failure(refreshAccessToken(def, '1//x'))).toBeInstanceOf(MisconfiguredError);
      expect(fake.requests).toHaveLength(0);
    } finally {
      await fake.close();
    }
  });

  it('connection refused → ProviderUnavailableError naming the network error', async () => {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const def = defineProvider('anthropic', { oauthTokenUrl: `http://127.0.0.1:${port}/v1/oauth/token` });
    const err = await failure(refreshAccessToken(def, 'sk-ant-ort01-refused'));
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('a server that drops the connection mid-answer → ProviderUnavailableError', async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      res.write('{"access_token":"sk-ant-oat01-');
      setTimeout(() => res.destroy(), 20);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const def = defineProvider('anthropic', { oauthTokenUrl: `http://127.0.0.1:${port}/v1/oauth/token` });
      const err = await failure(refreshAccessToken(def, 'sk-ant-ort01-dropped'));
      expect(err).toBeInstanceOf(ProviderUnavailableError);
      expect(err).not.toBeInstanceOf(MalformedTokenResponseError);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('no secret in any thrown error', () => {
  it('checked over every error thrown in this file', () => {
    expect(thrown.length).toBeGreaterThan(25);
    expect(secrets.size).toBeGreaterThan(8);
    for (const err of thrown) {
      const text = `${err.name} ${err.message} ${err.stack ?? ''} ${JSON.stringify(err)}`;
      for (const secret of secrets) expect(text).not.toContain(secret);
      expect(text).not.toContain(GEMINI_DEFAULTS.clientSecret);
    }
  });
});
