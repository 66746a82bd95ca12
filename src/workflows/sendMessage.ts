// sendMessageWorkflow: a provider call made durable. The activity builds the call with the same
// client builder as the proxy; 429, 5xx and 529 are retried with backoff (Retry-After honoured).
import { proxyActivities } from '@temporalio/workflow';
import type { createActivities, MessageRequest, MessageResponse } from '../activities/index.js';

export interface SendMessageInput {
  credentialId: string;
  request: MessageRequest;
}

const { sendMessage } = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '10 minutes',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 8,
    nonRetryableErrorTypes: ['ReauthRequired', 'NotFound', 'Misconfigured', 'InvalidRequest'],
  },
});

export async function sendMessageWorkflow({ credentialId, request }: SendMessageInput): Promise<MessageResponse> {
  return sendMessage({ credentialId, request });
}
