// Anthropic: API keys (x-api-key) and Claude subscription sign-in (OAuth, as Claude Code does it).
import { STANDARD_MISCONFIGURED_CODES, type ProviderDefinition } from './types.js';

/** The system block Anthropic expects first on OAuth calls to /v1/messages. */
export const CLAUDE_CODE_SYSTEM_PROMPT = "You are Claude Code, Anthropic's official CLI for Claude.";
/** The beta that enables OAuth bearer tokens on the Messages API. */
export const ANTHROPIC_OAUTH_BETA = 'oauth-2025-04-20';

export const ANTHROPIC_DEFAULTS = {
  baseUrl: 'https://api.anthropic.com',
  authorizeUrl: 'https://claude.ai/oauth/authorize',
  // The older console.anthropic.com host stopped answering in 2026.
  tokenUrl: 'https://platform.claude.com/v1/oauth/token',
  clientId: '9d1c250a-e61b-44d9-88ed-5944d1962f5e',
  redirectUri: 'https://platform.claude.com/oauth/code/callback',
  scopes: 'org:create_api_key user:profile user:inference',
  anthropicVersion: '2023-06-01',
  // Claude Code's own format; Claude Code itself keeps its user agent (keepClient below).
  userAgent: 'claude-cli/2.1.332 (external, cli)',
  xApp: 'cli',
} as const;

/** Public defaults; src/providers/registry.ts applies the operator's overrides. */
export const anthropic: ProviderDefinition = {
  id: 'anthropic',
  displayName: 'Anthropic',
  baseUrl: ANTHROPIC_DEFAULTS.baseUrl,
  // Claude sign-in tokens are accepted by the Messages API itself (one base URL for both).
  backends: { api_key: 'public', oauth: 'public' },
  headers: {
    api_key: {
      set: { 'x-api-key': '{apiKey}' },
      defaults: { 'anthropic-version': ANTHROPIC_DEFAULTS.anthropicVersion },
      merge: {},
    },
    oauth: {
      set: { authorization: 'Bearer {accessToken}', 'user-agent': ANTHROPIC_DEFAULTS.userAgent, 'x-app': ANTHROPIC_DEFAULTS.xApp },
      defaults: { 'anthropic-version': ANTHROPIC_DEFAULTS.anthropicVersion },
      merge: { 'anthropic-beta': [ANTHROPIC_OAUTH_BETA] },
      keepClient: { 'user-agent': 'claude-cli/' },
    },
  },
  dropHeaders: [],
  dropQueryParams: [],
  bodyTransforms: [{ kind: 'prepend-system-block', auth: 'oauth', method: 'POST', path: '/v1/messages', text: CLAUDE_CODE_SYSTEM_PROMPT }],
  inferencePaths: [
    { methods: ['POST'], path: '/v1/messages', usage: 'reported' },
    { methods: ['POST'], path: '/v1/messages/count_tokens' },
    { methods: ['GET'], path: '/v1/models' },
    { methods: ['GET'], path: '/v1/models/{model}' },
  ],
  usageDialect: 'anthropic',
  // What Claude Code's /usage reads: the same host as the Messages API, the OAuth beta, no body.
  quota: {
    path: '/api/oauth/usage',
    headers: {
      authorization: 'Bearer {accessToken}',
      'anthropic-beta': ANTHROPIC_OAUTH_BETA,
      accept: 'application/json',
      'user-agent': ANTHROPIC_DEFAULTS.userAgent,
    },
    format: 'anthropic-oauth-usage',
  },
  oauth: {
    authorizeUrl: ANTHROPIC_DEFAULTS.authorizeUrl,
    tokenUrl: ANTHROPIC_DEFAULTS.tokenUrl,
    clientId: ANTHROPIC_DEFAULTS.clientId,
    clientSecret: undefined,
    requiresClientSecret: false,
    redirectUri: ANTHROPIC_DEFAULTS.redirectUri,
    scopes: ANTHROPIC_DEFAULTS.scopes,
    authorizeParams: [
      ['code', 'true'],
      ['client_id', '{clientId}'],
      ['response_type', 'code'],
      ['redirect_uri', '{redirectUri}'],
      ['scope', '{scopes}'],
      ['code_challenge', '{challenge}'],
      ['code_challenge_method', 'S256'],
      ['state', '{state}'],
    ],
    exchange: {
      format: 'json',
      params: [
        ['grant_type', 'authorization_code'],
        ['code', '{code}'],
        ['state', '{state}'],
        ['client_id', '{clientId}'],
        ['redirect_uri', '{redirectUri}'],
        ['code_verifier', '{verifier}'],
      ],
    },
    refresh: {
      format: 'json',
      params: [
        ['grant_type', 'refresh_token'],
        ['refresh_token', '{refreshToken}'],
        ['client_id', '{clientId}'],
      ],
    },
    tokenHeaders: { 'user-agent': ANTHROPIC_DEFAULTS.userAgent },
    rotatesRefreshTokens: true,
    accountId: [{ from: 'response', path: ['account', 'uuid'] }],
    errors: {
      reauthCodes: ['invalid_grant'],
      misconfiguredCodes: STANDARD_MISCONFIGURED_CODES,
      reauthDescriptions: [/refresh[ _]token/i, /\bgrant\b/i, /revoked/i, /expired/i],
      unauthorizedWithoutCode: 'reauth',
    },
  },
};
