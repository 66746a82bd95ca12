// Maestro's errors as Temporal failures, and the view of a credential that workflows see.
import { ApplicationFailure } from '@temporalio/activity';
import type { CredentialMetadata, CredentialSecret } from '../db/credentials.js';
import { errorRule, type MaestroError } from '../errors.js';
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

/** Maestro's errors as Temporal failures, by the error table (src/errors.ts): what a retry cannot fix is non-retryable. */
export function toFailure(error: unknown): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  const message = error instanceof Error ? error.message : String(error);
  const rule = errorRule(error);
  const waitSeconds = rule.retryAfter === 'nextRetryDelay' ? (error as MaestroError).retryAfterSeconds : undefined;
  return ApplicationFailure.create({
    message,
    type: rule.failure,
    nonRetryable: !rule.retryable,
    nextRetryDelay: waitSeconds === undefined ? undefined : Math.round(waitSeconds * 1000),
  });
}
