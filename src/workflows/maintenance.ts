// maintenanceWorkflow: run by the Temporal Schedule `maestro-maintenance:<task queue>` every hour.
// Deletes login sessions past their expiry (every /start leaves one) and credential events older
// than MAESTRO_EVENT_RETENTION_DAYS, so neither table grows without bound.
import { proxyActivities } from '@temporalio/workflow';
import type { createActivities, PurgeResult } from '../activities/index.js';

const { purgeExpired } = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '30 seconds', maximumAttempts: 3 },
});

export async function maintenanceWorkflow(): Promise<PurgeResult> {
  return purgeExpired();
}
