// /v1/keys: create (the whole key shown once), list, read, revoke. Admin keys only (app.ts).
import { Router } from 'express';
import type { KeyService } from '../../clientKeys/service.js';
import { principalOf } from '../auth.js';
import { createdKeySchema, createKeySchema, keyIdParamSchema, keyListSchema, keySchema, shaped } from '../schemas.js';

export function createKeyRoutes({ keys }: { keys: KeyService }): Router {
  const router = Router();
  const parseId = (value: unknown) => keyIdParamSchema.parse(value);

  router.post('/', async (req, res) => {
    const body = createKeySchema.parse(req.body);
    const created = await keys.create(
      { ...body, expiresAt: body.expiresAt ? new Date(body.expiresAt) : undefined },
      principalOf(req).keyId,
    );
    // The one answer that carries a secret: never cached by anything in between.
    res.status(201).set('cache-control', 'no-store').json(shaped(createdKeySchema, created));
  });

  router.get('/', async (_req, res) => {
    res.json(shaped(keyListSchema, { keys: await keys.list() }));
  });

  router.get('/:id', async (req, res) => {
    res.json(shaped(keySchema, await keys.get(parseId(req.params.id))));
  });

  router.delete('/:id', async (req, res) => {
    await keys.revoke(parseId(req.params.id), principalOf(req).keyId);
    res.status(204).end();
  });

  return router;
}
