// The OpenAPI 3.1 document served at /openapi.json, generated (zod-openapi) from the same zod
// schemas that validate requests and shape responses, so the two cannot drift apart. The /v1
// operations come from the route table (routes/v1.ts); the routes outside it are described here.
import { z } from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject, type ZodOpenApiResponsesObject } from 'zod-openapi';
import { codecBodySchema } from './codec.js';
import { healthSchema, providerSchema, readySchema } from './schemas.js';
import { answer, commonFailures as common, failure } from './routes/route.js';
import { V1_ROUTES } from './routes/v1.js';

const jsonBody = (schema: z.ZodType, required = true) => ({ ...(required && { required }), content: { 'application/json': { schema } } });

function op(
  operationId: string,
  summary: string,
  rest: Omit<ZodOpenApiOperationObject, 'operationId' | 'summary'>,
): ZodOpenApiOperationObject {
  return { operationId, summary, ...rest };
}

/** The /v1 paths, from the route table (in its order: it is the order of the document). */
function v1Paths(): ZodOpenApiPathsObject {
  const paths: ZodOpenApiPathsObject = {};
  for (const route of V1_ROUTES) {
    const { params, query, body } = route.request ?? {};
    const path = (paths[`/v1${route.path}`] ??= {});
    path[route.method] = op(route.operationId, route.summary, {
      ...(route.description !== undefined && { description: route.description }),
      ...((params || query) && { requestParams: { ...(params && { path: params }), ...(query && { query }) } }),
      ...(body && { requestBody: jsonBody(body.schema, !body.optional) }),
      responses: route.responses,
    });
  }
  return paths;
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
      ...v1Paths(),
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
