// What a sign-in backend's mapping takes and gives (src/auth/backends/index.ts picks the backend;
// codex.ts and codeAssist.ts map): the public request, the mapped one, and how the answer maps back.
import type { Transform } from 'node:stream';
import { ValidationError } from '../../errors.js';
import type { CallAuth } from '../../providers/types.js';

export interface PublicRequest {
  method: string;
  /** The public path, e.g. `/v1/responses`. */
  path: string;
  search: string;
  /** The plain (not content-encoded) request body; undefined for a call without one. */
  body: Buffer | undefined;
  auth: CallAuth;
}

/** How a 2xx answer of the backend becomes the public API's answer. */
export interface AnswerMapping {
  /** The content type the client gets. */
  contentType: string;
  /**
   * A fresh Transform over the backend's (plain) answer bytes. `setStatus`, when the mapping
   * finds the answer failed after all (a Codex stream with a failure event), is told the status
   * the client gets instead of the backend's 2xx, before the Transform writes anything.
   */
  transform: (setStatus?: (status: number) => void) => Transform;
}

export interface MappedRequest {
  /** Path and query on the backend's base URL. */
  path: string;
  search: string;
  body: Buffer | undefined;
  /** Headers this mapping sets (on top of the provider's header set), lowercase. */
  headers: Record<string, string>;
  answer: AnswerMapping | undefined;
}

/** A JSON object body, or a ValidationError (400: the caller's to fix) naming what is wrong. */
export function jsonObject(body: Buffer | undefined, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse((body ?? Buffer.alloc(0)).toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ValidationError(`${what}: the request body must be a JSON object`);
  }
  return parsed as Record<string, unknown>;
}
