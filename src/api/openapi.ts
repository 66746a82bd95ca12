// The OpenAPI 3.1 document served at /openapi.json; request bodies come from the zod schemas.
import { z } from 'zod';
import { PROVIDER_IDS } from '../config.js';
import { createCredentialSchema, messageSchema, oauthCompleteSchema, oauthStartSchema, replaceCredentialSchema } from './schemas.js';

const json = (schema: z.ZodType) => ({ content: { 'application/json': { schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) } } });
const error = { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const providerParam = { name: 'provider', in: 'path', required: true, schema: { type: 'string', enum: [...PROVIDER_IDS] } };
const metadata = { description: 'credential metadata (never a secret)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Credential' } } } };
const errors = { 400: error, 401: error, 404: error, 409: error };

export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: { title: 'Maestro', version: '0.1.0', description: 'LLM-provider credentials kept fresh by Temporal, and an authenticated proxy.' },
    servers: [{ url: 'http://localhost:3000', description: 'a local Maestro (npm run dev)' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' } },
      schemas: {
        Error: {
          type: 'object',
          properties: { error: { type: 'object', properties: { type: { type: 'string' }, message: { type: 'string' } }, required: ['type', 'message'] } },
        },
        Credential: {
          type: 'object',
          properties: {
            id: { type: 'string', format: 'uuid' },
            name: { type: 'string' },
            provider: { type: 'string' },
            authType: { type: 'string', enum: ['oauth', 'api_key'] },
            status: { type: 'string', enum: ['active', 'reauth_required', 'disabled'] },
            expiresAt: { type: ['string', 'null'], format: 'date-time' },
            tokenObtainedAt: { type: ['string', 'null'], format: 'date-time' },
            version: { type: 'integer' },
            refreshCount: { type: 'integer' },
            lastRefreshedAt: { type: ['string', 'null'], format: 'date-time' },
            lastError: { type: ['string', 'null'] },
            createdAt: { type: 'string', format: 'date-time' },
            updatedAt: { type: 'string', format: 'date-time' },
            workflow: {
              description: 'GET /v1/credentials/{id} only: the refresh workflow as it reports itself (null for API keys or when Temporal cannot say)',
              type: ['object', 'null'],
              properties: {
                phase: { type: 'string', enum: ['starting', 'sleeping', 'refreshing', 'parked', 'stopped'] },
                nextRefreshAt: { type: ['string', 'null'], format: 'date-time' },
                refreshes: { type: 'integer' },
                lastRefreshAt: { type: ['string', 'null'], format: 'date-time' },
                lastResult: { type: ['object', 'null'] },
                credentialStatus: { type: ['string', 'null'] },
              },
            },
          },
          required: ['id', 'name', 'provider', 'authType', 'status', 'expiresAt', 'version', 'refreshCount', 'createdAt', 'updatedAt'],
        },
      },
    },
    security: [{ bearer: [] }, { apiKey: [] }],
    paths: {
      '/healthz': { get: { operationId: 'getHealth', summary: 'liveness', security: [], responses: { 200: { description: 'ok' } } } },
      '/readyz': { get: { operationId: 'getReadiness', summary: 'readiness (Postgres and Temporal)', security: [], responses: { 200: { description: 'ready' }, 503: error } } },
      '/metrics': { get: { operationId: 'getMetrics', summary: 'Prometheus metrics', security: [], responses: { 200: { description: 'text/plain' } } } },
      '/v1/credentials': {
        post: { operationId: 'importCredential', summary: 'import a credential', requestBody: json(createCredentialSchema), responses: { 201: metadata, ...errors } },
        get: { operationId: 'listCredentials', summary: 'list credentials', responses: { 200: { description: '{credentials: Credential[]}' }, ...errors } },
      },
      '/v1/credentials/{id}': {
        parameters: [idParam],
        get: { operationId: 'getCredential', summary: 'read a credential with its workflow status', responses: { 200: metadata, ...errors } },
        patch: { operationId: 'replaceCredential', summary: 'replace tokens or key', requestBody: json(replaceCredentialSchema), responses: { 200: metadata, ...errors } },
        delete: { operationId: 'deleteCredential', summary: 'stop its workflow and remove it', responses: { 204: { description: 'deleted' }, ...errors } },
      },
      '/v1/credentials/{id}/refresh': { parameters: [idParam], post: { operationId: 'refreshCredential', summary: 'refresh now (answered within MAESTRO_REFRESH_WAIT_MS; 503 + Retry-After while still retrying)', responses: { 200: metadata, ...errors, 503: error } } },
      '/v1/credentials/{id}/events': { parameters: [idParam], get: { operationId: 'listCredentialEvents', summary: 'history', responses: { 200: { description: '{events}' }, ...errors } } },
      '/v1/credentials/{id}/messages': {
        parameters: [idParam],
        post: { operationId: 'sendMessage', summary: 'durable provider call', requestBody: json(messageSchema), responses: { 200: { description: "the provider's answer" }, ...errors } },
      },
      '/v1/oauth/{provider}/start': {
        parameters: [providerParam],
        post: { operationId: 'startLogin', summary: 'begin a PKCE login', requestBody: json(oauthStartSchema), responses: { 201: { description: '{sessionId, authorizeUrl, expiresAt}' }, ...errors } },
      },
      '/v1/oauth/{provider}/complete': {
        parameters: [providerParam],
        post: { operationId: 'completeLogin', summary: 'finish a login with the pasted code', requestBody: json(oauthCompleteSchema), responses: { 201: metadata, ...errors } },
      },
      '/proxy/{provider}/{path}': {
        parameters: [providerParam, { name: 'path', in: 'path', required: true, schema: { type: 'string' } }],
        post: {
          operationId: 'proxyToProvider',
          summary: "proxy to the provider's API with the credential's auth injected",
          parameters: [{ name: 'x-maestro-credential', in: 'header', required: false, schema: { type: 'string' } }],
          responses: { 200: { description: "the provider's answer, streamed" }, 401: error, 404: error, 409: error, 502: error },
        },
      },
    },
  };
}
