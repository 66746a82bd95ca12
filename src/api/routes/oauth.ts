// /v1/oauth/:provider/start and /complete: PKCE login over HTTP. Sessions are sealed, expire
// after 10 minutes and are single use; the pasted code may be `code#state`, a URL or bare.
import { Router } from 'express';
import { exchangeCode } from '../../auth/tokenClient.js';
import { parsePastedCode, startLogin } from '../../auth/pkce.js';
import type { CredentialMetadata, CredentialStore } from '../../db/credentials.js';
import type { OAuthSessionStore } from '../../db/oauthSessions.js';
import { ValidationError } from '../../errors.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import type { CredentialWorkflows } from '../../temporal/credentialWorkflows.js';
import { oauthCompleteSchema, oauthStartSchema, providerSchema } from '../schemas.js';

export interface OAuthRoutesDeps {
  store: CredentialStore;
  sessions: OAuthSessionStore;
  providers: ProviderRegistry;
  workflows: CredentialWorkflows;
}

export const LOGIN_SESSION_TTL_MS = 10 * 60_000;

/** Completes a login: stores new tokens (a new credential, or new tokens for an existing one). */
export async function completeLogin(
  deps: OAuthRoutesDeps,
  provider: string,
  input: { sessionId: string; code: string },
): Promise<{ credential: CredentialMetadata; created: boolean }> {
  const providerId = providerSchema.parse(provider);
  const pasted = parsePastedCode(input.code);
  const session = await deps.sessions.consume(input.sessionId);
  if (session.provider !== providerId) throw new ValidationError(`login session belongs to ${session.provider}, not ${providerId}`);
  if (pasted.state !== undefined && pasted.state !== session.state) {
    throw new ValidationError('the pasted code belongs to another login (state mismatch); start a new login');
  }
  const tokens = await exchangeCode(deps.providers.get(providerId), {
    code: pasted.code,
    verifier: session.verifier,
    state: session.state,
    redirectUri: session.redirectUri,
  });
  const secret = { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, idToken: tokens.idToken, accountId: tokens.accountId };
  const existing = await deps.store.find(providerId, session.name, 'oauth');
  if (existing) {
    // A new login wins over whatever the row holds now (a refresh may have moved its version).
    const credential = await deps.store.replaceTokens(existing.id, { secret, expiresAt: tokens.expiresAt });
    await deps.workflows.credentialUpdated(credential);
    return { credential, created: false };
  }
  const credential = await deps.store.create({ provider: providerId, authType: 'oauth', name: session.name, secret, expiresAt: tokens.expiresAt });
  await deps.workflows.start(credential);
  return { credential, created: true };
}

export async function beginLogin(deps: Pick<OAuthRoutesDeps, 'sessions' | 'providers'>, provider: string, name = 'default') {
  const definition = deps.providers.get(providerSchema.parse(provider));
  const login = startLogin(definition);
  const session = await deps.sessions.create({
    provider: definition.id,
    name,
    verifier: login.verifier,
    state: login.state,
    redirectUri: login.redirectUri,
    ttlMs: LOGIN_SESSION_TTL_MS,
  });
  return { sessionId: session.id, authorizeUrl: login.authorizeUrl, expiresAt: session.expiresAt };
}

export function createOAuthRoutes(deps: OAuthRoutesDeps): Router {
  const router = Router({ mergeParams: true });
  router.post('/:provider/start', async (req, res) => {
    const body = oauthStartSchema.parse(req.body ?? {});
    res.status(201).json(await beginLogin(deps, req.params.provider, body.name));
  });
  router.post('/:provider/complete', async (req, res) => {
    const body = oauthCompleteSchema.parse(req.body);
    const { credential } = await completeLogin(deps, req.params.provider, body);
    res.status(201).json(credential);
  });
  return router;
}
