// The Express adapter for the route table: one handler per entry that validates the request with
// the entry's schemas, calls its handler and shapes the answer with the schema declared for its
// status; and the role check, which reads each entry's `role` (the client-key allow-list).
import type { Request, RequestHandler, Response, Router } from 'express';
import type { z } from 'zod';
import { requireAdmin } from '../../clientKeys/access.js';
import { principalOf } from '../auth.js';
import { whileConnected } from '../../upstream/clientGone.js';
import { shaped } from '../schemas.js';
import { jsonSchemaOf, type AnyRoute, type RouteDeps } from './route.js';

/** `/credentials/{id}` → `/credentials/:id` */
const expressPath = (path: string) => path.replace(/\{([^}]+)\}/g, ':$1');

/** Registers every route of `routes` on `router`. */
export function mountRoutes(router: Router, routes: readonly AnyRoute[], deps: RouteDeps): void {
  for (const route of routes) {
    router[route.method](expressPath(route.path), async (req, res) => {
      const answer = await route.handler(
        { ...parseRequest(route, req), principal: principalOf(req), whileConnected: () => whileConnected(res) },
        deps,
      );
      send(res, route, answer);
    });
  }
}

/**
 * Parameters, then the query, then the body. Each parameter is parsed on its own schema, so its
 * message names no field ("body: credential id must be a UUID"), as the hand-written routes did.
 */
function parseRequest(route: AnyRoute, req: Request) {
  const { params, query, body } = route.request ?? {};
  const parsedParams: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(params?.shape ?? {})) parsedParams[name] = (schema as z.ZodType).parse(req.params[name]);
  return {
    params: parsedParams,
    query: query?.parse(req.query),
    body: body?.schema.parse(body.optional ? (req.body ?? {}) : req.body),
  };
}

function send(res: Response, route: AnyRoute, answer: Awaited<ReturnType<AnyRoute['handler']>>): void {
  if ('relayed' in answer) {
    if (answer.relayed.headers) res.set(answer.relayed.headers);
    res.status(answer.relayed.status).json(answer.relayed.body);
    return;
  }
  if (answer.headers) res.set(answer.headers);
  const schema = jsonSchemaOf(route.responses[answer.status]);
  if (!schema) {
    // A body the table does not declare would go out unshaped: Maestro's bug (a 500), never sent.
    if (answer.body !== undefined) throw new Error(`${route.operationId} answered ${answer.status} with a body it does not declare`);
    res.status(answer.status).end();
    return;
  }
  res.status(answer.status).json(shaped(schema, answer.body));
}

/** Path patterns of the routes a client key may call (as Express matches them: a trailing slash is allowed). */
function clientPatterns(routes: readonly AnyRoute[]): Array<[method: string, path: RegExp]> {
  return routes
    .filter((route) => route.role === 'client')
    .map((route) => {
      const pattern = route.path
        .split(/\{[^}]+\}/)
        .map((part) => part.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))
        .join('[^/]+');
      return [route.method.toUpperCase(), new RegExp(`^${pattern}/?$`)];
    });
}

/**
 * Middleware for the router the routes are mounted on: a client key may call the routes whose
 * role is `client`; anything else (other routes, and paths no route serves) needs an admin key.
 * It runs before the body is read, so a refused call's body is never parsed.
 */
export function requireRole(routes: readonly AnyRoute[], prefix: string): RequestHandler {
  const allowed = clientPatterns(routes);
  return (req, _res, next) => {
    if (!allowed.some(([method, path]) => method === req.method && path.test(req.path))) {
      requireAdmin(principalOf(req), `${req.method} ${prefix}${req.path.slice(0, 200)}`);
    }
    next();
  };
}
