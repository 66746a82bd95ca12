// The API's side of the refresh workflows: start (one per credential, reusing a running one),
// refresh now, signal, stop, and reconcile the set of workflows with the database.
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { CredentialMetadata, CredentialStore } from '../db/credentials.js';
import { ConflictError, NotFoundError, ProviderUnavailableError, ReauthRequiredError, ServiceUnavailableError, ValidationError } from '../errors.js';
import type { CredentialView } from '../activities/index.js';
import {
  credentialRefreshWorkflow,
  credentialUpdatedSignal,
  credentialWorkflowId,
  FailureTypes,
  refreshNowUpdate,
  statusQuery,
  stopSignal,
  type RefreshStatus,
  type RefreshWorkflowInput,
} from '../workflows/credentialRefresh.js';
import { sendMessageWorkflow } from '../workflows/sendMessage.js';
import type { MessageRequest, MessageResponse } from '../activities/index.js';
import { AuthStatusKey, CredentialIdKey, ExpiresAtKey, ProviderKey } from '../workflows/searchAttributes.js';

export interface CredentialWorkflowsOptions {
  client: Client;
  taskQueue: string;
  /** Tests set a small value to exercise continue-as-new. */
  maxHistoryEvents?: number;
}

/** Unwraps a Temporal failure to the ApplicationFailure a workflow or activity raised, if any. */
function applicationFailure(error: unknown): ApplicationFailure | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure) return e;
  }
  return undefined;
}

function toMaestroError(error: unknown, credentialId: string): Error {
  const failure = applicationFailure(error);
  switch (failure?.type) {
    case FailureTypes.reauthRequired:
      return new ReauthRequiredError(`credential ${credentialId} needs a new login (POST /v1/oauth/:provider/start)`);
    case FailureTypes.notFound:
      return new NotFoundError(`credential ${credentialId} not found`);
    case FailureTypes.notRefreshable:
      return new ConflictError(`credential ${credentialId} has no refresh token; replace its tokens instead`);
    case FailureTypes.misconfigured:
      return new ConflictError(`credential ${credentialId} cannot be used: provider is misconfigured`);
    case 'InvalidRequest':
      return new ValidationError(failure.message);
    case 'ProviderUnavailable':
      return new ProviderUnavailableError(`provider unavailable: ${failure.message}`);
  }
  if (error instanceof WorkflowNotFoundError) return new NotFoundError(`credential ${credentialId} has no refresh workflow`);
  if (failure) return new ServiceUnavailableError(`workflow failed: ${failure.message}`);
  return new ServiceUnavailableError(`Temporal is unavailable: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
}

export class CredentialWorkflows {
  constructor(private readonly options: CredentialWorkflowsOptions) {}

  private get client() {
    return this.options.client;
  }

  /** Starts the credential's refresh workflow, or leaves a running one in place. */
  async start(credential: Pick<CredentialMetadata, 'id' | 'provider' | 'name' | 'status' | 'expiresAt'>): Promise<void> {
    const input: RefreshWorkflowInput = { credentialId: credential.id, maxHistoryEvents: this.options.maxHistoryEvents };
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
  async refreshNow(credentialId: string, ifVersion?: number): Promise<CredentialView> {
    try {
      return await this.client.workflow.getHandle(credentialWorkflowId(credentialId)).executeUpdate(refreshNowUpdate, { args: [{ ifVersion }] });
    } catch (error) {
      throw toMaestroError(error, credentialId);
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
        args: [{ credentialId: credential.id, maxHistoryEvents: this.options.maxHistoryEvents }],
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

  /** Runs a durable provider call and waits for its answer. */
  async sendMessage(credentialId: string, request: MessageRequest): Promise<MessageResponse> {
    try {
      return await this.client.workflow.execute(sendMessageWorkflow, {
        workflowId: `message:${credentialId}:${Date.now().toString(36)}:${Math.random().toString(36).slice(2, 8)}`,
        taskQueue: this.options.taskQueue,
        args: [{ credentialId, request }],
        staticSummary: `Durable message call with credential ${credentialId}`,
      });
    } catch (error) {
      throw toMaestroError(error, credentialId);
    }
  }

  /**
   * Makes the set of workflows match the database (after a restore, say): every OAuth credential
   * gets its workflow (start reuses a running one, so this is one cheap call each). Workflows of
   * deleted credentials end by themselves the next time they read the credential.
   */
  async reconcile(store: CredentialStore): Promise<{ checked: number }> {
    const credentials = await store.list({ authType: 'oauth' });
    // A few starts in flight at once: worker start-up stays short with thousands of credentials.
    for (let i = 0; i < credentials.length; i += 20) {
      await Promise.all(credentials.slice(i, i + 20).map((credential) => this.start(credential)));
    }
    return { checked: credentials.length };
  }
}
