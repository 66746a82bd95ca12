// /v1/keys: create (the whole key shown once), list, read, revoke. Admin keys only.
import { z } from 'zod';
import { paginate } from '../pagination.js';
import { createdKeySchema, createKeySchema, keyIdParamSchema, keyListQuerySchema, keyListSchema, keySchema } from '../schemas.js';
import { answer, commonFailures, defineRoute, failure } from './route.js';

const params = z.object({ id: keyIdParamSchema });
const notFound = failure('no key with this id');
const adminOnly = 'Admin keys only.';

export const keyRoutes = [
  defineRoute({
    method: 'post',
    path: '/keys',
    role: 'admin',
    operationId: 'createKey',
    summary: 'create a Maestro key (shown once)',
    description: `${adminOnly} A client key must list credentials (ids or names) or providers.`,
    request: { body: { schema: createKeySchema } },
    responses: { 201: answer('the key, with the whole key this once', createdKeySchema), ...commonFailures },
  }).handle(async ({ body, principal }, { keys }) => {
    const created = await keys.create({ ...body, expiresAt: body.expiresAt ? new Date(body.expiresAt) : undefined }, principal.keyId);
    // The one answer that carries a secret: never cached by anything in between.
    return { status: 201, body: created, headers: { 'cache-control': 'no-store' } };
  }),
  defineRoute({
    method: 'get',
    path: '/keys',
    role: 'admin',
    operationId: 'listKeys',
    summary: 'list Maestro keys',
    description: `${adminOnly} Oldest first; \`limit\` and \`cursor\` page through them.`,
    request: { query: keyListQuerySchema },
    responses: { 200: answer('every key, revoked ones included; never a key or its hash', keyListSchema), ...commonFailures },
  }).handle(async ({ query }, { keys }) => {
    const page = paginate(await keys.list(), query);
    return { status: 200, body: { keys: page.items, nextCursor: page.nextCursor } };
  }),
  defineRoute({
    method: 'get',
    path: '/keys/{id}',
    role: 'admin',
    operationId: 'getKey',
    summary: 'read a Maestro key',
    description: adminOnly,
    request: { params },
    responses: { 200: answer('the key’s metadata and when it was last used', keySchema), ...commonFailures, 404: notFound },
  }).handle(async ({ params: { id } }, { keys }) => ({ status: 200, body: await keys.get(id) })),
  defineRoute({
    method: 'delete',
    path: '/keys/{id}',
    role: 'admin',
    operationId: 'revokeKey',
    summary: 'revoke a Maestro key',
    description: `${adminOnly} Refused by every API process within 2 s; revoking twice is not an error.`,
    request: { params },
    responses: { 204: { description: 'revoked' }, ...commonFailures, 404: notFound },
  }).handle(async ({ params: { id }, principal }, { keys }) => {
    await keys.revoke(id, principal.keyId);
    return { status: 204 };
  }),
];
