// Builds the Maestro worker: the bundled workflows plus activities from createActivities(deps),
// polling two task queues. The refresh loop's activities (describe, refresh) run on their own
// queue (`<queue>-refresh`) with their own slots: a durable message call that waits for a refresh
// (a 401) holds a slot on the main queue, so a refresh must never need one of those.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  bundleWorkflowCode,
  Worker,
  type NativeConnection,
  type WorkflowBundlePath,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { createActivities, type ActivityDeps } from '../activities/index.js';
import { refreshTaskQueue } from '../workflows/refreshMessages.js';

// Under tsx this module is worker.ts and the workflows are .ts; compiled (npm run build), both are .js.
const SOURCE_EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
export const WORKFLOWS_PATH = fileURLToPath(new URL(`../workflows/index${SOURCE_EXTENSION}`, import.meta.url));
/**
 * The workflow bundle `npm run build` writes (dist/workflow-bundle.js): the compiled worker loads it
 * instead of bundling at every start, so the code workflows replay against is a file you can keep
 * and replay-test. Running from the sources, this path does not exist and the worker bundles.
 */
export const PREBUILT_BUNDLE_PATH = fileURLToPath(new URL('../../workflow-bundle.js', import.meta.url));

/** Bundling takes a few seconds; tests do it once and pass the bundle to every worker. */
export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
  });
}

export interface WorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** Maestro's payload codec (src/temporal/payloadCodec.ts): required, so no worker writes plaintext payloads. */
  dataConverter: DataConverter;
  workflowBundle?: WorkflowBundleWithSourceMap | WorkflowBundlePath;
  /** 0 disables the sticky workflow cache (tests that restart workers on the time-skipping server). */
  maxCachedWorkflows?: number;
  /** Activity slots of the main queue (durable messages, describe, webhooks); Temporal's default when unset. */
  maxConcurrentActivityTaskExecutions?: number;
}

/** The main worker (workflows and every activity) and the refresh worker, run and stopped together. */
export class MaestroWorker {
  private running: Promise<void> | undefined;

  constructor(
    readonly main: Worker,
    readonly refresh: Worker,
    /** Where the workflow code came from, for the start-up log line. */
    readonly workflowCode: string,
  ) {}

  getState() {
    return this.main.getState();
  }

  /** Runs both until shutdown; if one fails, the other is shut down and the failure is raised. */
  run(): Promise<void> {
    this.running ??= (async () => {
      const results = await Promise.allSettled(
        [this.main, this.refresh].map((w) =>
          w.run().catch((error: unknown) => {
            this.shutdown();
            throw error;
          }),
        ),
      );
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    })();
    return this.running;
  }

  shutdown(): void {
    for (const w of [this.main, this.refresh]) if (w.getState() === 'RUNNING') w.shutdown();
  }

  async runUntil<R>(fn: () => Promise<R>): Promise<R> {
    const running = this.run();
    try {
      return await fn();
    } finally {
      this.shutdown();
      await running;
    }
  }
}

function workflowSource(given: WorkerOptions['workflowBundle']) {
  if (given) return { source: { workflowBundle: given }, described: 'a bundle given by the caller' };
  if (SOURCE_EXTENSION === '.js' && existsSync(PREBUILT_BUNDLE_PATH)) {
    return { source: { workflowBundle: { codePath: PREBUILT_BUNDLE_PATH } }, described: `prebuilt ${PREBUILT_BUNDLE_PATH}` };
  }
  return { source: { workflowsPath: WORKFLOWS_PATH }, described: `bundled at start from ${WORKFLOWS_PATH}` };
}

export async function createMaestroWorker({
  connection,
  namespace,
  taskQueue,
  deps,
  dataConverter,
  workflowBundle,
  maxCachedWorkflows,
  maxConcurrentActivityTaskExecutions,
}: WorkerOptions): Promise<MaestroWorker> {
  const activities = createActivities(deps);
  const workflows = workflowSource(workflowBundle);
  // A refresh heartbeats the sealed token answer the moment it arrives: it must reach the
  // server within a second (the default throttle holds details back for up to 0.8 × the timeout).
  const maxHeartbeatThrottleInterval = '1 second';
  // A graceful stop (SIGTERM, a deploy) lets a refresh whose request is out finish and store its
  // answer; only after this grace are activities cancelled (and a cancelled refresh stops at once).
  const shutdownGraceTime = '10 seconds';
  const main = await Worker.create({
    connection,
    namespace,
    taskQueue,
    maxCachedWorkflows,
    maxConcurrentActivityTaskExecutions,
    maxHeartbeatThrottleInterval,
    shutdownGraceTime,
    dataConverter,
    activities,
    ...workflows.source,
  });
  const refresh = await Worker.create({
    connection,
    namespace,
    taskQueue: refreshTaskQueue(taskQueue),
    maxHeartbeatThrottleInterval,
    shutdownGraceTime,
    dataConverter,
    activities: { refreshCredential: activities.refreshCredential, describeCredential: activities.describeCredential },
  });
  return new MaestroWorker(main, refresh, workflows.described);
}
