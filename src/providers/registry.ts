// The provider catalogue: each provider's public defaults with Config.providers overrides applied.
import { PROVIDER_IDS, type Config, type ProviderId, type ProviderOverrides } from '../config.js';
import { MisconfiguredError, ValidationError } from '../errors.js';
import { defineAnthropic } from './anthropic.js';
import { defineGemini } from './gemini.js';
import { defineOpenAI } from './openai.js';
import type { ProviderDefinition } from './types.js';

const DEFINERS: Record<ProviderId, (overrides: ProviderOverrides) => ProviderDefinition> = {
  anthropic: defineAnthropic,
  openai: defineOpenAI,
  gemini: defineGemini,
};

/** Builds one provider's definition from its overrides, with every URL checked and normalised. */
export function defineProvider(id: ProviderId, overrides: ProviderOverrides = {}): ProviderDefinition {
  const def = DEFINERS[id](overrides);
  return {
    ...def,
    baseUrl: normalizeBaseUrl(def.baseUrl, `${id} base URL`),
    oauth: {
      ...def.oauth,
      tokenUrl: checkUrl(def.oauth.tokenUrl, `${id} OAuth token URL`),
      authorizeUrl: checkUrl(def.oauth.authorizeUrl, `${id} OAuth authorize URL`),
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

  /** Every configured provider API origin (`https://api.anthropic.com`, …): the only hosts the proxy may call. */
  hosts(): Set<string> {
    return new Set(this.list().map((def) => new URL(def.baseUrl).origin));
  }
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
