// A signed webhook POST (HMAC-SHA256 over `timestamp.body`, as README "Webhooks" documents): the
// workflow's notifications send it through an activity, an API process sends `credential.overage`
// directly (it must leave within one request). No secret is ever in the payload.
import { createHmac } from 'node:crypto';
import { request } from 'undici';

/** Posts `payload` (with `at`) to the webhook; resolves to the status it answered (undefined when none is configured). */
export async function postWebhook(
  webhook: { url?: string; secret?: string },
  event: string,
  payload: Record<string, unknown>,
): Promise<number | undefined> {
  const { url, secret } = webhook;
  if (!url || !secret) return undefined;
  const timestamp = Math.floor(Date.now() / 1000).toString();
  const body = JSON.stringify({ ...payload, at: new Date().toISOString() });
  const signature = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  const res = await request(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-maestro-event': event,
      'x-maestro-timestamp': timestamp,
      'x-maestro-signature': `sha256=${signature}`,
    },
    body,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  await res.body.dump();
  return res.statusCode;
}
