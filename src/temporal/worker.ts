// Builds the Maestro worker: the bundled workflows plus activities from createActivities(deps).
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, Worker, type NativeConnection, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/index.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** Bundling takes a few seconds; tests do it once and pass the bundle to every worker. */
export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
}

export interface WorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  workflowBundle?: WorkflowBundleWithSourceMap;
  /** 0 disables the sticky workflow cache (tests that restart workers on the time-skipping server). */
  maxCachedWorkflows?: number;
}

export async function createMaestroWorker({ connection, namespace, taskQueue, deps, workflowBundle, maxCachedWorkflows }: WorkerOptions): Promise<Worker> {
  return Worker.create({
    connection,
    namespace,
    taskQueue,
    maxCachedWorkflows,
    // A refresh heartbeats the sealed token answer the moment it arrives: it must reach the
    // server within a second (the default throttle holds details back for up to 0.8 × the timeout).
    maxHeartbeatThrottleInterval: '1 second',
    activities: createActivities(deps),
    ...(workflowBundle ? { workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
  });
}
