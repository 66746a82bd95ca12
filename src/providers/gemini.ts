// Gemini: API keys (x-goog-api-key) and Google OAuth (installed-app client with a client
// secret, form-encoded, refresh tokens that do not rotate).
import { STANDARD_MISCONFIGURED_CODES, type ProviderDefinition } from './types.js';

/** The Gemini CLI's user agent, as it names itself to Code Assist: `GeminiCLI/<version> (<platform>; <arch>)`. */
export const GEMINI_CLI_USER_AGENT = 'GeminiCLI/0.61.0 (linux; x64)';

export const GEMINI_DEFAULTS = {
  baseUrl: 'https://generativelanguage.googleapis.com',
  // Gemini CLI sign-in tokens are for Code Assist (v1internal:{method}), not the public Gemini API.
  oauthBaseUrl: 'https://cloudcode-pa.googleapis.com',
  authorizeUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
  tokenUrl: 'https://oauth2.googleapis.com/token',
  // The Gemini CLI's installed-app client. Google documents that an installed app's client
  // secret is not treated as a secret; both are published in the Gemini CLI's source.
  clientId: '681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com',
  clientSecret: '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',
  // Google's page that shows the code for pasting (the Gemini CLI's no-browser flow).
  redirectUri: 'https://codeassist.google.com/authcode',
  scopes:
    'https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile',
} as const;

/** Public defaults; src/providers/registry.ts applies the operator's overrides. */
export const gemini: ProviderDefinition = {
  id: 'gemini',
  displayName: 'Gemini',
  baseUrl: GEMINI_DEFAULTS.baseUrl,
  oauthBaseUrl: GEMINI_DEFAULTS.oauthBaseUrl,
  backends: { api_key: 'public', oauth: 'code-assist' },
  headers: {
    api_key: { set: { 'x-goog-api-key': '{apiKey}' }, defaults: {}, merge: {} },
    // As the Gemini CLI calls Code Assist: no client x-goog-* (x-goog-user-project would bill another project), no SDK identity.
    oauth: {
      set: { authorization: 'Bearer {accessToken}', 'user-agent': GEMINI_CLI_USER_AGENT },
      defaults: {},
      merge: {},
      keepClient: { 'user-agent': 'GeminiCLI/' },
      forward: [],
    },
  },
  dropHeaders: [],
  // `?key=` is how some Gemini clients send their key: here it would be the Maestro key.
  dropQueryParams: ['key'],
  bodyTransforms: [],
  inferencePaths: ['v1beta', 'v1'].flatMap((version) => [
    { methods: ['POST'], path: `/${version}/models/{model}:generateContent`, usage: 'reported' as const },
    { methods: ['POST'], path: `/${version}/models/{model}:streamGenerateContent`, usage: 'reported' as const },
    { methods: ['POST'], path: `/${version}/models/{model}:countTokens` },
    { methods: ['GET'], path: `/${version}/models` },
    { methods: ['GET'], path: `/${version}/models/{model}` },
  ]),
  usageDialect: 'gemini',
  // The Gemini CLI's own quota read (retrieveUserQuota): per-model buckets of the sign-in's
  // Code Assist project, spending nothing. API keys have no quota read.
  quota: {
    path: '/v1internal:retrieveUserQuota',
    method: 'POST',
    headers: {
      authorization: 'Bearer {accessToken}',
      'user-agent': GEMINI_CLI_USER_AGENT,
      'content-type': 'application/json',
      accept: 'application/json',
    },
    body: { project: '{project}' },
    format: 'code-assist-user-quota',
  },
  oauth: {
    authorizeUrl: GEMINI_DEFAULTS.authorizeUrl,
    tokenUrl: GEMINI_DEFAULTS.tokenUrl,
    clientId: GEMINI_DEFAULTS.clientId,
    clientSecret: GEMINI_DEFAULTS.clientSecret,
    requiresClientSecret: true,
    redirectUri: GEMINI_DEFAULTS.redirectUri,
    scopes: GEMINI_DEFAULTS.scopes,
    authorizeParams: [
      ['response_type', 'code'],
      ['client_id', '{clientId}'],
      ['redirect_uri', '{redirectUri}'],
      ['scope', '{scopes}'],
      ['code_challenge', '{challenge}'],
      ['code_challenge_method', 'S256'],
      ['state', '{state}'],
      // Without these Google returns no refresh token.
      ['access_type', 'offline'],
      ['prompt', 'consent'],
    ],
    exchange: {
      format: 'form',
      params: [
        ['grant_type', 'authorization_code'],
        ['code', '{code}'],
        ['redirect_uri', '{redirectUri}'],
        ['client_id', '{clientId}'],
        ['client_secret', '{clientSecret}'],
        ['code_verifier', '{verifier}'],
      ],
    },
    refresh: {
      format: 'form',
      params: [
        ['grant_type', 'refresh_token'],
        ['refresh_token', '{refreshToken}'],
        ['client_id', '{clientId}'],
        ['client_secret', '{clientSecret}'],
      ],
    },
    tokenHeaders: {},
    rotatesRefreshTokens: false,
    accountId: [],
    errors: {
      reauthCodes: ['invalid_grant'],
      misconfiguredCodes: STANDARD_MISCONFIGURED_CODES,
      reauthDescriptions: [/expired or revoked/i, /\bgrant\b/i, /refresh[ _]token/i],
      unauthorizedWithoutCode: 'misconfigured',
    },
  },
};
