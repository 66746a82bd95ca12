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
// Sign-in APIs (overrides.oauthBaseUrl points at them): openai Codex POST /backend-api/codex/responses
// (fakeProvider/codex.ts), gemini Code Assist POST /v1internal:{method} (fakeProvider/codeAssist.ts).
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
//
// Per-account mode (anthropic, `accounts: {alice: {token, refreshToken?}, …}`): each account keeps
// its own 5h / 7d / 7d_opus windows, every /v1/messages answer carries its unified rate-limit
// headers, and `fake.accounts` exhausts, resets early, scripts failures and sets overage
// (fakeProvider/accounts.ts). Without `accounts` nothing changes.
//
// Layout: fakeProvider/wire.ts (shared types, paths, token shapes, answer plumbing),
// fakeProvider/oauth.ts (authorize step, token endpoint, token state), fakeProvider/api.ts (API
// checks and answers), fakeProvider/accounts.ts (per-account windows); this file wires them to the HTTP server with the scripts, delays and holds.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import type { ProviderId, ProviderOverrides } from '../../src/config.js';
import { readBody } from '../../src/auth/http.js';
import { createAccounts, type AccountSeed, type FakeAccounts } from './fakeProvider/accounts.js';
import { createApiSide } from './fakeProvider/api.js';
import { createOAuthSide } from './fakeProvider/oauth.js';
import { CODEX_PATH, createCodexSide } from './fakeProvider/codex.js';
import { createCodeAssistSide, type CodeAssistOptions } from './fakeProvider/codeAssist.js';
import { createQuotaSide, type FakeQuotaWindow } from './fakeProvider/quota.js';
import {
  CONTENT_TYPE,
  createSender,
  DEFAULTS,
  hex,
  HttpAnswer,
  PATHS,
  type AuthorizeResult,
  type Compression,
  type RecordedRequest,
  type ScriptedResponse,
} from './fakeProvider/wire.js';

export type {
  AccountFailure,
  AccountSeed,
  AccountSnapshot,
  AccountWindow,
  FakeAccounts,
  OAuthUsageAnswer,
  OverageMode,
} from './fakeProvider/accounts.js';
export type { FakeQuotaWindow } from './fakeProvider/quota.js';
export { fakeJwt, type AuthorizeResult, type Compression, type RecordedRequest, type ScriptedResponse } from './fakeProvider/wire.js';

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
  /** gemini: how the fake Code Assist sets up the signed-in account (fakeProvider/codeAssist.ts). */
  codeAssist?: CodeAssistOptions;
  /**
   * anthropic: several subscription accounts, each with its own windows, found by the access token
   * of a call (fakeProvider/accounts.ts). Without it the fake behaves as one unlimited account.
   */
  accounts?: Record<string, AccountSeed>;
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
  /** gemini: the Code Assist project of the signed-in account, and how often each Code Assist method was called. */
  codeAssistProject: string;
  codeAssistCalls(): Record<string, number>;
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
  /** From now on, a streamed answer stops before its first event containing `text` until the client leaves (undefined: never). */
  holdStreamBefore(text: string | undefined): void;
  /** From now on, the sign-in APIs' (Codex, Code Assist) streamed answers carry these headers too (rate-limit state, say). */
  setSignInAnswerHeaders(headers: Record<string, string>): void;
  /** Streamed answers cut short because the client (the proxy) closed the connection. */
  streamsAbandoned(): number;
  /** Per-account mode (options.accounts): each account's windows, exhaustion and scripted failures. */
  accounts: FakeAccounts;
  /** Quota endpoint (fakeProvider/quota.ts): its requests, windows (percent), scripts. */
  quotaRequests(): RecordedRequest[];
  setQuotaWindow(name: string, window: FakeQuotaWindow | null): void;
  setQuotaLimitsOnly(on: boolean): void;
  /** openai: the `credits` object the quota answer carries (undefined: none). */
  setQuotaCredits(value: unknown): void;
  failNextQuota(responses: ScriptedResponse[]): void;
  answerQuotaAlways(response: ScriptedResponse | undefined): void;
  /** Quota answers wait this long (a read in flight that others must share). */
  setQuotaDelayMs(ms: number): void;
  close(): Promise<void>;
}

