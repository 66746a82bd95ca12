// reconcileWorkflow: run by the Temporal Schedule `maestro-reconcile:<task queue>` (visible in the
// Web UI under Schedules) every few minutes. It starts the refresh workflow of any OAuth
// credential that has none: one whose start failed when it was imported, or after a restore.
import { proxyActivities } from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';

const { reconcileCredentials } = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '5 seconds', maximumAttempts: 3 },
});

export async function reconcileWorkflow(): Promise<{ checked: number; started: number }> {
  return reconcileCredentials();
}
