// sendMessage: one durable provider call through the shared client builder, with one refresh
// on a 401 and retries only where a retry cannot send the same call twice. The worker that made
// the call records its usage against the key that asked (the key id travels in the signed input),
// once per attempt, so a call the provider answered is counted even when the API that waits for
// it is gone.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { getGlobalDispatcher } from 'undici';
import { NOT_SENT_CODES, parseRetryAfter, ProviderUnavailableError, ReauthRequiredError, ValidationError } from '../errors.js';
import { callAuth } from '../auth/credentialAuth.js';
import { FailureType } from '../model/failures.js';
import { HEARTBEAT_EVERY_MS, toFailure } from './failures.js';
import type { ActivityDeps, MessageRequest, MessageResponse } from './types.js';
import { usageRow, type CallRecord } from '../usage/recorder.js';
import { attempt } from '../upstream/attempt.js';
import { heldRequestBody } from '../upstream/body.js';
import { meteringOf, outgoingCall, send, type ClientRequest, type OutgoingCall } from '../upstream/call.js';
import { readAnswer } from '../upstream/relay.js';
import { callUsage } from '../upstream/account.js';
import type { ProviderId } from '../model/providers.js';

/** How long the worker keeps trying to write a call's usage before it logs it as lost (the answer is returned anyway). */
const USAGE_WRITE_TRIES = 4;
const USAGE_WRITE_PAUSE_MS = 1_000;

/** A provider call that failed without an answer: retryable only if the request never left. */
function callFailure(error: unknown): Error {
  if (error instanceof Error && error.name === 'InvalidArgumentError')
    return new ValidationError(`the request cannot be sent: ${error.message}`);
  const code = (error as { code?: unknown })?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string' && NOT_SENT_CODES.has(code)) return new ProviderUnavailableError(`provider unreachable (${code})`);
  // Sent, then cut off: the provider may have processed (and billed) it. Not sent again.
  return ApplicationFailure.nonRetryable(
    `provider call failed after it was sent (${typeof code === 'string' ? code : message}); not retried, since the provider may have processed it`,
    FailureType.providerUnavailable,
  );
}

/**
 * Records one attempt's call against the asking key, once (the attempt is the row's key in
 * durable_call_usage, so a retried write never adds it twice). Resolves to the tokens charged;
 * a write that keeps failing is logged and given up (the answer is worth more than its count).
 */
