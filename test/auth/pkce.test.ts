import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { codeChallenge, parsePastedCode, startLogin } from '../../src/auth/pkce.js';
import { exchangeCode } from '../../src/auth/tokenClient.js';
import { MisconfiguredError, ValidationError } from '../../src/errors.js';
import { ANTHROPIC_DEFAULTS } from '../../src/providers/anthropic.js';
import { GEMINI_DEFAULTS } from '../../src/providers/gemini.js';
import { OPENAI_DEFAULTS } from '../../src/providers/openai.js';
import { defineProvider } from '../../src/providers/registry.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProvider.js';

describe('startLogin', () => {
  it('Anthropic: verifier from 32 random bytes, S256 challenge, authorize URL with every parameter in order', () => {
    const def = defineProvider('anthropic');
    const login = startLogin(def);
    expect(login.verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(login.verifier, 'base64url')).toHaveLength(32);
    expect(login.state).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(login.redirectUri).toBe(ANTHROPIC_DEFAULTS.redirectUri);

    const url = new URL(login.authorizeUrl);
    expect(url.origin + url.pathname).toBe('https://claude.ai/oauth/authorize');
    expect([...url.searchParams.keys()]).toEqual([
      'code',
      'client_id',
      'response_type',
      'redirect_uri',
      'scope',
      'code_challenge',
      'code_challenge_method',
      'state',
    ]);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      code: 'true',
      client_id: '9d1c250a-e61b-44d9-88ed-5944d1962f5e',
      response_type: 'code',
      redirect_uri: 'https://platform.claude.com/oauth/code/callback',
      scope: 'org:create_api_key user:profile user:inference',
      code_challenge: createHash('sha256').update(login.verifier).digest('base64url'),
      code_challenge_method: 'S256',
      state: login.state,
    });
  });

  it('OpenAI: Codex CLI client, localhost redirect, offline_access scope', () => {
    const login = startLogin(defineProvider('openai'));
    const url = new URL(login.authorizeUrl);
    expect(url.origin + url.pathname).toBe('https://auth.openai.com/oauth/authorize');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      response_type: 'code',
      client_id: OPENAI_DEFAULTS.clientId,
      redirect_uri: 'http://localhost:1455/auth/callback',
      scope: 'openid profile email offline_access',
      code_challenge: codeChallenge(login.verifier),
      code_challenge_method: 'S256',
      id_token_add_organizations: 'true',
      codex_cli_simplified_flow: 'true',
      state: login.state,
    });
  });

  it('Gemini: Google authorize URL asks for offline access and consent', () => {
    const login = startLogin(defineProvider('gemini'));
    const url = new URL(login.authorizeUrl);
    expect(url.origin + url.pathname).toBe('https://accounts.google.com/o/oauth2/v2/auth');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      response_type: 'code',
      client_id: GEMINI_DEFAULTS.clientId,
      redirect_uri: GEMINI_DEFAULTS.redirectUri,
      scope: GEMINI_DEFAULTS.scopes,
      code_challenge: codeChallenge(login.verifier),
      code_challenge_method: 'S256',
      state: login.state,
      access_type: 'offline',
      prompt: 'consent',
    });
  });

  it('every login gets a fresh verifier and state', () => {
    const def = defineProvider('anthropic');
    const a = startLogin(def);
    const b = startLogin(def);
    expect(a.verifier).not.toBe(b.verifier);
    expect(a.state).not.toBe(b.state);
  });

  it('overrides reach the authorize URL', () => {
    const login = startLogin(
      defineProvider('anthropic', {
        oauthAuthorizeUrl: 'https://auth.example.test/authorize',
        oauthClientId: 'client-x',
        oauthRedirectUri: 'https://maestro.example.test/cb',
        oauthScopes: 'user:inference',
      }),
    );
    const url = new URL(login.authorizeUrl);
    expect(url.origin + url.pathname).toBe('https://auth.example.test/authorize');
    expect(url.searchParams.get('client_id')).toBe('client-x');
    expect(url.searchParams.get('redirect_uri')).toBe('https://maestro.example.test/cb');
    expect(url.searchParams.get('scope')).toBe('user:inference');
    expect(login.redirectUri).toBe('https://maestro.example.test/cb');
  });

  it('Gemini with a custom client id but no secret is misconfigured', () => {
    expect(() => startLogin(defineProvider('gemini', { oauthClientId: 'mine.apps.googleusercontent.com' }))).toThrow(MisconfiguredError);
    expect(() => startLogin(defineProvider('gemini', { oauthClientId: 'mine', oauthClientSecret: 's' }))).not.toThrow();
  });
});

