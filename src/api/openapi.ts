// The OpenAPI 3.1 document served at /openapi.json, generated (zod-openapi) from the same zod
// schemas that validate requests and shape responses, so the two cannot drift apart.
import { z } from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiResponsesObject } from 'zod-openapi';
import { codecBodySchema } from './codec.js';
import {
  createCredentialSchema,
  createdKeySchema,
  createKeySchema,
  keyIdParamSchema,
  keyListSchema,
  keySchema,
  usageAnswerSchema,
  usageQuerySchema,
  credentialEventListSchema,
  credentialListSchema,
  credentialSchema,
  credentialWithWorkflowSchema,
  errorSchema,
  healthSchema,
  idParamSchema,
  listQuerySchema,
  loginStartedSchema,
  messageSchema,
  oauthCompleteSchema,
  oauthStartSchema,
  providerSchema,
  readySchema,
  replaceCredentialSchema,
} from './schemas.js';

const jsonBody = (schema: z.ZodType) => ({ required: true, content: { 'application/json': { schema } } });
const answer = (description: string, schema: z.ZodType) => ({ description, content: { 'application/json': { schema } } });
const failure = (description: string) => answer(description, errorSchema);

/** The failures every authenticated /v1 route can answer. */
const common: ZodOpenApiResponsesObject = {
  400: failure('the request is malformed; the message says which field and why'),
  401: failure('missing, unknown, revoked or expired Maestro key'),
  403: failure('a client key that may not do this; the message says what it lacks'),
  408: failure('the request body stopped arriving for 30 s (request_timeout); the connection is closed'),
  429: failure(
    'too many failed key checks from this address (MAESTRO_AUTH_FAILURES_PER_MINUTE), or the key is over limits.requestsPerMinute (rate_limited); Retry-After says when',
  ),
  500: failure('unexpected error (logged; never carries a secret)'),
};
const withId = { path: z.object({ id: idParamSchema }) };
const withProvider = { path: z.object({ provider: providerSchema }) };
const notFound = failure('no credential with this id');
const withKeyId = { path: z.object({ id: keyIdParamSchema }) };
const keyNotFound = failure('no key with this id');
const adminOnly = 'Admin keys only.';

function op(
  operationId: string,
  summary: string,
  rest: Omit<ZodOpenApiOperationObject, 'operationId' | 'summary'>,
): ZodOpenApiOperationObject {
  return { operationId, summary, ...rest };
}

const publicRoute = (operationId: string, summary: string, responses: ZodOpenApiResponsesObject) => ({
  get: op(operationId, summary, { security: [], responses }),
});

