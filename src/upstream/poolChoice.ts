// Which pool, if any, a proxied request goes through (DESIGN.md "Pools", "Choosing a pool"):
// `x-maestro-pool: <name or id>`; else, when no credential is named, the one pool of this provider
// a client key lists, else the provider's pool named `default` (before the `default` credential)
// when the key may use it. Naming both a pool and a credential is a 400: nothing is sent.
import { HttpError, NotFoundError, ValidationError } from '../errors.js';
import type { PoolRecord } from '../model/pools.js';
import type { ProviderId } from '../model/providers.js';
import type { Principal } from '../clientKeys/registry.js';
import { mayUsePool, poolRefusal } from '../clientKeys/access.js';

export function choosePool(
  who: Principal,
  provider: ProviderId,
  headers: Record<string, string | string[] | undefined>,
  pools: { pool(idOrName: string): PoolRecord | undefined; poolsOf(provider: ProviderId): readonly PoolRecord[] },
): PoolRecord | undefined {
  const asked = single(headers['x-maestro-pool']);
  const credential = single(headers['x-maestro-credential']);
  if (asked !== undefined) {
    if (credential !== undefined) {
      throw new ValidationError('send x-maestro-pool or x-maestro-credential, not both: a request goes through one pool or one credential');
    }
    if (asked.length > 200) throw new HttpError(400, 'invalid_request', 'x-maestro-pool is too long');
    const pool = pools.pool(asked);
    if (!pool || !mayUsePool(who, pool)) {
      if (who.role !== 'admin') throw poolRefusal(who, asked);
      throw new NotFoundError(`no pool named "${asked.slice(0, 100)}" (GET /v1/pools lists them)`);
    }
    if (pool.provider !== provider) {
      throw new ValidationError(`pool "${pool.name}" is a ${pool.provider} pool: send it to /proxy/${pool.provider}/…`);
    }
    return pool;
  }
  if (credential !== undefined) return undefined;
  const all = pools.poolsOf(provider);
  if (all.length === 0) return undefined; // most deployments' calls: no pool of this provider, nothing to allocate
  if (who.role === 'client' && who.pools.size > 0) {
    const mine = all.filter((p) => who.pools.has(p.id));
    if (mine.length === 1) return mine[0];
  }
  const fallback = all.find((p) => p.name === 'default');
  return fallback && mayUsePool(who, fallback) ? fallback : undefined;
}

function single(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  const trimmed = v?.trim();
  return trimmed ? trimmed : undefined;
}
