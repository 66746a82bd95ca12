// Token-endpoint calls (code exchange and refresh), driven by each provider's data, with
// failures classified into the errors the refresh workflow acts on:
//   ReauthRequiredError          the grant is dead (invalid_grant, reused/expired/revoked refresh token)
//   MisconfiguredError           Maestro's OAuth client configuration is wrong
//   ProviderUnavailableError     429 (retryAfterSeconds from Retry-After), 5xx, other 4xx, timeouts, network errors
//   MalformedTokenResponseError  a 2xx answer without a usable access token (kept sealed by the caller; not retried at once)
// A refresh is two steps, so the caller can make the answer durable in between: requestRefresh
// sends the request and returns the raw 2xx answer (once sent, it waits until the caller's signal
// aborts, never on a timer: a late answer from a provider that already rotated must not be
// dropped); parseTokenAnswer then keeps any answer with an access token, whatever its other fields.
// Messages carry the provider's error code and a sanitised description only: never a token,
// a code, a verifier, a client secret or the raw body.
import { request } from 'undici';
import {
  MaestroError,
  MalformedTokenResponseError,
  MisconfiguredError,
  parseRetryAfter,
  ProviderUnavailableError,
  ReauthRequiredError,
} from '../errors.js';
import { safeText } from '../redact.js';
import type { AccountIdSource, ParamList, ProviderDefinition, TokenBodyFormat, TokenSet } from '../providers/types.js';
import { readBody } from './http.js';
import { isStorableDate } from '../dates.js';
import { assertOAuthConfigured, fillParams } from './pkce.js';

export const DEFAULT_TOKEN_TIMEOUT_MS = 15_000;
/** Token answers are small; anything bigger is not one. */
const TOKEN_BODY_LIMIT_BYTES = 256 * 1024;

export interface TokenCallOptions {
  signal?: AbortSignal;
  /** Whole-call timeout (connect, headers and body); default 15 s. */
  timeoutMs?: number;
}

/** A token endpoint's 2xx answer as it arrived: the body text and when the request left (ms since epoch). */
export interface TokenAnswer {
  body: string;
  startedAt: number;
}

/** A usable token answer, and the names (never values) of fields with an unexpected shape or not in OAuth's set. */
export interface ParsedTokenAnswer {
  tokens: TokenSet;
  oddFields: string[];
  extraFields: string[];
}

export async function exchangeCode(
  def: ProviderDefinition,
  input: { code: string; verifier: string; state: string; redirectUri: string },
  opts: TokenCallOptions = {},
): Promise<TokenSet> {
  const { clientId, clientSecret } = assertOAuthConfigured(def);
  const answer = await tokenRequest(
    def,
    'code exchange',
    def.oauth.exchange,
    {
      clientId,
      clientSecret,
      code: input.code,
      verifier: input.verifier,
      state: input.state,
      redirectUri: input.redirectUri,
      scopes: def.oauth.scopes,
    },
    [input.code, input.verifier, clientSecret],
    // A person waits for a login: the exchange keeps a whole-call timeout.
    { timeoutMs: DEFAULT_TOKEN_TIMEOUT_MS, ...opts },
  );
  return parseTokenAnswer(def, answer, 'code exchange').tokens;
}

/** A provider that sends no new refresh token → TokenSet.refreshToken is undefined (keep the old one). */
export async function refreshAccessToken(def: ProviderDefinition, refreshToken: string, opts: TokenCallOptions = {}): Promise<TokenSet> {
  const answer = await requestRefresh(def, refreshToken, { timeoutMs: DEFAULT_TOKEN_TIMEOUT_MS, ...opts });
  return parseTokenAnswer(def, answer).tokens;
}

/**
 * Sends a refresh request and returns the raw 2xx answer (errors classified as above). Without
 * `timeoutMs` there is no timer: after connecting, only `signal` ends the wait.
 */
export async function requestRefresh(def: ProviderDefinition, refreshToken: string, opts: TokenCallOptions = {}): Promise<TokenAnswer> {
  const { clientId, clientSecret } = assertOAuthConfigured(def);
  if (!refreshToken) throw new ReauthRequiredError(`${def.displayName} credential has no refresh token; sign in again`);
  return tokenRequest(
    def,
    'refresh',
    def.oauth.refresh,
    { clientId, clientSecret, refreshToken, scopes: def.oauth.scopes },
    [refreshToken, clientSecret],
    opts,
  );
}

/** The tokens of a 2xx answer; MalformedTokenResponseError only when there is no usable access token. */
export function parseTokenAnswer(
  def: ProviderDefinition,
  answer: TokenAnswer,
  what: 'code exchange' | 'refresh' = 'refresh',
): ParsedTokenAnswer {
  return parseTokenResponse(def, `${def.displayName} token ${what}`, answer.body, answer.startedAt);
}

// ---------------------------------------------------------------------------------------------

