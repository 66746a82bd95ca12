// The one Express error handler: Maestro's errors → the status the error table (src/errors.ts) names,
// `{error: {type, message}}`. Never a stack trace, never a secret; unexpected errors are logged and
// answered with a plain 500.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';
import {
  CallerGoneError,
  errorEnvelope,
  errorRule,
  HttpError,
  isDatabaseUnavailable,
  MaestroError,
  PoolExhaustedError,
  ProviderUnavailableError,
  ServiceUnavailableError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import { describeIssues } from './schemas.js';

/** The HTTP status for `error`, from the error table (a zod parse failure is the caller's bad request). */
export function statusFor(error: unknown): number {
  return error instanceof ZodError ? 400 : errorRule(error).status;
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
  const body = JSON.stringify(errorEnvelope(type, message));
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
  };
  const retryAfterSeconds = errorRule(error).retryAfter === 'header' ? (error as MaestroError).retryAfterSeconds : undefined;
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  if (error instanceof PoolExhaustedError && error.nextAvailableAt)
    headers['x-maestro-pool-next-available'] = error.nextAvailableAt.toISOString();
  // A request whose body stopped arriving: the rest of it is not waited for, the connection ends after the answer.
  if (status === 408) headers.connection = 'close';
  res.writeHead(status, headers).end(body);
}

export const errorHandler =
  (log: Logger): ErrorRequestHandler =>
  (caught, req, res, _next) =>
    sendError(log, caught, req, res);
