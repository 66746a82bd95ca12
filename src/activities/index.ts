// createActivities(deps): the only side effects workflows can reach, one module per job (refresh,
// durable messages, housekeeping). Dependencies come in from the factory (never globals), so tests
// build activities with a real database and a fake provider.
import { housekeepingActivities } from './housekeeping.js';
import { messageActivities } from './messages.js';
import { quotaActivities } from './quota.js';
import { refreshActivities } from './refresh.js';
import type { ActivityDeps } from './types.js';

export type * from './types.js';

export function createActivities(deps: ActivityDeps) {
  return { ...refreshActivities(deps), ...messageActivities(deps), ...housekeepingActivities(deps), ...quotaActivities(deps) };
}

export type MaestroActivities = ReturnType<typeof createActivities>;
