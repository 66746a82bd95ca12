// /v1/credentials: import, list, read, replace tokens, delete, refresh now, history, durable calls.
// Responses carry metadata only; a secret never leaves the store through this router.
import { Router } from 'express';
import type { CredentialMetadata, CredentialSecret, CredentialStore } from '../../db/credentials.js';
import { ConflictError, ValidationError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { CredentialWorkflows } from '../../temporal/credentialWorkflows.js';
import { createCredentialSchema, idParamSchema, listQuerySchema, messageSchema, replaceCredentialSchema } from '../schemas.js';

export interface CredentialRoutesDeps {
  store: CredentialStore;
  workflows: CredentialWorkflows;
  log: Logger;
}

export function expiryFrom(body: { expiresAt?: string; expiresIn?: number }, now = Date.now()): Date | null {
  if (body.expiresAt) return new Date(body.expiresAt);
  if (body.expiresIn !== undefined) return new Date(now + body.expiresIn * 1000);
  return null;
}

export function createCredentialRoutes({ store, workflows, log }: CredentialRoutesDeps): Router {
  const router = Router();
  const parseId = (value: unknown) => idParamSchema.parse(value);

  /** Starting the workflow is best effort here: the worker's reconcile starts any that are missing. */
  const ensureWorkflow = async (credential: CredentialMetadata) => {
    if (credential.authType !== 'oauth') return;
    try {
      await workflows.start(credential);
    } catch (error) {
      log.warn({ credentialId: credential.id, error: (error as Error).message }, 'refresh workflow not started yet; the worker will reconcile it');
    }
  };

  router.post('/', async (req, res) => {
    const body = createCredentialSchema.parse(req.body);
    const secret: CredentialSecret =
      body.authType === 'api_key'
        ? { apiKey: body.apiKey }
        : { accessToken: body.accessToken, refreshToken: body.refreshToken, idToken: body.idToken, accountId: body.accountId };
    const credential = await store.create({
      provider: body.provider,
      authType: body.authType,
      name: body.name,
      secret,
      expiresAt: body.authType === 'oauth' ? expiryFrom(body) : null,
    });
    await ensureWorkflow(credential);
    res.status(201).json(credential);
  });

  router.get('/', async (req, res) => {
    const filter = listQuerySchema.parse(req.query);
    res.json({ credentials: await store.list(filter) });
  });

  router.get('/:id', async (req, res) => {
    const credential = await store.get(parseId(req.params.id));
    const workflow = credential.authType === 'oauth' ? await workflows.status(credential.id).catch(() => null) : null;
    res.json({ ...credential, workflow });
  });

  router.patch('/:id', async (req, res) => {
    const id = parseId(req.params.id);
    const body = replaceCredentialSchema.parse(req.body);
    const metadata = await store.get(id);
    let next: CredentialSecret;
    let expiresAt: Date | null = null;
    const keep: Array<'refreshToken' | 'accountId'> = [];
    if ('apiKey' in body) {
      if (metadata.authType !== 'api_key') throw new ValidationError('this is an OAuth credential: send accessToken (and refreshToken), not apiKey');
      next = { apiKey: body.apiKey };
    } else {
      if (metadata.authType !== 'oauth') throw new ValidationError('this is an API-key credential: send apiKey');
      next = { accessToken: body.accessToken, refreshToken: body.refreshToken, idToken: body.idToken, accountId: body.accountId };
      // A refresh token left out keeps the stored one, read under the row lock at write time: a
      // refresh that committed a moment ago has already spent the one this request could read.
      if (!body.refreshToken) keep.push('refreshToken');
      if (!body.accountId) keep.push('accountId');
      expiresAt = expiryFrom(body);
    }
    const updated = await store.replaceTokens(id, { secret: next, expiresAt, keep });
    if (updated.authType === 'oauth') {
      await workflows.credentialUpdated(updated).catch((error: Error) => log.warn({ credentialId: id, error: error.message }, 'could not signal the refresh workflow'));
    }
    res.json(updated);
  });

  router.delete('/:id', async (req, res) => {
    const id = parseId(req.params.id);
    const credential = await store.get(id);
    await store.delete(id);
    if (credential.authType === 'oauth') await workflows.stop(id).catch(() => {}); // it also ends by itself on its next read
    res.status(204).end();
  });

  router.post('/:id/refresh', async (req, res) => {
    const id = parseId(req.params.id);
    const credential = await store.get(id);
    if (credential.authType !== 'oauth') throw new ConflictError('API-key credentials are not refreshed');
    // Bounded by the workflows client; a caller that disconnects releases its wait.
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    await workflows.refreshNow(id, undefined, { signal: gone.signal });
    res.json(await store.get(id));
  });

  router.get('/:id/events', async (req, res) => {
    const id = parseId(req.params.id);
    const events = await store.listEvents(id, { limit: 200 });
    if (events.length === 0) await store.get(id); // 404 for an id that never existed
    res.json({ events });
  });

  router.post('/:id/messages', async (req, res) => {
    const id = parseId(req.params.id);
    const body = messageSchema.parse(req.body ?? {});
    const credential = await store.get(id);
    if (credential.status === 'reauth_required') {
      throw new ConflictError(`credential ${id} needs a new login`);
    }
    const answer = await workflows.sendMessage(id, { path: body.path, method: body.method, body: body.body, headers: body.headers });
    res.status(answer.status).json(answer.body);
  });

  return router;
}
