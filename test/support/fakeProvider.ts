// A local fake of one provider (Anthropic, OpenAI or Gemini): its OAuth authorize page, its
// token endpoint and its main API endpoint, on http://127.0.0.1:<random port>. It asserts the
// exact wire format it receives and answers like the real provider, so a wrong header, body
// encoding or parameter fails a test instead of failing in production.
//
// Usage:
//   const fake = await startFakeProvider({ provider: 'anthropic' });
//   const config = { ...baseConfig, providers: { ...baseConfig.providers, anthropic: fake.overrides } };
//   fake.seedTokens('sk-ant-ort01-seed');            // a refresh token the fake will accept
//   ... run the code under test ...
//   expect(fake.tokenRequests()).toHaveLength(1);
//   expect(fake.reusedRefreshTokens).toEqual([]);
//   await fake.close();
//
// Endpoints (paths as on the real provider; `fake.url` is base URL, token origin and authorize origin):
//   anthropic  POST /v1/oauth/token · GET /oauth/authorize · POST /v1/messages, /v1/messages/count_tokens
//   openai     POST /oauth/token    · GET /oauth/authorize · POST /v1/chat/completions, /v1/responses
//   gemini     POST /token          · GET /o/oauth2/v2/auth · POST /v1beta/models/{model}:generateContent,
//                                                            :streamGenerateContent (?alt=sse → SSE, else a JSON array)
//
// Token endpoint, checked per provider (wrong → 400 invalid_request naming the problem):
//   anthropic  code exchange and refresh: JSON
//              {grant_type, code, state, client_id, redirect_uri, code_verifier} / {grant_type, refresh_token, client_id}
//   openai     code exchange: form {grant_type, code, redirect_uri, client_id, code_verifier}
//              refresh: JSON {client_id, grant_type, refresh_token}
//   gemini     form {grant_type, code, redirect_uri, client_id, client_secret, code_verifier}
//              / {grant_type, refresh_token, client_id, client_secret}
//   Exactly these keys, all strings. Wrong client id/secret → 401 invalid_client. The code must
//   come from this fake's authorize step, unused, with the same redirect_uri, a verifier whose
//   S256 matches the challenge and (anthropic) the same state; otherwise 400 invalid_grant.
//   Refresh tokens: a valid one is answered with a new access token and, when rotating, a new
//   refresh token (the old one becomes used). A used one is recorded in reusedRefreshTokens and
//   refused (anthropic/gemini: 400 invalid_grant; openai: 401 {error:{code:'refresh_token_reused'}}).
//   Revoked (revokeAllRefreshTokens) → 400 invalid_grant (openai: 401 refresh_token_invalidated).
//
// API endpoints: a request is authorised by the provider's API-key header carrying `fake.apiKey`
// (x-api-key / Authorization: Bearer / x-goog-api-key) or by `Authorization: Bearer <access token>`
// for a token this fake issued or seeded that is neither expired nor revoked. Otherwise 401 with
// the provider's JSON error shape. Extra checks: anthropic needs anthropic-version; anthropic OAuth
// needs the oauth-2025-04-20 beta and (unless requireClaudeCodeSystem: false) the Claude Code
// system block first; openai OAuth needs chatgpt-account-id = fake.accountId; gemini refuses `?key=`;
// any x-maestro-*, cookie or proxy-authorization header, or anthropic x-api-key together with
// authorization, is a 400 (it should never reach a provider). Answers carry `x-fake-auth: api_key|oauth`.
// `"stream": true` in the body (gemini: :streamGenerateContent) answers text/event-stream with
// `eventCount` content events (anthropic adds message_start, content_block_start,
// content_block_stop, message_delta, message_stop around them; openai adds `data: [DONE]`),
// `eventIntervalMs` apart. With `compress`, answers are compressed when the client's
// accept-encoding allows it (streams too, flushed per event).
import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { request } from 'undici';
import type { ProviderId, ProviderOverrides } from '../../src/config.js';
import { readBody } from '../../src/auth/http.js';
import { ANTHROPIC_DEFAULTS, ANTHROPIC_OAUTH_BETA, CLAUDE_CODE_SYSTEM_PROMPT } from '../../src/providers/anthropic.js';
import { GEMINI_DEFAULTS } from '../../src/providers/gemini.js';
import { OPENAI_AUTH_CLAIM, OPENAI_DEFAULTS } from '../../src/providers/openai.js';

export type Compression = 'gzip' | 'deflate' | 'br';

