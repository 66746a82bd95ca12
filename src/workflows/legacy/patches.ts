// Patch ids (workflow versioning markers). Once recorded in a history they must never be renamed.

/** Present from the first task of every run of the current refresh workflow (absent: legacy V1). */
export const REFRESH_V2_PATCH = 'maestro-refresh-v2';
/** A live legacy run continued-as-new onto the current code. */
export const MIGRATE_TO_V2_PATCH = 'maestro-refresh-v1-migrate';
