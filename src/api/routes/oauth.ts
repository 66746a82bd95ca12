// /v1/oauth/:provider/start and /complete: PKCE login over HTTP. Sessions are sealed, expire
// after 10 minutes and are single use; the pasted code may be `code#state`, a URL or bare.
import { Router } from 'express';
import type { CredentialService } from '../../credentials/service.js';
import { credentialSchema, loginStartedSchema, oauthCompleteSchema, oauthStartSchema, providerSchema, shaped } from '../schemas.js';

export function createOAuthRoutes({ credentials }: { credentials: CredentialService }): Router {
  const router = Router({ mergeParams: true });
  router.post('/:provider/start', async (req, res) => {
    const body = oauthStartSchema.parse(req.body ?? {});
    res.status(201).json(shaped(loginStartedSchema, await credentials.beginLogin(providerSchema.parse(req.params.provider), body.name)));
  });
  router.post('/:provider/complete', async (req, res) => {
    const body = oauthCompleteSchema.parse(req.body);
    const { credential } = await credentials.completeLogin(providerSchema.parse(req.params.provider), body);
    res.status(201).json(shaped(credentialSchema, credential));
  });
  return router;
}
