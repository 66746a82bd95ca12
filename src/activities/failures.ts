// Maestro's errors as Temporal failures, and the view of a credential that workflows see.
import { ApplicationFailure } from '@temporalio/activity';
import type { CredentialMetadata, CredentialSecret } from '../db/credentials.js';
import { MisconfiguredError, NotFoundError, ProviderUnavailableError, ReauthRequiredError, ValidationError } from '../errors.js';
import { FailureType } from '../workflows/failures.js';
import type { CredentialView } from './types.js';

/** Heartbeat this often while a refresh runs (the workflow's heartbeat timeout is 20 s). */
export const HEARTBEAT_EVERY_MS = 3_000;
/** Token writes tried this often (about 20 s with the pauses) before the attempt fails and a retry stores the answer. */
export const WRITE_ATTEMPTS = 8;

const msFromNow = (iso: string | null, sign: 1 | -1) => (iso === null ? null : sign * (Date.parse(iso) - Date.now()));

export const toView = (metadata: CredentialMetadata, secret: CredentialSecret): CredentialView => ({
  id: metadata.id,
  name: metadata.name,
  provider: metadata.provider,
  authType: metadata.authType,
  status: metadata.status,
  expiresAt: metadata.expiresAt,
  tokenObtainedAt: metadata.tokenObtainedAt,
  version: metadata.version,
  refreshable: metadata.authType === 'oauth' && Boolean(secret.refreshToken),
  expiresInMs: msFromNow(metadata.expiresAt, 1),
  ageMs: msFromNow(metadata.tokenObtainedAt, -1),
});

/** Maps Maestro's errors onto Temporal failures: what a retry cannot fix is non-retryable. */
export function toFailure(error: unknown): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ReauthRequiredError) return ApplicationFailure.nonRetryable(message, FailureType.reauthRequired);
  if (error instanceof NotFoundError) return ApplicationFailure.nonRetryable(message, FailureType.notFound);
  if (error instanceof MisconfiguredError) return ApplicationFailure.nonRetryable(message, FailureType.misconfigured);
  if (error instanceof ValidationError) return ApplicationFailure.nonRetryable(message, FailureType.invalidRequest);
  if (error instanceof ProviderUnavailableError) {
    return ApplicationFailure.create({ message, type: FailureType.providerUnavailable, nextRetryDelay: error.retryAfterMs });
  }
  return ApplicationFailure.retryable(message, FailureType.transient);
}
