// The provider catalogue: each provider's public defaults with Config.providers overrides applied.
import { PROVIDER_IDS, type Config, type ProviderId, type ProviderOverrides } from '../config.js';
import { MisconfiguredError, ValidationError } from '../errors.js';
import { anthropic } from './anthropic.js';
import { gemini } from './gemini.js';
import { openai } from './openai.js';
import type { AuthType, HeaderSet, ProviderDefinition } from './types.js';

const CATALOGUE: Record<ProviderId, ProviderDefinition> = { anthropic, openai, gemini };

/** A provider's public defaults, without overrides: for what no override changes (its usage dialect). */
export function providerDefaults(id: ProviderId): ProviderDefinition {
  return CATALOGUE[id];
}

/** Builds one provider's definition: its public defaults with the operator's overrides, every URL checked. */
export function defineProvider(id: ProviderId, overrides: ProviderOverrides = {}): ProviderDefinition {
  const def = applyOverrides(CATALOGUE[id], overrides);
  return {
    ...def,
    baseUrl: normalizeBaseUrl(def.baseUrl, `${id} base URL`),
    oauthBaseUrl: normalizeBaseUrl(def.oauthBaseUrl ?? def.baseUrl, `${id} OAuth base URL`),
    oauth: {
      ...def.oauth,
      tokenUrl: checkUrl(def.oauth.tokenUrl, `${id} OAuth token URL`),
      authorizeUrl: checkUrl(def.oauth.authorizeUrl, `${id} OAuth authorize URL`),
    },
  };
}

/** The one place an override meets a provider's data; every provider reads the same fields the same way. */
function applyOverrides(def: ProviderDefinition, o: ProviderOverrides): ProviderDefinition {
  // A user agent set by the operator goes on every call Maestro makes for this provider.
  const withAgent = (set: Record<string, string>) => (o.userAgent ? { ...set, 'user-agent': o.userAgent } : set);
  const headerSet = (h: HeaderSet): HeaderSet => ({ ...h, set: withAgent(h.set) });
  return {
    ...def,
    baseUrl: o.baseUrl ?? def.baseUrl,
    // Unset on a provider with one API (Anthropic): it follows baseUrl, overridden or not.
    oauthBaseUrl: o.oauthBaseUrl ?? def.oauthBaseUrl,
    headers: { api_key: headerSet(def.headers.api_key), oauth: headerSet(def.headers.oauth) },
    oauth: {
      ...def.oauth,
      authorizeUrl: o.oauthAuthorizeUrl ?? def.oauth.authorizeUrl,
      tokenUrl: o.oauthTokenUrl ?? def.oauth.tokenUrl,
      clientId: o.oauthClientId ?? def.oauth.clientId,
      // A configured client id never pairs with the default client's secret.
      clientSecret: o.oauthClientId ? o.oauthClientSecret : (o.oauthClientSecret ?? def.oauth.clientSecret),
      redirectUri: o.oauthRedirectUri ?? def.oauth.redirectUri,
      scopes: o.oauthScopes ?? def.oauth.scopes,
      tokenHeaders: withAgent(def.oauth.tokenHeaders),
    },
  };
}

export class ProviderRegistry {
  private readonly definitions: ReadonlyMap<ProviderId, ProviderDefinition>;

  constructor(config: Pick<Config, 'providers'>) {
    this.definitions = new Map(PROVIDER_IDS.map((id) => [id, defineProvider(id, config.providers[id] ?? {})]));
  }

  /** Unknown id → ValidationError naming the valid ids. */
  get(id: string): ProviderDefinition {
    if (!this.has(id)) {
      const shown = /^[A-Za-z0-9_-]{1,40}$/.test(id) ? `"${id}"` : 'given';
      throw new ValidationError(`unknown provider ${shown}; valid providers: ${PROVIDER_IDS.join(', ')}`);
    }
    return this.definitions.get(id)!;
  }

  has(id: string): id is ProviderId {
    return (PROVIDER_IDS as readonly string[]).includes(id);
  }

  list(): ProviderDefinition[] {
    return [...this.definitions.values()];
  }

  /** Every configured provider API origin (`https://api.anthropic.com`, `https://chatgpt.com`, …): the only hosts the proxy may call. */
  hosts(): Set<string> {
    return new Set(this.list().flatMap((def) => [def.baseUrl, baseUrlFor(def, 'oauth')].map((url) => new URL(url).origin)));
  }
}

/** The base URL calls of this auth type go to. */
export function baseUrlFor(def: Pick<ProviderDefinition, 'baseUrl' | 'oauthBaseUrl'>, authType: AuthType): string {
  return authType === 'oauth' ? (def.oauthBaseUrl ?? def.baseUrl) : def.baseUrl;
}

function checkUrl(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new MisconfiguredError(`${what} is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new MisconfiguredError(`${what} must be http(s)`);
  if (url.username || url.password) throw new MisconfiguredError(`${what} must not carry credentials`);
  return url.toString();
}

/** Origin plus base path, no trailing slash, no query or fragment. */
function normalizeBaseUrl(value: string, what: string): string {
  const url = new URL(checkUrl(value, what));
  if (url.search || url.hash) throw new MisconfiguredError(`${what} must not have a query or fragment`);
  return url.origin + url.pathname.replace(/\/+$/, '');
}