export async function startFakeProvider(opts: FakeProviderOptions): Promise<FakeProvider> {
  const provider = opts.provider;
  const accountId = opts.accountId ?? `acct_${hex(8)}`;
  const apiKey =
    opts.apiKey ??
    (provider === 'anthropic' ? `sk-ant-api03-fake${hex(16)}` : provider === 'openai' ? `sk-proj-fake${hex(16)}` : `AIzaFake${hex(16)}`);
  const eventCount = opts.eventCount ?? 5;
  let eventIntervalMs = opts.eventIntervalMs ?? 0;
  const compression: Compression | undefined = opts.compress === true ? 'gzip' : opts.compress || undefined;
  if (opts.accounts && provider !== 'anthropic') throw new Error('fake: accounts are an anthropic-only mode');
  const accounts = createAccounts(opts.accounts ?? {});
  const oauth = createOAuthSide({
    provider,
    rotate: opts.rotateRefreshTokens ?? provider !== 'gemini',
    ttlSec: opts.accessTokenTtlSec ?? 3600,
    expected: {
      clientId: opts.clientId ?? DEFAULTS[provider].clientId,
      clientSecret: opts.clientSecret ?? DEFAULTS[provider].clientSecret,
      redirectUri: opts.redirectUri ?? DEFAULTS[provider].redirectUri,
    },
    accountId,
    onRefresh: accounts.onRefresh,
  });
  const api = createApiSide({
    provider,
    apiKey,
    accountId,
    eventCount,
    requireClaudeCodeSystem: opts.requireClaudeCodeSystem ?? true,
    accessTokenProblem: oauth.accessTokenProblem,
  });

  // The APIs that accept sign-in tokens, on the same server: Codex under /backend-api/codex, Code Assist at /v1internal:*.
  const codex = createCodexSide({ accountId, eventCount, accessTokenProblem: oauth.accessTokenProblem });
  const codeAssist = createCodeAssistSide({ ...opts.codeAssist, eventCount, accessTokenProblem: oauth.accessTokenProblem });
  const quota = createQuotaSide({
    provider,
    accountId,
    project: codeAssist.project,
    accessTokenProblem: oauth.accessTokenProblem,
    accountQuota: (token) => {
      const name = accounts.accountOf(token);
      return name === undefined ? undefined : accounts.api.quota(name);
    },
  });
  const signInApi = (path: string) =>
    provider === 'openai' && path.startsWith(`${CODEX_PATH}/`)
      ? codex
      : provider === 'gemini' && /^\/v1internal[:/]/.test(path)
        ? codeAssist
        : undefined;

  const requests: RecordedRequest[] = [];
  const tokenScript: ScriptedResponse[] = [];
  const apiScript: ScriptedResponse[] = [];
  let tokenDelayMs = 0;
  let holdAnswerMs = 0;
  let tokenAnswersLost = 0;
  const tokenReshapes: Array<(body: Record<string, unknown>) => unknown> = [];
  let streamsAbandoned = 0;
  let apiDelayMs = 0;
  let quotaDelayMs = 0;
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

  let holdBefore: string | undefined;
  let signInHeaders: Record<string, string> = {};
  const { send, sendStream } = createSender(compression, {
    pause: (res) => sleep(eventIntervalMs, res),
    closed: () => closed,
    abandoned: () => void streamsAbandoned++,
    // Until the client leaves (the fake's own close and a 60 s bound end it too: no test hangs on it).
    hold: (event, res) =>
      holdBefore !== undefined && event.includes(holdBefore) && !res.destroyed ? sleep(60_000, res) : Promise.resolve(),
  });

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
      quota.path !== undefined && parsed.pathname === quota.path
        ? 'quota'
        : parsed.pathname === PATHS[provider].token
          ? 'token'
          : parsed.pathname === PATHS[provider].authorize
            ? 'authorize'
            : parsed.pathname.startsWith('/v1') || signInApi(parsed.pathname)
              ? 'api'
              : 'other';
    const recorded: RecordedRequest = {
      kind,
      method: req.method ?? 'GET',
      path: parsed.pathname,
      search: parsed.search,
      headers: req.headers,
      body,
    };
    const contentType = String(req.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim()
      .toLowerCase();
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
      send(
        req,
        res,
        new HttpAnswer(400, {
          error: 'invalid_request',
          error_description: `fake ${provider}: header ${forbidden} must never reach a provider`,
        }),
      );
      return;
    }

    if (kind === 'token') {
      await sleep(tokenDelayMs, res);
      // A client that gave up (timeout, abort) must not consume a scripted answer meant for a later request.
      if (closed || res.destroyed) return;
      const scripted = tokenScript.shift();
      let answer = scripted ? new HttpAnswer(scripted.status, scripted.body, scripted.headers) : oauth.handleToken(recorded);
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
    if (kind === 'quota') {
      await sleep(quotaDelayMs, res);
      if (closed || res.destroyed) return;
      send(req, res, quota.handle(recorded));
      return;
    }
    if (kind === 'authorize' && req.method === 'GET') {
      try {
        const result = oauth.authorize(`http://fake.invalid${req.url ?? '/'}`);
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
      const backend = signInApi(recorded.path);
      if (backend) {
        const handled = backend.handle(recorded);
        if (handled instanceof HttpAnswer) send(req, res, handled);
        else await sendStream(req, res, handled.events, 'text/event-stream; charset=utf-8', 'oauth', signInHeaders);
        return;
      }
      const checked = api.handleApiChecks(recorded);
      if (checked instanceof HttpAnswer) {
        send(req, res, checked);
        return;
      }
      const { auth, route: r } = checked;
      const authorization = recorded.headers.authorization;
      const account =
        auth === 'oauth' && recorded.path === '/v1/messages' && typeof authorization === 'string'
          ? accounts.accountOf(/^Bearer (.+)$/.exec(authorization)?.[1])
          : undefined;
      if (account !== undefined) {
        await answerForAccount(req, res, recorded, account, r.kind === 'stream', auth);
        return;
      }
      if (r.kind === 'stream') {
        await sendStream(req, res, api.sseEvents(recorded.json), 'text/event-stream; charset=utf-8', auth);
      } else {
        send(req, res, api.answer(r, auth));
      }
      return;
    }
    send(
      req,
      res,
      new HttpAnswer(404, { error: 'not_found', error_description: `fake ${provider}: no route ${req.method} ${parsed.pathname}` }),
    );
  }

  /** A /v1/messages call of one account (per-account mode): refused, failed as scripted, or served and counted. */
  async function answerForAccount(
    req: IncomingMessage,
    res: ServerResponse,
    recorded: RecordedRequest,
    account: string,
    stream: boolean,
    auth: 'oauth' | 'api_key',
  ): Promise<void> {
    const model = (recorded.json as { model?: unknown } | undefined)?.model;
    const modelName = typeof model === 'string' ? model : undefined;
    const decision = accounts.decide(account, modelName, stream);
    if (decision.kind === 'answer') return send(req, res, decision.answer);
    if (decision.kind === 'stream-error') {
      await sendStream(req, res, decision.events, 'text/event-stream; charset=utf-8', auth, decision.headers);
      return;
    }
    // Served: the tokens the answer reports (input 10, output 5 or one per event) are spent first, so a test reading the account after the answer sees them.
    accounts.spend(account, modelName, 10 + (stream ? eventCount : 5));
    if (stream) {
      await sendStream(req, res, api.sseEvents(recorded.json), 'text/event-stream; charset=utf-8', auth, decision.headers);
      return;
    }
    const answer = api.answer({ kind: 'json' }, auth);
    send(req, res, new HttpAnswer(answer.status, answer.body, { ...decision.headers, ...answer.headers }));
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
    ...(provider === 'openai' ? { oauthBaseUrl: `${url}${CODEX_PATH}` } : provider === 'gemini' ? { oauthBaseUrl: url } : {}),
    oauthTokenUrl: `${url}${PATHS[provider].token}`,
    oauthAuthorizeUrl: `${url}${PATHS[provider].authorize}`,
    ...(opts.clientId ? { oauthClientId: opts.clientId } : {}),
    ...(opts.clientSecret ? { oauthClientSecret: opts.clientSecret } : {}),
    ...(opts.redirectUri ? { oauthRedirectUri: opts.redirectUri } : {}),
  };

  if (opts.initialRefreshToken) oauth.seedTokens(opts.initialRefreshToken);
  if (opts.initialAccessToken) oauth.seedAccessToken(opts.initialAccessToken);
  for (const seed of Object.values(opts.accounts ?? {})) {
    if (seed.refreshToken) oauth.seedTokens(seed.refreshToken, seed.token);
    else if (seed.token) oauth.seedAccessToken(seed.token);
  }

  return {
    provider,
    url,
    tokenUrl: overrides.oauthTokenUrl!,
    authorizeUrl: overrides.oauthAuthorizeUrl!,
    overrides,
    apiKey,
    accountId,
    codeAssistProject: codeAssist.project,
    codeAssistCalls: codeAssist.calls,
    requests,
    tokenRequests: () => requests.filter((r) => r.kind === 'token'),
    apiRequests: () => requests.filter((r) => r.kind === 'api'),
    seedTokens: oauth.seedTokens,
    issued: oauth.issued,
    reusedRefreshTokens: oauth.reusedRefreshTokens,
    authorize: oauth.authorize,
    failNextToken: (responses) => void tokenScript.push(...responses),
    failNextApi: (responses) => void apiScript.push(...responses),
    revokeAccessToken: oauth.revokeAccessToken,
    revokeAllRefreshTokens: oauth.revokeAllRefreshTokens,
    isAccessTokenValid: (token) => oauth.accessTokenProblem(token) === undefined,
    setTokenDelayMs: (ms) => void (tokenDelayMs = ms),
    setTokenAnswerHoldMs: (ms) => void (holdAnswerMs = ms),
    tokenAnswersLost: () => tokenAnswersLost,
    reshapeNextTokenAnswers: (reshapes) => void tokenReshapes.push(...reshapes),
    setApiDelayMs: (ms) => void (apiDelayMs = ms),
    streamsAbandoned: () => streamsAbandoned,
    quotaRequests: () => requests.filter((r) => r.kind === 'quota'),
    setQuotaWindow: quota.setQuotaWindow,
    setQuotaLimitsOnly: quota.setQuotaLimitsOnly,
    setQuotaCredits: quota.setQuotaCredits,
    failNextQuota: quota.failNextQuota,
    answerQuotaAlways: quota.answerQuotaAlways,
    setQuotaDelayMs: (ms) => void (quotaDelayMs = ms),
    setEventIntervalMs: (ms) => void (eventIntervalMs = ms),
    holdStreamBefore: (text) => void (holdBefore = text),
    setSignInAnswerHeaders: (headers) => void (signInHeaders = headers),
    accounts: accounts.api,
    close: async () => {
      closed = true;
      for (const entry of [...timers]) entry.resolve();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
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