async function tokenRequest(
  def: ProviderDefinition,
  what: 'code exchange' | 'refresh',
  spec: { format: TokenBodyFormat; params: ParamList },
  values: Record<string, string | undefined>,
  secrets: Array<string | undefined>,
  opts: TokenCallOptions,
): Promise<TokenAnswer> {
  const label = `${def.displayName} token ${what}`;
  const params = fillParams(spec.params, values);
  const body = spec.format === 'json' ? JSON.stringify(Object.fromEntries(params)) : new URLSearchParams(params).toString();
  const headers: Record<string, string> = {
    ...def.oauth.tokenHeaders,
    'content-type': spec.format === 'json' ? 'application/json' : 'application/x-www-form-urlencoded',
    accept: 'application/json',
    'accept-encoding': 'gzip, deflate, br',
  };

  // No timeoutMs: wait for the answer until the caller aborts (undici's own header and body
  // timers are off too; connecting still times out).
  const timeoutMs = opts.timeoutMs;
  const timeout = new AbortController();
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => timeout.abort(new Error('timeout')), timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout.signal]) : timeout.signal;
  const untimed = timeoutMs === undefined ? { headersTimeout: 0, bodyTimeout: 0 } : {};
  const startedAt = Date.now();

  try {
    let status: number;
    let responseHeaders: Record<string, string | string[] | undefined>;
    let raw: Buffer;
    try {
      const res = await request(def.oauth.tokenUrl, { method: 'POST', headers, body, signal, ...untimed });
      status = res.statusCode;
      responseHeaders = res.headers;
      try {
        raw = await readBody(res.body, res.headers['content-encoding'], TOKEN_BODY_LIMIT_BYTES);
      } catch (err) {
        if (err instanceof MaestroError) {
          if (status >= 200 && status < 300)
            throw new MalformedTokenResponseError(`${label}: the answer could not be read (${err.message})`);
          raw = Buffer.alloc(0);
        } else {
          throw err;
        }
      }
    } catch (err) {
      if (err instanceof MaestroError) throw err;
      if (opts.signal?.aborted) throw opts.signal.reason ?? err;
      if (timeout.signal.aborted) {
        throw new ProviderUnavailableError(`${label} timed out after ${timeoutMs} ms`, undefined, { cause: err });
      }
      throw new ProviderUnavailableError(`${label} failed: ${networkErrorCode(err)}`, undefined, { cause: err });
    }

    if (status >= 200 && status < 300) return { body: raw.toString('utf8'), startedAt };
    throw classifyFailure(def, label, status, responseHeaders, raw, secrets);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

const KNOWN_FIELDS = new Set(['access_token', 'refresh_token', 'id_token', 'expires_in', 'token_type', 'scope']);

const nonEmptyString = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);

/**
 * Lenient on purpose: the refresh token is already spent when this runs, so any answer with an
 * access token is kept. Fields of an unexpected shape are ignored and reported by name.
 */
