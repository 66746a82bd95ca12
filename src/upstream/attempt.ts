// One provider call's attempt, the same for the proxy and durable messages: take a candidate
// credential, check it can be used, refresh it first when its token is about to expire, send, and
// when the provider refuses the token, refresh once and send once more. What it needs from above
// (the candidates, a refresh through the credential's workflow, the send itself) is handed in, so
// this loop knows nothing of HTTP, Temporal or the database — and pools add "the next candidate
// on a classified failure" here, once.

export interface AttemptPlan<C, A> {
  /** The credential to try (a pool will hand several). */
  candidate: C;
  /** Throws when the credential cannot be used now (needs a login, disabled). */
  usable(credential: C): void;
  /** True when the token should be refreshed before it is sent (it expires within moments). */
  refreshFirst?(credential: C): boolean;
  /** The credential after one refresh through its workflow. */
  refresh(credential: C): Promise<C>;
  send(credential: C): Promise<A>;
  /** True when `answer` says the token was refused and the call can be sent again. */
  refused(answer: A, credential: C): boolean;
  /** Frees what a refused answer holds (an unread body). */
  discard?(answer: A): Promise<void>;
  /** The candidate's first answer, when the caller already sent it (a pool's fast path): the attempt goes on from there. */
  answered?: A;
}

export interface Attempted<C, A> {
  answer: A;
  /** The credential that answered (after any refresh). */
  credential: C;
}

export async function attempt<C, A>(plan: AttemptPlan<C, A>): Promise<Attempted<C, A>> {
  let credential = plan.candidate;
  let answer = plan.answered;
  if (answer === undefined) {
    plan.usable(credential);
    if (plan.refreshFirst?.(credential)) {
      credential = await plan.refresh(credential);
      plan.usable(credential);
    }
    answer = await plan.send(credential);
  }
  if (!plan.refused(answer, credential)) return { answer, credential };
  await plan.discard?.(answer);
  credential = await plan.refresh(credential);
  plan.usable(credential);
  return { answer: await plan.send(credential), credential };
}
