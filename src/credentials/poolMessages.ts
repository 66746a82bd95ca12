// POST /v1/pools/:id/messages: a durable call through a pool. The pool attempt picks the member
// (src/upstream/poolAttempt.ts, the same loop the proxy uses) and each member's call is that
// credential's durable call (its workflow, retries and usage as for POST /v1/credentials/:id/messages).
// The worker's answer carries its status and body, not the provider's headers: a failed member is
// classified by status and error body, so a window's reset is not known here and a rate-limited
// member cools for at most a minute (the proxy, which sees the headers, benches it until the reset).
import type { MessageRequest, MessageResponse } from '../activities/types.js';
import type { PoolRecord } from '../model/pools.js';
import { classifyAnswer } from '../pools/classify.js';
import { modelFamily } from '../model/families.js';
import type { PoolRouter } from '../pools/router.js';
import type { RoutingState } from '../pools/routingState.js';
import { sessionIdOf, sessionKeyOf } from '../pools/sessionKey.js';
import { attemptPool } from '../upstream/poolAttempt.js';
import type { CredentialService } from './service.js';

/** Durable calls wait for their workflow: the loop's own deadline is longer than the proxy's. */
const DEADLINE_MS = 10 * 60_000;

export async function sendPoolMessage(
  deps: { credentials: CredentialService; router: PoolRouter; state: RoutingState },
  pool: PoolRecord,
  request: MessageRequest,
  keyId: string,
  signal: AbortSignal,
): Promise<MessageResponse & { credentialId: string }> {
  const body = request.body as { model?: unknown; metadata?: unknown } | undefined;
  const model = typeof body?.model === 'string' ? body.model : undefined;
  const sessionId = sessionIdOf(request.headers ?? {}, body === undefined ? undefined : Buffer.from(JSON.stringify(body)));
  const route = { pool, family: modelFamily(model), sessionKey: sessionId ? sessionKeyOf(keyId, sessionId) : undefined };
  if (route.sessionKey) await deps.state.learnSession(pool.id, route.sessionKey);
  const served = await attemptPool<MessageResponse>({
    router: deps.router,
    request: route,
    replayable: true,
    deadline: Date.now() + DEADLINE_MS,
    client: {
      get aborted() {
        return signal.aborted;
      },
      signal,
    },
    changed: (ms) => deps.state.nextChange(ms),
    send: async (credentialId) => {
      const answer = await deps.credentials.sendMessage(credentialId, request, keyId);
      const error = (answer.body as { error?: { type?: unknown; message?: unknown } } | null)?.error;
      const classified = classifyAnswer({
        provider: pool.provider,
        status: answer.status,
        headers: {},
        model,
        now: Date.now(),
        errorBody: error && typeof error === 'object' ? { type: typeof error.type === 'string' ? error.type : undefined } : undefined,
      });
      return { answer, credentialId, classified };
    },
    discard: async () => {},
  });
  deps.router.finished(served.credentialId);
  return { ...served.answer, credentialId: served.credentialId };
}
