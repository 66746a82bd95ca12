// What a key may do (DESIGN.md "Client keys"). Admin keys reach everything. A client key reaches
// the credentials it lists and every credential of the providers it lists, only through each
// provider's inference paths, plus GET /v1/credentials (filtered) and GET /v1/usage (its own).
// Every refusal is a ForbiddenError whose message says what the key lacks; a credential it cannot
// reach gets one refusal whether it exists or not, naming only what the client sent.
import type { ProviderId } from '../model/providers.js';
import type { CredentialMetadata } from '../model/credentials.js';
import { ForbiddenError, NotFoundError, ReauthRequiredError } from '../errors.js';
import { describeInferencePaths, isInferencePath } from '../providers/inferencePaths.js';
import type { ProviderDefinition } from '../providers/types.js';
import type { Principal } from './registry.js';

const who = (p: Principal) => `Maestro key ${p.keyId} ("${p.name}") is a client key`;

export function requireAdmin(p: Principal, what: string): void {
  if (p.role !== 'admin') throw new ForbiddenError(`${who(p)}: ${what} needs an admin key`);
}

/** The credentials of `list` this key may see. */
export function visibleCredentials<T extends Pick<CredentialMetadata, 'id' | 'provider'>>(p: Principal, list: T[]): T[] {
  if (p.role === 'admin') return list;
  return list.filter((c) => mayUseCredential(p, c));
}

export function mayUseCredential(p: Principal, c: Pick<CredentialMetadata, 'id' | 'provider'>): boolean {
  return p.role === 'admin' || p.providers.has(c.provider) || p.credentialIds.has(c.id);
}

/**
 * The one refusal for a credential a client key cannot reach, unknown or another's alike: the same
 * status and words, so a key cannot learn which credentials exist. `asked` is what the client sent.
 */
export function credentialRefusal(p: Principal, asked: string): ForbiddenError {
  return new ForbiddenError(
    `${who(p)} without access to ${asked}: unknown, or not one this key may use (GET /v1/credentials lists those it may)`,
  );
}

/** `asked`: the credential as the client named it (never the name or id it did not send). */
export function requireCredential(p: Principal, c: Pick<CredentialMetadata, 'id' | 'provider'>, asked: string): void {
  if (!mayUseCredential(p, c)) throw credentialRefusal(p, asked);
}

/**
 * What a client key hears when the credential it named could not be picked: the one refusal,
 * rather than "not found" or "needs a new login" about a credential it may not reach. A key that
 * reaches the whole provider still hears why its provider default failed (it may list them all).
 */
export function pickRefusal(p: Principal, provider: ProviderId, selector: string | undefined, error: unknown, asked: string): unknown {
  if (p.role === 'admin') return error;
  if (!(error instanceof NotFoundError || error instanceof ReauthRequiredError)) return error;
  if (p.providers.has(provider) && (selector === undefined || error instanceof ReauthRequiredError)) return error;
  return credentialRefusal(p, asked);
}

/** Before a credential is even looked up: the key must reach something of this provider. */
export function requireProvider(p: Principal, provider: ProviderId): void {
  if (p.role === 'admin' || p.providers.has(provider) || p.credentials.some((c) => c.provider === provider) || p.pools.size > 0) return;
  throw new ForbiddenError(`${who(p)} without access to ${provider}`);
}

export function requireInferencePath(p: Principal, def: ProviderDefinition, method: string, path: string): void {
  if (p.role === 'admin' || isInferencePath(def, method, path)) return;
  throw new ForbiddenError(
    `${who(p)}: ${method} ${path.slice(0, 200)} is not a ${def.id} inference path (a client key may call ${describeInferencePaths(def)})`,
  );
}

/**
 * The credential a client key uses when the request names none: the one credential it lists for
 * this provider, when it lists exactly one and not the whole provider. Else the provider default.
 */
export function defaultSelectorFor(p: Principal, provider: ProviderId): string | undefined {
  if (p.role === 'admin' || p.providers.has(provider)) return undefined;
  const mine = p.credentials.filter((c) => c.provider === provider);
  return mine.length === 1 ? mine[0]!.id : undefined;
}

/** A pool a key may route through: one it lists, or any pool of a provider it lists. */
export function mayUsePool(p: Principal, pool: { id: string; provider: ProviderId }): boolean {
  return p.role === 'admin' || p.pools.has(pool.id) || p.providers.has(pool.provider);
}

/** The one refusal for a pool a client key cannot reach, unknown or another's alike. */
export function poolRefusal(p: Principal, asked: string): ForbiddenError {
  return new ForbiddenError(`${who(p)} without access to pool "${asked.slice(0, 100)}": unknown, or not one this key may use`);
}
