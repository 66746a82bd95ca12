// One /v1 route as data, the shape of hono's `createRoute`: method, path, what it accepts (zod),
// what it answers (zod, by status), who may call it, and what it does. The table of these
// (routes/v1.ts) is the one declaration: the Express adapter (routes/express.ts) serves it, the
// OpenAPI document (openapi.ts) describes it, and the client-key allow-list is its `role` column.
import type { z } from 'zod';
import type { CredentialService } from '../../credentials/service.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import type { UsageRecorder } from '../../usage/recorder.js';
import type { RateLimitBook } from '../../usage/rateLimitBook.js';
import type { UsageReports } from '../../model/usage.js';
import type { ConcurrentCalls } from '../../clientKeys/concurrentCalls.js';
import type { KeyService } from '../../clientKeys/service.js';
import type { Principal } from '../../clientKeys/registry.js';
import { errorSchema } from '../schemas.js';
import type { PoolService } from '../../pools/service.js';
import type { PoolRecord } from '../../model/pools.js';
import type { MessageRequest, MessageResponse } from '../../activities/types.js';

/** What the handlers call: handed to the adapter once, so the table itself needs nothing to be read. */
export interface RouteDeps {
  credentials: CredentialService;
  providers: ProviderRegistry;
  usage: Pick<UsageRecorder, 'record' | 'chargeRecordedElsewhere'>;
  rateLimits: Pick<RateLimitBook, 'get'>;
  /** A durable call holds a limits.concurrentCalls slot while it waits, like a proxied one. */
  calls: Pick<ConcurrentCalls, 'acquire'>;
  keys: KeyService;
  usageStore: UsageReports;
  /** Pools: the service, and a durable call through a pool. */
  pools?: {
    service: PoolService;
    send(
      pool: PoolRecord,
      request: MessageRequest,
      keyId: string,
      signal: AbortSignal,
    ): Promise<MessageResponse & { credentialId: string }>;
  };
}

// --- responses: OpenAPI response objects, whose JSON schema also shapes what is sent ----------

export interface JsonResponse<S extends z.ZodType = z.ZodType> {
  description: string;
  content: { 'application/json': { schema: S } };
}
export type ResponseSpec = JsonResponse | { description: string };

export const answer = <S extends z.ZodType>(description: string, schema: S): JsonResponse<S> => ({
  description,
  content: { 'application/json': { schema } },
});
export const failure = (description: string) => answer(description, errorSchema);

/** The failures every authenticated /v1 route can answer. */
export const commonFailures = {
  400: failure('the request is malformed; the message says which field and why'),
  401: failure('missing, unknown, revoked or expired Maestro key'),
  403: failure('a client key that may not do this; the message says what it lacks'),
  408: failure('the request body stopped arriving for 30 s (request_timeout); the connection is closed'),
  429: failure(
    'too many failed key checks from this address (MAESTRO_AUTH_FAILURES_PER_MINUTE), or the key is over limits.requestsPerMinute (rate_limited); Retry-After says when',
  ),
  500: failure('unexpected error (logged; never carries a secret)'),
};

/** The JSON schema a response declares, if it has a body. */
export const jsonSchemaOf = (spec: ResponseSpec | undefined): z.ZodType | undefined =>
  spec && 'content' in spec ? spec.content['application/json'].schema : undefined;

// --- the route ----------------------------------------------------------------------------------

type Responses = Record<number, ResponseSpec>;
type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

/** A handler's answer: a declared status with a body typed by that status's schema (shaped by it when sent). */
type Declared<R extends Responses> = {
  [K in keyof R & number]: R[K] extends JsonResponse<infer S>
    ? { status: K; body: z.input<S>; headers?: Record<string, string> }
    : { status: K; body?: undefined; headers?: Record<string, string> };
}[keyof R & number];
/** Someone else's answer sent on as it came, whatever its status (a durable call's provider answer). */
export interface Relayed {
  relayed: { status: number; body: unknown; headers?: Record<string, string> };
}

export interface RouteInput<P, Q, B> {
  params: Out<P>;
  query: Out<Q>;
  body: Out<B>;
  /** The caller, as the key gate found it. */
  principal: Principal;
  /** An AbortSignal that fires when the caller disconnects (made only when asked for). */
  whileConnected: () => AbortSignal;
}

export interface Route<
  P extends z.ZodObject | undefined = z.ZodObject | undefined,
  Q extends z.ZodType | undefined = z.ZodType | undefined,
  B extends z.ZodType | undefined = z.ZodType | undefined,
  R extends Responses = Responses,
> {
  method: 'get' | 'post' | 'patch' | 'delete';
  /** Relative to /v1, OpenAPI style: `/credentials/{id}`. */
  path: string;
  /** `client`: client keys may call it too (what they may reach is checked inside); `admin`: admin keys only. */
  role: Principal['role'];
  operationId: string;
  summary: string;
  description?: string;
  request?: {
    /** Each parameter is validated on its own, in the order declared. */
    params?: P;
    query?: Q;
    /** `optional`: a request without a JSON body is read as `{}`. */
    body?: { schema: B; optional?: true };
  };
  responses: R;
  handler: Handler<P, Q, B, R>;
}

type Handler<P, Q, B, R extends Responses> = (input: RouteInput<P, Q, B>, deps: RouteDeps) => Promise<Declared<R> | Relayed>;

/** A route as the adapter and the document read it (its types erased). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRoute = Route<any, any, any, any>;

/**
 * Declares one route: `defineRoute({...}).handle(async (input, deps) => answer)`, the handler typed
 * by the route's own schemas. (Two steps, as hono's `app.openapi(route, handler)`: declared in one
 * call, TypeScript would widen the handler's `status: 201` to `number` before it knows the statuses.)
 */
export const defineRoute = <
  P extends z.ZodObject | undefined = undefined,
  Q extends z.ZodType | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
  const R extends Responses = Responses,
>(
  route: Omit<Route<P, Q, B, R>, 'handler'>,
) => ({
  handle: (handler: Handler<P, Q, B, R>): AnyRoute => ({ ...route, handler }),
});