function usageRecorder(
  deps: ActivityDeps,
  call: { workflowId: string; attempt: number; keyId: string; credentialId: string },
): (what: Omit<CallRecord, 'keyId' | 'credentialId'> & { provider: ProviderId }) => Promise<number | undefined> {
  return async (what) => {
    const row = usageRow({ ...what, keyId: call.keyId, credentialId: call.credentialId });
    const charged = row.inputTokens + row.outputTokens + row.cacheReadTokens + row.cacheWriteTokens + row.incompleteCharge;
    for (let tries = 1; ; tries++) {
      try {
        await deps.usage!.addOnce({ workflowId: call.workflowId, attempt: call.attempt }, row);
        return charged;
      } catch (error) {
        if (tries >= USAGE_WRITE_TRIES) {
          deps.log.error(
            { workflowId: call.workflowId, attempt: call.attempt, keyId: call.keyId, error: (error as Error).message },
            'durable call usage not recorded: PostgreSQL did not take it',
          );
          return charged; // still charged to the budget of the API that waits (it does not record it again)
        }
        await new Promise((resolve) => setTimeout(resolve, USAGE_WRITE_PAUSE_MS * tries));
      }
    }
  };
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
      keyId,
      signature,
    }: {
      credentialId: string;
      request: MessageRequest;
      keyId?: string;
      signature?: string;
    }): Promise<MessageResponse> {
      const ctx = Context.current();
      const { workflowId = '', runId = '' } = ctx.info.workflowExecution ?? {};
      // Started by hand through Temporal (or again, with a copied input): nothing is sent.
      const accepted =
        workflowId !== '' &&
        deps.durableCalls.verify(workflowId, credentialId, call, signature, undefined, keyId) &&
        (await deps.durableCalls.claim(workflowId, runId));
      if (!accepted) {
        throw ApplicationFailure.nonRetryable(
          'this durable call was not accepted by a Maestro API for this workflow run (signature missing, wrong, expired or used by another run): send it with POST /v1/credentials/:id/messages',
          FailureType.unsignedCall,
        );
      }
      const beating = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
      // This attempt's usage, once: the call that reached the provider and what it answered.
      const record =
        keyId === undefined || !deps.usage
          ? undefined
          : usageRecorder(deps, { workflowId, attempt: ctx.info.attempt, keyId, credentialId });
      try {
        const load = () => store.getWithSecret(credentialId);
        const usable = ({ metadata }: Awaited<ReturnType<typeof load>>) => {
          if (metadata.status === 'reauth_required') throw new ReauthRequiredError('credential needs a new login');
          // As the proxy refuses it: a disabled credential sends nothing, durable call or not.
          if (metadata.status === 'disabled') {
            throw ApplicationFailure.nonRetryable(`credential "${metadata.name}" is disabled`, FailureType.disabled);
          }
        };
        const method = call.method ?? 'POST';
        const json = method === 'GET' ? undefined : Buffer.from(JSON.stringify(call.body ?? {}));
        const request: ClientRequest = {
          method,
          path: call.path,
          search: '',
          headers: { ...call.headers, 'content-type': 'application/json', accept: 'application/json' },
          body: heldRequestBody(json),
        };
        const first = await load();
        const provider = first.metadata.provider;
        const definition = providers.get(provider);
        const metering = meteringOf(definition, first.metadata.authType, request);
        let out: OutgoingCall | undefined;
        // The same attempt as the proxy's (no refresh ahead of expiry: a durable call waits for its refresh on a 401).
        const { answer: res } = await attempt({
          candidate: first,
          usable,
          refresh: async ({ metadata }) => {
            await deps.requestRefresh(credentialId, metadata.version);
            return load();
          },
          send: async ({ metadata, secret }) => {
            out = outgoingCall(definition, callAuth(metadata, secret), request, metering);
            try {
              // It waits for the answer as long as the attempt lives: a long generation is not cut short by a timer and re-sent.
              return await send(getGlobalDispatcher(), out, method, { signal: ctx.cancellationSignal, headersTimeout: 0, bodyTimeout: 0 });
            } catch (error) {
              const failure = callFailure(error);
              // Sent, then cut off: the provider may have processed it, so it counts (as an error).
              if (failure instanceof ApplicationFailure) await record?.({ provider, error: true });
              throw failure;
            }
          },
          refused: (answer, { metadata }) => answer.statusCode === 401 && metadata.authType === 'oauth',
          discard: (answer) => answer.body.dump(),
        });
        let answer;
        try {
          answer = await readAnswer(res, out!, metering, provider);
        } catch (error) {
          await record?.({ provider, error: true });
          // The provider answered (and may have billed it): an answer cut short is not re-sent.
          throw ApplicationFailure.nonRetryable(
            `the provider's answer could not be read (${(error as Error).message})`,
            FailureType.providerUnavailable,
          );
        }
        const { status, raw, contentType } = answer;
        // The final answer counts (a refused token's first answer is not a call of its own, as in the proxy).
        const recorded = await record?.({
          provider,
          ...callUsage(answer.observation, status, metering.reporting, { plain: request.body.plain, bytes: request.body.bytes() }),
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
        return { status, contentType, body: parsed, ...(recorded === undefined ? {} : { recordedTokens: recorded }) };
      } catch (error) {
        throw toFailure(error);
      } finally {
        clearInterval(beating);
      }
    },
  };
}