export interface FakeProviderOptions {
  provider: ProviderId;
  /** New single-use refresh token on every refresh. Default true, except gemini. */
  rotateRefreshTokens?: boolean;
  /** Lifetime of issued access tokens (expires_in). Default 3600. */
  accessTokenTtlSec?: number;
  /** Seeded as a valid refresh token. */
  initialRefreshToken?: string;
  /** Seeded as a valid access token (lifetime accessTokenTtlSec). */
  initialAccessToken?: string;
  /** The API key the API endpoints accept. Default: a random provider-shaped key. */
  apiKey?: string;
  /** Client id the token endpoint expects. Default: the provider's public default. */
  clientId?: string;
  /** Client secret the token endpoint expects (gemini). Default: the provider's default. */
  clientSecret?: string;
  /** Redirect URI the authorize step expects. Default: the provider's default. */
  redirectUri?: string;
  /** openai: the chatgpt_account_id in issued id/access tokens. Default: a random `acct_…`. */
  accountId?: string;
  /** Content events per streamed answer. Default 5. */
  eventCount?: number;
  /** Pause between streamed events. Default 0. */
  eventIntervalMs?: number;
  /** Compress answers when the client accepts it; true means gzip. Default off. */
  compress?: boolean | Compression;
  /** anthropic OAuth: refuse /v1/messages whose first system block is not Claude Code's. Default true. */
  requireClaudeCodeSystem?: boolean;
}

export interface RecordedRequest {
  kind: 'token' | 'authorize' | 'api' | 'other';
  method: string;
  /** Path without the query. */
  path: string;
  /** `?…` or ''. */
  search: string;
  headers: IncomingHttpHeaders;
  /** Decoded body bytes (request content-encoding undone). */
  body: Buffer;
  /** Parsed JSON body, when it is JSON. */
  json?: unknown;
  /** Parsed form body, when it is application/x-www-form-urlencoded. */
  form?: Record<string, string>;
}

export interface ScriptedResponse {
  status: number;
  /**
   * A string is sent as is (use it for malformed answers); a Buffer is sent byte for byte and
   * never re-compressed (set its content-encoding in headers); anything else as JSON; absent: empty body.
   */
  body?: unknown;
  headers?: Record<string, string>;
  /** Cut the connection after reading the request, without an answer (a call that may have been processed). */
  reset?: boolean;
}

export interface AuthorizeResult {
  code: string;
  state: string;
  /** The redirect the provider would send the browser to. */
  redirectUrl: string;
  /** What a user would paste back for this provider: anthropic `code#state`, openai the redirect URL, gemini the bare code. */
  pasted: string;
}

export interface FakeProvider {
  provider: ProviderId;
  /** http://127.0.0.1:PORT — base URL and token/authorize origin. */
  url: string;
  tokenUrl: string;
  authorizeUrl: string;
  /** Drop into Config.providers[provider]: points base, token and authorize URLs here (and any custom client id/secret/redirect). */
  overrides: ProviderOverrides;
  apiKey: string;
  /** openai: the account id in issued tokens. */
  accountId: string;
  requests: RecordedRequest[];
  tokenRequests(): RecordedRequest[];
  apiRequests(): RecordedRequest[];
  /** Makes refreshToken valid (and accessToken, when given). */
  seedTokens(refreshToken: string, accessToken?: string): void;
  issued: { accessTokens: string[]; refreshTokens: string[] };
  /** Every refresh token presented after it was already spent. */
  reusedRefreshTokens: string[];
  /** The consent step: checks the authorize URL like the provider would and returns a code for it. */
  authorize(authorizeUrl: string): AuthorizeResult;
  /** Scripted token-endpoint answers, consumed in order before any checks (requests are still recorded). */
  failNextToken(responses: ScriptedResponse[]): void;
  /** Scripted API answers, consumed in order before any checks. */
  failNextApi(responses: ScriptedResponse[]): void;
  revokeAccessToken(token: string): void;
  revokeAllRefreshTokens(): void;
  /** True when token is an access token the API endpoints would accept now. */
  isAccessTokenValid(token: string): boolean;
  setTokenDelayMs(ms: number): void;
  /** Rotate first, then hold the answer this long (a provider that spent the token and answers late). */
  setTokenAnswerHoldMs(ms: number): void;
  /** Successful (rotating) token answers whose client went away before they were sent. */
  tokenAnswersLost(): number;
  /** Rewrites the next real (rotating) 2xx token answers, one function per answer. */
  reshapeNextTokenAnswers(reshapes: Array<(body: Record<string, unknown>) => unknown>): void;
  setApiDelayMs(ms: number): void;
  /** Pause between streamed events from now on. */
  setEventIntervalMs(ms: number): void;
  /** Streamed answers cut short because the client (the proxy) closed the connection. */
  streamsAbandoned(): number;
  close(): Promise<void>;
}

const PATHS: Record<ProviderId, { token: string; authorize: string }> = {
  anthropic: { token: '/v1/oauth/token', authorize: '/oauth/authorize' },
  openai: { token: '/oauth/token', authorize: '/oauth/authorize' },
  gemini: { token: '/token', authorize: '/o/oauth2/v2/auth' },
};

type Format = 'json' | 'form';
const TOKEN_SHAPES: Record<ProviderId, Record<'authorization_code' | 'refresh_token', { format: Format; keys: string[] }>> = {
  anthropic: {
    authorization_code: { format: 'json', keys: ['grant_type', 'code', 'state', 'client_id', 'redirect_uri', 'code_verifier'] },
    refresh_token: { format: 'json', keys: ['grant_type', 'refresh_token', 'client_id'] },
  },
  openai: {
    authorization_code: { format: 'form', keys: ['grant_type', 'code', 'redirect_uri', 'client_id', 'code_verifier'] },
    refresh_token: { format: 'json', keys: ['client_id', 'grant_type', 'refresh_token'] },
  },
  gemini: {
    authorization_code: {
      format: 'form',
      keys: ['grant_type', 'code', 'redirect_uri', 'client_id', 'client_secret', 'code_verifier'],
    },
    refresh_token: { format: 'form', keys: ['grant_type', 'refresh_token', 'client_id', 'client_secret'] },
  },
};

