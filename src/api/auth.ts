// Clients present a Maestro key as `Authorization: Bearer <key>` or `x-api-key: <key>`.
// Keys are compared as SHA-256 digests with timingSafeEqual, so timing reveals neither content nor length.
import { createHash, timingSafeEqual } from 'node:crypto';
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

export function requireApiKey(keys: string[]): RequestHandler {
  const digests = keys.map(digest);
  return (req, _res, next) => {
    const key = presentedKey(req.headers);
    if (key === undefined) {
      next(new HttpError(401, 'unauthorized', 'missing Maestro API key: send Authorization: Bearer <key> or x-api-key: <key>'));
      return;
    }
    const presented = digest(key);
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, presented) || ok; // check every key: no early exit
    if (!ok) {
      next(new HttpError(401, 'unauthorized', 'invalid Maestro API key'));
      return;
    }
    next();
  };
}
