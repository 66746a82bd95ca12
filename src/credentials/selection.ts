// Which stored credential a call uses, as a pure decision over what the store found (the seam
// pools extend): by id, by name (the OAuth one while it can serve, else its API key — with
// MAESTRO_API_KEY_FALLBACK while the OAuth one needs a login), else the provider's `default`, else
// its only credential. The token cache does the lookups and caches the answer; it decides nothing.
import type { ProviderId } from '../model/providers.js';
import type { CredentialMetadata } from '../model/credentials.js';
import { NotFoundError, ReauthRequiredError } from '../errors.js';
import { UUID } from '../ids.js';

type Found = Pick<CredentialMetadata, 'id' | 'provider' | 'status'>;

/** How a selector is looked up: an id (any case: one spelling), or a name (`default` when none is given). */
export function selectorKind(selector: string | undefined): { id: string } | { name: string } {
  return selector && UUID.test(selector) ? { id: selector.toLowerCase() } : { name: selector ?? 'default' };
}

/** The credential with that id, if it is the provider's. */
export function chooseById(provider: ProviderId, id: string, found: Found): string {
  if (found.provider !== provider) throw new NotFoundError(`credential ${id} not found for provider ${provider}`);
  return found.id;
}

/**
 * Between a name's OAuth and API-key credentials: the id, or `undefined` when the name has none
 * and, no selector having been given, the provider's only credential may serve (chooseOnly).
 */
export function chooseByName(
  provider: ProviderId,
  selector: string | undefined,
  found: { oauth: Found | undefined; apiKey: Found | undefined },
  apiKeyFallback: boolean,
): string | undefined {
  const { oauth, apiKey } = found;
  const name = selector ?? 'default';
  // An OAuth credential that needs a login and has no API key beside it: the proxy answers 409.
  if (oauth && (oauth.status === 'active' || !apiKey)) return oauth.id;
  if (oauth && apiKey) {
    if (apiKeyFallback) return apiKey.id;
    throw new ReauthRequiredError(
      `${provider} credential "${name}" needs a new login (POST /v1/oauth/${provider}/start); set MAESTRO_API_KEY_FALLBACK=true to use its API key meanwhile`,
    );
  }
  if (apiKey) return apiKey.id;
  if (!selector) return undefined;
  throw new NotFoundError(`no ${provider} credential named "${selector}"`);
}

/** No credential named `default`: a provider with exactly one credential uses it. */
export function chooseOnly(provider: ProviderId, all: Found[]): string {
  if (all.length === 1) return all[0]!.id;
  if (all.length > 1) {
    throw new NotFoundError(`${provider} has several credentials and none named "default": send x-maestro-credential: <id or name>`);
  }
  throw new NotFoundError(`no ${provider} credential: add one with POST /v1/credentials`);
}
