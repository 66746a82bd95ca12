// Whether a pool member takes new work now, and if not why and until when — the one predicate the
// router, the exhausted answer, GET /v1/pools and the admin page all read. Pure: the member, its
// credential's status, its cooldowns and its last-seen windows in; a state out.
import type { MemberRecord } from '../db/pools.js';
import type { MemberState } from '../model/pools.js';
import type { RateLimitState } from '../usage/rateLimits.js';
import { familyOfWindow } from '../model/families.js';
import type { Cooldown } from './routingState.js';

/** The scope a billing refusal or spending of extra usage benches (plan limits only). */
export const BILLING_SCOPE = 'billing';
/** The scope a bench of the whole credential takes. */
export const CREDENTIAL_SCOPE = 'credential';

export interface MemberStatus {
  state: MemberState;
  reason: string | null;
  /** ms epoch when the member is expected back (null: unknown or not benched). */
  until: number | null;
  /** A bench that has run out but was not cleared by a success or a read: the member takes one probe first. */
  recovering: boolean;
  /** Benches of one model family that stand now (the member stays routable for other families). */
  families: Array<{ scope: string; until: number; reason: string }>;
}

export interface MemberInputs {
  member: Pick<MemberRecord, 'paused' | 'maxUtilization'>;
  /** The credential's status as stored (`active`, `reauth_required`, …); undefined when unknown here. */
  credentialStatus: string | undefined;
  cooldowns: ReadonlyMap<string, Cooldown> | undefined;
  rateLimit: RateLimitState | undefined;
  planLimitsOnly: boolean;
  /** The request's model family, when the state is asked for one request. */
  family?: string;
  now: number;
}

export function memberStatus(i: MemberInputs): MemberStatus {
  const families: MemberStatus['families'] = [];
  let recovering = false;
  let credentialBench: Cooldown | undefined;
  let billing: Cooldown | undefined;
  for (const [scope, c] of i.cooldowns ?? []) {
    if (c.until === null) continue;
    if (c.until <= i.now) {
      if (scope === CREDENTIAL_SCOPE || scope === i.family) recovering = true;
      continue;
    }
    if (scope === CREDENTIAL_SCOPE) credentialBench = c;
    else if (scope === BILLING_SCOPE) billing = c;
    else families.push({ scope, until: c.until, reason: c.reason });
  }
  const status = (state: MemberState, reason: string | null, until: number | null): MemberStatus => ({
    state,
    reason,
    until,
    recovering: state === 'routable' && recovering,
    families,
  });

  if (i.member.paused) return status('disabled', 'paused by an operator', null);
  if (i.credentialStatus === 'reauth_required') return status('reauth_required', 'the credential needs a new login', null);
  if (i.credentialStatus !== undefined && i.credentialStatus !== 'active')
    return status('disabled', `the credential is ${i.credentialStatus}`, null);
  if (billing && i.planLimitsOnly) return status('billing_blocked', billing.reason, billing.until);
  if (credentialBench) return status('cooling', credentialBench.reason, credentialBench.until);
  const familyBench = i.family ? families.find((f) => f.scope === i.family) : undefined;
  if (familyBench) return status('cooling', familyBench.reason, familyBench.until);
  const over = overThreshold(i);
  if (over) return status('over_threshold', over.reason, over.until);
  return status('routable', null, null);
}

/** Whole-credential subscription windows: Anthropic's 5 h and 7 d, Codex's primary (5 h) and secondary (weekly). */
const SUBSCRIPTION_WINDOWS = new Set(['five_hour', 'seven_day', 'primary', 'secondary']);

/** The first window (whole-credential, or the request's family) past maxUtilization whose reset is still ahead. */
function overThreshold(i: MemberInputs): { reason: string; until: number | null } | undefined {
  const windows = i.rateLimit?.windows;
  // for…in, not Object.entries: this runs for every member a pooled call looks at.
  for (const name in windows) {
    const w = windows[name]!;
    if (w.utilization === undefined || w.utilization < i.member.maxUtilization) continue;
    const family = familyOfWindow(name);
    if (family !== undefined && family !== i.family) continue;
    if (family === undefined && !SUBSCRIPTION_WINDOWS.has(name)) continue;
    const reset = w.reset ? Date.parse(w.reset) : NaN;
    // A window whose reset has passed is unknown, not exhausted.
    if (!Number.isFinite(reset) || reset <= i.now) continue;
    return {
      reason: `${name} at ${Math.round(w.utilization * 100)} % (limit ${Math.round(i.member.maxUtilization * 100)} %)`,
      until: reset,
    };
  }
  return undefined;
}
