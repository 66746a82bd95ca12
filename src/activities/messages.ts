// sendMessage: one durable provider call through the shared client builder, with one refresh
// on a 401 and retries only where a retry cannot send the same call twice.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { request } from 'undici';
import { ProviderUnavailableError, ReauthRequiredError, ValidationError } from '../errors.js';
import { callAuth } from '../auth/credentialAuth.js';
import { buildProviderCall } from '../auth/clientBuilder.js';
import { readBody } from '../auth/http.js';
import { mapWhole } from '../auth/backends/sse.js';
import { parseRetryAfter } from '../auth/tokenClient.js';
import { FailureType } from '../workflows/failures.js';
import { withOneRefresh } from '../credentials/withOneRefresh.js';
import { HEARTBEAT_EVERY_MS, toFailure } from './failures.js';
import type { ActivityDeps, MessageRequest, MessageResponse } from './types.js';

// undici's codes for a connection that never carried the request: safe to retry.
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** A provider call that failed without an answer: retryable only if the request never left. */
function callFailure(error: unknown): Error {
  if (error instanceof Error && error.name === 'InvalidArgumentError')
    return new ValidationError(`the request cannot be sent: ${error.message}`);
  const code = (error as { code?: unknown })?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string' && NOT_SENT.has(code)) return new ProviderUnavailableError(`provider unreachable (${code})`);
  // Sent, then cut off: the provider may have processed (and billed) it. Not sent again.
  return ApplicationFailure.nonRetryable(
    `provider call failed after it was sent (${typeof code === 'string' ? code : message}); not retried, since the provider may have processed it`,
    FailureType.providerUnavailable,
  );
}

export function messageActivities(deps: ActivityDeps) {
  const { store, providers } = deps;
  return {
    /**
     * One provider call through the shared client builder; a 401 on OAuth asks for one refresh.
     * It waits for the answer as long as the attempt lives (a long generation is not cut short by
     * a timer and re-sent), heartbeating so a dead worker is noticed. Retried only when the
     * provider says so (429, 5xx, 529) or when nothing reached it (the connection failed):
     * a call that may have been processed is never sent twice.
     */
    async sendMessage({
      credentialId,
      request: call,
      signature,
    }: {
      credentialId: string;
      request: MessageRequest;
      signature?: string;
    }): Promise<MessageResponse> {
      const ctx = Context.current();
      const { workflowId = '', runId = '' } = ctx.info.workflowExecution ?? {};
      // Started by hand through Temporal (or again, with a copied input): nothing is sent.
      const accepted =
        workflowId !== '' &&
        deps.durableCalls.verify(workflowId, credentialId, call, signature) &&
        (await deps.durableCalls.claim(workflowId, runId));
      if (!accepted) {
        throw ApplicationFailure.nonRetryable(
          'this durable call was not accepted by a Maestro API for this workflow run (signature missing, wrong, expired or used by another run): send it with POST /v1/credentials/:id/messages',
          FailureType.unsignedCall,
        );
      }
      const beating = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
      try {
        const load = async () => {
          const loaded = await store.getWithSecret(credentialId);
          if (loaded.metadata.status === 'reauth_required') throw new ReauthRequiredError('credential needs a new login');
          // As the proxy refuses it: a disabled credential sends nothing, durable call or not.
          if (loaded.metadata.status === 'disabled') {
            throw ApplicationFailure.nonRetryable(`credential "${loaded.metadata.name}" is disabled`, FailureType.disabled);
          }
          return loaded;
        };
        const send = async ({ metadata, secret }: Awaited<ReturnType<typeof load>>) => {
          const method = call.method ?? 'POST';
          const plain = method === 'GET' ? undefined : Buffer.from(JSON.stringify(call.body ?? {}));
          const built = buildProviderCall(providers.get(metadata.provider), {
            auth: callAuth(metadata, secret),
            method,
            path: call.path,
            search: '',
            clientHeaders: { ...call.headers, 'content-type': 'application/json', accept: 'application/json' },
            body: plain,
          });
          let body = built.body ?? plain;
          if (body && built.transformBody) body = built.transformBody(body);
          let res;
          try {
            res = await request(built.url, {
              method,
              headers: built.headers,
              body,
              headersTimeout: 0,
              bodyTimeout: 0,
              signal: ctx.cancellationSignal,
            });
          } catch (error) {
            throw callFailure(error);
          }
          try {
            const raw = await readBody(res.body, res.headers['content-encoding'] as string | undefined);
            // A sign-in backend's 2xx answer, mapped back to the public API's (Codex: the final Response object).
            const answer = res.statusCode >= 200 && res.statusCode < 300 ? built.answer : undefined;
            if (!answer)
              return { res, status: res.statusCode, raw, contentType: (res.headers['content-type'] as string | undefined) ?? null };
            // The mapping may find the answer failed after all (a failed Codex stream: 502 or the event's status).
            let status = res.statusCode;
            const mapped = await mapWhole(
              raw,
              answer.transform((decided) => (status = decided)),
            );
            return { res, status, raw: mapped, contentType: answer.contentType };
          } catch (error) {
            // The provider answered (and may have billed it): an answer cut short is not re-sent.
            throw ApplicationFailure.nonRetryable(
              `the provider's answer could not be read (${(error as Error).message})`,
              FailureType.providerUnavailable,
            );
          }
        };
        const { res, status, raw, contentType } = await withOneRefresh(await load(), send, {
          refused: (answer, { metadata }) => answer.res.statusCode === 401 && metadata.authType === 'oauth',
          refresh: async ({ metadata }) => {
            await deps.requestRefresh(credentialId, metadata.version);
            return load();
          },
        });
        if (status === 429 || status >= 500) {
          throw new ProviderUnavailableError(`provider answered ${status}`, parseRetryAfter(res.headers['retry-after']));
        }
        const text = raw.toString('utf8');
        let parsed: unknown = text;
        if (contentType?.includes('json')) {
          try {
            parsed = JSON.parse(text);
          } catch {
            // leave as text
          }
        }
        return { status, contentType, body: parsed };
      } catch (error) {
        throw toFailure(error);
      } finally {
        clearInterval(beating);
      }
    },
  };
}
