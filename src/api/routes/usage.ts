// GET /v1/usage: token and request counts from usage_hourly. Admin keys see every key's usage;
// a client key only its own (the key filter is forced, whatever the query says).
import { ValidationError } from '../../errors.js';
import { usageAnswerSchema, usageQuerySchema } from '../schemas.js';
import { answer, commonFailures, defineRoute } from './route.js';

export const usageRoutes = [
  defineRoute({
    method: 'get',
    path: '/usage',
    role: 'client',
    operationId: 'getUsage',
    summary: 'tokens and requests by key, credential, provider, model and time',
    description:
      'Admin keys see every key; a client key only its own. Counts come from the providers’ answers and are written in batches (a few seconds behind). Hour granularity: `from` is rounded down to its hour.',
    request: { query: usageQuerySchema },
    responses: { 200: answer('one row per group (and bucket)', usageAnswerSchema), ...commonFailures },
  }).handle(async ({ query: q, principal: who }, { usageStore }) => {
    const to = q.to ? new Date(q.to) : new Date();
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - 86_400_000);
    if (from.getTime() >= to.getTime()) throw new ValidationError('from must be before to');
    const keyId = who.role === 'admin' ? undefined : who.keyId;
    const rows = await usageStore.query({ from, to, groupBy: q.groupBy, bucket: q.bucket, keyId });
    return { status: 200, body: { from: from.toISOString(), to: to.toISOString(), usage: rows } };
  }),
];
