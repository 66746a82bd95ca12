// /v1/pools (DESIGN.md "Pools"): create, list, read, change, delete; the events timeline; an
// operator's action on a member; a durable call through the pool. Client keys may read the pools
// they reach and call through them; everything else is for admin keys.
import { z } from 'zod';
import { mayUsePool, poolRefusal, requireInferencePath } from '../../clientKeys/access.js';
import { NotFoundError, ServiceUnavailableError } from '../../errors.js';
import {
  createPoolSchema,
  messageSchema,
  poolEventListSchema,
  poolEventsQuerySchema,
  poolListSchema,
  poolMemberActionSchema,
  poolParamSchema,
  poolSchema,
  updatePoolSchema,
} from '../schemas.js';
import { answer, commonFailures, defineRoute, failure, type RouteDeps } from './route.js';

const params = z.object({ id: poolParamSchema });
const notFound = failure('no pool with this id or name');
const adminOnly = 'Admin keys only.';

function poolsOf(deps: RouteDeps): NonNullable<RouteDeps['pools']> {
  if (!deps.pools) throw new ServiceUnavailableError('pools are not served by this process');
  return deps.pools;
}

export const poolRoutes = [
  defineRoute({
    method: 'post',
    path: '/pools',
    role: 'admin',
    operationId: 'createPool',
    summary: 'create a pool of credentials',
    description: `${adminOnly} Members are credentials (ids or names) of the pool's provider.`,
    request: { body: { schema: createPoolSchema } },
    responses: { 201: answer('the pool', poolSchema), ...commonFailures, 409: failure('a pool with this name exists') },
  }).handle(async ({ body }, deps) => ({ status: 201, body: await poolsOf(deps).service.create(body) })),
  defineRoute({
    method: 'get',
    path: '/pools',
    role: 'client', // a client key sees the pools it may use
    operationId: 'listPools',
    summary: 'list pools and their members’ states',
    responses: { 200: answer('the pools this key may use', poolListSchema), ...commonFailures },
  }).handle(async ({ principal }, deps) => {
    const pools = await poolsOf(deps).service.list();
    return { status: 200, body: { pools: pools.filter((p) => mayUsePool(principal, { id: p.id, provider: p.provider })) } };
  }),
  defineRoute({
    method: 'get',
    path: '/pools/{id}',
    role: 'client',
    operationId: 'getPool',
    summary: 'read a pool: each member’s state, reason, reset, sessions and calls in flight',
    request: { params },
    responses: { 200: answer('the pool', poolSchema), ...commonFailures, 404: notFound },
  }).handle(async ({ params: { id }, principal }, deps) => {
    const pool = await poolsOf(deps)
      .service.get(id)
      .catch((error: unknown) => {
        throw principal.role !== 'admin' && error instanceof NotFoundError ? poolRefusal(principal, id) : error;
      });
    if (!mayUsePool(principal, { id: pool.id, provider: pool.provider })) throw poolRefusal(principal, id);
    return { status: 200, body: pool };
  }),
  defineRoute({
    method: 'patch',
    path: '/pools/{id}',
    role: 'admin',
    operationId: 'updatePool',
    summary: 'change a pool’s members or policy',
    description: `${adminOnly} The fields of POST; members, when given, replace the list (a member kept keeps its paused flag).`,
    request: { params, body: { schema: updatePoolSchema } },
    responses: { 200: answer('the pool', poolSchema), ...commonFailures, 404: notFound, 409: failure('a pool with this name exists') },
  }).handle(async ({ params: { id }, body }, deps) => ({ status: 200, body: await poolsOf(deps).service.update(id, body) })),
  defineRoute({
    method: 'delete',
    path: '/pools/{id}',
    role: 'admin',
    operationId: 'deletePool',
    summary: 'delete a pool (its credentials stay)',
    description: adminOnly,
    request: { params },
    responses: { 204: { description: 'deleted' }, ...commonFailures, 404: notFound },
  }).handle(async ({ params: { id } }, deps) => {
    await poolsOf(deps).service.delete(id);
    return { status: 204 };
  }),
  defineRoute({
    method: 'get',
    path: '/pools/{id}/events',
    role: 'admin',
    operationId: 'listPoolEvents',
    summary: 'the pool’s timeline: cooldowns, failovers, sessions, holds, overage, quota reads',
    description: `${adminOnly} Newest first.`,
    request: { params, query: poolEventsQuerySchema },
    responses: { 200: answer('newest first', poolEventListSchema), ...commonFailures, 404: notFound },
  }).handle(async ({ params: { id }, query }, deps) => ({
    status: 200,
    body: { events: await poolsOf(deps).service.events(id, query.limit) },
  })),
  defineRoute({
    method: 'post',
    path: '/pools/{id}/members',
    role: 'admin',
    operationId: 'actOnPoolMember',
    summary: 'pause or resume a member, or clear its cooldown (written to the timeline)',
    description: adminOnly,
    request: { params, body: { schema: poolMemberActionSchema } },
    responses: {
      200: answer('the pool after the change', poolSchema),
      ...commonFailures,
      404: failure('no such pool, or the credential is not a member'),
    },
  }).handle(async ({ params: { id }, body, principal }, deps) => ({
    status: 200,
    body: await poolsOf(deps).service.memberAction(id, body.credential, body.action, principal.keyId),
  })),
  defineRoute({
    method: 'post',
    path: '/pools/{id}/messages',
    role: 'client',
    operationId: 'sendPoolMessage',
    summary: 'durable provider call through a pool',
    description:
      'As POST /v1/credentials/{id}/messages, with the member picked by the pool and failover on a rate limit or overload; ' +
      'the x-maestro-credential-id header names the member that served.',
    request: { params, body: { schema: messageSchema, optional: true } },
    responses: {
      200: answer("the provider's answer", z.unknown()),
      ...commonFailures,
      404: notFound,
      429: failure(
        'pool_exhausted: no member can take the call now (Retry-After, x-maestro-pool-next-available); or the key is over its limits',
      ),
    },
  }).handle(async ({ params: { id }, body, principal: who, whileConnected }, deps) => {
    const pools = poolsOf(deps);
    const pool = await pools.service.find(id).catch((error: unknown) => {
      throw who.role !== 'admin' && error instanceof NotFoundError ? poolRefusal(who, id) : error;
    });
    if (!mayUsePool(who, pool)) throw poolRefusal(who, id);
    if (who.role !== 'admin') requireInferencePath(who, deps.providers.get(pool.provider), body.method, body.path);
    const request = { path: body.path, method: body.method, body: body.body, headers: body.headers };
    const release = deps.calls.acquire(who);
    const answered = await pools.send(pool, request, who.keyId, whileConnected()).finally(release);
    if (answered.recordedTokens !== undefined) deps.usage.chargeRecordedElsewhere(who.keyId, answered.recordedTokens);
    return { relayed: { status: answered.status, body: answered.body, headers: { 'x-maestro-credential-id': answered.credentialId } } };
  }),
];
