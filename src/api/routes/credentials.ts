// /v1/credentials: import, list, read, replace tokens, delete, refresh now, history, durable calls.
// Each route parses, calls the credential service, answers. Responses carry metadata only.
import { Router } from 'express';
import { whileConnected } from '../../upstream/clientGone.js';
import type { CredentialService } from '../../credentials/service.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import { credentialRefusal, requireCredential, requireInferencePath, visibleCredentials } from '../../clientKeys/access.js';
import { NotFoundError } from '../../errors.js';
import { principalOf } from '../auth.js';
import type { UsageRecorder } from '../../usage/recorder.js';
import type { RateLimitBook } from '../../usage/rateLimitBook.js';
import type { ConcurrentCalls } from '../../clientKeys/concurrentCalls.js';
import { observeJsonBody } from '../../usage/tap.js';
import {
  createCredentialSchema,
  credentialEventListSchema,
  credentialListSchema,
  credentialSchema,
  credentialWithWorkflowSchema,
  idParamSchema,
  listQuerySchema,
  messageSchema,
  replaceCredentialSchema,
  shaped,
} from '../schemas.js';

export function expiryFrom(body: { expiresAt?: string; expiresIn?: number }, now = Date.now()): Date | null {
  if (body.expiresAt) return new Date(body.expiresAt);
  if (body.expiresIn !== undefined) return new Date(now + body.expiresIn * 1000);
  return null;
}

export function createCredentialRoutes({
  credentials,
  providers,
  usage,
  rateLimits,
  calls,
}: {
  credentials: CredentialService;
  providers: ProviderRegistry;
  usage: Pick<UsageRecorder, 'record' | 'chargeRecordedElsewhere'>;
  rateLimits: Pick<RateLimitBook, 'get'>;
  /** A durable call holds a limits.concurrentCalls slot while it waits, like a proxied one. */
  calls: Pick<ConcurrentCalls, 'acquire'>;
}): Router {
  const router = Router();
  const parseId = (value: unknown) => idParamSchema.parse(value);

  router.post('/', async (req, res) => {
    const body = createCredentialSchema.parse(req.body);
    const credential = await credentials.importCredential(body.authType === 'api_key' ? body : { ...body, expiresAt: expiryFrom(body) });
    res.status(201).json(shaped(credentialSchema, credential));
  });

  router.get('/', async (req, res) => {
    const all = await credentials.list(listQuerySchema.parse(req.query));
    res.json(shaped(credentialListSchema, { credentials: visibleCredentials(principalOf(req), all) }));
  });

  router.get('/:id', async (req, res) => {
    const id = parseId(req.params.id);
    const [credential, rateLimit] = await Promise.all([credentials.get(id), rateLimits.get(id)]);
    res.json(shaped(credentialWithWorkflowSchema, { ...credential, rateLimit }));
  });

  router.patch('/:id', async (req, res) => {
    const body = replaceCredentialSchema.parse(req.body);
    const id = parseId(req.params.id);
    res.json(shaped(credentialSchema, await credentials.replace(id, 'apiKey' in body ? body : { ...body, expiresAt: expiryFrom(body) })));
  });

  router.delete('/:id', async (req, res) => {
    await credentials.remove(parseId(req.params.id));
    res.status(204).end();
  });

  router.post('/:id/refresh', async (req, res) => {
    // Bounded by the workflows client; a caller that disconnects releases its wait.
    res.json(shaped(credentialSchema, await credentials.refreshNow(parseId(req.params.id), { signal: whileConnected(res) })));
  });

  router.get('/:id/events', async (req, res) => {
    res.json(shaped(credentialEventListSchema, { events: await credentials.events(parseId(req.params.id)) }));
  });

  router.post('/:id/messages', async (req, res) => {
    const id = parseId(req.params.id);
    const body = messageSchema.parse(req.body ?? {});
    const who = principalOf(req);
    const asked = `credential "${id}"`;
    // A client key hears the same refusal for an unknown credential as for another's (no existence oracle).
    const credential = await credentials.metadata(id).catch((error: unknown) => {
      throw who.role !== 'admin' && error instanceof NotFoundError ? credentialRefusal(who, asked) : error;
    });
    if (who.role !== 'admin') {
      // A client key: its own credential, and only an inference path of that provider.
      requireCredential(who, credential, asked);
      requireInferencePath(who, providers.get(credential.provider), body.method, body.path);
    }
    const request = { path: body.path, method: body.method, body: body.body, headers: body.headers };
    const release = calls.acquire(who);
    const answer = await credentials.sendMessage(id, request, who.keyId).finally(release);
    // The worker recorded the call's usage against this key: its budget here counts it at once.
    if (answer.recordedTokens !== undefined) usage.chargeRecordedElsewhere(who.keyId, answer.recordedTokens);
    else {
      // A worker that records no usage (an older one): the final answer counts for this key like a proxied call's.
      const seen = observeJsonBody(credential.provider, answer.status, answer.body);
      const { provider } = credential;
      usage.record({ keyId: who.keyId, credentialId: id, provider, model: seen.model, usage: seen.usage, error: answer.status >= 400 });
    }
    res.status(answer.status).json(answer.body);
  });

  return router;
}
