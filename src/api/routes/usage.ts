// GET /v1/usage: token and request counts from usage_hourly. Admin keys see every key's usage;
// a client key only its own (the key filter is forced, whatever the query says).
import { Router } from 'express';
import type { UsageStore } from '../../db/usage.js';
import { principalOf } from '../auth.js';
import { ValidationError } from '../../errors.js';
import { shaped, usageAnswerSchema, usageQuerySchema } from '../schemas.js';

export function createUsageRoutes({ usage }: { usage: Pick<UsageStore, 'query'> }): Router {
  const router = Router();
  router.get('/', async (req, res) => {
    const q = usageQuerySchema.parse(req.query);
    const who = principalOf(req);
    const to = q.to ? new Date(q.to) : new Date();
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - 86_400_000);
    if (from.getTime() >= to.getTime()) throw new ValidationError('from must be before to');
    const rows = await usage.query({ from, to, groupBy: q.groupBy, bucket: q.bucket, keyId: who.role === 'admin' ? undefined : who.keyId });
    res.json(shaped(usageAnswerSchema, { from: from.toISOString(), to: to.toISOString(), usage: rows }));
  });
  return router;
}
