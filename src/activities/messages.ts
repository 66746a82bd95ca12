// sendMessage: one durable provider call through the shared client builder, with one refresh
// on a 401 and retries only where a retry cannot send the same call twice. The worker that made
// the call records its usage against the key that asked (the key id travels in the signed input),
// once per attempt, so a call the provider answered is counted even when the API that waits for
// it is gone.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { request } from 'undici';
import { NOT_SENT_CODES, parseRetryAfter, ProviderUnavailableError, ReauthRequiredError, ValidationError } from '../errors.js';
import { callAuth } from '../auth/credentialAuth.js';
import { buildProviderCall } from '../auth/clientBuilder.js';
import { readBody } from '../auth/http.js';
import { mapWhole } from '../auth/backends/sse.js';
import { FailureType } from '../model/failures.js';
import { withOneRefresh } from '../credentials/withOneRefresh.js';
import { HEARTBEAT_EVERY_MS, toFailure } from './failures.js';
import type { ActivityDeps, MessageRequest, MessageResponse } from './types.js';
import { usageReporting } from '../providers/inferencePaths.js';
import type { ProviderId } from '../config.js';
import { askStreamUsage, stripStreamUsage } from '../usage/streamUsage.js';
import { incompleteCharge } from '../usage/incomplete.js';
import { watchUsage } from '../usage/tap.js';
import { usageRow, type CallRecord } from '../usage/recorder.js';

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

/** What a durable answer (read whole, decoded, mapped) says about its usage: the proxy's reader, fed the whole body at once. */
async function observe(provider: ProviderId, statusCode: number, answer: { raw: Buffer; contentType: string | null }) {
  const watch = watchUsage(provider, { statusCode, contentType: answer.contentType ?? undefined });
  watch.write(answer.raw);
  await watch.end();
  return watch.observation();
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
          const definition = providers.get(metadata.provider);
          const metering = usageReporting(definition, method, call.path);
          const json = method === 'GET' ? undefined : Buffer.from(JSON.stringify(call.body ?? {}));
          // A stream that reports its usage only when asked is asked (the answer is stripped of it below).
          const asked = metering === 'asked' && json && metadata.authType === 'api_key' ? askStreamUsage(json) : undefined;
          const plain = asked ?? json;
          const built = buildProviderCall(definition, {
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
            const failure = callFailure(error);
            // Sent, then cut off: the provider may have processed it, so it counts (as an error).
            if (failure instanceof ApplicationFailure) await record?.({ provider: metadata.provider, error: true });
            throw failure;
          }
          const ok = res.statusCode >= 200 && res.statusCode < 300;
          let status = res.statusCode;
          let answer: { raw: Buffer; contentType: string | null };
          try {
            const decoded = await readBody(res.body, res.headers['content-encoding'] as string | undefined);
            // A sign-in backend's 2xx answer, mapped back to the public API's (Codex: the final Response object).
            const mapping = ok ? built.answer : undefined;
            // The mapping may find the answer failed after all (a failed Codex stream: 502 or the event's status).
            answer = mapping
              ? {
                  raw: await mapWhole(
                    decoded,
                    mapping.transform((decided) => (status = decided)),
                  ),
                  contentType: mapping.contentType,
                }
              : { raw: decoded, contentType: (res.headers['content-type'] as string | undefined) ?? null };
          } catch (error) {
            await record?.({ provider: metadata.provider, error: true });
            // The provider answered (and may have billed it): an answer cut short is not re-sent.
            throw ApplicationFailure.nonRetryable(
              `the provider's answer could not be read (${(error as Error).message})`,
              FailureType.providerUnavailable,
            );
          }
          return { res, status, ...answer, provider: metadata.provider, metering, plain, asked: asked !== undefined };
        };
        // The final answer (a refused token's first answer is not a call of its own, as in the proxy).
        const { res, status, contentType, provider, metering, plain, asked, ...answered } = await withOneRefresh(await load(), send, {
          refused: (answer, { metadata }) => answer.res.statusCode === 401 && metadata.authType === 'oauth',
          refresh: async ({ metadata }) => {
            await deps.requestRefresh(credentialId, metadata.version);
            return load();
          },
        });
        let raw = answered.raw;
        const ok = status >= 200 && status < 300;
        const seen = await observe(provider, status, { raw, contentType });
        const incomplete = metering !== undefined && ok && !seen.complete;
        const recorded = await record?.({
          provider,
          model: seen.model,
          usage: seen.usage,
          error: status >= 400 || seen.streamError !== undefined,
          incomplete,
          incompleteCharge: incomplete ? incompleteCharge(seen.usage, plain, plain?.length ?? 0) : undefined,
        });
        if (asked && ok && /^text\/event-stream/i.test(contentType ?? '')) raw = await mapWhole(raw, stripStreamUsage());
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
