// Clients present a Maestro key as `Authorization: Bearer <key>` or `x-api-key: <key>`.
// Keys are compared as SHA-256 digests with timingSafeEqual, so timing reveals neither content nor length.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestHandler } from 'express';
import { HttpError } from './errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  const apiKey = headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.length > 0 ? apiKey.trim() : undefined;
}

/** The key check on plain headers: undefined when a valid key is presented, else the 401 to answer. */
export function apiKeyCheck(keys: string[]): (headers: IncomingHttpHeaders) => HttpError | undefined {
  const digests = keys.map(digest);
  return (headers) => {
    const key = presentedKey(headers);
    if (key === undefined)
      return new HttpError(401, 'unauthorized', 'missing Maestro API key: send Authorization: Bearer <key> or x-api-key: <key>');
    const presented = digest(key);
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, presented) || ok; // check every key: no early exit
    return ok ? undefined : new HttpError(401, 'unauthorized', 'invalid Maestro API key');
  };
}

/** The same check as Express middleware. */
export function requireApiKey(check: ReturnType<typeof apiKeyCheck>): RequestHandler {
  return (req, _res, next) => next(check(req.headers));
}
