// CredentialService: everything that can happen to a credential, in one place. The HTTP routes
// call this; the proxy resolves credentials through the token cache beside it. (The activities
// still reach the stores directly through their deps; moving them here is the open part of the
// credentials-module issue.)
//
// One policy for the workflow side of a change: the stored credential is the truth. A workflow
// start that fails is logged and repaired by the reconcile Schedule within minutes, or at once
// by the first refresh that finds no workflow (CredentialWorkflows.refreshNow starts it); a
// credentialUpdated signal that fails is logged and repaired at the workflow's next read (its
// refresh sees the moved version and returns the current state).
import { parsePastedCode, startLogin } from '../auth/pkce.js';
import { exchangeCode } from '../auth/tokenClient.js';
import type { ProviderId } from '../model/providers.js';
import type { CredentialEvent, CredentialMetadata, CredentialSecret, CredentialStore, ProviderMetadata } from '../db/credentials.js';
import { discoverCodeAssistProject } from '../auth/backends/codeAssistSetup.js';
import type { OAuthSessionStore } from '../db/oauthSessions.js';
import { ConflictError, ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { CredentialWorkflows } from '../temporal/credentialWorkflows.js';
import type { MessageRequest, MessageResponse } from '../activities/index.js';
import type { RefreshStatus } from '../workflows/refreshMessages.js';
import { lacksBodyValues, quotaValues } from '../providers/quotaTemplates.js';

export const LOGIN_SESSION_TTL_MS = 10 * 60_000;

export type ImportInput =
  | { provider: ProviderId; authType: 'api_key'; name?: string; apiKey: string }
  | {
      provider: ProviderId;
      authType: 'oauth';
      name?: string;
      accessToken: string;
      refreshToken?: string;
      idToken?: string;
      accountId?: string;
      expiresAt?: Date | null;
      /** gemini: the Code Assist project; unset, discovered with the access token. */
      project?: string;
    };

export type ReplaceInput =
  { apiKey: string } | { accessToken: string; refreshToken?: string; idToken?: string; accountId?: string; expiresAt?: Date | null };

export interface CredentialServiceDeps {
  store: CredentialStore;
  sessions: OAuthSessionStore;
  providers: ProviderRegistry;
  workflows: CredentialWorkflows;
  log: Logger;
  /** The Code Assist project of a Gemini sign-in (src/auth/backends/codeAssistSetup.ts); replaceable in tests. */
  discoverProject?: typeof discoverCodeAssistProject;
}

export class CredentialService {
  constructor(private readonly deps: CredentialServiceDeps) {}

  list(filter: Parameters<CredentialStore['list']>[0] = {}): Promise<CredentialMetadata[]> {
    return this.deps.store.list(filter);
  }

  /** Metadata only (no workflow status): for an access check. */
  metadata(id: string): Promise<CredentialMetadata> {
    return this.deps.store.get(id);
  }

  /** Metadata and, for OAuth, the refresh workflow's status (null when Temporal cannot say). */
  async get(id: string): Promise<CredentialMetadata & { workflow: RefreshStatus | null }> {
    const credential = await this.deps.store.get(id);
    const workflow = credential.authType === 'oauth' ? await this.deps.workflows.status(credential.id).catch(() => null) : null;
    return { ...credential, workflow };
  }

  /** Newest first; 404 for an id that never existed (a deleted credential keeps its history). */
  async events(id: string): Promise<CredentialEvent[]> {
    const events = await this.deps.store.listEvents(id, { limit: 200 });
    if (events.length === 0) await this.deps.store.get(id);
    return events;
  }

  async importCredential(input: ImportInput): Promise<CredentialMetadata> {
    const secret: CredentialSecret =
      input.authType === 'api_key'
        ? { apiKey: input.apiKey }
        : { accessToken: input.accessToken, refreshToken: input.refreshToken, idToken: input.idToken, accountId: input.accountId };
    const providerMetadata =
      input.authType === 'oauth' ? await this.signInSetup(input.provider, input.accessToken, input.project) : undefined;
    const credential = await this.deps.store.create({
      provider: input.provider,
      authType: input.authType,
      name: input.name,
      secret,
      expiresAt: input.authType === 'oauth' ? (input.expiresAt ?? null) : null,
      providerMetadata,
    });
    await this.startWorkflow(credential);
    return credential;
  }

  /**
   * Replaces tokens or the key. Fields left out of an OAuth replacement (refresh token, account id)
   * keep the stored ones, read under the row lock at write time: a refresh that committed a moment
   * ago has already spent the refresh token this request could have read.
   */
  async replace(id: string, input: ReplaceInput): Promise<CredentialMetadata> {
    const current = await this.deps.store.get(id);
    let updated: CredentialMetadata;
    if ('apiKey' in input) {
      if (current.authType !== 'api_key')
        throw new ValidationError('this is an OAuth credential: send accessToken (and refreshToken), not apiKey');
      updated = await this.deps.store.replaceTokens(id, { secret: { apiKey: input.apiKey }, expiresAt: null });
    } else {
      if (current.authType !== 'oauth') throw new ValidationError('this is an API-key credential: send apiKey');
      const keep: Array<'refreshToken' | 'accountId'> = [];
      if (!input.refreshToken) keep.push('refreshToken');
      if (!input.accountId) keep.push('accountId');
      updated = await this.deps.store.replaceTokens(id, {
        secret: { accessToken: input.accessToken, refreshToken: input.refreshToken, idToken: input.idToken, accountId: input.accountId },
        expiresAt: input.expiresAt ?? null,
        keep,
      });
    }
    await this.tellWorkflow(updated);
    return updated;
  }

  /**
   * Disables a credential (it takes no calls — proxied, durable or from a pool — until enabled; its
   * workflow keeps its token fresh), or enables a disabled one (`active`: a refresh token that died
   * meanwhile shows at its next refresh as `reauth_required`). Written to its history.
   */
  async setEnabled(id: string, enabled: boolean): Promise<CredentialMetadata> {
    const current = await this.deps.store.get(id);
    if (enabled) return current.status === 'disabled' ? this.deps.store.setStatus(id, 'active') : current;
    return this.deps.store.setStatus(id, 'disabled');
  }

  /** Removes the secret (the history stays) and stops the workflow (it also ends by itself on its next read). */
  async remove(id: string): Promise<void> {
    const credential = await this.deps.store.get(id);
    await this.deps.store.delete(id);
    if (credential.authType === 'oauth') await this.deps.workflows.stop(id).catch(() => {});
  }

  /**
   * Reads the provider's quota now through the credential's workflow (the single reader; no
   * request spent, no refresh), bounded like a refresh-now. 409 without a quota endpoint (API keys).
   */
  async readQuota(id: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const credential = await this.deps.store.get(id);
    if (credential.authType !== 'oauth')
      throw new ConflictError('API-key credentials have no quota endpoint; their limits come from answer headers');
    const endpoint = this.deps.providers.get(credential.provider).quota;
    if (!endpoint) {
      throw new ConflictError(`${credential.provider} sign-in credentials have no quota endpoint; their limits come from answer headers`);
    }
    if (lacksBodyValues(endpoint, quotaValues(credential.providerMetadata))) {
      throw new ConflictError(
        `this ${credential.provider} sign-in has no project, which its quota read names; sign in again (or import it with its project) to read its quota`,
      );
    }
    await this.deps.workflows.readQuota(id, opts);
  }

  /** Refresh through the workflow, bounded (see CredentialWorkflows.refreshNow); the stored metadata after it. */
  async refreshNow(id: string, opts: { signal?: AbortSignal } = {}): Promise<CredentialMetadata> {
    const credential = await this.deps.store.get(id);
    if (credential.authType !== 'oauth') throw new ConflictError('API-key credentials are not refreshed');
    await this.deps.workflows.refreshNow(id, undefined, opts);
    return this.deps.store.get(id);
  }

  /** A durable provider call through sendMessageWorkflow. */
  async sendMessage(id: string, request: MessageRequest, keyId?: string): Promise<MessageResponse> {
    const credential = await this.deps.store.get(id);
    if (credential.status === 'reauth_required') throw new ConflictError(`credential ${id} needs a new login`);
    return this.deps.workflows.sendMessage(id, request, keyId);
  }

  async beginLogin(provider: ProviderId, name = 'default'): Promise<{ sessionId: string; authorizeUrl: string; expiresAt: string }> {
    const definition = this.deps.providers.get(provider);
    const login = startLogin(definition);
    const session = await this.deps.sessions.create({
      provider: definition.id,
      name,
      verifier: login.verifier,
      state: login.state,
      redirectUri: login.redirectUri,
      ttlMs: LOGIN_SESSION_TTL_MS,
    });
    return { sessionId: session.id, authorizeUrl: login.authorizeUrl, expiresAt: session.expiresAt };
  }

  /** Completes a login: new tokens for a new credential, or for the existing one of that name. */
  async completeLogin(
    provider: ProviderId,
    input: { sessionId: string; code: string },
  ): Promise<{ credential: CredentialMetadata; created: boolean }> {
    const pasted = parsePastedCode(input.code);
    const session = await this.deps.sessions.consume(input.sessionId);
    if (session.provider !== provider) throw new ValidationError(`login session belongs to ${session.provider}, not ${provider}`);
    if (pasted.state !== undefined && pasted.state !== session.state) {
      throw new ValidationError('the pasted code belongs to another login (state mismatch); start a new login');
    }
    const tokens = await exchangeCode(this.deps.providers.get(provider), {
      code: pasted.code,
      verifier: session.verifier,
      state: session.state,
      redirectUri: session.redirectUri,
    });
    const secret = {
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      idToken: tokens.idToken,
      accountId: tokens.accountId,
    };
    // Found again at every login: a new login may be another account.
    const providerMetadata = (await this.signInSetup(provider, tokens.accessToken)) ?? null;
    const existing = await this.deps.store.find(provider, session.name, 'oauth');
    if (existing) {
      // A new login wins over whatever the row holds now (a refresh may have moved its version).
      const credential = await this.deps.store.replaceTokens(existing.id, { secret, expiresAt: tokens.expiresAt, providerMetadata });
      await this.tellWorkflow(credential);
      return { credential, created: false };
    }
    const credential = await this.deps.store.create({
      provider,
      authType: 'oauth',
      name: session.name,
      secret,
      expiresAt: tokens.expiresAt,
      providerMetadata,
    });
    await this.startWorkflow(credential);
    return { credential, created: true };
  }

  /** What a sign-in backend needs to know once (Code Assist: the project); undefined when nothing. */
  private async signInSetup(provider: ProviderId, accessToken: string, project?: string): Promise<ProviderMetadata | undefined> {
    const definition = this.deps.providers.get(provider);
    if (definition.backends.oauth !== 'code-assist') return undefined;
    if (project) return { project };
    const discover = this.deps.discoverProject ?? discoverCodeAssistProject;
    return { project: await discover(definition, accessToken) };
  }

  // --- the workflow side (one policy, see the top of this file) -------------------------------

  private startWorkflow(credential: CredentialMetadata): Promise<void> {
    return this.toWorkflow(
      credential,
      () => this.deps.workflows.start(credential),
      'refresh workflow not started yet; the reconcile schedule will start it',
    );
  }

  private tellWorkflow(credential: CredentialMetadata): Promise<void> {
    return this.toWorkflow(
      credential,
      () => this.deps.workflows.credentialUpdated(credential),
      'could not signal the refresh workflow; it picks the change up at its next read',
    );
  }

  /** The stored row is the truth; a workflow that misses this message catches up by itself (warned, not thrown). */
  private async toWorkflow(credential: CredentialMetadata, send: () => Promise<unknown>, onFailure: string): Promise<void> {
    if (credential.authType !== 'oauth') return;
    try {
      await send();
    } catch (error) {
      this.deps.log.warn({ credentialId: credential.id, error: (error as Error).message }, onFailure);
    }
  }
}