describe('parsePastedCode', () => {
  it('code#state (Anthropic page)', () => {
    expect(parsePastedCode('abcDEF123-_x#st4te-value')).toEqual({ code: 'abcDEF123-_x', state: 'st4te-value' });
  });

  it('full redirect URL', () => {
    expect(parsePastedCode('http://localhost:1455/auth/callback?code=ac_123456&scope=openid&state=xyz')).toEqual({
      code: 'ac_123456',
      state: 'xyz',
    });
    expect(parsePastedCode('  https://platform.claude.com/oauth/code/callback?code=c0de1234&state=s  ')).toEqual({
      code: 'c0de1234',
      state: 's',
    });
  });

  it('bare code, Google-style with a slash, surrounding whitespace trimmed', () => {
    expect(parsePastedCode('  4/0AX4XfWh-abc_DEF  \n')).toEqual({ code: '4/0AX4XfWh-abc_DEF' });
    expect(parsePastedCode('4%2F0AX4XfWh')).toEqual({ code: '4/0AX4XfWh' });
  });

  it('a bare query string', () => {
    expect(parsePastedCode('?code=abcd1234&state=s1')).toEqual({ code: 'abcd1234', state: 's1' });
  });

  it('code# with an empty state is just the code', () => {
    expect(parsePastedCode('abcd1234#')).toEqual({ code: 'abcd1234' });
  });

  it.each([
    ['empty', ''],
    ['whitespace', '   \n\t '],
    ['a sentence', 'I could not find the code'],
    ['too short', 'ab'],
    ['html', '<html><body>error</body></html>'],
    ['redirect without code', 'https://platform.claude.com/oauth/code/callback?state=xyz'],
    ['provider error', 'http://localhost:1455/auth/callback?error=access_denied&state=xyz'],
    ['bad state', 'abcd1234#state with spaces'],
  ])('rejects %s with a ValidationError that does not echo the input', (_name, input) => {
    let error: unknown;
    try {
      parsePastedCode(input);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ValidationError);
    const message = (error as Error).message;
    if (input.trim().length > 3) expect(message).not.toContain(input.trim());
  });
});

describe('a whole login against the fake provider', () => {
  let fake: FakeProvider | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it.each(['anthropic', 'openai', 'gemini'] as const)('%s: start → consent → paste → exchange', async (provider) => {
    fake = await startFakeProvider({ provider });
    const def = defineProvider(provider, fake.overrides);
    const login = startLogin(def);
    const consent = fake.authorize(login.authorizeUrl);
    const pasted = parsePastedCode(consent.pasted);
    expect(pasted.code).toBe(consent.code);
    if (provider !== 'gemini') expect(pasted.state).toBe(login.state);

    const tokens = await exchangeCode(def, {
      code: pasted.code,
      verifier: login.verifier,
      state: login.state,
      redirectUri: login.redirectUri,
    });
    expect(tokens.accessToken).toBe(fake.issued.accessTokens[0]);
    expect(tokens.refreshToken).toBe(fake.issued.refreshTokens[0]);
    expect(fake.isAccessTokenValid(tokens.accessToken)).toBe(true);
  });
});
