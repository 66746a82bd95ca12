// The failure vocabulary: every ApplicationFailure type a workflow, an activity, the Temporal
// client or the HTTP error mapping acts on is named here once (a typo cannot silently turn a
// permanent failure into a retryable one). Workflow-safe: no Node imports.

export const FailureType = {
  /** The refresh token is dead: only a new login helps. */
  reauthRequired: 'ReauthRequired',
  notFound: 'NotFound',
  /** Maestro's OAuth client configuration is wrong. */
  misconfigured: 'Misconfigured',
  /** The credential has no refresh token: replace its tokens instead. */
  notRefreshable: 'NotRefreshable',
  /** A 2xx token answer without an access token (kept sealed for an operator). */
  malformed: 'MalformedTokenResponse',
  /** A durable call that no Maestro API signed (started through Temporal by hand): never sent. */
  unsignedCall: 'UnsignedDurableCall',
  /** The credential is disabled: nothing is sent with it until it is enabled again. */
  disabled: 'CredentialDisabled',
  /** The caller's request is wrong (bad header, bad path): a 400, never retried. */
  invalidRequest: 'InvalidRequest',
  /** The provider answered 429/5xx or could not be reached: retried with backoff. */
  providerUnavailable: 'ProviderUnavailable',
  /** Anything else that a retry may fix (a database hiccup, say). */
  transient: 'Transient',
  /** A refresh-now caller's wait ran out while the workflow keeps retrying in the background. */
  stillRetrying: 'StillRetrying',
  /** The refresh workflow is stopping (the credential was deleted or stopped). */
  stopped: 'Stopped',
} as const;

export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** What a retry cannot fix, for activity retry policies. */
export const NON_RETRYABLE_REFRESH: FailureType[] = [
  FailureType.reauthRequired,
  FailureType.notFound,
  FailureType.misconfigured,
  FailureType.malformed,
];
export const NON_RETRYABLE_MESSAGE: FailureType[] = [
  FailureType.reauthRequired,
  FailureType.notFound,
  FailureType.misconfigured,
  FailureType.invalidRequest,
];
