// /v1/oauth/{provider}/start and /complete: PKCE login over HTTP. Sessions are sealed, expire
// after 10 minutes and are single use; the pasted code may be `code#state`, a URL or bare.
// (app.ts puts the login rate limit in front of every /v1/oauth request.)
import { z } from 'zod';
import { credentialSchema, loginStartedSchema, oauthCompleteSchema, oauthStartSchema, providerSchema } from '../schemas.js';
import { answer, commonFailures, defineRoute, failure } from './route.js';

const params = z.object({ provider: providerSchema });

export const oauthRoutes = [
  defineRoute({
    method: 'post',
    path: '/oauth/{provider}/start',
    role: 'admin',
    operationId: 'startLogin',
    summary: 'begin a PKCE login',
    request: { params, body: { schema: oauthStartSchema, optional: true } },
    responses: {
      201: answer('a login session (10 minutes, single use)', loginStartedSchema),
      ...commonFailures,
      429: failure('too many login attempts'),
    },
  }).handle(async ({ params: { provider }, body }, { credentials }) => ({
    status: 201,
    body: await credentials.beginLogin(provider, body.name),
  })),
  defineRoute({
    method: 'post',
    path: '/oauth/{provider}/complete',
    role: 'admin',
    operationId: 'completeLogin',
    summary: 'finish a login with the pasted code',
    request: { params, body: { schema: oauthCompleteSchema } },
    responses: {
      201: answer('the signed-in credential', credentialSchema),
      ...commonFailures,
      404: failure('no such login session (expired or used)'),
      429: failure('too many login attempts, or too many failed key checks'),
      502: failure('the provider refused or did not answer the code exchange'),
    },
  }).handle(async ({ params: { provider }, body }, { credentials }) => ({
    status: 201,
    body: (await credentials.completeLogin(provider, body)).credential,
  })),
];
