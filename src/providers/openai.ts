// OpenAI: API keys (Authorization: Bearer) and ChatGPT sign-in as the Codex CLI does it
// (public client, PKCE, form-encoded code exchange, JSON refresh, rotating refresh tokens).
import { STANDARD_MISCONFIGURED_CODES, type ProviderDefinition } from './types.js';

/** The id-token claim that holds the ChatGPT account id: claims[OPENAI_AUTH_CLAIM].chatgpt_account_id. */
export const OPENAI_AUTH_CLAIM = 'https://api.openai.com/auth';

/** What the Codex CLI sends as `originator`; the Codex backend expects a known client. */
export const CODEX_ORIGINATOR = 'codex_cli_rs';
/**
 * The Codex CLI's user agent, as its get_codex_user_agent() writes it:
 * `<originator>/<version> (<os> <os version>; <arch>) <terminal>`.
 */
export const CODEX_USER_AGENT = `${CODEX_ORIGINATOR}/0.171.0 (Ubuntu 24.4.0; x86_64) unknown`;

export const OPENAI_DEFAULTS = {
  baseUrl: 'https://api.openai.com',
  // ChatGPT sign-in tokens are not accepted by api.openai.com: they are for the Codex backend (Responses API).
  oauthBaseUrl: 'https://chatgpt.com/backend-api/codex',
  authorizeUrl: 'https://auth.openai.com/oauth/authorize',
  tokenUrl: 'https://auth.openai.com/oauth/token',
  // The Codex CLI's public client id.
  clientId: 'app_EMoamEEZ73f0CkXaXp7hrann',
  redirectUri: 'http://localhost:1455/auth/callback',
  scopes: 'openid profile email offline_access',
} as const;

/** Public defaults; src/providers/registry.ts applies the operator's overrides. */
export const openai: ProviderDefinition = {
  id: 'openai',
  displayName: 'OpenAI',
  baseUrl: OPENAI_DEFAULTS.baseUrl,
  oauthBaseUrl: OPENAI_DEFAULTS.oauthBaseUrl,
  backends: { api_key: 'public', oauth: 'codex' },
  headers: {
    api_key: { set: { authorization: 'Bearer {apiKey}' }, defaults: {}, merge: {} },
    oauth: {
      // What the Codex CLI sends: the account from the id token, its originator and user agent, the Responses beta, and SSE (always streamed).
      set: {
        authorization: 'Bearer {accessToken}',
        'chatgpt-account-id': '{accountId}',
        originator: CODEX_ORIGINATOR,
        'user-agent': CODEX_USER_AGENT,
        'openai-beta': 'responses=experimental',
        accept: 'text/event-stream',
      },
      defaults: {},
      merge: {},
      keepClient: { 'user-agent': `${CODEX_ORIGINATOR}/` },
      // Nothing of an SDK's (its user agent, x-stainless-*, OpenAI-Organization/-Project) beside the
      // Codex CLI's identity; only the Codex CLI's conversation ids, which the backend's prompt cache keys on.
      forward: ['session_id', 'conversation_id'],
    },
  },
  // Maestro decides the account and client headers; a client's own values never pass through.
  dropHeaders: ['chatgpt-account-id', 'originator'],
  dropQueryParams: [],
  bodyTransforms: [],
  inferencePaths: [
    { methods: ['POST'], path: '/v1/chat/completions', usage: 'asked' },
    { methods: ['POST'], path: '/v1/responses', usage: 'reported' },
    { methods: ['POST'], path: '/v1/embeddings', usage: 'reported' },
    { methods: ['GET'], path: '/v1/models' },
    { methods: ['GET'], path: '/v1/models/{model}' },
  ],
  usageDialect: 'openai',
  // What the Codex CLI's /status reads: beside the /codex base, with the account header.
  quota: {
    path: '/wham/usage',
    fromParent: true,
    headers: {
      authorization: 'Bearer {accessToken}',
      'chatgpt-account-id': '{accountId}',
      originator: CODEX_ORIGINATOR,
      'user-agent': CODEX_USER_AGENT,
      accept: 'application/json',
    },
    format: 'chatgpt-wham-usage',
  },
  oauth: {
    authorizeUrl: OPENAI_DEFAULTS.authorizeUrl,
    tokenUrl: OPENAI_DEFAULTS.tokenUrl,
    clientId: OPENAI_DEFAULTS.clientId,
    clientSecret: undefined,
    requiresClientSecret: false,
    redirectUri: OPENAI_DEFAULTS.redirectUri,
    scopes: OPENAI_DEFAULTS.scopes,
    authorizeParams: [
      ['response_type', 'code'],
      ['client_id', '{clientId}'],
      ['redirect_uri', '{redirectUri}'],
      ['scope', '{scopes}'],
      ['code_challenge', '{challenge}'],
      ['code_challenge_method', 'S256'],
      ['id_token_add_organizations', 'true'],
      ['codex_cli_simplified_flow', 'true'],
      ['state', '{state}'],
    ],
    exchange: {
      format: 'form',
      params: [
        ['grant_type', 'authorization_code'],
        ['code', '{code}'],
        ['redirect_uri', '{redirectUri}'],
        ['client_id', '{clientId}'],
        ['code_verifier', '{verifier}'],
      ],
    },
    refresh: {
      format: 'json',
      params: [
        ['client_id', '{clientId}'],
        ['grant_type', 'refresh_token'],
        ['refresh_token', '{refreshToken}'],
      ],
    },
    tokenHeaders: {},
    rotatesRefreshTokens: true,
    accountId: [
      { from: 'id_token_claims', path: [OPENAI_AUTH_CLAIM, 'chatgpt_account_id'] },
      { from: 'access_token_claims', path: [OPENAI_AUTH_CLAIM, 'chatgpt_account_id'] },
    ],
    errors: {
      // The codes the Codex CLI treats as a dead login (expired, already used, revoked).
      reauthCodes: ['invalid_grant', 'refresh_token_expired', 'refresh_token_reused', 'refresh_token_invalidated'],
      misconfiguredCodes: STANDARD_MISCONFIGURED_CODES,
      reauthDescriptions: [/refresh[ _]token/i, /\bgrant\b/i, /revoked/i, /expired/i],
      unauthorizedWithoutCode: 'reauth',
    },
  },
};
