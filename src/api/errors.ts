// The one Express error handler: Maestro's error types → status codes, `{error: {type, message}}`.
// Never a stack trace, never a secret; unexpected errors are logged and answered with a plain 500.
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';
import {
  CallerGoneError,
  ConflictError,
  isDatabaseUnavailable,
  MaestroError,
  MisconfiguredError,
  NotFoundError,
  ProviderUnavailableError,
  ReauthRequiredError,
  SealError,
  ServiceUnavailableError,
  ValidationError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import { describeIssues } from './schemas.js';

export class HttpError extends MaestroError {
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
  if (error instanceof NotFoundError) return 404;
  if (error instanceof ReauthRequiredError || error instanceof ConflictError) return 409;
  if (error instanceof ProviderUnavailableError) return 502;
  if (error instanceof ServiceUnavailableError) return 503;
  if (error instanceof MisconfiguredError || error instanceof SealError) return 500;
  return 500;
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, 'not_found', `no route for ${req.method} ${req.path.slice(0, 200)}`));
};

export const errorHandler = (log: Logger): ErrorRequestHandler => (caught, req, res, _next) => {
  if (caught instanceof CallerGoneError) {
    res.destroy(); // the client disconnected while it waited: nobody to answer
    return;
  }
  // PostgreSQL down or restarting: the caller should retry (503 + Retry-After), not report a bug.
  const error = isDatabaseUnavailable(caught) ? new ServiceUnavailableError('the database is unavailable; retry shortly') : caught;
  // Body-parser and other http-errors carry their own status (400 bad JSON, 413 too large, 415).
  // (A body that fails to decode, e.g. bad gzip, is a 400 without a type: still the client's error.)
  const httpStatus = typeof error?.status === 'number' && error.status >= 400 && error.status < 500 && error.expose === true ? error.status : undefined;
  let status = httpStatus ?? statusFor(error);
  let type = error instanceof MaestroError ? error.type : error instanceof ZodError ? 'invalid_request' : 'internal_error';
  let message = error instanceof ZodError ? describeIssues(error) : error instanceof MaestroError ? error.message : 'internal error';
  if (httpStatus) {
    type = error.type === 'entity.too.large' ? 'payload_too_large' : error.type === 'entity.parse.failed' ? 'invalid_json' : 'invalid_request';
    message =
      error.type === 'entity.too.large'
        ? 'request body is too large'
        : error.type === 'entity.parse.failed'
          ? 'request body is not valid JSON'
          : String(error.message ?? 'invalid request');
  }
  if (status >= 500 && !(error instanceof ServiceUnavailableError) && !(error instanceof ProviderUnavailableError)) {
    log.error({ method: req.method, path: req.path, err: error instanceof Error ? { type: error.name, message: error.message } : String(error) }, 'request failed');
    if (!(error instanceof MaestroError)) message = 'internal error';
    status = 500;
  }
  if (error instanceof ServiceUnavailableError) res.setHeader('retry-after', String(error.retryAfterSeconds));
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(status).json({ error: { type, message } });
};