const DEFAULTS: Record<ProviderId, { clientId: string; clientSecret?: string; redirectUri: string }> = {
  anthropic: ANTHROPIC_DEFAULTS,
  openai: OPENAI_DEFAULTS,
  gemini: GEMINI_DEFAULTS,
};

const CONTENT_TYPE: Record<Format, string> = { json: 'application/json', form: 'application/x-www-form-urlencoded' };

class HttpAnswer {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

export async function startFakeProvider(opts: FakeProviderOptions): Promise<FakeProvider> {
  const provider = opts.provider;
  const rotate = opts.rotateRefreshTokens ?? provider !== 'gemini';
  const ttlSec = opts.accessTokenTtlSec ?? 3600;
  const expected = {
    clientId: opts.clientId ?? DEFAULTS[provider].clientId,
    clientSecret: opts.clientSecret ?? DEFAULTS[provider].clientSecret,
    redirectUri: opts.redirectUri ?? DEFAULTS[provider].redirectUri,
  };
  const accountId = opts.accountId ?? `acct_${hex(8)}`;
  const apiKey =
    opts.apiKey ??
    (provider === 'anthropic' ? `sk-ant-api03-fake${hex(16)}` : provider === 'openai' ? `sk-proj-fake${hex(16)}` : `AIzaFake${hex(16)}`);
  const eventCount = opts.eventCount ?? 5;
  let eventIntervalMs = opts.eventIntervalMs ?? 0;
  const compression: Compression | undefined = opts.compress === true ? 'gzip' : opts.compress || undefined;
  const requireClaudeCodeSystem = opts.requireClaudeCodeSystem ?? true;

  const requests: RecordedRequest[] = [];
  const issued = { accessTokens: [] as string[], refreshTokens: [] as string[] };
  const reusedRefreshTokens: string[] = [];
  const refreshTokens = new Map<string, 'valid' | 'used' | 'revoked'>();
  const accessTokens = new Map<string, { expiresAtMs: number; revoked: boolean }>();
  const codes = new Map<string, { challenge: string; redirectUri: string; state: string; used: boolean }>();
  const tokenScript: ScriptedResponse[] = [];
  const apiScript: ScriptedResponse[] = [];
  let tokenDelayMs = 0;
  let holdAnswerMs = 0;
  let tokenAnswersLost = 0;
  const tokenReshapes: Array<(body: Record<string, unknown>) => unknown> = [];
  let streamsAbandoned = 0;
  let apiDelayMs = 0;
  let closed = false;
  const timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();

  /** Waits ms, or less when the fake closes or `res` (the client's connection) goes away. */
  const sleep = (ms: number, res?: ServerResponse) =>
    new Promise<void>((resolve) => {
      if (ms <= 0 || closed || res?.destroyed) return resolve();
      const done = () => {
        clearTimeout(entry.timer);
        timers.delete(entry);
        res?.off('close', done);
        resolve();
      };
      const entry = { timer: setTimeout(done, ms), resolve: done };
      timers.add(entry);
      res?.once('close', done);
    });

  // --- tokens ---------------------------------------------------------------------------------

  function newAccessToken(): string {
    const token =
      provider === 'anthropic'
        ? `sk-ant-oat01-fake${hex(24)}`
        : provider === 'openai'
          ? fakeJwt({
              iss: 'https://auth.openai.com',
              exp: Math.floor(Date.now() / 1000) + ttlSec,
              jti: hex(8),
              [OPENAI_AUTH_CLAIM]: { chatgpt_account_id: accountId, chatgpt_plan_type: 'plus' },
            })
          : `ya29.fake${hex(24)}`;
    accessTokens.set(token, { expiresAtMs: Date.now() + ttlSec * 1000, revoked: false });
    issued.accessTokens.push(token);
    return token;
  }

  function newRefreshToken(): string {
    const token = provider === 'anthropic' ? `sk-ant-ort01-fake${hex(24)}` : provider === 'openai' ? `rt_fake${hex(24)}` : `1//fake${hex(24)}`;
    refreshTokens.set(token, 'valid');
    issued.refreshTokens.push(token);
    return token;
  }

  function tokenAnswer(accessToken: string, refreshToken: string | undefined): Record<string, unknown> {
    switch (provider) {
      case 'anthropic':
        return {
          token_type: 'Bearer',
          access_token: accessToken,
          expires_in: ttlSec,
          ...(refreshToken ? { refresh_token: refreshToken } : {}),
          scope: ANTHROPIC_DEFAULTS.scopes,
          organization: { uuid: 'org-fake', name: 'Fake Org' },
          account: { uuid: 'account-fake', email_address: 'user@example.com' },
        };
      case 'openai':
        return {
          id_token: fakeJwt({
            iss: 'https://auth.openai.com',
            email: 'user@example.com',
            exp: Math.floor(Date.now() / 1000) + 3600,
            [OPENAI_AUTH_CLAIM]: { chatgpt_account_id: accountId, chatgpt_plan_type: 'plus' },
          }),
          access_token: accessToken,
          ...(refreshToken ? { refresh_token: refreshToken } : {}),
          expires_in: ttlSec,
          token_type: 'Bearer',
        };
      case 'gemini':
        return {
          access_token: accessToken,
          expires_in: ttlSec,
          ...(refreshToken ? { refresh_token: refreshToken } : {}),
          scope: GEMINI_DEFAULTS.scopes,
          token_type: 'Bearer',
          id_token: fakeJwt({ iss: 'https://accounts.google.com', email: 'user@example.com' }),
        };
    }
  }

  function grantError(status: number, code: string, description: string): HttpAnswer {
    if (provider === 'openai' && code.startsWith('refresh_token_')) {
      return new HttpAnswer(status, { error: { message: description, type: 'invalid_request_error', param: null, code } });
    }
    return new HttpAnswer(status, { error: code, error_description: description });
  }

  function handleToken(req: RecordedRequest): HttpAnswer {
    if (req.method !== 'POST') return new HttpAnswer(405, { error: 'invalid_request', error_description: 'fake: token endpoint takes POST' });
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const format: Format | undefined = contentType === CONTENT_TYPE.json ? 'json' : contentType === CONTENT_TYPE.form ? 'form' : undefined;
    if (!format) return invalidRequest(`unsupported content-type "${contentType}"`);
    const params = format === 'json' ? req.json : req.form;
    if (params === null || typeof params !== 'object' || Array.isArray(params)) return invalidRequest('body is not a JSON object');
    const p = params as Record<string, unknown>;
    const grant = p.grant_type;
    if (grant !== 'authorization_code' && grant !== 'refresh_token') {
      return new HttpAnswer(400, { error: 'unsupported_grant_type', error_description: `fake ${provider}: grant_type must be authorization_code or refresh_token` });
    }
    const shape = TOKEN_SHAPES[provider][grant];
    if (format !== shape.format) return invalidRequest(`${grant} expects ${CONTENT_TYPE[shape.format]}, got ${contentType}`);
    const keys = Object.keys(p);
    const missing = shape.keys.filter((k) => !keys.includes(k));
    const extra = keys.filter((k) => !shape.keys.includes(k));
    if (missing.length || extra.length) {
      return invalidRequest(`${grant} body keys wrong${missing.length ? `; missing ${missing.join(', ')}` : ''}${extra.length ? `; unexpected ${extra.join(', ')}` : ''}`);
    }
    const notString = keys.filter((k) => typeof p[k] !== 'string');
    if (notString.length) return invalidRequest(`${notString.join(', ')} must be strings`);
    const v = p as Record<string, string>;
    if (v.client_id !== expected.clientId) return new HttpAnswer(401, { error: 'invalid_client', error_description: 'fake: unknown client_id' });
    if ('client_secret' in v && v.client_secret !== expected.clientSecret) {
      return new HttpAnswer(401, { error: 'invalid_client', error_description: 'fake: wrong client_secret' });
    }

    if (grant === 'authorization_code') {
      const entry = codes.get(v.code!);
      if (!entry || entry.used) return grantError(400, 'invalid_grant', 'Invalid authorization code');
      if (v.redirect_uri !== entry.redirectUri) return grantError(400, 'invalid_grant', 'redirect_uri does not match the authorization request');
      if (sha256url(v.code_verifier!) !== entry.challenge) return grantError(400, 'invalid_grant', 'code_verifier does not match the code challenge');
      if ('state' in v && v.state !== entry.state) return grantError(400, 'invalid_grant', 'state does not match the authorization request');
      entry.used = true;
      return new HttpAnswer(200, tokenAnswer(newAccessToken(), newRefreshToken()));
    }

    const presented = v.refresh_token!;
    const status = refreshTokens.get(presented);
    if (status === 'used') {
      reusedRefreshTokens.push(presented);
      return provider === 'openai'
        ? grantError(401, 'refresh_token_reused', 'Your refresh token has already been used to generate a new access token.')
        : grantError(400, 'invalid_grant', 'Refresh token has already been used');
    }
    if (status === 'revoked') {
      return provider === 'openai'
        ? grantError(401, 'refresh_token_invalidated', 'Your refresh token has been invalidated.')
        : grantError(400, 'invalid_grant', provider === 'gemini' ? 'Token has been expired or revoked.' : 'Refresh token revoked');
    }
    if (status !== 'valid') return grantError(400, 'invalid_grant', 'Invalid refresh token');
    let nextRefresh: string | undefined;
    if (rotate) {
      refreshTokens.set(presented, 'used');
      nextRefresh = newRefreshToken();
    }
    return new HttpAnswer(200, tokenAnswer(newAccessToken(), nextRefresh));
  }

  function invalidRequest(why: string): HttpAnswer {
    return new HttpAnswer(400, { error: 'invalid_request', error_description: `fake ${provider}: ${why}` });
  }

  // --- authorize ------------------------------------------------------------------------------

  function authorize(authorizeUrl: string): AuthorizeResult {
    const url = new URL(authorizeUrl);
    const fail = (why: string): never => {
      throw new Error(`fake ${provider} authorize: ${why}`);
    };
    if (url.pathname !== PATHS[provider].authorize) fail(`path must be ${PATHS[provider].authorize}, got ${url.pathname}`);
    const q = url.searchParams;
    const want: Record<string, string> = {
      client_id: expected.clientId,
      response_type: 'code',
      redirect_uri: expected.redirectUri,
      code_challenge_method: 'S256',
      ...(provider === 'anthropic' ? { code: 'true' } : {}),
      ...(provider === 'gemini' ? { access_type: 'offline' } : {}),
    };
    for (const [name, value] of Object.entries(want)) {
      if (q.get(name) !== value) fail(`${name} must be ${JSON.stringify(value)}, got ${JSON.stringify(q.get(name))}`);
    }
    const challenge = q.get('code_challenge') ?? '';
    if (!/^[A-Za-z0-9_-]{43}$/.test(challenge)) fail('code_challenge must be a base64url SHA-256 (43 characters)');
    const state = q.get('state') ?? '';
    if (!state) fail('state is missing');
    if (!q.get('scope')) fail('scope is missing');
    const code = `${provider === 'gemini' ? '4/0' : provider === 'openai' ? 'ac_' : ''}fakecode${hex(16)}`;
    codes.set(code, { challenge, redirectUri: expected.redirectUri, state, used: false });
    const redirect = new URL(expected.redirectUri);
    redirect.searchParams.set('code', code);
    redirect.searchParams.set('state', state);
    const redirectUrl = redirect.toString();
    const pasted = provider === 'anthropic' ? `${code}#${state}` : provider === 'openai' ? redirectUrl : code;
    return { code, state, redirectUrl, pasted };
  }

  // --- API --------------------------------------------------------------------------------------

  type ApiAuth = 'api_key' | 'oauth';

  function apiError(status: number, message: string, type = 'authentication_error'): HttpAnswer {
    switch (provider) {
      case 'anthropic':
        return new HttpAnswer(status, { type: 'error', error: { type, message } });
      case 'openai':
        return new HttpAnswer(status, { error: { message, type: status === 401 ? 'invalid_request_error' : type, param: null, code: status === 401 ? 'invalid_api_key' : null } });
      case 'gemini':
        return new HttpAnswer(status, { error: { code: status, message, status: status === 401 ? 'UNAUTHENTICATED' : 'INVALID_ARGUMENT' } });
    }
  }

  function bearer(req: RecordedRequest): string | undefined {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer (.+)$/.exec(header) : null;
    return match?.[1];
  }

  function accessTokenProblem(token: string): string | undefined {
    const entry = accessTokens.get(token);
    if (!entry) return 'Invalid bearer token';
    if (entry.revoked) return 'OAuth token has been revoked';
    if (Date.now() >= entry.expiresAtMs) return 'OAuth token has expired';
    return undefined;
  }

  function authenticate(req: RecordedRequest): ApiAuth | HttpAnswer {
    const token = bearer(req);
    if (provider === 'anthropic') {
      const key = req.headers['x-api-key'];
      if (key !== undefined && req.headers.authorization !== undefined) return apiError(400, 'fake: both x-api-key and authorization sent', 'invalid_request_error');
      if (key !== undefined) return key === apiKey ? 'api_key' : apiError(401, 'invalid x-api-key');
      if (!token) return apiError(401, 'x-api-key header is required');
      const problem = accessTokenProblem(token);
      if (problem) return apiError(401, problem);
      const betas = String(req.headers['anthropic-beta'] ?? '').split(',').map((b) => b.trim());
      if (!betas.includes(ANTHROPIC_OAUTH_BETA)) return apiError(401, 'OAuth authentication is currently not supported.');
      return 'oauth';
    }
    if (provider === 'openai') {
      if (!token) return apiError(401, 'You did not provide an API key.');
      if (token === apiKey) return 'api_key';
      const problem = accessTokenProblem(token);
      if (problem) return apiError(401, problem);
      if (req.headers['chatgpt-account-id'] !== accountId) return apiError(401, 'fake: chatgpt-account-id missing or wrong');
      return 'oauth';
    }
    if (new URLSearchParams(req.search).has('key')) return apiError(400, 'fake: an API key in the query string reached the provider');
    const key = req.headers['x-goog-api-key'];
    if (key !== undefined) return key === apiKey ? 'api_key' : apiError(400, 'API key not valid. Please pass a valid API key.');
    if (!token) return apiError(401, 'Request is missing required authentication credential.');
    const problem = accessTokenProblem(token);
    if (problem) return apiError(401, 'Request had invalid authentication credentials.');
    return 'oauth';
  }

  type ApiRoute = { kind: 'json' | 'stream' | 'count' | 'gemini-array' };

  function route(req: RecordedRequest): ApiRoute | undefined {
    if (req.method !== 'POST') return undefined;
    const wantsStream = (req.json as { stream?: unknown } | undefined)?.stream === true;
    if (provider === 'anthropic') {
      if (req.path === '/v1/messages') return { kind: wantsStream ? 'stream' : 'json' };
      if (req.path === '/v1/messages/count_tokens') return { kind: 'count' };
    } else if (provider === 'openai') {
      if (req.path === '/v1/chat/completions' || req.path === '/v1/responses') return { kind: wantsStream ? 'stream' : 'json' };
    } else {
      const match = /^\/v1beta\/models\/[A-Za-z0-9._-]+:(generateContent|streamGenerateContent)$/.exec(req.path);
      if (match?.[1] === 'generateContent') return { kind: 'json' };
      if (match) return { kind: new URLSearchParams(req.search).get('alt') === 'sse' ? 'stream' : 'gemini-array' };
    }
    return undefined;
  }

  function textChunk(i: number): string {
    return `chunk ${i} `;
  }

  function completion(): unknown {
    const text = `Hello from the fake ${provider}`;
    switch (provider) {
      case 'anthropic':
        return {
          id: `msg_fake${hex(8)}`,
          type: 'message',
          role: 'assistant',
          model: 'claude-fake',
          content: [{ type: 'text', text }],
          stop_reason: 'end_turn',
          stop_sequence: null,
          usage: { input_tokens: 10, output_tokens: 5 },
        };
      case 'openai':
        return {
          id: `chatcmpl-fake${hex(8)}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: 'gpt-fake',
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
        };
      case 'gemini':
        return geminiChunk(text, true);
    }
  }

  function geminiChunk(text: string, last: boolean): unknown {
    return {
      candidates: [{ content: { parts: [{ text }], role: 'model' }, ...(last ? { finishReason: 'STOP' } : {}), index: 0 }],
      usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 5, totalTokenCount: 15 },
      modelVersion: 'gemini-fake',
    };
  }

  function sseEvents(): string[] {
    const ev = (event: string | undefined, data: unknown) =>
      `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
    const out: string[] = [];
    if (provider === 'anthropic') {
      out.push(
        ev('message_start', {
          type: 'message_start',
          message: { id: `msg_fake${hex(8)}`, type: 'message', role: 'assistant', model: 'claude-fake', content: [], stop_reason: null, usage: { input_tokens: 10, output_tokens: 0 } },
        }),
      );
      out.push(ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }));
      for (let i = 0; i < eventCount; i++) {
        out.push(ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: textChunk(i) } }));
      }
      out.push(ev('content_block_stop', { type: 'content_block_stop', index: 0 }));
      out.push(ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: eventCount } }));
      out.push(ev('message_stop', { type: 'message_stop' }));
    } else if (provider === 'openai') {
      for (let i = 0; i < eventCount; i++) {
        out.push(
          ev(undefined, {
            id: 'chatcmpl-fake',
            object: 'chat.completion.chunk',
            model: 'gpt-fake',
            choices: [{ index: 0, delta: { content: textChunk(i) }, finish_reason: i === eventCount - 1 ? 'stop' : null }],
          }),
        );
      }
      out.push(ev(undefined, '[DONE]'));
    } else {
      for (let i = 0; i < eventCount; i++) out.push(ev(undefined, geminiChunk(textChunk(i), i === eventCount - 1)));
    }
    return out;
  }

  function handleApiChecks(req: RecordedRequest): { auth: ApiAuth; route: ApiRoute } | HttpAnswer {
    const r = route(req);
    if (!r) return apiError(404, `fake ${provider}: no route ${req.method} ${req.path}`, 'not_found_error');
    const auth = authenticate(req);
    if (auth instanceof HttpAnswer) return auth;
    if (provider === 'anthropic') {
      if (!req.headers['anthropic-version']) return apiError(400, 'anthropic-version: header is required', 'invalid_request_error');
      if (auth === 'oauth' && requireClaudeCodeSystem && req.path === '/v1/messages') {
        const system = (req.json as { system?: unknown } | undefined)?.system;
        const first = Array.isArray(system) ? (system[0] as { type?: unknown; text?: unknown } | undefined) : undefined;
        if (first?.type !== 'text' || first.text !== CLAUDE_CODE_SYSTEM_PROMPT) {
          return apiError(400, 'fake: OAuth /v1/messages must start with the Claude Code system block', 'invalid_request_error');
        }
      }
    }
    if (req.json === undefined) return apiError(400, `fake ${provider}: body must be JSON`, 'invalid_request_error');
    return { auth, route: r };
  }

  // --- HTTP plumbing ------------------------------------------------------------------------------

  function chooseEncoding(req: IncomingMessage): Compression | undefined {
    if (!compression) return undefined;
    const accepted = String(req.headers['accept-encoding'] ?? '')
      .split(',')
      .map((part) => part.split(';')[0]!.trim().toLowerCase());
    return accepted.includes(compression) ? compression : undefined;
  }

  function encoder(encoding: Compression): zlib.Gzip | zlib.Deflate | zlib.BrotliCompress {
    return encoding === 'gzip' ? zlib.createGzip() : encoding === 'deflate' ? zlib.createDeflate() : zlib.createBrotliCompress();
  }

  function send(req: IncomingMessage, res: ServerResponse, answer: HttpAnswer): void {
    const verbatim = Buffer.isBuffer(answer.body);
    const raw = Buffer.isBuffer(answer.body)
      ? answer.body
      : answer.body === undefined
        ? Buffer.alloc(0)
        : typeof answer.body === 'string'
          ? Buffer.from(answer.body)
          : Buffer.from(JSON.stringify(answer.body));
    const headers: Record<string, string> = {
      ...(verbatim || typeof answer.body === 'string' || answer.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...answer.headers,
    };
    const encoding = raw.length > 0 && !verbatim ? chooseEncoding(req) : undefined;
    const body = encoding ? compressSync(encoding, raw) : raw;
    if (encoding) {
      headers['content-encoding'] = encoding;
      headers.vary = 'accept-encoding';
    }
    res.writeHead(answer.status, { ...headers, 'content-length': String(body.length) });
    res.end(body);
  }

  async function sendStream(req: IncomingMessage, res: ServerResponse, events: string[], contentType: string, auth: ApiAuth): Promise<void> {
    const encoding = chooseEncoding(req);
    res.writeHead(200, {
      'content-type': contentType,
      'cache-control': 'no-cache',
      'x-fake-auth': auth,
      ...(encoding ? { 'content-encoding': encoding, vary: 'accept-encoding' } : {}),
    });
    const out = encoding ? encoder(encoding) : undefined;
    if (out) out.pipe(res);
    for (let i = 0; i < events.length; i++) {
      if (closed || res.destroyed) return;
      if (i > 0) await sleep(eventIntervalMs, res);
      if (res.destroyed) {
        streamsAbandoned++;
        return;
      }
      if (out) {
        out.write(events[i]!);
        await new Promise<void>((resolve) => out.flush(resolve));
      } else {
        res.write(events[i]!);
      }
    }
    if (out) out.end();
    else res.end();
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = new URL(req.url ?? '/', 'http://fake.invalid');
    let body: Buffer;
    try {
      body = await readBody(req, req.headers['content-encoding']);
    } catch {
      send(req, res, new HttpAnswer(400, { error: 'invalid_request', error_description: 'fake: request body could not be decoded' }));
      return;
    }
    const kind: RecordedRequest['kind'] =
      parsed.pathname === PATHS[provider].token ? 'token' : parsed.pathname === PATHS[provider].authorize ? 'authorize' : parsed.pathname.startsWith('/v1') ? 'api' : 'other';
    const recorded: RecordedRequest = { kind, method: req.method ?? 'GET', path: parsed.pathname, search: parsed.search, headers: req.headers, body };
    const contentType = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (body.length > 0 && (contentType === 'application/json' || contentType.endsWith('+json') || contentType === '')) {
      try {
        recorded.json = JSON.parse(body.toString('utf8'));
      } catch {
        /* not JSON */
      }
    }
    if (contentType === CONTENT_TYPE.form) recorded.form = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
    requests.push(recorded);

    const forbidden = Object.keys(req.headers).find((h) => h.startsWith('x-maestro-') || h === 'cookie' || h === 'proxy-authorization');
    if (forbidden) {
      send(req, res, new HttpAnswer(400, { error: 'invalid_request', error_description: `fake ${provider}: header ${forbidden} must never reach a provider` }));
      return;
    }

    if (kind === 'token') {
      await sleep(tokenDelayMs, res);
      // A client that gave up (timeout, abort) must not consume a scripted answer meant for a later request.
      if (closed || res.destroyed) return;
      const scripted = tokenScript.shift();
      let answer = scripted ? new HttpAnswer(scripted.status, scripted.body, scripted.headers) : handleToken(recorded);
      const reshape = !scripted && answer.status === 200 ? tokenReshapes.shift() : undefined;
      if (reshape) answer = new HttpAnswer(200, reshape(answer.body as Record<string, unknown>), answer.headers);
      // Rotated already: a client that stops waiting now has lost the only valid refresh token.
      if (holdAnswerMs > 0) await sleep(holdAnswerMs, res);
      if (res.destroyed) {
        if (!scripted && answer.status === 200) tokenAnswersLost++;
        return;
      }
      send(req, res, answer);
      return;
    }
    if (kind === 'authorize' && req.method === 'GET') {
      try {
        const result = authorize(`http://fake.invalid${req.url ?? '/'}`);
        res.writeHead(302, { location: result.redirectUrl }).end();
      } catch (err) {
        send(req, res, new HttpAnswer(400, { error: 'invalid_request', error_description: (err as Error).message }));
      }
      return;
    }
    if (kind === 'api') {
      await sleep(apiDelayMs, res);
      if (closed || res.destroyed) return;
      const scripted = apiScript.shift();
      if (scripted?.reset) {
        req.socket.destroy();
        return;
      }
      if (scripted) {
        send(req, res, new HttpAnswer(scripted.status, scripted.body, scripted.headers));
        return;
      }
      const checked = handleApiChecks(recorded);
      if (checked instanceof HttpAnswer) {
        send(req, res, checked);
        return;
      }
      const { auth, route: r } = checked;
      if (r.kind === 'stream') {
        await sendStream(req, res, sseEvents(), 'text/event-stream; charset=utf-8', auth);
      } else if (r.kind === 'gemini-array') {
        const chunks = Array.from({ length: eventCount }, (_, i) => geminiChunk(textChunk(i), i === eventCount - 1));
        send(req, res, new HttpAnswer(200, chunks, { 'x-fake-auth': auth }));
      } else if (r.kind === 'count') {
        send(req, res, new HttpAnswer(200, { input_tokens: 10 }, { 'x-fake-auth': auth }));
      } else {
        send(req, res, new HttpAnswer(200, completion(), { 'x-fake-auth': auth }));
      }
      return;
    }
    send(req, res, new HttpAnswer(404, { error: 'not_found', error_description: `fake ${provider}: no route ${req.method} ${parsed.pathname}` }));
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'fake_internal', error_description: String(err) }));
      } else {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  const overrides: ProviderOverrides = {
    baseUrl: url,
    oauthTokenUrl: `${url}${PATHS[provider].token}`,
    oauthAuthorizeUrl: `${url}${PATHS[provider].authorize}`,
    ...(opts.clientId ? { oauthClientId: opts.clientId } : {}),
    ...(opts.clientSecret ? { oauthClientSecret: opts.clientSecret } : {}),
    ...(opts.redirectUri ? { oauthRedirectUri: opts.redirectUri } : {}),
  };

  const seedTokens = (refreshToken: string, accessToken?: string) => {
    refreshTokens.set(refreshToken, 'valid');
    if (accessToken) accessTokens.set(accessToken, { expiresAtMs: Date.now() + ttlSec * 1000, revoked: false });
  };
  if (opts.initialRefreshToken) seedTokens(opts.initialRefreshToken);
  if (opts.initialAccessToken) accessTokens.set(opts.initialAccessToken, { expiresAtMs: Date.now() + ttlSec * 1000, revoked: false });

  return {
    provider,
    url,
    tokenUrl: overrides.oauthTokenUrl!,
    authorizeUrl: overrides.oauthAuthorizeUrl!,
    overrides,
    apiKey,
    accountId,
    requests,
    tokenRequests: () => requests.filter((r) => r.kind === 'token'),
    apiRequests: () => requests.filter((r) => r.kind === 'api'),
    seedTokens,
    issued,
    reusedRefreshTokens,
    authorize,
    failNextToken: (responses) => void tokenScript.push(...responses),
    failNextApi: (responses) => void apiScript.push(...responses),
    revokeAccessToken: (token) => {
      const entry = accessTokens.get(token);
      if (entry) entry.revoked = true;
      else accessTokens.set(token, { expiresAtMs: 0, revoked: true });
    },
    revokeAllRefreshTokens: () => {
      for (const token of refreshTokens.keys()) refreshTokens.set(token, 'revoked');
    },
    isAccessTokenValid: (token) => accessTokenProblem(token) === undefined,
    setTokenDelayMs: (ms) => void (tokenDelayMs = ms),
    setTokenAnswerHoldMs: (ms) => void (holdAnswerMs = ms),
    tokenAnswersLost: () => tokenAnswersLost,
    reshapeNextTokenAnswers: (reshapes) => void tokenReshapes.push(...reshapes),
    setApiDelayMs: (ms) => void (apiDelayMs = ms),
    streamsAbandoned: () => streamsAbandoned,
    setEventIntervalMs: (ms) => void (eventIntervalMs = ms),
    close: async () => {
      closed = true;
      for (const entry of [...timers]) entry.resolve();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

function sha256url(value: string): string {
  return createHash('sha256').update(value, 'ascii').digest('base64url');
}

/** An unsigned JWT-shaped token (the fake's tokens are opaque to Maestro except for their claims). */
export function fakeJwt(claims: Record<string, unknown>): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc(claims)}.${randomBytes(32).toString('base64url')}`;
}

function compressSync(encoding: Compression, data: Buffer): Buffer {
  return encoding === 'gzip' ? zlib.gzipSync(data) : encoding === 'deflate' ? zlib.deflateSync(data) : zlib.brotliCompressSync(data);
}

/**
 * Sends a ProviderCall (from buildProviderCall) the way the proxy would: body transformed,
 * content-length recomputed, the answer's content-encoding decoded.
 */
export async function sendProviderCall(
  call: { url: URL; headers: Record<string, string>; transformBody: ((body: Buffer) => Buffer) | undefined },
  init: { method?: string; body?: unknown } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; json: unknown }> {
  const raw = init.body === undefined ? undefined : Buffer.isBuffer(init.body) ? init.body : Buffer.from(JSON.stringify(init.body));
  const payload = raw && call.transformBody ? call.transformBody(raw) : raw;
  const res = await request(call.url, {
    method: (init.method ?? 'POST') as 'POST',
    headers: { ...call.headers, ...(payload ? { 'content-length': String(payload.length) } : {}) },
    body: payload,
  });
  const body = await readBody(res.body, res.headers['content-encoding']);
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, body, json };
}