export function openApiDocument() {
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Maestro',
      version: '0.1.0',
      description: 'LLM-provider credentials kept fresh by Temporal, and an authenticated proxy.',
      license: { name: 'UNLICENSED', identifier: 'UNLICENSED' },
    },
    // Relative: the document is served by the Maestro it describes (`npm run dev`: http://localhost:3000).
    servers: [{ url: '/', description: 'the Maestro that serves this document' }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <Maestro API key>' },
        apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'the Maestro API key (what provider SDKs send)' },
      },
    },
    security: [{ bearer: [] }, { apiKey: [] }],
    paths: {
      '/healthz': publicRoute('getHealth', 'liveness', { 200: answer('the process is up', healthSchema) }),
      '/readyz': publicRoute('getReadiness', 'readiness (Postgres and Temporal)', {
        200: answer('PostgreSQL and Temporal answer', readySchema),
        503: failure('what is down'),
      }),
      '/metrics': publicRoute('getMetrics', 'Prometheus metrics', {
        200: { description: 'Prometheus text exposition', content: { 'text/plain': { schema: z.string() } } },
      }),
      '/v1/credentials': {
        post: op('importCredential', 'import a credential (API key or OAuth tokens)', {
          requestBody: jsonBody(createCredentialSchema),
          responses: {
            201: answer('stored; an OAuth credential gets its refresh workflow', credentialSchema),
            ...common,
            409: failure('the name is taken for this provider and auth type'),
          },
        }),
        get: op('listCredentials', 'list credentials', {
          requestParams: { query: listQuerySchema },
          responses: { 200: answer('metadata of every matching credential', credentialListSchema), ...common },
        }),
      },
      '/v1/credentials/{id}': {
        get: op('getCredential', 'read a credential with its workflow status', {
          requestParams: withId,
          responses: { 200: answer('metadata and the refresh workflow', credentialWithWorkflowSchema), ...common, 404: notFound },
        }),
        patch: op('replaceCredential', 'replace tokens or key', {
          requestParams: withId,
          requestBody: jsonBody(replaceCredentialSchema),
          responses: {
            200: answer('the new metadata', credentialSchema),
            ...common,
            404: notFound,
            409: failure('the body does not fit the credential’s auth type'),
          },
        }),
        delete: op('deleteCredential', 'stop its workflow and remove it', {
          requestParams: withId,
          responses: { 204: { description: 'deleted' }, ...common, 404: notFound },
        }),
      },
      '/v1/credentials/{id}/refresh': {
        post: op('refreshCredential', 'refresh now', {
          description: 'Answered within MAESTRO_REFRESH_WAIT_MS; while the provider is failing, 503 with Retry-After and the last error.',
          requestParams: withId,
          responses: {
            200: answer('refreshed (or already current)', credentialSchema),
            ...common,
            404: notFound,
            409: failure('the refresh token is dead: sign in again'),
            503: failure('still retrying; try again after Retry-After'),
          },
        }),
      },
      '/v1/credentials/{id}/events': {
        get: op('listCredentialEvents', 'refresh and change history', {
          requestParams: withId,
          responses: { 200: answer('newest first', credentialEventListSchema), ...common, 404: notFound },
        }),
      },
      '/v1/credentials/{id}/messages': {
        post: op('sendMessage', 'durable provider call (a workflow with retries)', {
          requestParams: withId,
          requestBody: jsonBody(messageSchema),
          responses: {
            200: answer("the provider's answer", z.unknown()),
            ...common,
            403: failure('a client key: a credential it cannot reach (the same answer whether or not it exists), or not an inference path'),
            404: failure('no credential with this id (admin keys; a client key gets 403)'),
            409: failure('the credential needs a new login or is disabled'),
            429: failure(
              'too many failed key checks, the key is over limits.requestsPerMinute or already has limits.concurrentCalls calls in flight (rate_limited); Retry-After says when',
            ),
          },
        }),
      },
      '/v1/oauth/{provider}/start': {
        post: op('startLogin', 'begin a PKCE login', {
          requestParams: withProvider,
          requestBody: { content: { 'application/json': { schema: oauthStartSchema } } },
          responses: {
            201: answer('a login session (10 minutes, single use)', loginStartedSchema),
            ...common,
            429: failure('too many login attempts'),
          },
        }),
      },
      '/v1/oauth/{provider}/complete': {
        post: op('completeLogin', 'finish a login with the pasted code', {
          requestParams: withProvider,
          requestBody: jsonBody(oauthCompleteSchema),
          responses: {
            201: answer('the signed-in credential', credentialSchema),
            ...common,
            404: failure('no such login session (expired or used)'),
            429: failure('too many login attempts, or too many failed key checks'),
            502: failure('the provider refused or did not answer the code exchange'),
          },
        }),
      },
      '/v1/keys': {
        post: op('createKey', 'create a Maestro key (shown once)', {
          description: `${adminOnly} A client key must list credentials (ids or names) or providers.`,
          requestBody: jsonBody(createKeySchema),
          responses: { 201: answer('the key, with the whole key this once', createdKeySchema), ...common },
        }),
        get: op('listKeys', 'list Maestro keys', {
          description: adminOnly,
          responses: { 200: answer('every key, revoked ones included; never a key or its hash', keyListSchema), ...common },
        }),
      },
      '/v1/keys/{id}': {
        get: op('getKey', 'read a Maestro key', {
          description: adminOnly,
          requestParams: withKeyId,
          responses: { 200: answer('the key’s metadata and when it was last used', keySchema), ...common, 404: keyNotFound },
        }),
        delete: op('revokeKey', 'revoke a Maestro key', {
          description: `${adminOnly} Refused by every API process within 2 s; revoking twice is not an error.`,
          requestParams: withKeyId,
          responses: { 204: { description: 'revoked' }, ...common, 404: keyNotFound },
        }),
      },
      '/v1/usage': {
        get: op('getUsage', 'tokens and requests by key, credential, provider, model and time', {
          description:
            'Admin keys see every key; a client key only its own. Counts come from the providers’ answers and are written in batches (a few seconds behind). Hour granularity: `from` is rounded down to its hour.',
          requestParams: { query: usageQuerySchema },
          responses: { 200: answer('one row per group (and bucket)', usageAnswerSchema), ...common },
        }),
      },
      '/codec/encode': {
        post: op('encodePayloads', "seal Temporal payloads with Maestro's payload codec (remote codec protocol)", {
          requestBody: jsonBody(codecBodySchema),
          responses: { 200: answer('the same payloads, sealed', codecBodySchema), ...common },
        }),
      },
      '/codec/decode': {
        post: op('decodePayloads', "open Temporal payloads sealed by Maestro (the Web UI's and the CLI's --codec-endpoint)", {
          requestBody: jsonBody(codecBodySchema),
          responses: { 200: answer('the same payloads, opened (plain ones unchanged)', codecBodySchema), ...common },
        }),
      },
      '/proxy/{provider}/{path}': {
        post: op('proxyToProvider', "proxy to the provider's API with the credential's auth injected", {
          description: 'Any method and path under the provider API; the body streams through untouched.',
          requestParams: {
            path: z.object({ provider: providerSchema, path: z.string().meta({ description: 'the provider API path, e.g. v1/messages' }) }),
            header: z.object({
              'x-maestro-credential': z
                .string()
                .optional()
                .meta({ description: 'credential id or name; default: the provider’s first active one' }),
            }),
          },
          responses: {
            200: { description: "the provider's answer, streamed" },
            401: failure('missing, unknown, revoked or expired Maestro key'),
            403: failure(
              'a client key: not its provider, a credential it cannot reach (the same answer whether or not it exists, whatever its state), or not an inference path',
            ),
            404: failure('unknown provider or credential (admin keys)'),
            408: failure('the request body stopped arriving for 30 s (request_timeout); the connection is closed'),
            409: failure('the credential needs a new login'),
            429: failure(
              'too many failed key checks from this address, or the key is over its request rate or already has limits.concurrentCalls calls in flight (rate_limited), or over its daily token budget (budget_exceeded); Retry-After says when',
            ),
            502: failure('the provider did not answer'),
            503: failure(
              'the token was refused and a streamed body cannot be replayed, or a refresh is still retrying; resend after Retry-After',
            ),
          },
        }),
      },
    },
  });
}
