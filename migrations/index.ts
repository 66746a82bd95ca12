// Every migration, by name; kysely applies them in name order. Add new files here.
import type { Migration } from 'kysely';
import * as initial from './0001_initial.js';
import * as credentialChangeNotify from './0002_credential_change_notify.js';
import * as refreshAnswers from './0003_refresh_answers.js';
import * as durableCallClaims from './0004_durable_call_claims.js';
import * as apiKeys from './0005_api_keys.js';
import * as metricCounts from './0006_metric_counts.js';
import * as usage from './0007_usage.js';
import * as providerMetadata from './0008_provider_metadata.js';
import * as usageIncomplete from './0009_usage_incomplete.js';
import * as pools from './0010_pools.js';
import * as quota from './0011_quota.js';
import * as adminSessions from './0012_admin_sessions.js';

export const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_credential_change_notify': credentialChangeNotify,
  '0003_refresh_answers': refreshAnswers,
  '0004_durable_call_claims': durableCallClaims,
  '0005_api_keys': apiKeys,
  '0006_metric_counts': metricCounts,
  '0007_usage': usage,
  '0008_provider_metadata': providerMetadata,
  '0009_usage_incomplete': usageIncomplete,
  '0010_pools': pools,
  '0011_quota': quota,
  '0012_admin_sessions': adminSessions,
};
