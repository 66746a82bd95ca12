// The pools' shared words (DESIGN.md "Pools"): policies, member states, the shapes the API, the
// admin page and the CLI show, and the events a pool's timeline holds. Workflow-safe: no Node imports.
import type { ProviderId } from './providers.js';

export const POOL_STRATEGIES = ['affinity-least-loaded', 'drain-soonest', 'priority-fill'] as const;
export type PoolStrategy = (typeof POOL_STRATEGIES)[number];

export type ExhaustedMode = 'hold' | 'reject';
export interface OnExhausted {
  mode: ExhaustedMode;
  /** How long a held request waits for a member (1–600 s). */
  holdSeconds: number;
}

export const POOL_DEFAULTS = {
  priority: 0,
  weight: 1,
  maxUtilization: 0.98,
  strategy: 'affinity-least-loaded' as PoolStrategy,
  onExhausted: { mode: 'reject', holdSeconds: 30 } as OnExhausted,
  planLimitsOnly: true,
  sessionTtlSeconds: 3600,
} as const;

/** Whether a member takes new work now, and if not, why (the API spells them so). */
export const MEMBER_STATES = ['routable', 'cooling', 'over_threshold', 'billing_blocked', 'reauth_required', 'disabled'] as const;
export type MemberState = (typeof MEMBER_STATES)[number];

/** What a failure concerns, decided before anything is done with it (src/pools/classify.ts). */
export type FailureScope = 'request' | 'family' | 'window' | 'auth' | 'billing' | 'overload';

export const POOL_EVENT_TYPES = [
  'cooldown_set',
  'cooldown_cleared',
  'failover',
  'session_bound',
  'session_moved',
  'session_released',
  'hold_started',
  'hold_ended',
  'overage_seen',
  'quota_read',
  'member_paused',
  'member_resumed',
] as const;
export type PoolEventType = (typeof POOL_EVENT_TYPES)[number];

export interface PoolEvent {
  at: string;
  type: PoolEventType;
  credentialId?: string;
  /** The hashed, key-namespaced session key (never the client's session id itself). */
  sessionKey?: string;
  reason?: string;
  until?: string;
  details: Record<string, unknown>;
}

/** A rate-limit or quota window as a member shows it (utilization a fraction). */
export interface MemberWindow {
  utilization?: number;
  reset?: string;
  status?: string;
  source?: 'header' | 'endpoint';
  observedAt?: string;
}

export interface PoolMemberView {
  credentialId: string;
  credentialName: string;
  priority: number;
  weight: number;
  maxUtilization: number;
  /** Set by an operator (pause): the member takes no new work. */
  paused: boolean;
  state: MemberState;
  /** Why the member is not routable (null when it is). */
  reason: string | null;
  /** When a bench ends (null when none, or unknown). */
  until: string | null;
  /** "credential", or the model family a bench concerns, with its end. */
  scope: Array<{ scope: string; until: string | null; reason: string }>;
  windows: Record<string, MemberWindow>;
  /** Sessions bound to this member now. */
  sessions: number;
  /** Calls this member serves now, across every API process. */
  inFlight: number;
}

export interface PoolView {
  id: string;
  name: string;
  provider: ProviderId;
  strategy: PoolStrategy;
  onExhausted: OnExhausted;
  planLimitsOnly: boolean;
  sessionTtlSeconds: number;
  /** Count of routable members. */
  routable: number;
  /** The earliest time a non-routable member is expected back, or null. */
  nextAvailableAt: string | null;
  members: PoolMemberView[];
  createdAt: string;
  updatedAt: string;
}

/** A member as stored (src/db/pools.ts). */
export interface MemberRecord {
  credentialId: string;
  position: number;
  priority: number;
  weight: number;
  maxUtilization: number;
  paused: boolean;
}

/** A pool's policy as stored. */
export interface PoolPolicy {
  name: string;
  provider: ProviderId;
  strategy: PoolStrategy;
  onExhausted: OnExhausted;
  planLimitsOnly: boolean;
  sessionTtlSeconds: number;
}

/** A pool as stored, with its members in order: what each process's routing state holds. */
export interface PoolRecord extends PoolPolicy {
  id: string;
  version: number;
  createdAt: Date;
  updatedAt: Date;
  members: MemberRecord[];
}

export type MemberAction = 'pause' | 'resume' | 'clear-cooldown';

/** What the admin page and the routes read and change of pools (src/pools/service.ts serves it). */
export interface PoolsReader {
  list(): Promise<PoolView[]>;
  get(idOrName: string): Promise<PoolView>;
  events(idOrName: string, limit?: number): Promise<PoolEvent[]>;
  /** An operator's action on a member; `actor` (a key id or admin session) is written to the pool's events. */
  memberAction(idOrName: string, credential: string, action: MemberAction, actor: string): Promise<PoolView>;
}
