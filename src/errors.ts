// One error type per failure a caller can act on; src/api/errors.ts maps each to an HTTP status.
// Messages are written for the caller and never carry a secret.

export class MaestroError extends Error {
  /** Stable machine-readable type, returned as error.type. */
  readonly type: string = 'internal_error';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class ValidationError extends MaestroError {
  override readonly type = 'invalid_request';
}
export class NotFoundError extends MaestroError {
  override readonly type = 'not_found';
}
export class ConflictError extends MaestroError {
  override readonly type = 'conflict';
}
/** No key, or a key that is unknown, revoked or expired. */
export class UnauthorizedError extends MaestroError {
  override readonly type = 'unauthorized';
}
/** A valid key that may not do this: the message says what it lacks. */
export class ForbiddenError extends MaestroError {
  override readonly type = 'forbidden';
}
/** A key over its request rate (`rate_limited`) or token budget (`budget_exceeded`). */
export class LimitExceededError extends MaestroError {
  constructor(
    override readonly type: 'rate_limited' | 'budget_exceeded',
    message: string,
    /** Sent as Retry-After. */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
/** A write lost the optimistic-concurrency race: the row's version moved on. */
export class VersionConflictError extends ConflictError {
  constructor(
    readonly credentialId: string,
    readonly expectedVersion: number,
  ) {
    super(`credential ${credentialId} changed since version ${expectedVersion}`);
  }
}
/** The refresh token is dead (invalid_grant, revoked, reused): only a new login helps. */
export class ReauthRequiredError extends MaestroError {
  override readonly type = 'reauth_required';
}
/** Provider configuration is unusable (missing client id, unknown provider, …). */
export class MisconfiguredError extends MaestroError {
  override readonly type = 'misconfigured';
}
/** The provider (or its token endpoint) could not be reached or answered 5xx/429. */
export class ProviderUnavailableError extends MaestroError {
  override readonly type = 'provider_unavailable';
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
/** A dependency of Maestro itself (Postgres, Temporal) is down; the caller should retry later. */
export class ServiceUnavailableError extends MaestroError {
  override readonly type = 'service_unavailable';
  /** Sent as Retry-After (seconds). */
  readonly retryAfterSeconds: number;
  constructor(message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options);
    this.retryAfterSeconds = options?.retryAfterSeconds ?? 5;
  }
}
/** A sealed secret failed to open: tampered bytes, unknown key id, or moved to another row. */
export class SealError extends MaestroError {
  override readonly type = 'seal_error';
}
/** The caller went away (an HTTP client disconnected) while it waited: nobody needs an answer. */
export class CallerGoneError extends MaestroError {
  override readonly type = 'caller_gone';
}

// Network failures, PostgreSQL connection exceptions (class 08) and a server shutting down or
// starting up (57P01-57P03): the database is unavailable, not the query wrong.
const UNAVAILABLE_CODES = /^(08...|57P0[123]|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|EAI_AGAIN)$/;
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly/i;

/** True when an error (from pg) means PostgreSQL could not be reached or dropped the connection. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return (typeof code === 'string' && UNAVAILABLE_CODES.test(code)) || UNAVAILABLE_MESSAGES.test(error.message);
}
