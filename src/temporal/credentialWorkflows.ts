// The API's side of the refresh workflows: start (one per credential, reusing a running one),
// refresh now, signal, stop, and reconcile the set of workflows with the database.
import {
  ScheduleAlreadyRunning,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, type Duration, type Workflow } from '@temporalio/common';
import type { DurableCallSigner } from '../crypto/durableCalls.js';
import type { CredentialMetadata, CredentialStore } from '../db/credentials.js';
import { CallerGoneError, errorForFailure, NoRefreshWorkflowError, ServiceUnavailableError } from '../errors.js';
import type { CredentialView, MessageRequest, MessageResponse } from '../activities/index.js';
import {
  credentialRefreshWorkflow,
  credentialUpdatedSignal,
  credentialWorkflowId,
  FailureType,
  quotaBenchedSignal,
  readQuotaUpdate,
  refreshNowUpdate,
  statusQuery,
  stopSignal,
  DEFAULT_REFRESH_WAIT_MS,
  type RefreshStatus,
  type RefreshWorkflowInput,
} from '../workflows/credentialRefresh.js';
import { sendMessageWorkflow } from '../workflows/sendMessage.js';
import { callContextOf, withCallContext } from './callContext.js';
import type { RateLimitState } from '../usage/rateLimits.js';
import type { Logger } from '../logger.js';
import { reconcileWorkflow } from '../workflows/reconcile.js';
import { maintenanceWorkflow } from '../workflows/maintenance.js';
import { AuthStatusKey, CredentialIdKey, ExpiresAtKey, ProviderKey } from '../workflows/searchAttributes.js';

/** How often the reconcile Schedule looks for credentials without a refresh workflow. */
export const RECONCILE_EVERY_MINUTES = 2;

export interface CredentialWorkflowsOptions {
  client: Client;
  taskQueue: string;
  /** Tests set a small value to exercise continue-as-new. */
  maxHistoryEvents?: number;
  /** How long a refresh-now caller waits for an answer (ms); default 20 s. */
  refreshWaitMs?: number;
  /** The credential's last recorded refresh error, for "still retrying" answers. */
  lastError?: (credentialId: string) => Promise<string | null>;
  /** The stored credential (NotFoundError when gone): a refresh that finds no workflow starts one with it. */
  credential?: (credentialId: string) => Promise<CredentialMetadata>;
  /** Signs durable calls so the worker knows an API accepted them. */
  signer: DurableCallSigner;
  /** Idle quota reads per credential (ms; MAESTRO_QUOTA_INTERVAL); 0: only while benched or asked. Unset: the workflow's 15 min. */
  quotaIntervalMs?: number;
  /** Where a bench signal that found no workflow is logged. */
  log?: Pick<Logger, 'debug' | 'warn'>;
}

/** Extra time the client allows past the workflow's own bound before it gives up on Temporal. */
const CLIENT_GRACE_MS = 5_000;

/** Unwraps a Temporal failure to the ApplicationFailure a workflow or activity raised, if any. */
function applicationFailure(error: unknown): ApplicationFailure | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure) return e;
  }
  return undefined;
}

/** What the caller is told when a credential's workflow ends with a failure of this type (any other: it failed, retry later). */
const FAILURE_MESSAGES: Partial<Record<FailureType, (credentialId: string, detail: string) => string>> = {
  [FailureType.reauthRequired]: (id) => `credential ${id} needs a new login (POST /v1/oauth/:provider/start)`,
  [FailureType.notFound]: (id) => `credential ${id} not found`,
  [FailureType.stopped]: (id) => `credential ${id} is being deleted (its refresh workflow stopped)`,
  [FailureType.notRefreshable]: (id) => `credential ${id} has no refresh token; replace its tokens instead`,
  [FailureType.misconfigured]: (id) => `credential ${id} cannot be used: provider is misconfigured`,
  // This API signed it: a worker that cannot verify it has other encryption keys.
  [FailureType.unsignedCall]: (_, detail) =>
    `the worker refused a durable call this API signed (do the API and the worker share MAESTRO_ENCRYPTION_KEYS?): ${detail}`,
  [FailureType.disabled]: (id) => `credential ${id} is disabled; enable it before sending with it`,
  [FailureType.invalidRequest]: (_, detail) => detail,
  [FailureType.providerUnavailable]: (_, detail) => `provider unavailable: ${detail}`,
};

