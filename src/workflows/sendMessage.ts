// sendMessageWorkflow: a provider call made durable. The activity builds the call with the same
// client builder as the proxy; 429, 5xx and 529 are retried with backoff (Retry-After honoured).
// One attempt may take as long as a long generation does; the heartbeat notices a dead worker.
import { proxyActivities } from '@temporalio/workflow';
import type { createActivities, MessageRequest, MessageResponse } from '../activities/index.js';
import { NON_RETRYABLE_MESSAGE } from '../model/failures.js';

export interface SendMessageInput {
  credentialId: string;
  request: MessageRequest;
  /** The Maestro key that asked (signed with the rest): the worker records the call's usage against it. */
  keyId?: string;
  /** The accepting API's HMAC over both (src/crypto/durableCalls.ts); the activity refuses a call without it. */
  signature?: string;
}

const { sendMessage } = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 8,
    nonRetryableErrorTypes: NON_RETRYABLE_MESSAGE,
  },
});

export async function sendMessageWorkflow(input: SendMessageInput): Promise<MessageResponse> {
  // Passed on whole (the signature with it); the command is the same activity as before.
  return sendMessage(input);
}
