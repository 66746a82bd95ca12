// A quota read releases the benches it proves wrong (issue 30; DESIGN.md "Quota re-reads"): the
// credential's workflow read the provider's usage endpoint, and where a window shows room again —
// the provider reset it early, or a banked reset was redeemed — the bench on that scope is
// cleared in the shared routing state, so every API process routes to the member within a second.
// Runs in the worker (the read's activity), not on the request path.
import type { RoutingStore } from '../db/routing.js';
import { hasRoom } from '../usage/quota.js';
import type { RateLimitState } from '../usage/rateLimits.js';
import { familyOfWindow } from '../model/families.js';
import { CREDENTIAL_SCOPE } from './memberState.js';

/** The scopes a read shows room for: the whole credential (its 5-hour and 7-day windows), and each model family whose windows have room. */
export function scopesWithRoom(state: RateLimitState, now: number): string[] {
  const byScope = new Map<string, RateLimitState['windows']>();
  for (const [name, w] of Object.entries(state.windows)) {
    const scope = familyOfWindow(name) ?? CREDENTIAL_SCOPE;
    byScope.set(scope, { ...byScope.get(scope), [name]: w });
  }
  if (!byScope.has(CREDENTIAL_SCOPE)) return [];
  return [...byScope].filter(([, windows]) => hasRoom({ ...state, windows }, now)).map(([scope]) => scope);
}

export async function releaseOnQuotaRead(
  routing: RoutingStore,
  credentialId: string,
  state: RateLimitState,
  now = new Date(),
): Promise<string[]> {
  const scopes = scopesWithRoom(state, now.getTime());
  const cleared = scopes.length > 0 ? await routing.clearCooldowns(credentialId, now, scopes) : [];
  if (cleared.length > 0) {
    await routing.addEvents([
      { poolId: null, credentialId, type: 'quota_read', reason: 'the provider shows room again', details: { scopes: cleared } },
      { poolId: null, credentialId, type: 'cooldown_cleared', reason: 'a quota read shows room', details: { scopes: cleared } },
    ]);
  }
  return cleared;
}
