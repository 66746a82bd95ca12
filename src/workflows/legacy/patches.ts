// Patch ids (workflow versioning markers). Once recorded in a history they must never be renamed.

/** Present from the first task of every run of the current refresh workflow (absent: legacy V1). */
export const REFRESH_V2_PATCH = 'maestro-refresh-v2';
/** A live legacy run continued-as-new onto the current code. */
export const MIGRATE_TO_V2_PATCH = 'maestro-refresh-v1-migrate';
/** Runs continue-as-new after ~100 history events instead of 10,000 (a replay after cache eviction costs ~1.2 ms per event). */
export const SHORT_RUNS_PATCH = 'maestro-refresh-short-runs';
/** A token's lifetime is anchored at the workflow time its activity was asked for, not when its result was handled. */
export const ANCHOR_AT_ASK_PATCH = 'maestro-refresh-anchor-at-ask';
/** The workflow reads its credential's quota endpoint on durable timers (issue 30). */
export const QUOTA_READS_PATCH = 'maestro-quota-reads';
/** Quota reads ran as local activities (489a99b): runs that recorded it replay their reads as local activities. */
export const QUOTA_LOCAL_READS_PATCH = 'maestro-quota-local-reads';
/** Quota reads are ordinary activities again (local ones stalled the time-skipping test server's clock). */
export const QUOTA_ACTIVITY_READS_PATCH = 'maestro-quota-activity-reads';
/** A run carries "no quota endpoint" to the next run no more: each run asks once again (an endpoint added since, a project set since). */
export const QUOTA_RECHECK_UNSUPPORTED_PATCH = 'maestro-quota-recheck-unsupported';
