// The one Express error handler: Maestro's error types → status codes, `{error: {type, message}}`.
// Never a stack trace, never a secret; unexpected errors are logged and answered with a plain 500.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';
import {
  CallerGoneError,
  ConflictError,
  ForbiddenError,
  isDatabaseUnavailable,
  LimitExceededError,
  MaestroError,
  MisconfiguredError,
  NotFoundError,
  ProviderUnavailableError,
  ReauthRequiredError,
  SealError,
  ServiceUnavailableError,
  UnauthorizedError,
  ValidationError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import { describeIssues } from './schemas.js';

export class HttpError extends MaestroError {
  /** Sent as Retry-After when set (429s). */
  retryAfterSeconds?: number;

  constructor(
    readonly status: number,
    override readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export function statusFor(error: unknown): number {
  if (error instanceof HttpError) return error.status;
  if (error instanceof ValidationError || error instanceof ZodError) return 400;
  if (error instanceof UnauthorizedError) return 401;
  if (error instanceof ForbiddenError) return 403;
  if (error instanceof NotFoundError) return 404;
  if (error instanceof LimitExceededError) return 429;
  if (error instanceof ReauthRequiredError || error instanceof ConflictError) return 409;
  if (error instanceof ProviderUnavailableError) return 502;
  if (error instanceof ServiceUnavailableError) return 503;
  if (error instanceof MisconfiguredError || error instanceof SealError) return 500;
  return 500;
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, 'not_found', `no route for ${req.method} ${req.path.slice(0, 200)}`));
};

/**
 * Answers `caught` on a plain Node response: the one error path for Express routes and the proxy's
 * fast path alike. `{error: {type, message}}` with the mapped status; never a stack or a secret.
 */
export function sendError(log: Logger, caught: unknown, req: IncomingMessage, res: ServerResponse): void {
  if (caught instanceof CallerGoneError) {
    res.destroy(); // the client disconnected while it waited: nobody to answer
    return;
  }
  // PostgreSQL down or restarting: the caller should retry (503 + Retry-After), not report a bug.
  const error = isDatabaseUnavailable(caught) ? new ServiceUnavailableError('the database is unavailable; retry shortly') : caught;
  // Body-parser and other http-errors carry their own status (400 bad JSON, 413 too large, 415).
  // (A body that fails to decode, e.g. bad gzip, is a 400 without a type: still the client's error.)
  const e = error as { status?: unknown; expose?: unknown; type?: unknown; message?: unknown } | undefined;
  const httpStatus = typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && e.expose === true ? e.status : undefined;
  let status = httpStatus ?? statusFor(error);
  let type = error instanceof MaestroError ? error.type : error instanceof ZodError ? 'invalid_request' : 'internal_error';
  let message = error instanceof ZodError ? describeIssues(error) : error instanceof MaestroError ? error.message : 'internal error';
  if (httpStatus) {
    type = e?.type === 'entity.too.large' ? 'payload_too_large' : e?.type === 'entity.parse.failed' ? 'invalid_json' : 'invalid_request';
    message =
      e?.type === 'entity.too.large'
        ? 'request body is too large'
        : e?.type === 'entity.parse.failed'
          ? 'request body is not valid JSON'
          : String(e?.message ?? 'invalid request');
  }
  if (status >= 500 && !(error instanceof ServiceUnavailableError) && !(error instanceof ProviderUnavailableError)) {
    const path = (req.url ?? '').split('?')[0]!.slice(0, 200);
    log.error(
      { method: req.method, path, err: error instanceof Error ? { type: error.name, message: error.message } : String(error) },
      'request failed',
    );
    if (!(error instanceof MaestroError)) message = 'internal error';
    status = 500;
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { type, message } });
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
  };
  if (error instanceof ServiceUnavailableError) headers['retry-after'] = String(error.retryAfterSeconds);
  if (error instanceof LimitExceededError) headers['retry-after'] = String(error.retryAfterSeconds);
  if (error instanceof HttpError && error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  // A request whose body stopped arriving: the rest of it is not waited for, the connection ends after the answer.
  if (status === 408) headers.connection = 'close';
  res.writeHead(status, headers).end(body);
}

export const errorHandler =
  (log: Logger): ErrorRequestHandler =>
  (caught, req, res, _next) =>
    sendError(log, caught, req, res);