/** A Temporal failure as Maestro's error, of the class the error table (src/errors.ts) names for its type. */
function toMaestroError(error: unknown, credentialId: string): Error {
  const failure = applicationFailure(error);
  if (failure) {
    const type = failure.type ?? '';
    const message = Object.hasOwn(FAILURE_MESSAGES, type)
      ? FAILURE_MESSAGES[type as FailureType]!(credentialId, failure.message)
      : `workflow failed: ${failure.message}`;
    return new (errorForFailure(type))(message);
  }
  if (error instanceof WorkflowNotFoundError) return new NoRefreshWorkflowError(`credential ${credentialId} has no refresh workflow`);
  return new ServiceUnavailableError(`Temporal is unavailable: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
}

export class CredentialWorkflows {
  constructor(private readonly options: CredentialWorkflowsOptions) {}

  private get client() {
    return this.options.client;
  }

  private input(credentialId: string): RefreshWorkflowInput {
    return {
      credentialId,
      maxHistoryEvents: this.options.maxHistoryEvents,
      ...(this.options.quotaIntervalMs === undefined ? {} : { quotaIntervalMs: this.options.quotaIntervalMs }),
    };
  }

  /**
   * A pool benched this credential until `untilIso` (a bench starts or grows; call once per
   * bench, not per request): its workflow re-reads the quota on the benched schedule until a
   * read shows room. Cheap and idempotent; never throws (no workflow, Temporal away: logged).
   */
  async noteBenched(credentialId: string, untilIso: string): Promise<void> {
    try {
      await this.client.workflow.getHandle(credentialWorkflowId(credentialId)).signal(quotaBenchedSignal, untilIso);
    } catch (error) {
      const log = this.options.log;
      if (error instanceof WorkflowNotFoundError) log?.debug({ credentialId }, 'bench not signalled: the credential has no workflow');
      else log?.warn({ credentialId, error: error instanceof Error ? error.message.split('\n')[0] : String(error) }, 'bench not signalled');
    }
  }

  /** Reads the credential's quota now through its workflow (the single reader); answered within the refresh wait bound. */
  async readQuota(credentialId: string, opts: { signal?: AbortSignal } = {}): Promise<RateLimitState> {
    const waitMs = this.options.refreshWaitMs ?? DEFAULT_REFRESH_WAIT_MS;
    try {
      return await this.boundedUpdate(
        waitMs,
        opts.signal,
        (handle) => handle.executeUpdate(readQuotaUpdate, { args: [{ waitMs }] }),
        credentialId,
      );
    } catch (error) {
      if (error instanceof UpdateNotAnswered || applicationFailure(error)?.type === FailureType.stillRetrying) {
        throw new ServiceUnavailableError(
          `no quota read for credential ${credentialId} within ${Math.round(waitMs / 1000)} s; retry shortly`,
          {
            retryAfterSeconds: 5,
          },
        );
      }
      throw error instanceof CallerGoneError ? error : toMaestroError(error, credentialId);
    }
  }

  /** Starts the credential's refresh workflow, or leaves a running one in place. */
  async start(credential: Pick<CredentialMetadata, 'id' | 'provider' | 'name' | 'status' | 'expiresAt'>): Promise<void> {
    const input: RefreshWorkflowInput = this.input(credential.id);
    try {
      await this.client.workflow.start(credentialRefreshWorkflow, {
        workflowId: credentialWorkflowId(credential.id),
        taskQueue: this.options.taskQueue,
        args: [input],
        workflowIdConflictPolicy: 'USE_EXISTING',
        staticSummary: `Keeps ${credential.provider} credential "${credential.name}" (${credential.id}) fresh`,
        typedSearchAttributes: [
          { key: CredentialIdKey, value: credential.id },
          { key: ProviderKey, value: credential.provider },
          { key: AuthStatusKey, value: credential.status },
          ...(credential.expiresAt ? [{ key: ExpiresAtKey, value: new Date(credential.expiresAt) }] : []),
        ],
      });
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) return;
      throw toMaestroError(error, credential.id);
    }
  }

  /**
   * Refresh through the workflow's update; concurrent callers share one token-endpoint call.
   * `ifVersion` is the version whose token failed: if a newer one is stored, no refresh happens.
   */
  async refreshNow(credentialId: string, ifVersion?: number, opts: { signal?: AbortSignal } = {}): Promise<CredentialView> {
    try {
      return await this.askRefresh(credentialId, ifVersion, opts);
    } catch (error) {
      if (!(error instanceof NoRefreshWorkflowError) || !this.options.credential) throw error;
      // No workflow (its start failed at import, or it was ended): start it now rather than leave
      // the credential unrefreshable until the reconcile Schedule's next run, and ask once more.
      const credential = await this.options.credential(credentialId);
      if (credential.authType !== 'oauth') throw error;
      await this.start(credential);
    }
    return this.askRefresh(credentialId, ifVersion, opts);
  }

  private async askRefresh(credentialId: string, ifVersion: number | undefined, opts: { signal?: AbortSignal }): Promise<CredentialView> {
    const waitMs = this.options.refreshWaitMs ?? DEFAULT_REFRESH_WAIT_MS;
    try {
      return await this.boundedUpdate(
        waitMs,
        opts.signal,
        (handle) => handle.executeUpdate(refreshNowUpdate, { args: [{ ifVersion, waitMs }] }),
        credentialId,
      );
    } catch (error) {
      if (error instanceof CallerGoneError) throw error;
      if (error instanceof UpdateNotAnswered) {
        throw new ServiceUnavailableError(
          `no refresh answer for credential ${credentialId} within ${Math.round((waitMs + CLIENT_GRACE_MS) / 1000)} s: is a Maestro worker running? Retry shortly`,
          { retryAfterSeconds: 5 },
        );
      }
      if (applicationFailure(error)?.type === FailureType.stillRetrying) {
        const last = await this.options.lastError?.(credentialId).catch(() => null);
        throw new ServiceUnavailableError(
          `credential ${credentialId} is still being refreshed (the workflow keeps retrying)${last ? `; last error: ${last}` : ''}. Retry shortly`,
          { retryAfterSeconds: Math.max(1, Math.round(waitMs / 1000)) },
        );
      }
      throw toMaestroError(error, credentialId);
    }
  }

  /**
   * An update of the credential's workflow, answered within `waitMs` plus a grace whatever happens:
   * the workflow answers within waitMs; the client stops waiting a little later in case no worker
   * is running at all (UpdateNotAnswered), or when the caller disconnects (CallerGoneError). The
   * SDK retries an update the server aborted (a worker restarting) on its own schedule, so the
   * abort alone does not bound the wait: the caller is answered when the signal fires.
   */
  private async boundedUpdate<T>(
    waitMs: number,
    callerSignal: AbortSignal | undefined,
    run: (handle: WorkflowHandle) => Promise<T>,
    credentialId: string,
  ): Promise<T> {
    // A caller already gone hears so at once: an aborted signal fires no 'abort', and the wait below would have no bound.
    if (callerSignal?.aborted) throw new CallerGoneError('the caller went away');
    const deadline = AbortSignal.timeout(waitMs + CLIENT_GRACE_MS);
    const signal = callerSignal ? AbortSignal.any([callerSignal, deadline]) : deadline;
    let onAbort: (() => void) | undefined;
    const answered = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    // The client's call context is on only while the update runs (callContext.ts).
    const update = withCallContext(callContextOf(this.client.connection), () =>
      this.client.withAbortSignal(signal, () => run(this.client.workflow.getHandle(credentialWorkflowId(credentialId)))),
    );
    update.catch(() => {}); // settled after the race when the caller was already answered
    try {
      return await Promise.race([update, answered]);
    } catch (error) {
      if (callerSignal?.aborted) throw new CallerGoneError('the caller went away');
      if (deadline.aborted) throw new UpdateNotAnswered();
      throw error;
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  async status(credentialId: string): Promise<RefreshStatus | null> {
    try {
      return await this.client.workflow.getHandle(credentialWorkflowId(credentialId)).query(statusQuery);
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return null;
      throw toMaestroError(error, credentialId);
    }
  }

  /** Tells the workflow its tokens were replaced (a new login or a PATCH); starts it if it is gone. */
  async credentialUpdated(credential: CredentialMetadata): Promise<void> {
    try {
      await this.client.workflow.signalWithStart(credentialRefreshWorkflow, {
        workflowId: credentialWorkflowId(credential.id),
        taskQueue: this.options.taskQueue,
        args: [this.input(credential.id)],
        signal: credentialUpdatedSignal,
        signalArgs: [],
        staticSummary: `Keeps ${credential.provider} credential "${credential.name}" (${credential.id}) fresh`,
      });
    } catch (error) {
      throw toMaestroError(error, credential.id);
    }
  }

  async stop(credentialId: string): Promise<void> {
    try {
      await this.client.workflow.getHandle(credentialWorkflowId(credentialId)).signal(stopSignal);
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return;
      throw toMaestroError(error, credentialId);
    }
  }

  /** Runs a durable provider call and waits for its answer; `keyId`: the Maestro key its usage is recorded against. */
  async sendMessage(credentialId: string, request: MessageRequest, keyId?: string): Promise<MessageResponse> {
    try {
      const workflowId = `message:${credentialId}:${Date.now().toString(36)}:${Math.random().toString(36).slice(2, 8)}`;
      const signature = this.options.signer.sign(workflowId, credentialId, request, Date.now(), keyId);
      return await this.client.workflow.execute(sendMessageWorkflow, {
        workflowId,
        taskQueue: this.options.taskQueue,
        args: [{ credentialId, request, ...(keyId === undefined ? {} : { keyId }), signature }],
        staticSummary: `Durable message call with credential ${credentialId}`,
      });
    } catch (error) {
      throw toMaestroError(error, credentialId);
    }
  }

  /**
   * Makes the set of workflows match the database (a start that failed, a restore): every OAuth
   * credential without a running refresh workflow gets one. Running ones come from visibility
   * (one paged query, not one call per credential); a start reuses a running workflow anyway, so
   * visibility lagging behind costs a cheap call, never a duplicate.
   */
  async reconcile(store: CredentialStore): Promise<{ checked: number; started: number }> {
    const credentials = await store.list({ authType: 'oauth' });
    let running: Set<string> | undefined;
    try {
      running = new Set();
      const query = `WorkflowType = 'credentialRefreshWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = '${this.options.taskQueue}'`;
      for await (const execution of this.client.workflow.list({ query })) running.add(execution.workflowId);
    } catch {
      running = undefined; // no visibility (the time-skipping test server): start each, as before
    }
    const missing = credentials.filter((c) => !running?.has(credentialWorkflowId(c.id)));
    // A few starts in flight at once: worker start-up stays short with thousands of credentials.
    for (let i = 0; i < missing.length; i += 20) {
      await Promise.all(missing.slice(i, i + 20).map((credential) => this.start(credential)));
    }
    return { checked: credentials.length, started: running ? missing.length : 0 };
  }

  /** The Schedule that runs reconcileWorkflow every `everyMinutes` (created once; kept if it exists). */
  ensureReconcileSchedule(everyMinutes = RECONCILE_EVERY_MINUTES): Promise<void> {
    return this.ensureSchedule(
      'maestro-reconcile',
      `${everyMinutes} minutes`,
      reconcileWorkflow,
      'Starts the refresh workflow of any OAuth credential that has none',
    );
  }

  /** Hourly housekeeping: expired login sessions, events past MAESTRO_EVENT_RETENTION_DAYS. */
  ensureMaintenanceSchedule(every = '1 hour'): Promise<void> {
    return this.ensureSchedule(
      'maestro-maintenance',
      every,
      maintenanceWorkflow,
      'Deletes expired login sessions and credential events past retention',
    );
  }

  /** One Schedule per task queue, created once (a second worker start finds it and leaves it). */
  private async ensureSchedule(prefix: string, every: string, workflowType: Workflow, summary: string): Promise<void> {
    const scheduleId = `${prefix}:${this.options.taskQueue}`;
    try {
      await this.client.schedule.create({
        scheduleId,
        spec: { intervals: [{ every: every as Duration }] },
        policies: { overlap: 'SKIP', catchupWindow: '1 minute' },
        action: {
          type: 'startWorkflow',
          workflowType,
          workflowId: scheduleId,
          taskQueue: this.options.taskQueue,
          args: [],
          staticSummary: summary,
        },
      });
    } catch (error) {
      if (error instanceof ScheduleAlreadyRunning) return;
      throw toMaestroError(error, scheduleId);
    }
  }
}

/** A workflow update not answered within its bound (the callers say what it means). */
class UpdateNotAnswered extends Error {}
