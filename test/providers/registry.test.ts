import { describe, expect, it } from 'vitest';
import { loadConfig, PROVIDER_IDS } from '../../src/config.js';
import { MisconfiguredError, ValidationError } from '../../src/errors.js';
import { ProviderRegistry } from '../../src/providers/registry.js';

const emptyProviders = { anthropic: {}, openai: {}, gemini: {} };

describe('ProviderRegistry', () => {
  it('serves the public defaults', () => {
    const registry = new ProviderRegistry({ providers: emptyProviders });
    const anthropic = registry.get('anthropic');
    expect(anthropic.baseUrl).toBe('https://api.anthropic.com');
    expect(anthropic.oauth).toMatchObject({
      authorizeUrl: 'https://claude.ai/oauth/authorize',
      tokenUrl: 'https://platform.claude.com/v1/oauth/token',
      clientId: '9d1c250a-e61b-44d9-88ed-5944d1962f5e',
      redirectUri: 'https://platform.claude.com/oauth/code/callback',
      scopes: 'org:create_api_key user:profile user:inference',
      rotatesRefreshTokens: true,
    });
    const openai = registry.get('openai');
    expect(openai.baseUrl).toBe('https://api.openai.com');
    expect(openai.oauth).toMatchObject({
      authorizeUrl: 'https://auth.openai.com/oauth/authorize',
      tokenUrl: 'https://auth.openai.com/oauth/token',
      clientId: 'app_EMoamEEZ73f0CkXaXp7hrann',
      redirectUri: 'http://localhost:1455/auth/callback',
      scopes: 'openid profile email offline_access',
      rotatesRefreshTokens: true,
    });
    const gemini = registry.get('gemini');
    expect(gemini.baseUrl).toBe('https://generativelanguage.googleapis.com');
    expect(gemini.oauth).toMatchObject({
      authorizeUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
      tokenUrl: 'https://oauth2.googleapis.com/token',
      requiresClientSecret: true,
      rotatesRefreshTokens: false,
    });
    expect(gemini.oauth.scopes.split(' ')).toEqual([
      'https://www.googleapis.com/auth/cloud-platform',
      'https://www.googleapis.com/auth/userinfo.email',
      'https://www.googleapis.com/auth/userinfo.profile',
    ]);
    expect(registry.list().map((d) => d.id)).toEqual([...PROVIDER_IDS]);
  });

  it('applies every override from the environment (through loadConfig)', () => {
    const config = loadConfig({
      MAESTRO_ENV: 'test',
      MAESTRO_ANTHROPIC_BASE_URL: 'http://127.0.0.1:9999/anthropic/',
      MAESTRO_ANTHROPIC_OAUTH_TOKEN_URL: 'http://127.0.0.1:9999/token',
      MAESTRO_ANTHROPIC_OAUTH_AUTHORIZE_URL: 'http://127.0.0.1:9999/authorize',
      MAESTRO_ANTHROPIC_OAUTH_CLIENT_ID: 'client-a',
      MAESTRO_ANTHROPIC_OAUTH_REDIRECT_URI: 'http://127.0.0.1:9999/cb',
      MAESTRO_ANTHROPIC_OAUTH_SCOPES: 'user:inference',
      MAESTRO_ANTHROPIC_USER_AGENT: 'claude-cli/9 (external, cli)',
      MAESTRO_GEMINI_OAUTH_CLIENT_ID: 'g-client',
      MAESTRO_GEMINI_OAUTH_CLIENT_SECRET: 'g-secret',
    });
    const registry = new ProviderRegistry(config);
    const a = registry.get('anthropic');
    expect(a.baseUrl).toBe('http://127.0.0.1:9999/anthropic');
    expect(a.oauth.tokenUrl).toBe('http://127.0.0.1:9999/token');
    expect(a.oauth.authorizeUrl).toBe('http://127.0.0.1:9999/authorize');
    expect(a.oauth.clientId).toBe('client-a');
    expect(a.oauth.redirectUri).toBe('http://127.0.0.1:9999/cb');
    expect(a.oauth.scopes).toBe('user:inference');
    expect(a.headers.oauth.set['user-agent']).toBe('claude-cli/9 (external, cli)');
    expect(a.oauth.tokenHeaders['user-agent']).toBe('claude-cli/9 (external, cli)');
    const g = registry.get('gemini');
    expect(g.oauth.clientId).toBe('g-client');
    expect(g.oauth.clientSecret).toBe('g-secret');
  });

  it('a custom Gemini client id never pairs with the default secret', () => {
    const registry = new ProviderRegistry({ providers: { ...emptyProviders, gemini: { oauthClientId: 'mine' } } });
    expect(registry.get('gemini').oauth.clientSecret).toBeUndefined();
  });

  it('unknown provider → ValidationError naming the valid ids', () => {
    const registry = new ProviderRegistry({ providers: emptyProviders });
    expect(() => registry.get('mistral')).toThrow(ValidationError);
    expect(() => registry.get('mistral')).toThrow('unknown provider "mistral"; valid providers: anthropic, openai, gemini');
    expect(() => registry.get('<script>')).toThrow('unknown provider given; valid providers: anthropic, openai, gemini');
    expect(registry.has('openai')).toBe(true);
    expect(registry.has('constructor')).toBe(false);
    expect(registry.has('')).toBe(false);
  });

  it('hosts() lists every configured API origin, the sign-in APIs included', () => {
    const registry = new ProviderRegistry({
      providers: { ...emptyProviders, openai: { baseUrl: 'http://127.0.0.1:4010/openai/v1' } },
    });
    expect(registry.hosts()).toEqual(
      new Set([
        'https://api.anthropic.com',
        'http://127.0.0.1:4010',
        'https://chatgpt.com',
        'https://generativelanguage.googleapis.com',
        'https://cloudcode-pa.googleapis.com',
      ]),
    );
  });

  it('sign-in base URLs: public defaults, MAESTRO_<PROVIDER>_OAUTH_BASE_URL overrides, Anthropic follows its base URL', () => {
    const defaults = new ProviderRegistry({ providers: emptyProviders });
    expect(defaults.get('openai').oauthBaseUrl).toBe('https://chatgpt.com/backend-api/codex');
    expect(defaults.get('gemini').oauthBaseUrl).toBe('https://cloudcode-pa.googleapis.com');
    expect(defaults.get('anthropic').oauthBaseUrl).toBe('https://api.anthropic.com');
    const config = loadConfig({
      MAESTRO_OPENAI_OAUTH_BASE_URL: 'http://127.0.0.1:4011/codex/',
      MAESTRO_ANTHROPIC_BASE_URL: 'http://127.0.0.1:4012',
    });
    const overridden = new ProviderRegistry(config);
    expect(overridden.get('openai').oauthBaseUrl).toBe('http://127.0.0.1:4011/codex');
    expect(overridden.get('anthropic').oauthBaseUrl).toBe('http://127.0.0.1:4012');
    expect(overridden.hosts().has('http://127.0.0.1:4011')).toBe(true);
    expect(() => loadConfig({ MAESTRO_GEMINI_OAUTH_BASE_URL: 'ftp://x' })).toThrow(/MAESTRO_GEMINI_OAUTH_BASE_URL/);
    expect(() => new ProviderRegistry({ providers: { ...emptyProviders, gemini: { oauthBaseUrl: 'https://x/?q=1' } } })).toThrow(
      MisconfiguredError,
    );
  });

  it('refuses unusable URLs', () => {
    expect(() => new ProviderRegistry({ providers: { ...emptyProviders, anthropic: { baseUrl: 'ftp://x' } } })).toThrow(MisconfiguredError);
    expect(() => new ProviderRegistry({ providers: { ...emptyProviders, anthropic: { baseUrl: 'https://x/?q=1' } } })).toThrow(
      MisconfiguredError,
    );
    expect(() => new ProviderRegistry({ providers: { ...emptyProviders, openai: { oauthTokenUrl: 'https://user:pw@x/token' } } })).toThrow(
      MisconfiguredError,
    );
  });
});
