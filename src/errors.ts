// Every error class Maestro throws, and the one table that says what each means: its HTTP status,
// its Temporal failure type, whether a retry may help, and who its Retry-After is for. The HTTP
// error handler (src/api/errors.ts), the activities (src/activities/failures.ts) and the Temporal
// client (src/temporal/credentialWorkflows.ts) read the table; none of them decides on its own.
// Messages are written for the caller and never carry a secret. The bottom floor: imports only model/.
import { FailureType } from './model/failures.js';

export class MaestroError extends Error {
  /** Stable machine-readable type, returned as error.type. */
  readonly type: string = 'internal_error';
  /** How long to wait before trying again, in seconds; the table says whom it is for. */
  readonly retryAfterSeconds?: number;
  constructor(message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options);
    this.name = new.target.name;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

/** A startup problem the operator can fix; the message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export class ValidationError extends MaestroError {
  override readonly type = 'invalid_request';
}
/** The body (raw or decoded) is larger than the limit. */
export class BodyTooLargeError extends ValidationError {
  constructor(readonly limitBytes: number) {
    super(`body is larger than ${limitBytes} bytes`);
  }
}
/** The content-encoding is unknown, or the bytes do not decode with it. */
export class ContentDecodingError extends ValidationError {}
export class NotFoundError extends MaestroError {
  override readonly type = 'not_found';
}
/** The credential's refresh workflow is not running (never started, or ended). */
export class NoRefreshWorkflowError extends NotFoundError {}
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
  declare readonly retryAfterSeconds: number;
  constructor(
    override readonly type: 'rate_limited' | 'budget_exceeded',
    message: string,
    retryAfterSeconds: number,
  ) {
    super(message, { retryAfterSeconds });
  }
}
/** No pool member can take the request now (DESIGN.md "Pools": `pool_exhausted`, Retry-After ≤ 60, the next-available time). */
export class PoolExhaustedError extends MaestroError {
  override readonly type = 'pool_exhausted';
  declare readonly retryAfterSeconds: number;
  constructor(
    message: string,
    retryAfterSeconds: number,
    /** When the first member is expected back (x-maestro-pool-next-available), if known. */
    readonly nextAvailableAt: Date | undefined,
  ) {
    super(message, { retryAfterSeconds });
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
  constructor(message: string, retryAfterSeconds?: number, options?: { cause?: unknown }) {
    super(message, { ...options, retryAfterSeconds });
  }
}
/** A 2xx token answer Maestro cannot use. Retrying at once would spend the grant again. */
export class MalformedTokenResponseError extends ProviderUnavailableError {}
/** A dependency of Maestro itself (Postgres, Temporal) is down; the caller should retry later. */
export class ServiceUnavailableError extends MaestroError {
  override readonly type = 'service_unavailable';
  declare readonly retryAfterSeconds: number;
  constructor(message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, { ...options, retryAfterSeconds: options?.retryAfterSeconds ?? 5 });
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
/** An answer the HTTP edge names itself (413, 408, an unknown route, …): its status travels with it. */
export class HttpError extends MaestroError {
  constructor(
    readonly status: number,
    override readonly type: string,
    message: string,
    options?: { retryAfterSeconds?: number },
  ) {
    super(message, options);
  }
}

/** What an error means to the HTTP caller and to Temporal. */
export interface ErrorRule {
  /** The HTTP status the API answers with. */
  readonly status: number;
  /** The ApplicationFailure type an activity fails with. */
  readonly failure: FailureType;
  /** Whether Temporal may retry the activity. */
  readonly retryable: boolean;
  /**
   * Whom the error's retryAfterSeconds is for: the HTTP caller as a Retry-After header (Maestro
   * itself is limited or busy), or Temporal as the next retry's delay (the provider asked to wait).
   */
  readonly retryAfter?: 'header' | 'nextRetryDelay';
}

/** Anything a retry may fix (a database hiccup, say). */
const TRANSIENT = { failure: FailureType.transient, retryable: true } as const;
const INTERNAL: ErrorRule = { status: 500, ...TRANSIENT };

type ErrorClass = abstract new (...args: never[]) => Error;

/** The one error table. A class without a row takes its nearest parent's; anything else is INTERNAL. */
const ERROR_TABLE = new Map<ErrorClass, ErrorRule>([
  [MaestroError, INTERNAL],
  [ConfigError, INTERNAL],
  [ValidationError, { status: 400, failure: FailureType.invalidRequest, retryable: false }],
  [UnauthorizedError, { status: 401, ...TRANSIENT }],
  [ForbiddenError, { status: 403, ...TRANSIENT }],
  [NotFoundError, { status: 404, failure: FailureType.notFound, retryable: false }],
  [ConflictError, { status: 409, ...TRANSIENT }],
  [ReauthRequiredError, { status: 409, failure: FailureType.reauthRequired, retryable: false }],
  [LimitExceededError, { status: 429, ...TRANSIENT, retryAfter: 'header' }],
  [PoolExhaustedError, { status: 429, ...TRANSIENT, retryAfter: 'header' }],
  [MisconfiguredError, { status: 500, failure: FailureType.misconfigured, retryable: false }],
  [SealError, INTERNAL],
  [CallerGoneError, INTERNAL], // never answered: the connection is dropped
  [ProviderUnavailableError, { status: 502, failure: FailureType.providerUnavailable, retryable: true, retryAfter: 'nextRetryDelay' }],
  // The token may be spent: kept for an operator, and the workflow backs off instead of retrying at once.
  [MalformedTokenResponseError, { status: 502, failure: FailureType.malformed, retryable: false }],
  [ServiceUnavailableError, { status: 503, ...TRANSIENT, retryAfter: 'header' }],
  [HttpError, { status: 500, ...TRANSIENT, retryAfter: 'header' }], // the status is the instance's own
]);

/** The table's row for `error`. */
export function errorRule(error: unknown): ErrorRule {
  let rule: ErrorRule | undefined;
  if (typeof error === 'object' && error !== null) {
    for (let proto: unknown = Object.getPrototypeOf(error); proto && !rule; proto = Object.getPrototypeOf(proto)) {
      rule = ERROR_TABLE.get((proto as { constructor: ErrorClass }).constructor);
    }
  }
  if (error instanceof HttpError) return { ...rule!, status: error.status };
  return rule ?? INTERNAL;
}

/**
 * A failure a workflow or activity ended with, as the API answers its caller (the message is the
 * caller's to write). Not the table read backwards: a provider's misconfiguration makes the
 * credential unusable, a conflict for the caller; a durable call the worker would not verify is
 * Maestro's own misconfiguration.
 */
const ERROR_FOR_FAILURE: Record<FailureType, new (message: string) => MaestroError> = {
  [FailureType.reauthRequired]: ReauthRequiredError,
  [FailureType.notFound]: NotFoundError,
  [FailureType.stopped]: NotFoundError,
  [FailureType.notRefreshable]: ConflictError,
  [FailureType.misconfigured]: ConflictError,
  [FailureType.disabled]: ConflictError,
  [FailureType.unsignedCall]: MisconfiguredError,
  [FailureType.invalidRequest]: ValidationError,
  [FailureType.providerUnavailable]: ProviderUnavailableError,
  [FailureType.malformed]: ServiceUnavailableError,
  [FailureType.transient]: ServiceUnavailableError,
  [FailureType.stillRetrying]: ServiceUnavailableError,
};

/** The error class the API answers a failure of `type` with (an unknown type: the workflow failed, retry later). */
export function errorForFailure(type: string): new (message: string) => MaestroError {
  return Object.hasOwn(ERROR_FOR_FAILURE, type) ? ERROR_FOR_FAILURE[type as FailureType] : ServiceUnavailableError;
}

/** The JSON error every Maestro answer carries: `{error: {type, message}}`. */
export const errorEnvelope = (type: string, message: string) => ({ error: { type, message } });

/** Retry-After as delta-seconds or an HTTP date → seconds from now (fractions kept, never negative). */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now) / 1000;
}

/** Network codes for a connection that never carried the request: nothing was sent, so a retry cannot send it twice. */
export const NOT_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

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
