// Kysely's view of the schema in migrations/.
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';
import type { ProviderId } from '../model/providers.js';

import type { AuthType, CredentialStatus, KeyCredentialGrant, KeyLimits, KeyRole, ProviderMetadata } from '../model/credentials.js';

export type { AuthType, CredentialStatus, KeyCredentialGrant, KeyLimits, KeyRole, ProviderMetadata };

type Timestamp = ColumnType<Date, Date | string, Date | string>;
// Generated<Timestamp> would nest two ColumnTypes (selects come out typed as ColumnType, not Date): spell it out.
type GeneratedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface SavedAuthenticationsTable {
  id: Generated<string>;
  name: Generated<string>;
  provider: ProviderId;
  auth_type: AuthType;
  secret: Buffer;
  key_id: string;
  expires_at: Timestamp | null;
  token_obtained_at: Timestamp | null;
  status: Generated<CredentialStatus>;
  version: Generated<number>;
  refresh_count: Generated<number>;
  last_refreshed_at: Timestamp | null;
  last_error: string | null;
  /** jsonb: ProviderMetadata (migrations/0008_provider_metadata.ts); written as JSON text. */
  provider_metadata: ColumnType<ProviderMetadata | null, string | null | undefined, string | null>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface OAuthSessionsTable {
  id: Generated<string>;
  provider: ProviderId;
  name: Generated<string>;
  sealed: Buffer;
  key_id: string;
  redirect_uri: string;
  created_at: GeneratedTimestamp;
  expires_at: Timestamp;
}

export interface CredentialEventsTable {
  id: Generated<string>;
  credential_id: string;
  type: string;
  details: ColumnType<Record<string, unknown>, string, string>;
  created_at: GeneratedTimestamp;
}

// Written only by the triggers of migrations/0006_metric_counts.ts; bigint counts come back as strings (src/db/pool.ts).
export interface CredentialCountsTable {
  provider: ProviderId;
  auth_type: AuthType;
  status: CredentialStatus;
  n: ColumnType<string, never, never>;
}

export interface CredentialEventCountsTable {
  type: string;
  /** The writing connection's backend pid mod 16: concurrent refreshes rarely share a row lock. */
  shard: number;
  n: ColumnType<string, never, never>;
}

export interface RefreshAnswersTable {
  credential_id: string;
  expected_version: number;
  sealed: Buffer;
  key_id: string;
  state: Generated<'pending' | 'unusable'>;
  received_at: GeneratedTimestamp;
}

export interface DurableCallClaimsTable {
  workflow_id: string;
  run_id: string;
  claimed_at: GeneratedTimestamp;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  role: KeyRole;
  secret_hash: Buffer;
  credentials: ColumnType<KeyCredentialGrant[], string | undefined, string>;
  providers: ColumnType<ProviderId[], string | undefined, string>;
  limits: ColumnType<KeyLimits, string | undefined, string>;
  /** Pool ids a client key may use (migration 0010). */
  pools: ColumnType<string[], string | undefined, string>;
  expires_at: Timestamp | null;
  version: Generated<number>;
  created_by: string | null;
  created_at: GeneratedTimestamp;
  revoked_at: Timestamp | null;
  last_used_at: Timestamp | null;
}

export interface ApiKeyEventsTable {
  id: Generated<string>;
  key_id: string;
  type: string;
  details: ColumnType<Record<string, unknown>, string, string>;
  created_at: GeneratedTimestamp;
}

export interface UsageHourlyTable {
  hour: Timestamp;
  key_id: string;
  credential_id: string;
  provider: string;
  model: string;
  requests: ColumnType<string, number | string, number | string>;
  errors: ColumnType<string, number | string, number | string>;
  input_tokens: ColumnType<string, number | string, number | string>;
  output_tokens: ColumnType<string, number | string, number | string>;
  cache_read_tokens: ColumnType<string, number | string, number | string>;
  cache_write_tokens: ColumnType<string, number | string, number | string>;
  /** Calls whose final counts never arrived (migration 0009), and what budgets were charged for them beyond the reported tokens. */
  incomplete: ColumnType<string, number | string | undefined, number | string>;
  incomplete_charge: ColumnType<string, number | string | undefined, number | string>;
  /** The pool that routed the calls ('' for none; migration 0010). */
  pool_id: ColumnType<string, string | undefined, string>;
}

/** Durable-call attempts whose usage the worker recorded (migration 0009): each is added once. */
export interface DurableCallUsageTable {
  workflow_id: string;
  attempt: number;
  recorded_at: GeneratedTimestamp;
}

export interface CredentialRateLimitsTable {
  credential_id: string;
  state: ColumnType<Record<string, unknown>, string, string>;
  observed_at: Timestamp;
}

export interface PoolsTable {
  id: string;
  name: string;
  provider: string;
  strategy: string;
  on_exhausted: ColumnType<{ mode: 'hold' | 'reject'; holdSeconds: number }, string, string>;
  plan_limits_only: boolean;
  session_ttl_seconds: number;
  version: Generated<number>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface PoolMembersTable {
  pool_id: string;
  credential_id: string;
  position: number;
  priority: number;
  weight: number;
  max_utilization: number;
  paused: Generated<boolean>;
}

/** A bench of one credential ('credential') or one model family; until null = cleared. */
export interface RoutingCooldownsTable {
  credential_id: string;
  scope: string;
  until: Timestamp | null;
  reason: string;
  evidence: string;
  set_at: Timestamp;
  seq: ColumnType<string, string | number, string | number>;
}

export interface PoolSessionsTable {
  pool_id: string;
  session_key: string;
  credential_id: string;
  expires_at: Timestamp;
  seq: ColumnType<string, string | number, string | number>;
}

export interface RoutingProbesTable {
  credential_id: string;
  holder: string;
  lease_until: Timestamp;
}

export interface RoutingInflightTable {
  process_id: string;
  credential_id: string;
  count: number;
  picked_at: Timestamp | null;
  updated_at: Timestamp;
}

export interface PoolEventsTable {
  id: Generated<string>;
  pool_id: string | null;
  credential_id: string | null;
  type: string;
  session_key: string | null;
  reason: string | null;
  until: Timestamp | null;
  details: ColumnType<Record<string, unknown>, string | undefined, string>;
  at: GeneratedTimestamp;
}

export interface CredentialQuotaTable {
  credential_id: string;
  state: ColumnType<Record<string, unknown>, string, string>;
  observed_at: Timestamp;
}

export interface QuotaReadCountsTable {
  outcome: string;
  count: ColumnType<string, number | undefined, number | undefined>;
  updated_at: ColumnType<Date, Date | undefined, Date | undefined>;
}

export interface Database {
  pools: PoolsTable;
  pool_members: PoolMembersTable;
  routing_cooldowns: RoutingCooldownsTable;
  pool_sessions: PoolSessionsTable;
  routing_probes: RoutingProbesTable;
  routing_inflight: RoutingInflightTable;
  pool_events: PoolEventsTable;
  saved_authentications: SavedAuthenticationsTable;
  oauth_sessions: OAuthSessionsTable;
  credential_events: CredentialEventsTable;
  credential_counts: CredentialCountsTable;
  credential_event_counts: CredentialEventCountsTable;
  refresh_answers: RefreshAnswersTable;
  durable_call_claims: DurableCallClaimsTable;
  api_keys: ApiKeysTable;
  api_key_events: ApiKeyEventsTable;
  usage_hourly: UsageHourlyTable;
  durable_call_usage: DurableCallUsageTable;
  credential_rate_limits: CredentialRateLimitsTable;
  credential_quota: CredentialQuotaTable;
  quota_read_counts: QuotaReadCountsTable;
}

export type CredentialRow = Selectable<SavedAuthenticationsTable>;
export type NewCredentialRow = Insertable<SavedAuthenticationsTable>;
export type CredentialEventRow = Selectable<CredentialEventsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