function parseTokenResponse(def: ProviderDefinition, label: string, text: string, startedAt: number): ParsedTokenAnswer {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new MalformedTokenResponseError(`${label}: the answer is not JSON`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new MalformedTokenResponseError(`${label}: the answer is not a JSON object`);
  const t = json as Record<string, unknown>;
  const accessToken = nonEmptyString(t.access_token);
  if (!accessToken) throw new MalformedTokenResponseError(`${label}: the answer has no usable access_token`);
  const oddFields: string[] = [];
  const optionalString = (field: string): string | undefined => {
    const value = t[field];
    if (value === undefined || value === null) return undefined;
    const usable = nonEmptyString(value);
    if (!usable) oddFields.push(field);
    return usable;
  };
  const refreshToken = optionalString('refresh_token');
  const idToken = optionalString('id_token');
  optionalString('token_type');
  let scope: string | undefined;
  if (Array.isArray(t.scope) && t.scope.every((s) => typeof s === 'string')) scope = t.scope.join(' ');
  else scope = optionalString('scope');

  let expiresIn: number | undefined;
  if (typeof t.expires_in === 'number' || (typeof t.expires_in === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(t.expires_in))) {
    const n = Number(t.expires_in);
    if (Number.isFinite(n) && n >= 0) expiresIn = n;
  }
  if (expiresIn === undefined && t.expires_in !== undefined && t.expires_in !== null) oddFields.push('expires_in');
  let expiresAt: Date | null = null;
  if (expiresIn !== undefined) {
    // Counted from when the request left: never later than the provider meant.
    expiresAt = new Date(startedAt + Math.round(expiresIn * 1000));
  } else {
    const exp = jwtClaims(accessToken)?.exp;
    if (typeof exp === 'number' && Number.isFinite(exp)) expiresAt = new Date(exp * 1000);
  }
  // A date Temporal and PostgreSQL cannot hold is no expiry at all (refreshed only on request).
  if (expiresAt && !isStorableDate(expiresAt)) {
    oddFields.push('expires_in');
    expiresAt = null;
  }

  const tokens: TokenSet = { accessToken, expiresAt };
  if (refreshToken) tokens.refreshToken = refreshToken;
  if (idToken) tokens.idToken = idToken;
  if (scope) tokens.scope = scope;
  const accountId = findAccountId(def.oauth.accountId, json, accessToken, idToken);
  if (accountId) tokens.accountId = accountId;
  const extraFields = Object.keys(t)
    .filter((key) => !KNOWN_FIELDS.has(key))
    .slice(0, 20)
    .map((key) => key.slice(0, 40));
  return { tokens, oddFields, extraFields };
}

function findAccountId(
  sources: AccountIdSource[],
  response: unknown,
  accessToken: string,
  idToken: string | undefined,
): string | undefined {
  for (const source of sources) {
    const root =
      source.from === 'response'
        ? response
        : source.from === 'id_token_claims'
          ? idToken
            ? jwtClaims(idToken)
            : undefined
          : jwtClaims(accessToken);
    let value: unknown = root;
    for (const key of source.path) {
      value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
    }
    if (typeof value === 'string' && value !== '') return value;
  }
  return undefined;
}

/** The claims of a JWT, unverified (only ever used for metadata: account id and expiry). */
export function jwtClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    return claims !== null && typeof claims === 'object' && !Array.isArray(claims) ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------

interface ProviderErrorInfo {
  code?: string;
  description?: string;
}

/** OAuth errors come as {error, error_description}, {error: {code|type, message}}, or {code, message}. */
function readErrorInfo(raw: Buffer): ProviderErrorInfo {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    return {};
  }
  if (json === null || typeof json !== 'object') return {};
  const o = json as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  if (typeof o.error === 'string') return { code: o.error, description: str(o.error_description) ?? str(o.message) };
  if (o.error !== null && typeof o.error === 'object') {
    const e = o.error as Record<string, unknown>;
    return { code: str(e.code) ?? str(e.type), description: str(e.message) ?? str(e.description) };
  }
  return { code: str(o.code), description: str(o.message) ?? str(o.error_description) };
}

function classifyFailure(
  def: ProviderDefinition,
  label: string,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  raw: Buffer,
  secrets: Array<string | undefined>,
): MaestroError {
  const rules = def.oauth.errors;
  const info = readErrorInfo(raw);
  const code = info.code ? (/^[A-Za-z0-9_.-]{1,64}$/.test(info.code) ? sanitize(info.code, secrets, 64) : 'unrecognised_error') : undefined;
  const description = info.description ? sanitize(info.description, secrets, 200) : undefined;
  const detail = `${status}${code ? ` ${code}` : ''}${description ? `: ${description}` : ''}`;
  const lowerCode = info.code?.toLowerCase();

  if (status === 429 || status === 408 || status === 425 || status >= 500) {
    return new ProviderUnavailableError(`${label} failed (${detail})`, parseRetryAfter(headers['retry-after']));
  }
  if (lowerCode && rules.reauthCodes.includes(lowerCode)) {
    return new ReauthRequiredError(`${label} refused the grant (${detail}); sign in again`);
  }
  if (lowerCode && rules.misconfiguredCodes.includes(lowerCode)) {
    return new MisconfiguredError(`${label} rejected Maestro's OAuth client (${detail}); check the ${def.id} OAuth settings`);
  }
  if ((status === 400 || status === 401) && info.description && rules.reauthDescriptions.some((re) => re.test(info.description!))) {
    return new ReauthRequiredError(`${label} refused the grant (${detail}); sign in again`);
  }
  if (status === 401) {
    return rules.unauthorizedWithoutCode === 'reauth'
      ? new ReauthRequiredError(`${label} refused the grant (${detail}); sign in again`)
      : new MisconfiguredError(`${label} rejected Maestro's OAuth client (${detail}); check the ${def.id} OAuth settings`);
  }
  if (status === 400) {
    // A request the provider calls malformed will not get better by retrying: the wire format
    // or the client configuration needs fixing.
    return new MisconfiguredError(`${label} rejected the request (${detail})`);
  }
  // 403/404/other: often a gateway or firewall in front of the endpoint; retry later.
  return new ProviderUnavailableError(`${label} failed (${detail})`, parseRetryAfter(headers['retry-after']));
}

/** Provider text made safe for an error message: printable, short, and without anything secret-shaped. */
const sanitize = (text: string, secrets: Array<string | undefined>, max: number) => safeText(text, { knownSecrets: secrets, max });

function networkErrorCode(err: unknown): string {
  const seen = new Set<unknown>();
  let e: unknown = err;
  while (e && typeof e === 'object' && !seen.has(e)) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z0-9_]{2,40}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return 'network error';
}
