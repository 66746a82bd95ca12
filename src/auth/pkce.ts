// PKCE (RFC 7636, S256) login start, and reading the code a user pastes back.
import { createHash, randomBytes } from 'node:crypto';
import { MisconfiguredError, ValidationError } from '../errors.js';
import type { ParamList, ProviderDefinition } from '../providers/types.js';

export interface LoginStart {
  /** base64url of 32 random bytes (43 characters). Secret: seal it, never log it. */
  verifier: string;
  /** base64url of 32 random bytes. */
  state: string;
  authorizeUrl: string;
  redirectUri: string;
}

export function base64url(bytes: Buffer): string {
  return bytes.toString('base64url');
}

/** S256 code challenge: base64url(sha256(verifier)). */
export function codeChallenge(verifier: string): string {
  return base64url(createHash('sha256').update(verifier, 'ascii').digest());
}

/** Throws MisconfiguredError when the provider cannot run OAuth with the current configuration. */
export function assertOAuthConfigured(def: ProviderDefinition): { clientId: string; clientSecret: string | undefined } {
  const { clientId, clientSecret, requiresClientSecret } = def.oauth;
  const prefix = `MAESTRO_${def.id.toUpperCase()}`;
  if (!clientId) throw new MisconfiguredError(`${def.displayName} OAuth needs a client id (${prefix}_OAUTH_CLIENT_ID)`);
  if (requiresClientSecret && !clientSecret) {
    throw new MisconfiguredError(`${def.displayName} OAuth needs a client secret (${prefix}_OAUTH_CLIENT_SECRET)`);
  }
  return { clientId, clientSecret };
}

/** Fills `{name}` placeholders; a parameter whose placeholder has no value is left out. */
export function fillParams(params: ParamList, values: Record<string, string | undefined>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [name, template] of params) {
    const match = /^\{(\w+)\}$/.exec(template);
    if (!match) {
      out.push([name, template]);
      continue;
    }
    const value = values[match[1]!];
    if (value !== undefined && value !== '') out.push([name, value]);
  }
  return out;
}

export function startLogin(def: ProviderDefinition): LoginStart {
  const { clientId } = assertOAuthConfigured(def);
  const verifier = base64url(randomBytes(32));
  const state = base64url(randomBytes(32));
  const redirectUri = def.oauth.redirectUri;
  const url = new URL(def.oauth.authorizeUrl);
  for (const [name, value] of fillParams(def.oauth.authorizeParams, {
    clientId,
    redirectUri,
    scopes: def.oauth.scopes,
    challenge: codeChallenge(verifier),
    state,
  })) {
    url.searchParams.append(name, value);
  }
  return { verifier, state, authorizeUrl: url.toString(), redirectUri };
}

// Codes seen in the wild: Anthropic base64url-ish, OpenAI `ac_…`, Google `4/0A…` (with a slash).
const CODE_PATTERN = /^[A-Za-z0-9._~+/=-]{4,4096}$/;
const STATE_PATTERN = /^[A-Za-z0-9._~+/=-]{1,1024}$/;

/**
 * Reads what a user pasted after signing in: `code#state` (Anthropic's page), a full redirect
 * URL (`…?code=…&state=…`), a bare query string, or a bare code. Errors never echo the input.
 */
export function parsePastedCode(input: string): { code: string; state?: string } {
  const text = (input ?? '').trim();
  if (text === '') throw new ValidationError('the pasted authorization code is empty');

  let code: string | null;
  let state: string | null | undefined;
  if (/^https?:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new ValidationError('the pasted redirect URL could not be read');
    }
    // Some pages return the parameters in the fragment instead of the query.
    const params =
      url.searchParams.has('code') || url.searchParams.has('error') ? url.searchParams : new URLSearchParams(url.hash.slice(1));
    rejectProviderError(params);
    code = params.get('code');
    state = params.get('state');
    if (!code) throw new ValidationError('the pasted redirect URL has no code parameter');
  } else if (/^\??(code|error)=/.test(text)) {
    const params = new URLSearchParams(text.replace(/^\?/, ''));
    rejectProviderError(params);
    code = params.get('code');
    state = params.get('state');
  } else {
    const hash = text.indexOf('#');
    code = hash === -1 ? text : text.slice(0, hash);
    state = hash === -1 ? undefined : text.slice(hash + 1);
    code = safeDecode(code);
  }

  if (!code || !CODE_PATTERN.test(code)) {
    throw new ValidationError('the pasted text is not an authorization code (expected code#state, a redirect URL, or the code)');
  }
  if (state !== undefined && state !== null && state !== '') {
    if (!STATE_PATTERN.test(state)) throw new ValidationError('the state in the pasted text is malformed');
    return { code, state };
  }
  return { code };
}

function rejectProviderError(params: URLSearchParams): void {
  const error = params.get('error');
  if (error) {
    const safe = /^[a-z_]{1,64}$/.test(error) ? error : 'error';
    throw new ValidationError(`the provider refused the sign-in (${safe})`);
  }
}

function safeDecode(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
