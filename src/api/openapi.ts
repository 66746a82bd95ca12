// The OpenAPI 3.1 document served at /openapi.json; request bodies come from the zod schemas.
import { z } from 'zod';
import { createCredentialSchema, messageSchema, oauthCompleteSchema, oauthStartSchema, replaceCredentialSchema } from './schemas.js';

const json = (schema: z.ZodType) => ({ content: { 'application/json': { schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) } } });
const error = { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const providerParam = { name: 'provider', in: 'path', required: true, schema: { type: 'string', enum: ['anthropic', 'openai', 'gemini'] } };
const metadata = { description: 'credential metadata (never a secret)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Credential' } } } };
const errors = { 400: error, 401: error, 404: error, 409: error };

export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: { title: 'Maestro', version: '0.1.0', description: 'LLM-provider credentials kept fresh by Temporal, and an authenticated proxy.' },
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
            version: { type: 'integer' },
            refreshCount: { type: 'integer' },
            lastRefreshedAt: { type: ['string', 'null'], format: 'date-time' },
            lastError: { type: ['string', 'null'] },
          },
        },
      },
    },
    security: [{ bearer: [] }, { apiKey: [] }],
    paths: {
      '/healthz': { get: { summary: 'liveness', security: [], responses: { 200: { description: 'ok' } } } },
      '/readyz': { get: { summary: 'readiness (Postgres and Temporal)', security: [], responses: { 200: { description: 'ready' }, 503: error } } },
      '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { 200: { description: 'text/plain' } } } },
      '/v1/credentials': {
        post: { summary: 'import a credential', requestBody: json(createCredentialSchema), responses: { 201: metadata, ...errors } },
        get: { summary: 'list credentials', responses: { 200: { description: '{credentials: Credential[]}' }, ...errors } },
      },
      '/v1/credentials/{id}': {
        parameters: [idParam],
        get: { summary: 'read a credential with its workflow status', responses: { 200: metadata, ...errors } },
        patch: { summary: 'replace tokens or key', requestBody: json(replaceCredentialSchema), responses: { 200: metadata, ...errors } },
        delete: { summary: 'stop its workflow and remove it', responses: { 204: { description: 'deleted' }, ...errors } },
      },
      '/v1/credentials/{id}/refresh': { parameters: [idParam], post: { summary: 'refresh now', responses: { 200: metadata, ...errors } } },
      '/v1/credentials/{id}/events': { parameters: [idParam], get: { summary: 'history', responses: { 200: { description: '{events}' }, ...errors } } },
      '/v1/credentials/{id}/messages': {
        parameters: [idParam],
        post: { summary: 'durable provider call', requestBody: json(messageSchema), responses: { 200: { description: "the provider's answer" }, ...errors } },
      },
      '/v1/oauth/{provider}/start': {
        parameters: [providerParam],
        post: { summary: 'begin a PKCE login', requestBody: json(oauthStartSchema), responses: { 201: { description: '{sessionId, authorizeUrl, expiresAt}' }, ...errors } },
      },
      '/v1/oauth/{provider}/complete': {
        parameters: [providerParam],
        post: { summary: 'finish a login with the pasted code', requestBody: json(oauthCompleteSchema), responses: { 201: metadata, ...errors } },
      },
      '/proxy/{provider}/{path}': {
        parameters: [providerParam, { name: 'path', in: 'path', required: true, schema: { type: 'string' } }],
        post: {
          summary: "proxy to the provider's API with the credential's auth injected",
          parameters: [{ name: 'x-maestro-credential', in: 'header', required: false, schema: { type: 'string' } }],
          responses: { 200: { description: "the provider's answer, streamed" }, 401: error, 404: error, 409: error, 502: error },
        },
      },
    },
  };
}
