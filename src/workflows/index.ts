// The workflow bundle's entry point: every workflow the worker runs.
export { credentialRefreshWorkflow } from './credentialRefresh.js';
export { sendMessageWorkflow } from './sendMessage.js';
export { reconcileWorkflow } from './reconcile.js';
export { maintenanceWorkflow } from './maintenance.js';
