// The 401 → refresh → retry-once rule, in one place for the proxy and durable messages: a call
// whose answer says the OAuth token was refused gets one refresh (through the workflow) and one
// more try with the refreshed credential; a second refusal is the caller's answer.

export interface OneRefresh<C, R> {
  /** True when `answer` to a call made with `credential` means its token was refused (and a retry is possible). */
  refused(answer: R, credential: C): boolean;
  /** Frees what the refused answer holds (an unread body). */
  discard?(answer: R): Promise<void>;
  /** The credential after one refresh. */
  refresh(credential: C): Promise<C>;
}

export async function withOneRefresh<C, R>(credential: C, send: (credential: C) => Promise<R>, rule: OneRefresh<C, R>): Promise<R> {
  const answer = await send(credential);
  if (!rule.refused(answer, credential)) return answer;
  await rule.discard?.(answer);
  return send(await rule.refresh(credential));
}
