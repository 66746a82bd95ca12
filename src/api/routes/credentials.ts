// /v1/credentials: import, list, read, replace tokens, delete, refresh now, history, durable calls.
// Each handler calls the credential service and answers. Responses carry metadata only.
import { z } from 'zod';
import { credentialRefusal, requireCredential, requireInferencePath, visibleCredentials } from '../../clientKeys/access.js';
import { NotFoundError } from '../../errors.js';
import { observeJsonBody } from '../../usage/tap.js';
import {
  createCredentialSchema,
  credentialEventListSchema,
  credentialListSchema,
  credentialSchema,
  credentialWithWorkflowSchema,
  idParamSchema,
  listQuerySchema,
  messageSchema,
  rateLimitSchema,
  replaceCredentialSchema,
} from '../schemas.js';
import { paginate } from '../pagination.js';
import { answer, commonFailures, defineRoute, failure } from './route.js';

export function expiryFrom(body: { expiresAt?: string; expiresIn?: number }, now = Date.now()): Date | null {
  if (body.expiresAt) return new Date(body.expiresAt);
  if (body.expiresIn !== undefined) return new Date(now + body.expiresIn * 1000);
  return null;
}

const params = z.object({ id: idParamSchema });
const notFound = failure('no credential with this id');

export const credentialRoutes = [
  defineRoute({
    method: 'post',
    path: '/credentials',
    role: 'admin',
    operationId: 'importCredential',
    summary: 'import a credential (API key or OAuth tokens)',
    request: { body: { schema: createCredentialSchema } },
    responses: {
      201: answer('stored; an OAuth credential gets its refresh workflow', credentialSchema),
      ...commonFailures,
      409: failure('the name is taken for this provider and auth type'),
    },
  }).handle(async ({ body }, { credentials }) => {
    const credential = await credentials.importCredential(body.authType === 'api_key' ? body : { ...body, expiresAt: expiryFrom(body) });
    return { status: 201, body: credential };
  }),
  defineRoute({
    method: 'get',
    path: '/credentials',
    role: 'client', // a client key sees the credentials it may use
    operationId: 'listCredentials',
    summary: 'list credentials',
    description: 'Oldest first; `limit` and `cursor` page through them.',
    request: { query: listQuerySchema },
    responses: { 200: answer('metadata of every matching credential', credentialListSchema), ...commonFailures },
  }).handle(async ({ query: { limit, cursor, ...filter }, principal }, { credentials }) => {
    const page = paginate(visibleCredentials(principal, await credentials.list(filter)), { limit, cursor });
    return { status: 200, body: { credentials: page.items, nextCursor: page.nextCursor } };
  }),
  defineRoute({
    method: 'get',
    path: '/credentials/{id}',
    role: 'admin',
    operationId: 'getCredential',
    summary: 'read a credential with its workflow status',
    request: { params },
    responses: { 200: answer('metadata and the refresh workflow', credentialWithWorkflowSchema), ...commonFailures, 404: notFound },
  }).handle(async ({ params: { id } }, { credentials, rateLimits }) => {
    const [credential, rateLimit] = await Promise.all([credentials.get(id), rateLimits.get(id)]);
    return { status: 200, body: { ...credential, rateLimit } };
  }),
  ...(['disable', 'enable'] as const).map((action) =>
    defineRoute({
      method: 'post',
      path: `/credentials/{id}/${action}`,
      role: 'admin',
      operationId: `${action}Credential`,
      summary: action === 'disable' ? 'disable a credential: it takes no calls until enabled' : 'enable a disabled credential',
      description:
        action === 'disable'
          ? 'Proxied, durable and pool calls refuse it (a pool shows it `disabled` and routes around it); its workflow keeps its token fresh. Idempotent.'
          : 'Back to `active`; a refresh token that died meanwhile shows at the next refresh as `reauth_required`. Idempotent.',
      request: { params },
      responses: { 200: answer('the credential', credentialSchema), ...commonFailures, 404: notFound },
    }).handle(async ({ params: { id } }, { credentials }) => ({
      status: 200,
      body: await credentials.setEnabled(id, action === 'enable'),
    })),
  ),
  defineRoute({
    method: 'patch',
    path: '/credentials/{id}',
    role: 'admin',
    operationId: 'replaceCredential',
    summary: 'replace tokens or key',
    request: { params, body: { schema: replaceCredentialSchema } },
    responses: {
      200: answer('the new metadata', credentialSchema),
      ...commonFailures,
      404: notFound,
      409: failure('the body does not fit the credential’s auth type'),
    },
  }).handle(async ({ params: { id }, body }, { credentials }) => ({
    status: 200,
    body: await credentials.replace(id, 'apiKey' in body ? body : { ...body, expiresAt: expiryFrom(body) }),
  })),
  defineRoute({
    method: 'delete',
    path: '/credentials/{id}',
    role: 'admin',
    operationId: 'deleteCredential',
    summary: 'stop its workflow and remove it',
    request: { params },
    responses: { 204: { description: 'deleted' }, ...commonFailures, 404: notFound },
  }).handle(async ({ params: { id } }, { credentials }) => {
    await credentials.remove(id);
    return { status: 204 };
  }),
  defineRoute({
    method: 'post',
    path: '/credentials/{id}/refresh',
    role: 'admin',
    operationId: 'refreshCredential',
    summary: 'refresh now',
    description: 'Answered within MAESTRO_REFRESH_WAIT_MS; while the provider is failing, 503 with Retry-After and the last error.',
    request: { params },
    responses: {
      200: answer('refreshed (or already current)', credentialSchema),
      ...commonFailures,
      404: notFound,
      409: failure('the refresh token is dead: sign in again'),
      503: failure('still retrying; try again after Retry-After'),
    },
  }).handle(async ({ params: { id }, whileConnected }, { credentials }) => ({
    status: 200,
    // Bounded by the workflows client; a caller that disconnects releases its wait.
    body: await credentials.refreshNow(id, { signal: whileConnected() }),
  })),
  defineRoute({
    method: 'post',
    path: '/credentials/{id}/quota',
    role: 'admin',
    operationId: 'readCredentialQuota',
    summary: "read the provider's quota now (no request spent, no refresh)",
    description:
      "Read through the credential's workflow (one read in flight per credential), answered within MAESTRO_REFRESH_WAIT_MS. " +
      'An expired or refused token marks the state `stale`; the token is never refreshed for a read.',
    request: { params },
    responses: {
      200: answer("the credential's rateLimit: header and quota-endpoint windows, each with its source and observedAt", rateLimitSchema),
      ...commonFailures,
      404: notFound,
      409: failure('no quota endpoint (API keys, or a provider without one), or the credential needs a new login'),
      503: failure('no read within the wait bound, or the quota endpoint is refusing reads; try again after Retry-After'),
    },
  }).handle(async ({ params: { id }, whileConnected }, { credentials, rateLimits }) => {
    await credentials.readQuota(id, { signal: whileConnected() });
    return { status: 200, body: (await rateLimits.get(id)) ?? { observedAt: new Date().toISOString(), windows: {} } };
  }),
  defineRoute({
    method: 'get',
    path: '/credentials/{id}/events',
    role: 'admin',
    operationId: 'listCredentialEvents',
    summary: 'refresh and change history',
    request: { params },
    responses: { 200: answer('newest first', credentialEventListSchema), ...commonFailures, 404: notFound },
  }).handle(async ({ params: { id } }, { credentials }) => ({ status: 200, body: { events: await credentials.events(id) } })),
  defineRoute({
    method: 'post',
    path: '/credentials/{id}/messages',
    role: 'client', // its own credentials, inference paths only (checked below)
    operationId: 'sendMessage',
    summary: 'durable provider call (a workflow with retries)',
    request: { params, body: { schema: messageSchema, optional: true } },
    responses: {
      200: answer("the provider's answer", z.unknown()),
      ...commonFailures,
      403: failure('a client key: a credential it cannot reach (the same answer whether or not it exists), or not an inference path'),
      404: failure('no credential with this id (admin keys; a client key gets 403)'),
      409: failure('the credential needs a new login or is disabled'),
      429: failure(
        'too many failed key checks, the key is over limits.requestsPerMinute or already has limits.concurrentCalls calls in flight (rate_limited); Retry-After says when',
      ),
    },
  }).handle(async ({ params: { id }, body, principal: who }, { credentials, providers, calls, usage }) => {
    const asked = `credential "${id}"`;
    // A client key hears the same refusal for an unknown credential as for another's (no existence oracle).
    const credential = await credentials.metadata(id).catch((error: unknown) => {
      throw who.role !== 'admin' && error instanceof NotFoundError ? credentialRefusal(who, asked) : error;
    });
    if (who.role !== 'admin') {
      // A client key: its own credential, and only an inference path of that provider.
      requireCredential(who, credential, asked);
      requireInferencePath(who, providers.get(credential.provider), body.method, body.path);
    }
    const request = { path: body.path, method: body.method, body: body.body, headers: body.headers };
    const release = calls.acquire(who);
    const answered = await credentials.sendMessage(id, request, who.keyId).finally(release);
    // The worker recorded the call's usage against this key: its budget here counts it at once.
    if (answered.recordedTokens !== undefined) usage.chargeRecordedElsewhere(who.keyId, answered.recordedTokens);
    else {
      // A worker that records no usage (an older one): the final answer counts for this key like a proxied call's.
      const seen = observeJsonBody(credential.provider, answered.status, answered.body);
      const { provider } = credential;
      usage.record({ keyId: who.keyId, credentialId: id, provider, model: seen.model, usage: seen.usage, error: answered.status >= 400 });
    }
    return { relayed: { status: answered.status, body: answered.body } };
  }),
];
