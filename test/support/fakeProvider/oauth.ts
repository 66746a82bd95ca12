// The fake provider's OAuth side: the authorize (consent) step and its codes, the token
// endpoint's checks and answers, and the state of every access and refresh token it knows.
import type { ProviderId } from '../../../src/config.js';
import { ANTHROPIC_DEFAULTS } from '../../../src/providers/anthropic.js';
import { GEMINI_DEFAULTS } from '../../../src/providers/gemini.js';
import { OPENAI_AUTH_CLAIM } from '../../../src/providers/openai.js';
import {
  CONTENT_TYPE,
  fakeJwt,
  hex,
  HttpAnswer,
  PATHS,
  sha256url,
  TOKEN_SHAPES,
  type AuthorizeResult,
  type Format,
  type RecordedRequest,
} from './wire.js';

export interface OAuthContext {
  provider: ProviderId;
  /** New single-use refresh token on every refresh. */
  rotate: boolean;
  /** Lifetime of issued and seeded access tokens (expires_in). */
  ttlSec: number;
  /** What the authorize step and the token endpoint expect from the client. */
  expected: { clientId: string; clientSecret: string | undefined; redirectUri: string };
  /** openai: the chatgpt_account_id in issued id/access tokens. */
  accountId: string;
  /** Told of every successful refresh (per-account mode keeps the account across refreshes). */
  onRefresh?(presented: string, accessToken: string, nextRefreshToken: string | undefined): void;
}

export function createOAuthSide(ctx: OAuthContext) {
  const { provider, rotate, ttlSec, expected, accountId } = ctx;
  const issued = { accessTokens: [] as string[], refreshTokens: [] as string[] };
  const reusedRefreshTokens: string[] = [];
  const refreshTokens = new Map<string, 'valid' | 'used' | 'revoked'>();
  const accessTokens = new Map<string, { expiresAtMs: number; revoked: boolean }>();
  const codes = new Map<string, { challenge: string; redirectUri: string; state: string; used: boolean }>();

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
    const token =
      provider === 'anthropic' ? `sk-ant-ort01-fake${hex(24)}` : provider === 'openai' ? `rt_fake${hex(24)}` : `1//fake${hex(24)}`;
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
    if (req.method !== 'POST')
      return new HttpAnswer(405, { error: 'invalid_request', error_description: 'fake: token endpoint takes POST' });
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const format: Format | undefined = contentType === CONTENT_TYPE.json ? 'json' : contentType === CONTENT_TYPE.form ? 'form' : undefined;
    if (!format) return invalidRequest(`unsupported content-type "${contentType}"`);
    const params = format === 'json' ? req.json : req.form;
    if (params === null || typeof params !== 'object' || Array.isArray(params)) return invalidRequest('body is not a JSON object');
    const p = params as Record<string, unknown>;
    const grant = p.grant_type;
    if (grant !== 'authorization_code' && grant !== 'refresh_token') {
      return new HttpAnswer(400, {
        error: 'unsupported_grant_type',
        error_description: `fake ${provider}: grant_type must be authorization_code or refresh_token`,
      });
    }
    const shape = TOKEN_SHAPES[provider][grant];
    if (format !== shape.format) return invalidRequest(`${grant} expects ${CONTENT_TYPE[shape.format]}, got ${contentType}`);
    const keys = Object.keys(p);
    const missing = shape.keys.filter((k) => !keys.includes(k));
    const extra = keys.filter((k) => !shape.keys.includes(k));
    if (missing.length || extra.length) {
      return invalidRequest(
        `${grant} body keys wrong${missing.length ? `; missing ${missing.join(', ')}` : ''}${extra.length ? `; unexpected ${extra.join(', ')}` : ''}`,
      );
    }
    const notString = keys.filter((k) => typeof p[k] !== 'string');
    if (notString.length) return invalidRequest(`${notString.join(', ')} must be strings`);
    const v = p as Record<string, string>;
    if (v.client_id !== expected.clientId)
      return new HttpAnswer(401, { error: 'invalid_client', error_description: 'fake: unknown client_id' });
    if ('client_secret' in v && v.client_secret !== expected.clientSecret) {
      return new HttpAnswer(401, { error: 'invalid_client', error_description: 'fake: wrong client_secret' });
    }

    if (grant === 'authorization_code') {
      const entry = codes.get(v.code!);
      if (!entry || entry.used) return grantError(400, 'invalid_grant', 'Invalid authorization code');
      if (v.redirect_uri !== entry.redirectUri)
        return grantError(400, 'invalid_grant', 'redirect_uri does not match the authorization request');
      if (sha256url(v.code_verifier!) !== entry.challenge)
        return grantError(400, 'invalid_grant', 'code_verifier does not match the code challenge');
      if ('state' in v && v.state !== entry.state)
        return grantError(400, 'invalid_grant', 'state does not match the authorization request');
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
    const accessToken = newAccessToken();
    ctx.onRefresh?.(presented, accessToken, nextRefresh);
    return new HttpAnswer(200, tokenAnswer(accessToken, nextRefresh));
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

  // --- seeding, revoking, checking ------------------------------------------------------------

  /** Makes accessToken valid for ttlSec from now. */
  function seedAccessToken(accessToken: string): void {
    accessTokens.set(accessToken, { expiresAtMs: Date.now() + ttlSec * 1000, revoked: false });
  }

  /** Makes refreshToken valid (and accessToken, when given). */
  function seedTokens(refreshToken: string, accessToken?: string): void {
    refreshTokens.set(refreshToken, 'valid');
    if (accessToken) seedAccessToken(accessToken);
  }

  function revokeAccessToken(token: string): void {
    const entry = accessTokens.get(token);
    if (entry) entry.revoked = true;
    else accessTokens.set(token, { expiresAtMs: 0, revoked: true });
  }

  function revokeAllRefreshTokens(): void {
    for (const token of refreshTokens.keys()) refreshTokens.set(token, 'revoked');
  }

  /** Why the API endpoints would refuse token now, or undefined when they would accept it. */
  function accessTokenProblem(token: string): string | undefined {
    const entry = accessTokens.get(token);
    if (!entry) return 'Invalid bearer token';
    if (entry.revoked) return 'OAuth token has been revoked';
    if (Date.now() >= entry.expiresAtMs) return 'OAuth token has expired';
    return undefined;
  }

  return {
    issued,
    reusedRefreshTokens,
    handleToken,
    authorize,
    seedTokens,
    seedAccessToken,
    revokeAccessToken,
    revokeAllRefreshTokens,
    accessTokenProblem,
  };
}
